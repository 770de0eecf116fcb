"""A batch: the readings of one partition's contiguous offset range, held column by column.

Every offset of the range is accounted for in the batch: a stored message (its readings are
rows), a resend of a stored message (no rows: docs/delivery.md), or a dead letter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, cast

from confluent_kafka import Message

from streams.codec import Record
from streams.reasons import Rejection

COLUMNS = (
    "device_id",
    "metric",
    "event_time",
    "value",
    "seq",
    "firmware",
    "site",
    "source_partition",
    "source_offset",
)

# A message's identity: a resend carries the same device, event time and sequence number.
Identity = tuple[str, int, int]


@dataclass
class Batch:
    """Offsets ``first..last`` of one partition; every message in between is in it or dead-lettered.

    Its insert token is derived from that range (and the topic's identity) alone, so a replay
    that re-forms the same range inserts with the same token and ClickHouse drops the repeat.
    """

    topic: str  # the token's prefix: the topic's name, and its id where known
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
    source_offset: list[int] = field(default_factory=list)
    # Stored messages, in offset order: offset, first row, identity, the message itself.
    offsets: list[int] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    identities: list[Identity] = field(default_factory=list)
    raw: list[Message | None] = field(default_factory=list)
    # Indexes into the stored messages whose identity must be looked up before the insert.
    unsure: list[int] = field(default_factory=list)
    letters: list[tuple[Message, Rejection]] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)  # offsets of resends (no rows)

    @property
    def rows(self) -> int:
        return len(self.value)

    @property
    def token(self) -> str:
        return f"{self.topic}/{self.partition}/{self.first_offset}-{self.last_offset}"

    def add(
        self,
        offset: int,
        size: int,
        record: Record,
        message: Message | None = None,
        unsure: bool = False,
    ) -> None:
        """Append a valid measurement: one row per reading."""
        self._advance(offset, size)
        readings = record["readings"]
        count = len(readings)
        event_time = record["event_time"]
        self.offsets.append(offset)
        self.starts.append(len(self.value))
        self.identities.append((record["device_id"], event_time, record["seq"]))
        self.raw.append(message)
        if unsure:
            self.unsure.append(len(self.offsets) - 1)
        self.device_id.extend([record["device_id"]] * count)
        self.metric.extend(readings.keys())
        self.value.extend(readings.values())
        self.event_time.extend([event_time] * count)
        self.seq.extend([record["seq"]] * count)
        self.firmware.extend([record["firmware"]] * count)
        self.site.extend([record["site"] or ""] * count)
        self.source_offset.extend([offset] * count)
        if self.oldest_event_ms is None or event_time < self.oldest_event_ms:
            self.oldest_event_ms = event_time

    def reject(self, offset: int, size: int, message: Message, rejection: Rejection) -> None:
        """Account for a message that goes to the dead-letter topic: in the range, no rows."""
        self._advance(offset, size)
        self.letters.append((message, rejection))

    def resend(self, offset: int, size: int) -> None:
        """Account for a resend of a message already stored: in the range, no rows."""
        self._advance(offset, size)
        self.resent.append(offset)

    def skip(self, offset: int, size: int) -> None:
        """Account for a message with nothing to store and nothing to send (benchmarks)."""
        self._advance(offset, size)

    def columns(self) -> list[list[Any]]:
        partition = [self.partition] * len(self.value)
        return [
            self.device_id,
            self.metric,
            self.event_time,
            self.value,
            self.seq,
            self.firmware,
            self.site,
            partition,
            self.source_offset,
        ]

    def drop(self, stored: set[int]) -> None:
        """Remove the stored messages at these indexes: they turned out to be resends."""
        if not stored:
            return
        keep = [i for i in range(len(self.offsets)) if i not in stored]
        old = self._row_ranges()
        rows = [r for i in keep for r in range(*old[i])]
        for name in ("device_id", "metric", "event_time", "value", "seq", "firmware", "site"):
            column = getattr(self, name)
            setattr(self, name, [column[r] for r in rows])
        self.source_offset = [self.source_offset[r] for r in rows]
        self.resent.extend(self.offsets[i] for i in sorted(stored))
        starts, position = [], 0
        for i in keep:
            starts.append(position)
            position += old[i][1] - old[i][0]
        self.offsets = [self.offsets[i] for i in keep]
        self.identities = [self.identities[i] for i in keep]
        self.raw = [self.raw[i] for i in keep]
        self.starts = starts
        self.unsure = []

    def split(self) -> tuple[Batch, Batch]:
        """Two batches covering this range, with about half the stored messages each."""
        assert len(self.offsets) >= 2, "a batch of one stored message cannot be split"
        middle = len(self.offsets) // 2
        cut = self.offsets[middle]
        left = Batch(self.topic, self.partition, self.first_offset, created=self.created)
        right = Batch(self.topic, self.partition, cut, created=self.created)
        ranges = self._row_ranges()
        for index, offset in enumerate(self.offsets):
            target = left if offset < cut else right
            target._take(self, index, ranges[index])
        for message, rejection in self.letters:
            (left if _offset(message) < cut else right).letters.append((message, rejection))
        for offset in self.resent:
            (left if offset < cut else right).resent.append(offset)
        left.last_offset, right.last_offset = cut - 1, self.last_offset
        for part in (left, right):
            part.messages = len(part.offsets) + len(part.letters) + len(part.resent)
        return left, right

    def _take(self, source: Batch, index: int, rows: tuple[int, int]) -> None:
        start, end = rows
        self.offsets.append(source.offsets[index])
        self.starts.append(len(self.value))
        self.identities.append(source.identities[index])
        self.raw.append(source.raw[index])
        for name in ("device_id", "metric", "event_time", "value", "seq", "firmware", "site"):
            getattr(self, name).extend(getattr(source, name)[start:end])
        self.source_offset.extend(source.source_offset[start:end])
        event_time = source.identities[index][1]
        if self.oldest_event_ms is None or event_time < self.oldest_event_ms:
            self.oldest_event_ms = event_time

    def _row_ranges(self) -> list[tuple[int, int]]:
        ends = [*self.starts[1:], len(self.value)]
        return list(zip(self.starts, ends, strict=True))

    def _advance(self, offset: int, size: int) -> None:
        self.last_offset = offset
        self.messages += 1
        self.size_bytes += size


def _offset(message: Message) -> int:
    return cast(int, message.offset())
