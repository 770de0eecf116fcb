"""The data path of one worker process: consume → decode → validate → batch → insert → commit.

Each partition has one open batch that fills, and at most one batch in flight. A batch in
flight is (1) announced by committing its intent, (2) inserted with its token and its dead
letters delivered, then (3) committed past. While a partition's batch is in flight the next
one keeps filling, so a slow database gets bigger inserts; when the open batch is full too,
the partition is paused (back-pressure) while the consumer keeps polling to stay in the group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from confluent_kafka import Message

from streams.batch import Batch
from streams.codec import DecodeError, Decoder, Record
from streams.offsets import Intent
from streams.sink import backoff
from streams.source import Assigned, CommitFailed, RebalanceEvent, Revoked
from streams.validate import Rejection, Validator
from streams.worker_metrics import WorkerMetrics

log = logging.getLogger(__name__)


class Source(Protocol):
    """What the data path needs of the consumer (streams/source.py: KafkaSource)."""

    @property
    def paused(self) -> frozenset[int]: ...

    async def commit(self, offsets: dict[int, tuple[int, str]]) -> None: ...

    def pause(self, partitions: Sequence[int]) -> None: ...

    def resume(self, partitions: Sequence[int]) -> None: ...

    def high_watermark(self, partition: int) -> int | None: ...


class Sink(Protocol):
    """Stores a batch, retrying until ClickHouse acknowledged (streams/sink.py)."""

    async def insert(self, batch: Batch) -> None: ...


class DeadLetterSink(Protocol):
    """Rejected messages (streams/dlq.py: DeadLetters)."""

    def send(self, message: Message, rejection: Rejection) -> None: ...

    async def flush(self) -> None: ...


@dataclass(frozen=True)
class Limits:
    """When a batch flushes, and how much one process may hold.

    A batch flushes when it is full (rows or bytes), or when its partition is caught up and
    the batch is ``linger_seconds`` old. Under a backlog the partition is never caught up, so
    batches grow to the caps (a slow database gets fewer, bigger inserts); caught up, they stay
    small and fresh. ``max_seconds`` bounds the age when the partition's end is unknown.
    """

    max_rows: int
    max_bytes: int
    max_seconds: float
    max_message_bytes: int
    linger_seconds: float = 0.25
    max_in_flight: int = 4


@dataclass
class Partition:
    """What one partition holds: the open batch, the batch in flight, a replay intent."""

    number: int
    epoch: int = 0  # the source's rebalance epoch when this ownership began
    open: Batch | None = None
    in_flight: asyncio.Task[None] | None = None
    intent: Intent | None = None
    revoked: bool = False
    flushes: int = field(default=0)

    @property
    def busy(self) -> bool:
        return self.in_flight is not None and not self.in_flight.done()


class Ingest:
    """Owns the partitions' batches and moves them through insert and commit."""

    def __init__(
        self,
        topic: str,
        source: Source,
        decoder: Decoder,
        validator: Validator,
        sink: Sink,
        dead_letters: DeadLetterSink,
        limits: Limits,
        metrics: WorkerMetrics,
    ) -> None:
        self.topic = topic
        self.source = source
        self.decoder = decoder
        self.validator = validator
        self.sink = sink
        self.dead_letters = dead_letters
        self.limits = limits
        self.metrics = metrics
        self.partitions: dict[int, Partition] = {}
        self.stopping = False

    # -- rebalances (called inside consume(), on the event loop's thread) -----------------

    def on_rebalance(self, event: RebalanceEvent) -> None:
        self.metrics.rebalance(
            "assigned" if isinstance(event, Assigned) else "lost" if event.lost else "revoked"
        )
        if isinstance(event, Assigned):
            for number, intent in event.partitions.items():
                self.partitions[number] = Partition(number, event.epoch, intent=intent)
        elif isinstance(event, Revoked):
            for number in event.partitions:
                partition = self.partitions.pop(number, None)
                if partition is not None:
                    partition.revoked = True
                    if partition.busy and partition.in_flight is not None:
                        # The new owner re-forms this batch from its intent; ClickHouse
                        # drops whichever insert comes second.
                        partition.in_flight.cancel()

    # -- the data path ----------------------------------------------------------------

    def submit(self, messages: Sequence[Message], epoch: int = 0) -> None:
        """Decode, validate and batch messages polled at rebalance ``epoch``; start due flushes.

        A message polled before its partition was (re)assigned is dropped: the new ownership
        fetches again from the committed offset, and an old message would break the batch's
        contiguous offset range.
        """
        now_ms = int(time.time() * 1000)
        self.metrics.consumed.inc(len(messages))
        for message in messages:
            partition = self.partitions.get(cast(int, message.partition()))
            if partition is None or epoch < partition.epoch:
                continue
            self._add(partition, message, now_ms)
        self.poll()

    def poll(self) -> None:
        """Start due flushes (size, age, intent boundary); pause partitions that are full.

        Each partition resumes as soon as its own full batch went in flight: waiting for every
        partition would make them refill in lockstep, and the database idle meanwhile.
        """
        now = time.monotonic()
        full = []
        in_flight = sum(1 for p in self.partitions.values() if p.busy)
        # Oldest batch first, so no partition waits for a free insert slot forever.
        for partition in sorted(self.partitions.values(), key=_batch_age):
            batch = partition.open
            if batch is None:
                continue
            if partition.busy or in_flight >= self.limits.max_in_flight:
                if self._is_full(batch):
                    full.append(partition.number)
                continue
            if self._is_due(partition, batch, now):
                self._start_flush(partition)
                in_flight += 1
        if self.stopping:
            return  # drain(): everything stays paused
        paused = self.source.paused
        if pause := [p for p in full if p not in paused]:
            self.source.pause(pause)
        if resume := sorted(paused.difference(full)):
            self.source.resume(resume)

    def _add(self, partition: Partition, message: Message, now_ms: int) -> None:
        offset = cast(int, message.offset())
        if partition.open is not None and offset <= partition.open.last_offset:
            return  # already in this batch (a repeated fetch); ranges stay increasing
        intent = partition.intent
        if intent is not None and partition.open is None and offset != intent.first:
            partition.intent = None  # the range it named is gone (retention); nothing to replay
            intent = None
        if partition.open is None:
            partition.open = Batch(self.topic, partition.number, offset)
        batch = partition.open
        payload = message.value() or b""
        size = len(payload)
        checked = self._check(payload, now_ms)
        if isinstance(checked, Rejection):
            self.dead_letters.send(message, checked)
            self.metrics.dead_lettered(checked.reason)
            batch.skip(offset, size)
        else:
            batch.add(offset, size, checked)
        if intent is not None and offset >= intent.last and not partition.busy:
            self._start_flush(partition)

    def _check(self, payload: bytes, now_ms: int) -> Rejection | Record:
        if len(payload) > self.limits.max_message_bytes:
            return Rejection("oversized", f"{len(payload)} bytes")
        try:
            record = self.decoder.decode(payload)
        except DecodeError as error:
            return Rejection(error.reason, error.detail)
        return self.validator.check(record, now_ms) or record

    def _is_due(self, partition: Partition, batch: Batch, now: float) -> bool:
        if partition.intent is not None:
            return batch.last_offset >= partition.intent.last
        age = now - batch.created
        if self._is_full(batch):
            return True
        if age < self.limits.linger_seconds:
            return False
        high = self.source.high_watermark(partition.number)
        if high is None:
            return age >= self.limits.max_seconds
        return batch.last_offset + 1 >= high

    def _is_full(self, batch: Batch) -> bool:
        return batch.rows >= self.limits.max_rows or batch.size_bytes >= self.limits.max_bytes

    def _start_flush(self, partition: Partition) -> None:
        batch, partition.open, partition.intent = partition.open, None, None
        assert batch is not None
        partition.in_flight = asyncio.create_task(self._flush(partition, batch))
        # Once done, the next batch may go (and a paused partition resume).
        partition.in_flight.add_done_callback(lambda _task: self.poll())

    async def _flush(self, partition: Partition, batch: Batch) -> None:
        """Intent commit → insert ∥ dead letters → commit; repeated whole until it holds.

        A refused commit (e.g. STALE_MEMBER_EPOCH while the group rebalances) never skips
        the batch: while the partition is ours the step is retried, and a repeated insert is
        dropped by its token. Only a revocation ends it (the next owner replays the intent).
        """
        self.metrics.in_flight.inc()
        attempt = 0
        try:
            while True:
                try:
                    await self._flush_once(partition.number, batch)
                    partition.flushes += 1
                    return
                except CommitFailed as error:
                    if partition.revoked:
                        return
                    attempt += 1
                    log.warning(
                        "commit for partition %d refused (%s); batch %s again, attempt %d",
                        partition.number,
                        error,
                        batch.token,
                        attempt + 1,
                    )
                    await asyncio.sleep(backoff(attempt, 5.0))
        finally:
            self.metrics.in_flight.dec()

    async def _flush_once(self, number: int, batch: Batch) -> None:
        if batch.rows:
            intent = Intent(batch.first_offset, batch.last_offset)
            await self.source.commit({number: (batch.first_offset, intent.metadata())})
            await asyncio.gather(self.sink.insert(batch), self.dead_letters.flush())
            self.metrics.batch_stored(batch.rows, batch.size_bytes, batch.oldest_event_ms)
        else:
            await self.dead_letters.flush()
        await self.source.commit({number: (batch.last_offset + 1, "")})

    # -- shutdown -----------------------------------------------------------------------

    def holding(self) -> int:
        """Messages held in open batches (not yet in flight)."""
        return sum(p.open.messages for p in self.partitions.values() if p.open is not None)

    async def drain(self, grace: float, serve: Callable[[], None]) -> None:
        """Let batches in flight finish (up to ``grace`` s); abandon open ones uncommitted.

        ``serve`` keeps the consumer answering meanwhile: the commits in flight complete
        through its callbacks.
        """
        self.stopping = True
        tasks = [p.in_flight for p in self.partitions.values() if p.busy and p.in_flight]
        for partition in self.partitions.values():
            partition.open = None
        deadline = time.monotonic() + grace
        while tasks and time.monotonic() < deadline:
            serve()
            _, pending = await asyncio.wait(tasks, timeout=0.01)
            tasks = list(pending)
        for task in tasks:
            task.cancel()


def _batch_age(partition: Partition) -> float:
    return partition.open.created if partition.open is not None else float("inf")
