"""A batch: the readings of one partition's contiguous offset range, held column by column.

Every offset of the range is accounted for in the batch: a stored message (its readings are
rows), a resend of a stored message (no rows: docs/delivery.md), or a dead letter.
"""

from __future__ import annotations

import sys
import time
from array import array
from dataclasses import dataclass, field
from typing import Any, cast

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

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
    A stored message is kept as its Avro body (the Avro insert path: ClickHouse makes the rows)
    or as its record (the Native path: rows are built when the batch is inserted).
    """

    topic: str  # the token's prefix: the topic's name, and its id where known
    partition: int
    first_offset: int
    last_offset: int = -1
    messages: int = 0
    size_bytes: int = 0
    rows: int = 0
    oldest_event_ms: int | None = None
    created: float = field(default_factory=time.monotonic)
    # Stored messages, in offset order, column by column: offset, identity (device, event time,
    # seq), readings, and either its newest-version Avro body (the Avro insert path) or its
    # record (rows built here). A batch of a backlog holds ~100,000 messages: numbers are kept
    # in arrays and device names interned, about 200 bytes a message with its body (the
    # polled message itself is not kept: one refused alone is read again, ingest.py).
    offsets: array[int] = field(default_factory=lambda: array("q"))
    devices: list[str] = field(default_factory=list)
    event_times: array[int] = field(default_factory=lambda: array("q"))
    seqs: array[int] = field(default_factory=lambda: array("q"))
    counts: array[int] = field(default_factory=lambda: array("I"))
    bodies: list[bytes] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    # The Kafka timestamp of the first stored message (after a split: of the whole range's).
    first_sent_ms: int | None = None
    # Indexes into the stored messages whose identity must be looked up before the insert.
    unsure: list[int] = field(default_factory=list)
    letters: list[tuple[Message, Rejection]] = field(default_factory=list)
    letters_sent: bool = False  # in the dead-letter topic (maybe sent by an earlier owner)
    grows: bool | None = None  # past the batch cap to the backlog cap (ingest.py: Limits)
    resent: list[int] = field(default_factory=list)  # offsets of resends (no rows)

    @property
    def identities(self) -> list[Identity]:
        """Each stored message's identity, in offset order."""
        return list(zip(self.devices, self.event_times, self.seqs, strict=True))

    def identity(self, index: int) -> Identity:
        return (self.devices[index], self.event_times[index], self.seqs[index])

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
        """Append a valid measurement by its record: one row per reading, built at insert."""
        self.records.append(record)
        identity = (record["device_id"], record["event_time"], record["seq"])
        self._stored(offset, size, identity, len(record["readings"]), message, unsure)

    def add_body(
        self,
        offset: int,
        size: int,
        identity: Identity,
        readings: int,
        body: bytes,
        message: Message | None = None,
        unsure: bool = False,
    ) -> None:
        """Append a valid measurement by its identity, reading count and newest-version Avro
        body (the Avro insert path)."""
        self.bodies.append(body)
        self._stored(offset, size, identity, readings, message, unsure)

    def _stored(
        self,
        offset: int,
        size: int,
        identity: Identity,
        readings: int,
        message: Message | None,
        unsure: bool,
    ) -> None:
        self.last_offset = offset
        self.messages += 1
        self.size_bytes += size
        self.rows += readings
        if unsure:
            self.unsure.append(len(self.offsets))
        if not self.offsets and message is not None:
            kind, stamp = message.timestamp()
            self.first_sent_ms = stamp if kind != TIMESTAMP_NOT_AVAILABLE else None
        self.offsets.append(offset)
        device, event_time, seq = identity
        self.devices.append(sys.intern(device))
        self.event_times.append(event_time)
        self.seqs.append(seq)
        self.counts.append(readings)
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
        """The rows, column by column, in :data:`COLUMNS` order (the Native insert path: only
        for batches whose messages were added with their records)."""
        device_id: list[str] = []
        metric: list[str] = []
        event_time: list[int] = []
        value: list[float] = []
        seq: list[int] = []
        firmware: list[str] = []
        site: list[str] = []
        source_offset: list[int] = []
        for offset, record in zip(self.offsets, self.records, strict=True):
            readings = record["readings"]
            count = len(readings)
            metric.extend(readings.keys())
            value.extend(readings.values())
            device_id.extend([record["device_id"]] * count)
            event_time.extend([record["event_time"]] * count)
            seq.extend([record["seq"]] * count)
            firmware.extend([record["firmware"]] * count)
            site.extend([record["site"] or ""] * count)
            source_offset.extend([offset] * count)
        partition = [self.partition] * len(value)
        return [device_id, metric, event_time, value, seq, firmware, site, partition, source_offset]

    def drop(self, stored: set[int]) -> None:
        """Remove the stored messages at these indexes: they turned out to be resends."""
        if not stored:
            return
        self.resent.extend(self.offsets[i] for i in sorted(stored))
        keep = [i for i in range(len(self.offsets)) if i not in stored]
        self._keep(self, keep)
        self.unsure = []

    def split(self) -> tuple[Batch, Batch]:
        """Two batches covering this range, with about half the stored messages each."""
        assert len(self.offsets) >= 2, "a batch of one stored message cannot be split"
        middle = len(self.offsets) // 2
        cut = self.offsets[middle]
        left = Batch(self.topic, self.partition, self.first_offset, cut - 1, created=self.created)
        right = Batch(self.topic, self.partition, cut, self.last_offset, created=self.created)
        for part, kept in ((left, range(middle)), (right, range(middle, len(self.offsets)))):
            part._keep(self, list(kept))
        for message, rejection in self.letters:
            (left if _offset(message) < cut else right).letters.append((message, rejection))
        for offset in self.resent:
            (left if offset < cut else right).resent.append(offset)
        for part in (left, right):
            part.messages = len(part.offsets) + len(part.letters) + len(part.resent)
            part.letters_sent = self.letters_sent
        return left, right

    def _keep(self, source: Batch, indexes: list[int]) -> None:
        """Hold the stored messages of ``source`` at these indexes (in order), and only them."""
        self.offsets = array("q", [source.offsets[i] for i in indexes])
        self.devices = [source.devices[i] for i in indexes]
        self.event_times = array("q", [source.event_times[i] for i in indexes])
        self.seqs = array("q", [source.seqs[i] for i in indexes])
        self.counts = array("I", [source.counts[i] for i in indexes])
        self.bodies = [source.bodies[i] for i in indexes] if source.bodies else []
        self.records = [source.records[i] for i in indexes] if source.records else []
        self.first_sent_ms = source.first_sent_ms
        self.rows = sum(self.counts)
        self.oldest_event_ms = min(self.event_times) if self.event_times else None

    def _advance(self, offset: int, size: int) -> None:
        self.last_offset = offset
        self.messages += 1
        self.size_bytes += size


def _offset(message: Message) -> int:
    return cast(int, message.offset())


@dataclass
class Group:
    """The batches of one insert: one partition's (today's token, ``topic/p/first-last``), or
    several partitions' under one token naming every part, in partition order. A replay that
    re-forms the same parts inserts with the same token and ClickHouse drops the repeat."""

    parts: list[Batch]

    def __post_init__(self) -> None:
        self.parts = sorted(self.parts, key=lambda batch: batch.partition)

    @property
    def token(self) -> str:
        if len(self.parts) == 1:
            return self.parts[0].token
        ranges = ",".join(f"{b.partition}:{b.first_offset}-{b.last_offset}" for b in self.parts)
        return f"{self.parts[0].topic}/{ranges}"

    @property
    def rows(self) -> int:
        return sum(batch.rows for batch in self.parts)

    @property
    def size_bytes(self) -> int:
        return sum(batch.size_bytes for batch in self.parts)

    def oldest_event_ms(self) -> int | None:
        times = [b.oldest_event_ms for b in self.parts if b.oldest_event_ms is not None]
        return min(times) if times else None

    def first_sent_ms(self) -> int | None:
        stamps = [b.first_sent_ms for b in self.parts if b.first_sent_ms is not None]
        return min(stamps) if stamps else None

    def columns(self) -> list[list[Any]]:
        """Every part's rows, column by column (the Native insert path)."""
        columns: list[list[Any]] = [[] for _ in COLUMNS]
        for batch in self.parts:
            for whole, part in zip(columns, batch.columns(), strict=True):
                whole.extend(part)
        return columns
