"""Which partitions a device's messages may be waiting on, from where its readings arrived."""

from __future__ import annotations

from api.arrivals import Arrival, Arrivals, added_partitions, candidates

WINDOW = 600.0
T0 = 1_795_000_000.0  # the topic's first stored reading
DAY = 86400.0
SIX = range(6)
TWELVE = range(12)
SINCE_START = {p: T0 + p for p in SIX}  # six partitions, all in use from the start


def arrival(partition: int, first: float, last: float) -> Arrival:
    return Arrival(partition, first, last, last + 0.5)


def test_a_keyed_device_counts_the_one_partition_it_writes_to() -> None:
    found = candidates(Arrivals([arrival(3, T0, T0 + DAY)], SINCE_START), SIX, WINDOW)
    assert (found.partitions, found.basis, found.reason) == (frozenset({3}), "readings", None)


def test_a_device_that_moved_counts_both_partitions_for_the_window_then_only_the_new_one() -> None:
    moved_at = T0 + DAY
    old = arrival(1, T0, moved_at)
    just_moved = Arrivals([old, arrival(4, moved_at + 1, moved_at + WINDOW - 1)], SINCE_START)
    assert candidates(just_moved, SIX, WINDOW).partitions == {1, 4}
    settled = Arrivals([old, arrival(4, moved_at + 1, moved_at + WINDOW + 2)], SINCE_START)
    assert candidates(settled, SIX, WINDOW).partitions == {4}


def test_readings_arriving_on_several_partitions_at_once_count_every_partition() -> None:
    unkeyed = [arrival(0, T0, T0 + DAY), arrival(2, T0 + 5, T0 + DAY - 3)]
    found = candidates(Arrivals(unkeyed, SINCE_START), SIX, WINDOW)
    assert (found.partitions, found.basis) == (frozenset(SIX), "spread")
    assert found.reason is not None
    assert "several partitions at once" in found.reason


def test_an_unknown_device_or_an_unanswered_lookup_counts_every_partition() -> None:
    never = candidates(Arrivals([], SINCE_START), SIX, WINDOW)
    assert (never.partitions, never.basis) == (frozenset(SIX), "not-stored-yet")
    failed = candidates(Arrivals(failure="ClickHouse is unavailable"), SIX, WINDOW)
    assert (failed.partitions, failed.basis) == (frozenset(SIX), "unknown")
    assert failed.reason is not None
    assert "ClickHouse is unavailable" in failed.reason


def test_partitions_added_after_the_devices_newest_reading_count_for_it() -> None:
    before_growth = Arrivals([arrival(2, T0, T0 + DAY)], SINCE_START)
    found = candidates(before_growth, TWELVE, WINDOW)
    assert found.partitions == {2, 6, 7, 8, 9, 10, 11}, "none of them stored a reading yet"

    grown = {**SINCE_START, **{p: T0 + DAY + 60 for p in range(6, 12)}}
    assert candidates(Arrivals([arrival(2, T0, T0 + DAY)], grown), TWELVE, WINDOW).partitions == {
        2,
        *range(6, 12),
    }, "added after its newest reading"
    late_learner = Arrivals([arrival(2, T0, T0 + DAY + 300)], grown)  # its producer saw it later
    assert candidates(late_learner, TWELVE, WINDOW).partitions == {2, *range(6, 12)}
    moved = Arrivals(
        [arrival(2, T0, T0 + DAY + 300), arrival(8, T0 + DAY + 301, T0 + 2 * DAY)], grown
    )
    assert candidates(moved, TWELVE, WINDOW).partitions == {8}, "long after: its own only"


def test_a_young_topic_counts_no_partition_as_added() -> None:
    young = {0: T0, 2: T0 + 30, 5: T0 + 200}  # 1, 3 and 4 unused so far
    assert added_partitions(young, SIX, T0 + 300 - WINDOW, WINDOW) == set()
    assert added_partitions(young, TWELVE, T0 + 300 - WINDOW, WINDOW) == set(range(6, 12))
    assert added_partitions({}, SIX, T0, WINDOW) == set(SIX), "nothing stored anywhere yet"


def test_rows_of_the_query_become_the_device_and_the_topics_figures() -> None:
    rows = [
        ("", 0, 1_000, 9_000, 5_000, 9_500),
        ("", 1, 2_000, 8_000, 6_000, 8_500),
        ("dev-000001", 1, 2_000, 8_000, 6_000, 8_500),
    ]
    arrivals = Arrivals.from_rows(rows)
    assert arrivals.first_stored == {0: 5.0, 1: 6.0}
    assert list(arrivals.device) == [Arrival(1, 2.0, 8.0, 8.5)]
