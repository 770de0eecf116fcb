"""The data path of one worker process: consume → decode → validate → batch → insert → commit.

Each partition has one open batch that fills, and at most one batch in flight. A batch in
flight has (1) its dead letters delivered, (2) its intent committed, (3) its rows inserted
with its token, then (4) its end committed. While a partition's batch is in flight the next
one keeps filling, so a slow database gets bigger inserts.

Every offset the partition's commit passes is accounted for: stored, a resend of a stored
message, or delivered as a dead letter. Anything else stops the partition at that offset
instead of skipping it (a *halt*): the partition is paused, and goes on from there when it can —
when its open batch has room again (back-pressure), after a backoff (the registry was
unreachable; an unexpected error, logged and counted). A halt on an error rewinds the consumer
to the offset, so the message is fetched again; back-pressure keeps the messages already polled
past it (this poll's and those queued behind it) and takes them first when it goes on, since a
paused partition fetches from after the last message polled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, cast

from confluent_kafka import Message

from streams.codec import DecodeError, Decoder, Record, RegistryUnavailable
from streams.fastcheck import Accepted, FastCheck
from streams.reasons import Rejection
from streams.validate import Validator
from streams.worker.batch import Batch
from streams.worker.dlq import Letter
from streams.worker.intents import Intent
from streams.worker.resends import Resends
from streams.worker.retry import backoff
from streams.worker.sink import Unstorable
from streams.worker.source import Assigned, CommitFailed, RebalanceEvent, Revoked
from streams.worker.telemetry import WorkerMetrics

log = logging.getLogger(__name__)

HaltCause = Literal["full", "registry", "error"]
MAX_HALT_SECONDS = 30.0


class Source(Protocol):
    """What the data path needs of the consumer (streams/worker/source.py: KafkaSource)."""

    @property
    def paused(self) -> frozenset[int]: ...

    async def commit(self, offsets: dict[int, tuple[int, str]]) -> None: ...

    def pause(self, partitions: Sequence[int]) -> None: ...

    def resume(self, partitions: Sequence[int]) -> None: ...

    def rewind(self, partition: int, offset: int) -> int: ...

    def high_watermark(self, partition: int) -> int | None: ...


class Sink(Protocol):
    """Stores a batch, retrying until ClickHouse acknowledged (streams/worker/sink.py)."""

    async def insert(self, batch: Batch) -> None: ...


class DeadLetterSink(Protocol):
    """Rejected messages (streams/worker/dlq.py: DeadLetters)."""

    async def deliver(self, letters: Sequence[Letter]) -> None: ...


@dataclass(frozen=True)
class Limits:
    """When a batch flushes, and how much one process may hold.

    A batch flushes when it is full (rows or bytes), or when it is ``linger_seconds`` old and
    its partition is live: no more messages wait behind it than it holds. Under a backlog
    batches grow to the caps (a slow database gets fewer, bigger inserts); live, they stay
    small and fresh. ``max_seconds`` bounds the age in any case. The caps hold per message: a
    batch is at most one message past them.
    """

    max_rows: int
    max_bytes: int
    max_seconds: float
    max_message_bytes: int
    linger_seconds: float = 0.25
    max_in_flight: int = 4


@dataclass
class Halt:
    """Why a partition is not fetched now, where it goes on, and from when."""

    offset: int
    cause: HaltCause
    until: float = 0.0  # monotonic; "full" waits for room in the open batch instead
    held: list[Message] = field(default_factory=list)  # "full": polled from ``offset`` on


@dataclass
class Partition:
    """What one partition holds: the open batch, the batch in flight, a replay intent."""

    number: int
    epoch: int = 0  # the source's epoch when this ownership (or its last rewind) began
    open: Batch | None = None
    in_flight: asyncio.Task[None] | None = None
    intent: Intent | None = None
    revoked: bool = False
    halt: Halt | None = None
    errors: int = 0  # consecutive halts on errors, for the backoff
    flushes: int = field(default=0)

    @property
    def busy(self) -> bool:
        return self.in_flight is not None and not self.in_flight.done()


class Ingest:
    """Owns the partitions' batches and moves them through insert and commit."""

    def __init__(
        self,
        token_prefix: str,
        source: Source,
        decoder: Decoder,
        validator: Validator,
        sink: Sink,
        dead_letters: DeadLetterSink,
        resends: Resends,
        limits: Limits,
        metrics: WorkerMetrics,
        bodies: bool = False,
        fast: FastCheck | None = None,
    ) -> None:
        """``bodies``: batches keep each message's newest-version Avro body for the sink to
        send (the Avro insert path) instead of its record (rows built by the sink). ``fast``
        (with ``bodies``) accepts plain valid messages before the Python path is asked."""
        self.token_prefix = token_prefix
        self.bodies = bodies
        self.fast = fast if bodies else None
        self.source = source
        self.decoder = decoder
        self.validator = validator
        self.sink = sink
        self.dead_letters = dead_letters
        self.resends = resends
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
            self.resends.forget()
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
        """Decode, validate and batch messages polled at ``epoch``; start due flushes.

        A message polled before its partition was (re)assigned or rewound is dropped: the
        partition fetches again from where it stands, and an old message would break the
        batch's contiguous offset range.
        """
        now_ms = int(time.time() * 1000)
        self.metrics.consumed.inc(len(messages))
        for message in messages:
            partition = self.partitions.get(cast(int, message.partition()))
            if partition is None or epoch < partition.epoch:
                continue
            halt = partition.halt
            if halt is None:
                self._take(partition, message, now_ms)
            elif halt.cause == "full":
                halt.held.append(message)  # polled before the pause: next in line
        self.poll()

    def _take(self, partition: Partition, message: Message, now_ms: int) -> None:
        try:
            self._add(partition, message, now_ms)
        except RegistryUnavailable as error:
            self._halt_on_error(partition, message, "registry", error)
        except Exception as error:
            self._halt_on_error(partition, message, "error", error)

    def poll(self) -> None:
        """Start due flushes (size, age, intent boundary); let halted partitions go on.

        Each partition goes on as soon as its own full batch went in flight: waiting for every
        partition would make them refill in lockstep, and the database idle meanwhile.
        """
        now = time.monotonic()
        in_flight = sum(1 for p in self.partitions.values() if p.busy)
        # Oldest batch first, so no partition waits for a free insert slot forever.
        for partition in sorted(self.partitions.values(), key=_batch_age):
            batch = partition.open
            if batch is None or partition.busy or in_flight >= self.limits.max_in_flight:
                continue
            if self._is_due(partition, batch, now):
                self._start_flush(partition)
                in_flight += 1
        if not self.stopping:
            self._go_on(now)

    def _add(self, partition: Partition, message: Message, now_ms: int) -> None:
        offset = cast(int, message.offset())
        batch = partition.open
        if batch is not None and offset <= batch.last_offset:
            return  # already in this batch (a repeated fetch); ranges stay increasing
        if partition.intent is not None and batch is None and offset != partition.intent.first:
            partition.intent = None  # the range it named is gone (retention); nothing to replay
        if batch is not None and partition.intent is None and self._is_full(batch):
            if not self._flush_now(partition):
                self._halt(partition, offset, "full", held=[message])
                return
            batch = None
        payload = message.value() or b""
        checked = self._check(payload, now_ms)  # may raise: no batch is opened then
        if batch is None:
            batch = partition.open = Batch(self.token_prefix, partition.number, offset)
            if partition.intent is not None:  # the replay of a batch whose intent said so
                batch.letters_sent = partition.intent.letters_sent
        if isinstance(checked, Rejection):
            batch.reject(offset, len(payload), message, checked)
            self.metrics.dead_lettered(checked.reason)
        elif isinstance(checked, tuple):  # the Avro path
            identity = checked[:3]
            unsure = not self.resends.is_new(identity)
            batch.add_body(offset, len(payload), identity, checked[3], checked[4], message, unsure)
        else:
            identity = (checked["device_id"], checked["event_time"], checked["seq"])
            unsure = not self.resends.is_new(identity)
            batch.add(offset, len(payload), checked, message, unsure)
        partition.errors = 0
        intent = partition.intent
        if intent is not None and offset >= intent.last and not partition.busy:
            self._start_flush(partition)

    def _check(self, payload: bytes, now_ms: int) -> Rejection | Record | Accepted:
        """Why the message is a dead letter; or, with ``bodies``, what the batch keeps of it
        (identity, reading count, newest-version body); or else its record."""
        if len(payload) > self.limits.max_message_bytes:
            return Rejection("oversized", f"{len(payload)} bytes")
        if self.fast is not None:
            accepted = self.fast.check(payload, now_ms)
            if accepted is not None:
                return accepted
        try:
            if not self.bodies:
                record = self.decoder.decode(payload)
                return self.validator.check(record, now_ms) or record
            record, body = self.decoder.decode_stored(payload)
        except DecodeError as error:
            return Rejection(error.reason, error.detail)
        rejection = self.validator.check(record, now_ms)
        if rejection is not None:
            return rejection
        if self.fast is not None:
            self.fast.learn(payload)  # a registry schema id the compiled check can take next
        count = len(record["readings"])
        return (record["device_id"], record["event_time"], record["seq"], count, body)

    def _is_due(self, partition: Partition, batch: Batch, now: float) -> bool:
        if partition.intent is not None:
            return batch.last_offset >= partition.intent.last
        age = now - batch.created
        if self._is_full(batch):
            return True
        if age < self.limits.linger_seconds:
            return False
        if partition.halt is not None:
            return True  # nothing joins it before the partition goes on
        high = self.source.high_watermark(partition.number)
        if high is None:
            return age >= self.limits.max_seconds
        # Live: no more messages wait behind the batch than it holds. Devices sending all the
        # time keep the high watermark a little ahead of any poll (librdkafka fetches
        # meanwhile, polls queue for the agent), so "at the very end" would rarely hold and
        # batches would wait for a quiet moment; a backlog is many batches long.
        waiting = high - (batch.last_offset + 1)
        taken = batch.last_offset + 1 - batch.first_offset
        return age >= self.limits.max_seconds or waiting <= taken

    def _is_full(self, batch: Batch) -> bool:
        return batch.rows >= self.limits.max_rows or batch.size_bytes >= self.limits.max_bytes

    # -- halts --------------------------------------------------------------------------

    def _halt(
        self,
        partition: Partition,
        offset: int,
        cause: HaltCause,
        delay: float = 0,
        held: list[Message] | None = None,
    ) -> None:
        """Stop taking messages of ``partition`` at ``offset``; go on from there later.

        "full" keeps what was polled, from ``held`` (the message at ``offset``) on; any other
        cause fetches again.
        """
        partition.halt = Halt(offset, cause, time.monotonic() + delay, held or [])
        self.source.pause([partition.number])
        if cause != "full":
            partition.epoch = self.source.rewind(partition.number, offset)
        self.metrics.halted(cause)

    def _halt_on_error(
        self, partition: Partition, message: Message, cause: HaltCause, error: Exception
    ) -> None:
        offset = cast(int, message.offset())
        partition.errors += 1
        delay = backoff(partition.errors, MAX_HALT_SECONDS, base=0.5)
        if cause == "registry" or partition.errors > 1:
            log.warning(
                "partition %d waits at offset %d for %.1f s (%s): %s",
                partition.number,
                offset,
                delay,
                "the schema registry failed" if cause == "registry" else "the same error again",
                error,
            )
        else:
            log.exception(
                "partition %d stopped at offset %d for %.1f s by an unexpected error; "
                "nothing past it is committed",
                partition.number,
                offset,
                delay,
                exc_info=error,
            )
        self._halt(partition, offset, cause, delay)

    def _go_on(self, now: float) -> None:
        """Resume the halted partitions whose reason is gone, held messages first."""
        ready = []
        now_ms = int(time.time() * 1000)
        for partition in list(self.partitions.values()):
            halt = partition.halt
            if halt is None:
                continue
            if halt.cause == "full":
                if partition.open is not None and self._is_full(partition.open):
                    continue
            elif now < halt.until:
                continue
            partition.halt = None
            for index, message in enumerate(halt.held):
                self._take(partition, message, now_ms)
                if partition.halt is not None:  # full again, or an error (fetched again)
                    if partition.halt.cause == "full":
                        partition.halt.held.extend(halt.held[index + 1 :])
                    break
            else:
                ready.append(partition.number)
        if ready:
            self.source.resume(ready)

    # -- flushes ------------------------------------------------------------------------

    def _flush_now(self, partition: Partition) -> bool:
        """Start the open batch's flush if a slot is free; False if it must wait."""
        in_flight = sum(1 for p in self.partitions.values() if p.busy)
        if partition.busy or in_flight >= self.limits.max_in_flight:
            return False
        self._start_flush(partition)
        return True

    def _start_flush(self, partition: Partition) -> None:
        batch, partition.open, partition.intent = partition.open, None, None
        assert batch is not None
        partition.in_flight = asyncio.create_task(self._flush(partition, batch))
        # Once done, the next batch may go (and a halted partition go on).
        partition.in_flight.add_done_callback(lambda _task: self.poll())

    async def _flush(self, partition: Partition, batch: Batch) -> None:
        """Store the batch piece by piece until its whole range is committed.

        A failed step (a refused commit, an error) is retried, never skipped: while the
        partition is ours the piece is stored again, and a repeated insert is dropped by its
        token. Only a revocation ends it (the next owner replays the intent).
        """
        self.metrics.in_flight.inc()
        pieces = [batch]
        attempt = 0
        try:
            while pieces:
                try:
                    pieces[0:1] = await self._store(partition.number, pieces[0])
                    attempt = 0
                except Exception as error:
                    if partition.revoked:
                        return
                    attempt += 1
                    self._flush_failed(partition.number, pieces[0], error, attempt)
                    await asyncio.sleep(backoff(attempt, MAX_HALT_SECONDS))
            partition.flushes += 1
        finally:
            self.metrics.in_flight.dec()

    async def _store(self, number: int, batch: Batch) -> list[Batch]:
        """Dead letters → intent commit → insert → commit. Returns the pieces still to store
        when ClickHouse refused the batch's data (none when it is committed).

        The letters go first and the intent says they went: the owner that replays the intent
        after a rebalance or a crash sends none of them again.
        """
        resent = len(batch.resent)
        await self.resends.settle(batch)
        self.metrics.resends.inc(len(batch.resent) - resent)
        if batch.letters and not batch.letters_sent:
            await self.dead_letters.deliver(
                [Letter.of(message, rejection) for message, rejection in batch.letters]
            )
            batch.letters_sent = True
        if batch.rows:
            intent = Intent(batch.first_offset, batch.last_offset, bool(batch.letters))
            await self.source.commit({number: (batch.first_offset, intent.metadata())})
            try:
                await self.sink.insert(batch)
            except Unstorable as refusal:
                return self._divide(batch, refusal)
            self.metrics.batch_stored(
                batch.rows, batch.size_bytes, batch.oldest_event_ms, batch.first_sent_ms()
            )
        await self.source.commit({number: (batch.last_offset + 1, "")})
        return []

    def _divide(self, batch: Batch, refusal: Unstorable) -> list[Batch]:
        """The pieces of a batch ClickHouse refused: halves, or the one message as a dead letter."""
        self.metrics.batch_refused(refusal.kind)
        if len(batch.offsets) >= 2:
            left, right = batch.split()
            log.warning(
                "ClickHouse refused batch %s (%s); storing it as %s and %s",
                batch.token,
                refusal,
                left.token,
                right.token,
            )
            for piece in (left, right):  # a refused insert may have stored some parts
                piece.unsure = list(range(len(piece.offsets)))
            return [left, right]
        message = batch.raw[0]
        if not refusal.data or message is None:
            raise refusal  # not the message's fault (memory): the partition waits
        rejection = Rejection("rejected_by_clickhouse", str(refusal)[:300])
        log.warning(
            "ClickHouse refused the message at offset %d of partition %d alone (%s); dead-lettered",
            batch.offsets[0],
            batch.partition,
            refusal,
        )
        self.metrics.dead_lettered(rejection.reason)
        rejected = Batch(batch.topic, batch.partition, batch.first_offset, batch.last_offset)
        rejected.letters = [(message, rejection)]
        rejected.resent = batch.resent
        return [rejected]

    def _flush_failed(self, number: int, batch: Batch, error: Exception, attempt: int) -> None:
        kind = "commit" if isinstance(error, CommitFailed) else type(error).__name__.lower()
        self.metrics.flush_failed(kind)
        if isinstance(error, CommitFailed):
            log.warning(
                "commit for partition %d refused (%s); batch %s again, attempt %d",
                number,
                error,
                batch.token,
                attempt + 1,
            )
        elif attempt == 1:
            log.exception(
                "storing batch %s of partition %d failed; retrying it, nothing past it is "
                "committed",
                batch.token,
                number,
                exc_info=error,
            )
        elif attempt % 10 == 0:
            log.warning("batch %s still failing (attempt %d): %s", batch.token, attempt, error)

    # -- shutdown -----------------------------------------------------------------------

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
