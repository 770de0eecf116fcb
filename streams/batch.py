"""A batch: the readings of one partition's contiguous offset range, held column by column."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from streams.codec import Record

COLUMNS = ("device_id", "metric", "event_time", "value", "seq", "firmware", "site")


@dataclass
class Batch:
    """Offsets ``first..last`` of one partition; every message in between is in it or dead-lettered.

    Its insert token is derived from that range alone, so a replay that re-forms the same range
    inserts with the same token and ClickHouse drops the repeat (docs/delivery.md).
    """

    topic: str
    partition: int
    first_offset: int
    last_offset: int = -1
    messages: int = 0
    size_bytes: int = 0
    oldest_event_ms: int | None = None
    created: float = field(default_factory=time.monotonic)
    device_id: list[str] = field(default_factory=list)
    metric: list[str] = field(default_factory=list)
    event_time: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)
    firmware: list[str] = field(default_factory=list)
    site: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.value)

    @property
    def token(self) -> str:
        return f"{self.topic}/{self.partition}/{self.first_offset}-{self.last_offset}"

    def add(self, offset: int, size: int, record: Record) -> None:
        """Append a valid measurement: one row per reading."""
        self._advance(offset, size)
        readings = record["readings"]
        count = len(readings)
        event_time = record["event_time"]
        self.device_id.extend([record["device_id"]] * count)
        self.metric.extend(readings.keys())
        self.value.extend(readings.values())
        self.event_time.extend([event_time] * count)
        self.seq.extend([record["seq"]] * count)
        self.firmware.extend([record["firmware"]] * count)
        self.site.extend([record["site"] or ""] * count)
        if self.oldest_event_ms is None or event_time < self.oldest_event_ms:
            self.oldest_event_ms = event_time

    def skip(self, offset: int, size: int) -> None:
        """Account for a message that was dead-lettered: in the range, no rows."""
        self._advance(offset, size)

    def columns(self) -> list[list[object]]:
        return [getattr(self, name) for name in COLUMNS]

    def _advance(self, offset: int, size: int) -> None:
        self.last_offset = offset
        self.messages += 1
        self.size_bytes += size
