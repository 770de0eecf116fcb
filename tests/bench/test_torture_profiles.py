"""bench torture's profiles: what a groups trial draws, and the replays it counts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench._torture_trial import Options, draw, replays
from bench._torture_workload import HOSTILE
from streams.settings import Settings

GROUPS = Options(seed=7, messages=1000, rate=100, partitions=6, profile="groups")


def test_a_groups_trial_has_each_hostile_kind_once_and_no_long_outage() -> None:
    kills = Counter[str]()
    for index in range(12):
        messages, schedule = draw(GROUPS.seed, index, GROUPS, Settings())
        kinds = Counter(m.kind for m in messages)
        assert all(kinds[kind] == 1 for kind in HOSTILE), "every hostile kind, once"
        assert kinds["backfill"] == 0
        assert sum(1 for m in messages if m.expect == "dead_letter") <= len(HOSTILE) + 2
        assert {f.kind for f in schedule}.isdisjoint({"clickhouse_down", "dlq_unavailable"})
        kills.update(f.describe().split(" at ")[0] for f in schedule if f.kind == "kill_9")
    assert kills["kill_9 in flight"] > kills["kill_9"] > 0, kills


def test_the_mixed_profile_never_waits_for_an_insert() -> None:
    mixed = Options(seed=7, messages=1000)
    schedules = [draw(mixed.seed, index, mixed, Settings())[1] for index in range(12)]
    kills = [f for schedule in schedules for f in schedule if f.kind == "kill_9"]
    assert kills
    assert all(f.amount == 0 for f in kills)
    assert {f.kind for s in schedules for f in s} >= {"clickhouse_down", "dlq_unavailable"}


def test_replays_are_counted_from_the_workers_logs(tmp_path: Path) -> None:
    (tmp_path / "workers-0.log").write_text(
        "INFO worker-0 streams.worker.source: rebalance: assigned partitions [0, 1, 2] of t; "
        "p0 replays intent 21-28 of a group insert; p2 replays intent 19-25\n"
        "INFO worker-0 streams.worker.source: rebalance: assigned partitions [3] of t\n"
    )
    (tmp_path / "workers-1.log").write_text(
        "INFO worker-0 streams.worker.source: rebalance: assigned partitions [4] of t; "
        "p4 replays intent 1-9 of a group insert\n"
        "WARNING streams.worker.supervisor: worker 0 exited with code -9\n"
    )
    assert replays(tmp_path) == (3, 2)
