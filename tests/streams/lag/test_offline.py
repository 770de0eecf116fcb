"""A partition Kafka gives no offsets for (offline: no leader) is UNKNOWN, never a made-up 0."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry

from streams.lag.collector import LagCollector
from streams.lag.offsets import Commit, Group, Offsets, PartitionId, Watermarks
from streams.lag.reader import Reading
from streams.lag.refresh import Refresher
from streams.lag.requests import RequestTotals
from streams.lag.snapshot import Snapshot, status_document
from streams.lag.state import ExporterState
from streams.lag.status import Rules, Status

P0, P1 = PartitionId("m", 0), PartitionId("m", 1)


class ScriptedReader:
    """Readings in turn: partition 0 offline in the second one."""

    def __init__(self) -> None:
        self.readings = [self.reading(100.0, offline=False), self.reading(105.0, offline=True)]
        self.readings.append(self.reading(110.0, offline=False))

    @staticmethod
    def reading(at: float, offline: bool) -> Reading:
        commits = {P0: Commit(40, ""), P1: Commit(50, "")}
        group = Group("g", "Stable", 1, commits, {}, frozenset({"m"}))
        watermarks = {P1: Watermarks(0, 60)}
        unknown = {P0: "offsets unavailable: the partition has no leader"} if offline else {}
        if not offline:
            watermarks[P0] = Watermarks(0, 40)
        offsets = Offsets([group], watermarks, {"m": "id"}, unknown)
        return Reading(at, offsets, {}, 0, {})

    def read(self) -> Reading:
        return self.readings.pop(0)

    def interrupt(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_an_offline_partition_is_unknown_in_status_and_metrics_then_known_again() -> None:
    refresher = Refresher(ScriptedReader(), Rules(window=10, stop_after=120))
    refresher.refresh()
    snapshot = refresher.refresh()

    document = status_document(snapshot, None, 5.0, now=105.0)
    (group,) = document["groups"]
    p0, p1 = group["topics"][0]["partitions"]
    assert (p0["partition"], p0["status"], p0["lag_messages"], p0["lag_seconds"]) == (
        0,
        "UNKNOWN",
        None,
        None,
    )
    assert p0["committed_offset"] == 40, "what Kafka does know is still said"
    assert (p1["status"], p1["lag_messages"]) == ("OK", 10)
    assert group["lag_messages"] is None, "a partial sum would understate the lag"
    assert group["status"] == "UNKNOWN"

    lag = series(snapshot, "streamgauge_consumer_lag_messages")
    assert math.isnan(lag["0"])
    assert lag["1"] == 10
    assert "0" not in series(snapshot, "streamgauge_partition_end_offset")

    back = refresher.refresh()
    (partitions,) = [t.partitions for g in back.groups for t in g.topics]
    assert [(p.partition, p.status, p.lag_messages) for p in partitions] == [
        (0, Status.OK, 0),
        (1, Status.OK, 10),
    ]


def series(snapshot: Snapshot, name: str) -> dict[str, float]:
    state = ExporterState(5.0, clock=lambda: snapshot.refreshed_at)
    state.succeeded(snapshot)
    registry = CollectorRegistry()
    registry.register(LagCollector(state, RequestTotals()))
    return {
        sample.labels["partition"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name
    }
