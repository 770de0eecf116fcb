"""The consumer-status rules on fake histories: one refresh every 5 s, window 4, STOP after 30 s."""

from __future__ import annotations

from collections.abc import Sequence

from streams.lag.status import (
    Observation,
    PartitionHistory,
    Rules,
    Status,
    StatusBook,
    worst,
)

RULES = Rules(window=4, stop_after=30.0)
OK, WARN, STALL, STOP, REWIND = Status.OK, Status.WARN, Status.STALL, Status.STOP, Status.REWIND

Step = tuple[int | None, str, int]  # committed offset, metadata, lag in messages


def statuses(steps: Sequence[Step], rules: Rules = RULES, every: float = 5.0) -> list[Status]:
    history = PartitionHistory(rules.window)
    result = []
    for i, (committed, metadata, lag) in enumerate(steps):
        history.record(Observation(1000.0 + i * every, committed, metadata, lag))
        result.append(history.evaluate(rules))
    return result


def test_a_caught_up_consumer_is_ok() -> None:
    assert statuses([(100 + i, "", 0) for i in range(20)]) == [OK] * 20


def test_a_consumer_whose_lag_goes_up_and_down_is_ok() -> None:
    lags = [5, 8, 3, 9, 4, 7, 2, 6, 3, 8]
    steps: list[Step] = [(100 + 10 * i, "", lag) for i, lag in enumerate(lags)]
    assert statuses(steps) == [OK] * 10


def test_lag_that_never_shrinks_while_the_offset_moves_is_warn_once_the_window_is_full() -> None:
    steps: list[Step] = [(100 + 10 * i, "", 5 + i) for i in range(6)]
    assert statuses(steps) == [OK, OK, OK, WARN, WARN, WARN]


def test_one_refresh_without_lag_in_the_window_keeps_it_ok() -> None:
    steps: list[Step] = [(100, "", 5), (110, "", 0), (120, "", 5), (130, "", 6), (140, "", 7)]
    assert statuses(steps)[-1] is OK
    assert statuses([*steps, (150, "", 8)])[-1] is WARN


def test_commits_at_the_same_offset_with_new_metadata_are_stall_and_never_stop() -> None:
    steps: list[Step] = [(100, f"sg1:100-{199 + i % 2}", 50 + i) for i in range(20)]
    result = statuses(steps)  # 95 s of refreshes, three times stop_after
    assert result[:3] == [OK, OK, OK]
    assert result[3:] == [STALL] * 17


def test_no_commit_while_lagging_is_warn_then_stop_after_stop_after_seconds() -> None:
    steps: list[Step] = [(100, "", 50)] * 8
    # lag since t=0 and no commit seen since: STOP once 30 s have passed (the 7th refresh)
    assert statuses(steps) == [OK, OK, OK, WARN, WARN, WARN, STOP, STOP]


def test_a_last_intent_commit_then_silence_is_stall_until_it_becomes_stop() -> None:
    steps: list[Step] = [(100, "", 50), *[(100, "sg1:100-199", 50)] * 9]
    # the intent commit is seen at t=5; STOP 30 s later, at t=35 (the 8th refresh)
    assert statuses(steps) == [OK, OK, OK, STALL, STALL, STALL, STALL, STOP, STOP, STOP]


def test_the_stop_clock_starts_when_lag_appears_not_at_the_last_commit() -> None:
    idle: list[Step] = [(100, "", 0)] * 20  # caught up, nothing to commit for 95 s
    result = statuses([*idle, (100, "", 10), (110, "", 5)])
    assert result[-2:] == [OK, OK]


def test_a_commit_moving_the_offset_restarts_the_stop_clock() -> None:
    steps: list[Step] = [*[(100, "", 50)] * 6, *[(101, "", 60)] * 7]
    result = statuses(steps)
    # t=30 would have been STOP, but a commit is seen then; STOP 30 s later, at t=60
    assert STOP not in result[:12]
    assert result[12] is STOP


def test_an_offset_going_backwards_is_rewind_for_a_window() -> None:
    rewound: list[Step] = [(40 + 10 * i, "", 70 - 10 * i) for i in range(5)]
    steps: list[Step] = [(100, "", 0), (110, "", 0), *rewound]
    assert statuses(steps) == [OK, OK, REWIND, REWIND, REWIND, OK, OK]


def test_a_never_committed_partition_with_messages_stops_after_stop_after() -> None:
    steps: list[Step] = [(None, "", 500)] * 8
    assert statuses(steps)[-1] is STOP
    assert statuses([(None, "", 0)] * 8) == [OK] * 8


def test_a_group_that_commits_identical_pairs_looks_stopped_that_is_unobservable() -> None:
    # Re-committing the same offset with the same metadata leaves no trace in what Kafka
    # reports; documented as a limit in docs/design/lag.md.
    assert statuses([(100, "same", 50)] * 8)[-1] is STOP


def test_worst_orders_ok_warn_rewind_stall_stop() -> None:
    assert worst([]) is OK
    assert worst([OK, WARN]) is WARN
    assert worst([WARN, REWIND]) is REWIND
    assert worst([REWIND, STALL, OK]) is STALL
    assert worst([STALL, STOP, WARN]) is STOP


def test_the_book_forgets_partitions_that_vanished() -> None:
    book: StatusBook[str] = StatusBook(RULES)
    book.observe({"a": Observation(0, 1, "", 5), "b": Observation(0, 1, "", 5)})
    book.observe({"a": Observation(5, 1, "", 5)})
    assert set(book.histories) == {"a"}
    # "b" comes back with a fresh history: its earlier observations do not count
    assert book.observe({"b": Observation(100, 1, "", 5)}) == {"b": OK}
