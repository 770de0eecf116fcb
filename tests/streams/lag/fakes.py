"""Fakes at the edges: hand-built snapshots, and a reader that misbehaves on purpose."""

from __future__ import annotations

import os
import signal
import time

from confluent_kafka import KafkaError, KafkaException

from streams.lag.offsets import Offsets
from streams.lag.reader import Reading
from streams.lag.snapshot import GroupLag, PartitionLag, Snapshot, TopicLag
from streams.lag.status import Status
from streams.settings import Settings

REFRESHED_AT = 1795669200.123  # 2026-11-26T05:00:00.123Z


def partition(
    number: int,
    lag: int = 10,
    seconds: float | None = 0.5,
    status: Status = Status.OK,
    committed: int | None = 90,
    oldest: float | None = None,
) -> PartitionLag:
    end = 100 if committed is None else committed + lag
    return PartitionLag(
        partition=number,
        start_offset=0,
        end_offset=end,
        committed_offset=committed,
        lag_messages=lag,
        lag_seconds=seconds,
        status=status,
        commit_metadata="",
        owner=None,
        last_commit_seen_at=REFRESHED_AT - 3,
        oldest_timestamp=oldest,
    )


def snapshot(*partitions: PartitionLag, group: str = "streamgauge-ingest") -> Snapshot:
    topic = TopicLag("measurements", tuple(partitions))
    return Snapshot(REFRESHED_AT, 0.05, (GroupLag(group, "Stable", 2, (topic,)),))


class FakeReader:
    """Stands in for KafkaReader in IsolatedReader's child; misbehaves once, as configured.

    ``settings.cache_dir`` holds a marker file: the first read anywhere (in any child) does
    ``settings.log_level`` ("crash", "hang" or "fail"); later reads answer an empty reading.
    """

    def __init__(self, settings: Settings, groups: list[str]) -> None:
        self.marker = settings.cache_dir / "misbehaved"
        self.how = settings.log_level

    def read(self) -> Reading:
        if not self.marker.exists():
            self.marker.touch()
            if self.how == "crash":
                os.kill(os.getpid(), signal.SIGSEGV)  # what librdkafka's NULL dereference does
            elif self.how == "hang":
                time.sleep(60)
            elif self.how == "fail":
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT))
        return Reading(time.time(), Offsets([], {}, {}), {}, 0, {"Metadata": 1})

    def close(self) -> None:
        pass
