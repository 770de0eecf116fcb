"""bench torture's checker: quiet on a world that adds up, loud on each kind of violation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from bench._torture_check import (
    MEANING,
    DeadLetter,
    Kind,
    Observed,
    Offset,
    Row,
    bucket,
    check,
)
from bench._torture_workload import Expect, Identity, Planned

T = 1_790_000_000_000  # event time of the readings, ms
A1: Identity = ("dev-1", "temperature_c", T, 7)
A2: Identity = ("dev-1", "humidity_pct", T, 7)
B1: Identity = ("dev-1", "temperature_c", T, 1_000_000_001)
C1: Identity = ("dev-2", "x1", T + 1000, 3)


def planned(index: int, expect: Expect, readings: dict[Identity, float], **extra: Any) -> Planned:
    return dataclasses.replace(
        Planned(index, "valid", expect, b"k", b"", readings, partition=0, offset=index), **extra
    )


def workload() -> list[Planned]:
    """p0: a valid message, an invalid one, a resend of the first, one of either fate."""
    return [
        planned(0, "stored", {A1: 21.5, A2: 40.0}),
        planned(1, "dead_letter", {B1: 21.6}, kind="non_finite_value"),
        planned(2, "stored", {A1: 21.5, A2: 40.0}, kind="resend", original=0),
        planned(3, "either", {C1: 1.0}, kind="many_readings"),
    ]


def world(
    rows: list[Row] | None = None,
    letters: list[DeadLetter] | None = None,
    committed: int = 4,
    end: int = 4,
) -> Observed:
    """What the stores would hold; rollups and ``latest`` follow the rows, as they should."""
    if rows is None:
        rows = [Row(A1, 21.5), Row(A2, 40.0), Row(C1, 1.0)]
    rollup: dict[tuple[str, str, int], int] = {}
    latest: dict[tuple[str, str], tuple[tuple[int, int], float]] = {}
    for row in rows:
        rollup[bucket(row.identity)] = rollup.get(bucket(row.identity), 0) + 1
        device, metric, event_ms, seq = row.identity
        if (device, metric) not in latest or (event_ms, seq) > latest[(device, metric)][0]:
            latest[(device, metric)] = ((event_ms, seq), row.value)
    return Observed(
        {0: committed},
        {0: end},
        rows,
        letters if letters is not None else [DeadLetter(0, 1, "non_finite_value")],
        rollup,
        {key: value for key, (_, value) in latest.items()},
    )


def test_a_world_that_adds_up_has_no_violation() -> None:
    verdict = check(workload(), world())
    assert verdict.violations == []
    assert verdict.stored == 3  # the valid message, its resend, the one of either fate
    assert verdict.dead_lettered == 1


def test_a_dead_letter_delivered_twice_is_allowed_and_counted() -> None:
    letters = [DeadLetter(0, 1, "non_finite_value"), DeadLetter(0, 1, "non_finite_value")]
    verdict = check(workload(), world(letters=letters))
    assert verdict.violations == []
    assert (verdict.dead_lettered, verdict.dead_letter_repeats) == (1, 1)
    assert verdict.reasons == {"non_finite_value": 1}
    kept_whole = [
        DeadLetter(0, 1, "non_finite_value"),
        DeadLetter(0, 1, "non_finite_value", "table"),
    ]
    assert check(workload(), world(letters=kept_whole)).dead_letter_repeats == 0


def test_a_dead_lettered_message_of_either_fate_is_fine() -> None:
    letters = [DeadLetter(0, 1, "non_finite_value"), DeadLetter(0, 3, "too_many_readings")]
    verdict = check(workload(), world([Row(A1, 21.5), Row(A2, 40.0)], letters))
    assert verdict.violations == []


def test_a_resend_stored_in_place_of_a_lost_original_counts_as_stored() -> None:
    # Which copy a deduplicating pipeline keeps is its business; the readings are there once.
    rows = [
        Row(A1, 21.5, sources=((0, 2),)),
        Row(A2, 40.0, sources=((0, 2),)),
        Row(C1, 1.0, sources=((0, 3),)),
    ]
    assert check(workload(), world(rows)).violations == []


def test_offsets_above_the_committed_one_are_not_yet_owed() -> None:
    verdict = check(workload(), world([], [], committed=0, end=0))
    assert verdict.violations == []


Plant = Callable[[Observed], Observed]


def _with(**changes: Any) -> Plant:
    return lambda observed: dataclasses.replace(observed, **changes)


def _rows(*rows: Row) -> Plant:
    return lambda _observed: world(list(rows))


def _letters(*letters: DeadLetter) -> Plant:
    return lambda _observed: world(letters=[DeadLetter(0, 1, "non_finite_value"), *letters])


PLANTED: list[tuple[Kind, Plant, list[Offset]]] = [
    ("not_caught_up", _with(end={0: 5}), [(0, 4)]),
    ("lost", _rows(Row(C1, 1.0)), [(0, 0), (0, 2)]),
    ("lost", lambda _o: world(letters=[]), [(0, 1)]),
    ("valid_dead_lettered", _letters(DeadLetter(0, 2, "unknown_schema")), [(0, 2)]),
    ("invalid_stored", _rows(Row(A1, 21.5), Row(A2, 40.0), Row(C1, 1.0), Row(B1, 21.6)), [(0, 1)]),
    ("stored_and_dead_lettered", _letters(DeadLetter(0, 3, "too_many_readings")), [(0, 3)]),
    ("duplicated", _rows(Row(A1, 21.5, 2), Row(A2, 40.0, 2), Row(C1, 1.0)), [(0, 0), (0, 2)]),
    ("partial", _rows(Row(A1, 21.5), Row(C1, 1.0)), [(0, 0), (0, 2)]),
    ("stray_row", _rows(Row(A1, 21.5), Row(A2, 40.0), Row(C1, 1.0), Row(("x", "y", T, 1), 0)), []),
    ("wrong_value", _rows(Row(A1, 99.0), Row(A2, 40.0), Row(C1, 1.0)), []),
    (
        "wrong_source",
        _rows(Row(A1, 21.5, sources=((0, 1),)), Row(A2, 40.0), Row(C1, 1.0)),
        [(0, 1)],
    ),
    ("rollup_count", lambda o: _with(rollup={**o.rollup, bucket(A1): 2})(o), [(0, 0), (0, 2)]),
    ("latest", lambda o: _with(latest={**o.latest, ("dev-1", "humidity_pct"): 39.0})(o), []),
    ("bad_dead_letter", _letters(DeadLetter(None, 3, "not_avro")), []),
    ("bad_dead_letter", _letters(DeadLetter(0, 3, "")), []),
    ("unknown_offset", _letters(DeadLetter(0, 99, "not_avro")), [(0, 99)]),
    ("unknown_offset", _with(committed={0: 5}, end={0: 5}), [(0, 4)]),
]


@pytest.mark.parametrize(("kind", "plant", "offsets"), PLANTED, ids=[p[0] for p in PLANTED])
def test_each_planted_violation_is_reported_with_its_offsets(
    kind: Kind, plant: Plant, offsets: list[Offset]
) -> None:
    verdict = check(workload(), plant(world()))
    found = [v for v in verdict.violations if v.kind == kind]
    assert found, f"{kind} not reported; got {verdict.violations}"
    reported = {offset for v in found for offset in v.offsets}
    assert set(offsets) <= reported


def test_every_kind_of_violation_is_planted_above() -> None:
    assert {kind for kind, _, _ in PLANTED} == set(MEANING)


def test_a_duplicate_names_the_message_each_copy_was_stored_from() -> None:
    # The same message inserted twice and a resend stored beside it are different faults.
    twice = _rows(Row(A1, 21.5, 2, ((0, 0), (0, 0))), Row(A2, 40.0, 2), Row(C1, 1.0))
    (found,) = [v for v in check(workload(), twice(world())).violations if v.kind == "duplicated"]
    assert found.detail.endswith("copies stored from [(0, 0), (0, 0)]")
