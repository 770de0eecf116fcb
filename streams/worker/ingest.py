"""The data path of one worker process: consume → decode → validate → batch → insert → commit.

Each partition has one open batch that fills, and at most one batch in flight. Batches go in
flight in *groups*: a due batch takes along the open batches of the other caught-up partitions,
one insert for all (a backlogged partition's full batch goes alone). A group in flight has (1)
its dead letters delivered, (2) its intents committed, one per partition, each naming the whole
group, (3) its rows inserted with its token, then (4) its ends committed. While a partition's
batch is in flight the next one keeps filling, so a slow database gets bigger inserts.

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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, cast

from confluent_kafka import Message

from streams.codec import DecodeError, Decoder, Record, RegistryUnavailable
from streams.fastcheck import Accepted, FastCheck
from streams.reasons import Rejection
from streams.validate import Validator
from streams.worker.batch import Batch, Group
from streams.worker.dlq import Letter
from streams.worker.intents import Intent, Part, group_intents
from streams.worker.resends import Resends
from streams.worker.retry import backoff
from streams.worker.sink import Unstorable
from streams.worker.source import Assigned, CommitFailed, RebalanceEvent, Revoked
from streams.worker.telemetry import WorkerMetrics

log = logging.getLogger(__name__)

HaltCause = Literal["full", "registry", "error"]
Result = TypeVar("Result")
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

    def committed(self, partition: int) -> tuple[int, str] | None: ...

    async def read_range(self, partition: int, first: int, last: int) -> list[Message] | None: ...


class Sink(Protocol):
    """Stores a batch, retrying until ClickHouse acknowledged (streams/worker/sink.py)."""

    async def insert(self, group: Group) -> None: ...


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

    A batch that reaches ``max_rows`` while Kafka already holds enough of its partition to
    fill it up to ``backlog_max_rows`` grows on to that: ClickHouse's CPU per reading falls with
    the insert's size, and those messages are late already, so a backlog drains faster at no
    cost in freshness. A live partition's batches stay at ``max_rows`` (a bigger insert takes
    longer, and its next batch waits for it).

    A flush takes along the open batches of other partitions that are caught up too (up to
    ``max_partitions_per_insert`` partitions and ``insert_max_rows`` readings in all): one
    insert for them instead of one each, which is what keeps a live stream's latency low when
    ClickHouse is busy; a fast stream's partitions together may hold more than one batch, and
    stay in step only in one insert. Under a backlog batches are full and go alone.
    """

    max_rows: int
    max_bytes: int
    max_seconds: float
    max_message_bytes: int
    linger_seconds: float = 0.25
    max_in_flight: int = 4
    max_partitions_per_insert: int = 64
    backlog_max_rows: int = 0  # at most max_rows when lower

    @property
    def insert_max_rows(self) -> int:
        """The most readings one insert carries: a grown batch, or a group."""
        return max(self.max_rows, self.backlog_max_rows)


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
        self.flights: dict[asyncio.Task[None], list[Partition]] = {}  # groups in flight
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
                    task = partition.in_flight
                    members = self.flights.get(task) if task is not None else None
                    if task is not None and members and all(m.revoked for m in members):
                        # The new owners re-form the group from its intents; ClickHouse
                        # drops whichever insert comes second.
                        task.cancel()

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

    @property
    def quiet(self) -> bool:
        """Nothing the data path waits for but new messages: no open batch, no halted
        partition, no flush (whose commits are answered through the polls) in flight."""
        if self._flights():
            return False
        return all(p.open is None and p.halt is None for p in self.partitions.values())

    def poll(self) -> None:
        """Start due flushes (size, age, intent boundary); let halted partitions go on.

        Each partition goes on as soon as its own full batch went in flight: waiting for every
        partition would make them refill in lockstep, and the database idle meanwhile.
        """
        now = time.monotonic()
        in_flight = self._flights()
        # Oldest batch first, so no partition waits for a free insert slot forever.
        for partition in sorted(self.partitions.values(), key=_batch_age):
            batch = partition.open  # None also once it went along with an earlier one
            if batch is None or partition.busy or in_flight >= self.limits.max_in_flight:
                continue
            if self._is_due(partition, batch, now):
                self._start_flush(partition, now)
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
        if batch is not None and partition.intent is None and self._is_full(partition, batch):
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
        self._put(batch, message, offset, len(payload), checked, self.resends)
        partition.errors = 0
        intent = partition.intent
        if intent is not None and offset >= intent.last and not partition.busy:
            self._start_flush(partition, time.monotonic())

    def _put(
        self,
        batch: Batch,
        message: Message,
        offset: int,
        size: int,
        checked: Rejection | Record | Accepted,
        resends: Resends | None,
    ) -> None:
        """Account for a checked message in ``batch``: a dead letter, or stored; stored ones
        are looked up by identity before the insert unless ``resends`` knows them to be new
        (without: always, and the owner of the partition counts its dead letters)."""
        if isinstance(checked, Rejection):
            batch.reject(offset, size, message, checked)
            if resends is not None:
                self.metrics.dead_lettered(checked.reason)
        elif isinstance(checked, tuple):  # the Avro path
            identity = checked[:3]
            unsure = resends is None or not resends.is_new(identity)
            batch.add_body(offset, size, identity, checked[3], checked[4], message, unsure)
        else:
            identity = (checked["device_id"], checked["event_time"], checked["seq"])
            unsure = resends is None or not resends.is_new(identity)
            batch.add(offset, size, checked, message, unsure)

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
        if self._is_full(partition, batch):
            return True
        if age < self.limits.linger_seconds:
            return False
        return age >= self.limits.max_seconds or self._is_caught_up(partition, batch)

    def _is_caught_up(self, partition: Partition, batch: Batch, room: int = 0) -> bool:
        """Live: no more messages wait behind the batch than it holds, or than ``room`` (or
        none can join it).

        Devices sending all the time keep the high watermark a little ahead of any poll
        (librdkafka fetches meanwhile, polls queue for the agent), so "at the very end" would
        rarely hold and batches would wait for a quiet moment; a backlog is many batches long.
        """
        if partition.halt is not None:
            return True  # nothing joins it before the partition goes on
        waiting = self._waiting(partition, batch)
        taken = batch.last_offset + 1 - batch.first_offset
        return waiting is not None and waiting <= max(taken, room)

    def _waiting(self, partition: Partition, batch: Batch) -> int | None:
        """Messages Kafka holds behind ``batch`` (the cached high watermark; None: unknown)."""
        high = self.source.high_watermark(partition.number)
        return None if high is None else high - (batch.last_offset + 1)

    def _is_full(self, partition: Partition, batch: Batch) -> bool:
        if batch.size_bytes >= self.limits.max_bytes:
            return True
        if batch.rows < self.limits.max_rows:
            return False
        if batch.grows is None:  # decided once, when it reaches max_rows
            batch.grows = self._backlog_fills(partition, batch)
        return not batch.grows or batch.rows >= self.limits.backlog_max_rows

    def _backlog_fills(self, partition: Partition, batch: Batch) -> bool:
        """Kafka already holds enough behind ``batch`` to fill it to the backlog cap."""
        room = self.limits.backlog_max_rows - batch.rows
        if room <= 0 or partition.intent is not None or not batch.messages:
            return False
        waiting = self._waiting(partition, batch)
        return waiting is not None and waiting * batch.rows >= room * batch.messages

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
                if partition.open is not None and self._is_full(partition, partition.open):
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

    def _flights(self) -> int:
        return sum(1 for task in self.flights if not task.done())

    def _flush_now(self, partition: Partition) -> bool:
        """Start the open batch's flush if a slot is free; False if it must wait."""
        if partition.busy or self._flights() >= self.limits.max_in_flight:
            return False
        self._start_flush(partition, time.monotonic())
        return True

    def _start_flush(self, partition: Partition, now: float) -> None:
        """Send the partition's open batch on its way, with the caught-up batches of others
        (a group: one insert), or, for a replayed intent, with the group it names re-formed."""
        batch, partition.open, intent = partition.open, None, partition.intent
        partition.intent = None
        assert batch is not None
        members = [partition] if intent is not None else [partition, *self._joiners(batch, now)]
        parts = [batch]
        for member in members[1:]:
            assert member.open is not None
            parts.append(member.open)
            member.open = None
        group = intent.group if intent is not None else ()
        task = asyncio.create_task(self._flush(members, parts, group))
        for member in members:
            member.in_flight = task
        self.flights[task] = members

        def done(finished: asyncio.Task[None]) -> None:
            self.flights.pop(finished, None)
            self.poll()  # the next batch may go (and a halted partition go on)

        task.add_done_callback(done)

    def _joiners(self, first: Batch, now: float) -> list[Partition]:
        """Other partitions whose open batch goes along in the same insert: caught up (no more
        waiting behind it than it holds), nothing in flight, within the group's caps.

        A batch with dead letters goes alone: should the dead-letter topic be unavailable, only
        its own partition waits.
        """
        joiners: list[Partition] = []
        if first.letters:
            return joiners
        rows, size = first.rows, first.size_bytes
        for partition in sorted(self.partitions.values(), key=_batch_age):
            if len(joiners) + 1 >= self.limits.max_partitions_per_insert:
                break
            batch = partition.open
            if batch is None or batch is first or partition.busy or partition.intent is not None:
                continue
            if batch.letters:
                continue
            if rows + batch.rows > self.limits.insert_max_rows:
                continue
            if size + batch.size_bytes > self.limits.max_bytes:
                continue
            # A batch opened a moment ago is live if no more waits behind it than the due
            # batch took: joining keeps live partitions' batches in step, one insert for all.
            if self._is_full(partition, batch) or self._is_caught_up(
                partition, batch, first.messages
            ):
                joiners.append(partition)
                rows += batch.rows
                size += batch.size_bytes
        return joiners

    async def _flush(
        self, members: list[Partition], parts: list[Batch], replayed: tuple[Part, ...]
    ) -> None:
        """Store the group piece by piece until every owned partition's range is committed.

        A failed step (a refused commit, an error) is retried, never skipped: while any member
        is ours the piece is stored again, and a repeated insert is dropped by its token. Only
        losing every member ends it (their next owners replay the intents).
        """
        self.metrics.in_flight.inc()
        try:
            group = Group(parts)
            if replayed:
                regrouped = await self._retried(members, group, self._regroup, parts, replayed)
                if regrouped is None:
                    return  # every member moved: their next owners replay the intents
                group = regrouped
            pieces = [group]
            while pieces:
                piece = pieces[0]
                rest = await self._retried(members, piece, self._store, members, piece)
                if rest is None:
                    return  # every member moved: their next owners replay the intents
                pieces[0:1] = rest
            for member in members:
                member.flushes += 1
        finally:
            self.metrics.in_flight.dec()

    async def _retried(
        self,
        members: list[Partition],
        group: Group,
        step: Callable[..., Awaitable[Result]],
        *args: Any,
    ) -> Result | None:
        """``step(*args)``'s result once it succeeds, retried with backoff after each failure
        (logged against ``group``); None once every member moved to another owner."""
        attempt = 0
        while True:
            try:
                return await step(*args)
            except Exception as error:
                if all(member.revoked for member in members):
                    return None
                attempt += 1
                self._flush_failed(group, error, attempt)
                await asyncio.sleep(backoff(attempt, MAX_HALT_SECONDS))

    async def _regroup(self, parts: list[Batch], replayed: tuple[Part, ...]) -> Group:
        """The group a replayed ``sg2`` intent names: this partition's batch, re-formed from
        its own stream, and every other part read again from Kafka by offset. Inserted with
        the same token, ClickHouse drops it if the crashed owner's insert went in; the other
        parts are neither committed nor dead-lettered here (their owners do that)."""
        own = parts[0]
        others: list[Batch] = []
        for number, first, last in replayed:
            if number == own.partition:
                continue
            messages = await self.source.read_range(number, first, last)
            if messages is None:
                log.warning(
                    "partition %d offsets %d-%d of group %s are no longer in Kafka; replaying "
                    "partition %d alone, each message looked up by identity",
                    number,
                    first,
                    last,
                    Group([own, *others]).token,
                    own.partition,
                )
                own.unsure = list(range(len(own.offsets)))
                return Group([own])
            others.append(self._reread(number, first, last, messages))
        return Group([own, *others])

    def _reread(self, number: int, first: int, last: int, messages: list[Message]) -> Batch:
        """Another partition's part of a replayed group, from its messages read again."""
        now_ms = int(time.time() * 1000)
        batch = Batch(self.token_prefix, number, first)
        batch.letters_sent = True  # an sg2 intent is committed after its group's letters went
        for message in messages:
            payload = message.value() or b""
            checked = self._check(payload, now_ms)
            self._put(batch, message, cast(int, message.offset()), len(payload), checked, None)
        batch.last_offset = last
        return batch

    async def _store(self, members: list[Partition], group: Group) -> list[Group]:
        """Dead letters → intents commit → insert → commit. Returns the pieces still to store
        when ClickHouse refused the group's data (none when it is committed).

        The letters go first and the intents say they went: the owner that replays an intent
        after a rebalance or a crash sends none of them again.
        """
        for batch in group.parts:
            resent = len(batch.resent)
            await self.resends.settle(batch)
            self.metrics.resends.inc(len(batch.resent) - resent)
        letters = [
            Letter.of(message, rejection)
            for batch in group.parts
            if not batch.letters_sent
            for message, rejection in batch.letters
        ]
        if letters:
            await self.dead_letters.deliver(letters)
        for batch in group.parts:
            batch.letters_sent = True
        if group.rows:
            group = await self._announce(members, group)
            try:
                await self.sink.insert(group)
            except Unstorable as refusal:
                return await self._divide(members, group, refusal)
            self.metrics.batch_stored(
                group.rows,
                group.size_bytes,
                group.oldest_event_ms(),
                group.first_sent_ms(),
                len(group.parts),
            )
        await self._commit(members, {b.partition: (b.last_offset + 1, "") for b in group.parts})
        return []

    async def _announce(self, members: list[Partition], group: Group) -> Group:
        """Commit the group's intents (every owned member's, in one request: Kafka writes them
        together or not at all); returns the group to insert.

        Once they are committed the group stays whole whoever owns its partitions: a member's
        next owner replays it by the same token. A member lost before that is left out — unless
        a refused commit had in fact been written (the intent is then in Kafka, and that
        member's next owner replays the whole group).
        """
        intents = _intents(group)
        if len(group.parts) > 1 and any(m.revoked for m in members if m.number in intents):
            owned = [m for m in members if not m.revoked and m.number in intents]
            if not owned:
                raise CommitFailed("every partition of the group moved to another member")
            written = self.source.committed(owned[0].number)
            mine = intents[owned[0].number]
            if written != (mine.first, mine.metadata()):
                group = Group([b for b in group.parts if b.partition in {m.number for m in owned}])
                intents = _intents(group)
        await self._commit(members, _offsets(intents))
        return group

    async def _commit(self, members: list[Partition], offsets: dict[int, tuple[int, str]]) -> None:
        """Commit the offsets of the members still ours (a moved one is its next owner's)."""
        owned = {m.number for m in members if not m.revoked}
        mine = {number: offset for number, offset in offsets.items() if number in owned}
        if not mine:
            raise CommitFailed("every partition of the group moved to another member")
        await self.source.commit(mine)

    async def _divide(
        self, members: list[Partition], group: Group, refusal: Unstorable
    ) -> list[Group]:
        """The pieces of a group ClickHouse refused: its partitions' batches (each under an
        intent of its own, committed together first), a batch's halves, or the one message as
        a dead letter."""
        self.metrics.batch_refused(refusal.kind)
        if len(group.parts) >= 2:
            owned = {m.number for m in members if not m.revoked}
            if not refusal.data and any(b.partition not in owned for b in group.parts):
                # Not the data's fault (memory): another owner may yet insert the group whole.
                raise refusal
            pieces = [Group([b]) for b in group.parts if b.partition in owned]
            log.warning(
                "ClickHouse refused group %s (%s); storing its partitions' batches one by one",
                group.token,
                refusal,
            )
            for part in group.parts:  # a refused insert may have stored some parts
                part.unsure = list(range(len(part.offsets)))
            # Every piece's own intent replaces the group's at once: no one replays the group.
            await self._commit(members, _offsets(_intents_of(pieces)))
            return pieces
        batch = group.parts[0]
        if len(batch.offsets) >= 2:
            left, right = batch.split()
            log.warning(
                "ClickHouse refused batch %s (%s); storing it as %s and %s",
                batch.token,
                refusal,
                left.token,
                right.token,
            )
            for half in (left, right):  # a refused insert may have stored some parts
                half.unsure = list(range(len(half.offsets)))
            return [Group([left]), Group([right])]
        if not refusal.data:
            raise refusal  # not the message's fault (memory): the partition waits
        message = await self._refused_alone(batch, refusal)
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
        return [Group([rejected])]

    async def _refused_alone(self, batch: Batch, refusal: Unstorable) -> Message:
        """The message a batch of one stored message holds, read again from Kafka for its
        dead letter (batches keep bodies, not the polled messages: docs/design/worker.md)."""
        offset = batch.offsets[0]
        read = await self.source.read_range(batch.partition, offset, offset)
        if not read or read[0].offset() != offset:
            log.error(
                "ClickHouse refused the message at offset %d of partition %d alone, and Kafka "
                "no longer holds it for its dead letter; the partition waits",
                offset,
                batch.partition,
            )
            raise refusal
        return read[0]

    def _flush_failed(self, group: Group, error: Exception, attempt: int) -> None:
        kind = "commit" if isinstance(error, CommitFailed) else type(error).__name__.lower()
        self.metrics.flush_failed(kind)
        if isinstance(error, CommitFailed):
            log.warning(
                "commit for %s refused (%s); storing it again, attempt %d",
                group.token,
                error,
                attempt + 1,
            )
        elif attempt == 1:
            log.exception(
                "storing %s failed; retrying it, nothing past it is committed",
                group.token,
                exc_info=error,
            )
        elif attempt % 10 == 0:
            log.warning("%s still failing (attempt %d): %s", group.token, attempt, error)

    # -- shutdown -----------------------------------------------------------------------

    async def drain(self, grace: float, serve: Callable[[], None]) -> None:
        """Let groups in flight finish (up to ``grace`` s); abandon open batches uncommitted.

        ``serve`` keeps the consumer answering meanwhile: the commits in flight complete
        through its callbacks.
        """
        self.stopping = True
        tasks = [task for task in self.flights if not task.done()]
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


def _intents(group: Group) -> dict[int, Intent]:
    """The intent each partition of the group commits before its insert."""
    if len(group.parts) == 1:
        batch = group.parts[0]
        return {batch.partition: Intent(batch.first_offset, batch.last_offset, bool(batch.letters))}
    return group_intents([(b.partition, b.first_offset, b.last_offset) for b in group.parts])


def _intents_of(pieces: list[Group]) -> dict[int, Intent]:
    return {number: intent for piece in pieces for number, intent in _intents(piece).items()}


def _offsets(intents: dict[int, Intent]) -> dict[int, tuple[int, str]]:
    return {number: (intent.first, intent.metadata()) for number, intent in intents.items()}
