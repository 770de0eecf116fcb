"""The data path with small fakes at the edges: batching, intents, back-pressure, rebalances,
halts, resends, refused batches and dead letters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from confluent_kafka import Message

from streams.codec import Decoder, Encoder, load_versions
from streams.settings import REPO_ROOT
from streams.validate import Validator
from streams.worker.batch import Batch, Group, Identity
from streams.worker.dlq import Letter
from streams.worker.ingest import Ingest, Limits
from streams.worker.intents import Intent
from streams.worker.resends import Resends
from streams.worker.sink import Unstorable
from streams.worker.source import Assigned, CommitFailed, Revoked
from streams.worker.telemetry import WorkerMetrics

SCHEMAS = REPO_ROOT / "schemas" / "avro"
VERSIONS = load_versions(SCHEMAS)
ENCODER = Encoder(VERSIONS[-1])


@dataclass
class FakeMessage:
    """The part of confluent_kafka.Message the data path reads."""

    _partition: int
    _offset: int
    _value: bytes

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def topic(self) -> str:
        return "m"

    def key(self) -> bytes | None:
        return None

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)


class Broken(FakeMessage):
    """A message whose payload cannot be read: an unexpected error in the data path."""

    def value(self) -> bytes:
        raise RuntimeError("a bug")


@dataclass
class FakeSource:
    log: list[tuple[str, Any]]
    paused: frozenset[int] = frozenset()
    high: dict[int, int] = field(default_factory=dict)
    refuse: int = 0  # refuse this many commits
    epoch: int = 0
    kafka: dict[int, list[Message]] = field(default_factory=dict)  # read again by offset
    committed_offsets: dict[int, tuple[int, str]] = field(default_factory=dict)

    async def commit(self, offsets: dict[int, tuple[int, str]]) -> None:
        self.log.append(("commit", offsets))
        if self.refuse:
            self.refuse -= 1
            raise CommitFailed("STALE_MEMBER_EPOCH")
        self.committed_offsets.update(offsets)

    def committed(self, partition: int) -> tuple[int, str] | None:
        return self.committed_offsets.get(partition)

    async def read_range(self, partition: int, first: int, last: int) -> list[Message] | None:
        self.log.append(("read", (partition, first, last)))
        held = [m for m in self.kafka.get(partition, []) if first <= _offset(m) <= last]
        if not held or _offset(held[0]) != first:
            return None
        return held

    def pause(self, partitions: Sequence[int]) -> None:
        self.paused |= set(partitions)
        self.log.append(("pause", list(partitions)))

    def resume(self, partitions: Sequence[int]) -> None:
        self.paused -= set(partitions)
        self.log.append(("resume", list(partitions)))

    def high_watermark(self, partition: int) -> int | None:
        return self.high.get(partition)

    def rewind(self, partition: int, offset: int) -> int:
        self.log.append(("rewind", (partition, offset)))
        self.epoch += 1
        return self.epoch


@dataclass
class FakeSink:
    """A ClickHouse that stores batches in memory; ``refuse`` names device ids it rejects."""

    log: list[tuple[str, Any]]
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    batches: list[Batch] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    fail_once: bool = False

    tokens: set[str] = field(default_factory=set)

    async def insert(self, group: Group) -> None:
        self.log.append(("insert", group.token))
        await self.gate.wait()
        if self.fail_once:
            self.fail_once = False
            await asyncio.sleep(0.01)  # fails the way a server does: after a while
            raise RuntimeError("a bug")
        if self.refuse & {device for b in group.parts for device, _, _ in b.identities}:
            raise Unstorable("code_53", "type mismatch", data=True)
        if group.token in self.tokens:
            return  # ClickHouse drops a repeated token
        self.tokens.add(group.token)
        self.batches.extend(group.parts)

    async def highest_seqs(self, devices: Sequence[str]) -> dict[str, int]:
        highest: dict[str, int] = {}
        for batch in self.batches:
            for device, _, seq in batch.identities:
                if device in devices:
                    highest[device] = max(highest.get(device, -1), seq)
        return highest

    async def stored_identities(self, wanted: Sequence[Identity]) -> set[Identity]:
        return {i for b in self.batches for i in b.identities if i in set(wanted)}

    def rows(self) -> list[tuple[str, int]]:
        """Every stored row as (device, seq)."""
        columns = [b.columns() for b in self.batches]
        return [pair for c in columns for pair in zip(c[0], c[4], strict=True)]


@dataclass
class FakeDeadLetters:
    sent: list[tuple[int, str]] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    log: list[tuple[str, Any]] | None = None  # the ingest's log, to see the order of steps

    def __post_init__(self) -> None:
        self.gate.set()

    async def deliver(self, letters: Sequence[Letter]) -> None:
        if not letters:
            return
        await self.gate.wait()
        self.sent.extend((letter.source[2], letter.reason) for letter in letters)
        if self.log is not None:
            self.log.append(("deliver", [letter.source[2] for letter in letters]))


def _offset(message: Message) -> int:
    return cast(int, message.offset())


def message(
    partition: int, offset: int, valid: bool = True, seq: int | None = None, device: str = ""
) -> Message:
    record = {
        "device_id": device or f"dev-{offset % 3}",
        "event_time": 1_795_670_400_000,
        "seq": offset if seq is None else seq,
        "readings": {"a": 1.0, "b": 2.0},
        "firmware": "",
        "site": None,
    }
    payload = ENCODER.encode(record) if valid else b"garbage"
    return cast(Message, FakeMessage(partition, offset, payload))


def make_ingest(
    max_rows: int = 10,
    max_seconds: float = 60.0,
    linger: float = 0.25,
    max_in_flight: int = 4,
    backlog_max_rows: int = 0,
) -> tuple[Ingest, list[tuple[str, Any]], FakeSink, FakeDeadLetters]:
    log: list[tuple[str, Any]] = []
    sink = FakeSink(log)
    dead = FakeDeadLetters()
    ingest = Ingest(
        "m",
        FakeSource(log),
        Decoder(VERSIONS),
        Validator(max_future_ms=10**12),
        sink,
        dead,
        Resends(sink),
        Limits(
            max_rows=max_rows,
            max_bytes=10**9,
            max_seconds=max_seconds,
            max_message_bytes=10_000,
            linger_seconds=linger,
            max_in_flight=max_in_flight,
            backlog_max_rows=backlog_max_rows,
        ),
        WorkerMetrics("m", 0),
    )
    return ingest, log, sink, dead


async def logged(log: list[tuple[str, Any]], entry: tuple[str, Any], within: float = 2.0) -> None:
    """Wait until ``entry`` is in the log (retries back off for real time)."""
    for _ in range(int(within / 0.02)):
        if entry in log:
            return
        await asyncio.sleep(0.02)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_full_batch_is_announced_inserted_then_committed() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=10)
    ingest.on_rebalance(Assigned({0: None}))
    sink.gate.set()
    ingest.submit([message(0, offset) for offset in range(5)])  # 10 readings: full
    await settle()
    assert log == [
        ("commit", {0: (0, "sg1:0-4")}),
        ("insert", "m/0/0-4"),
        ("commit", {0: (5, "")}),
    ]
    assert sink.batches[0].rows == 10


async def test_a_replayed_intent_cuts_the_batch_where_the_crashed_owner_did() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=1000)
    ingest.on_rebalance(Assigned({0: Intent(100, 102)}))
    sink.gate.set()
    ingest.submit([message(0, offset) for offset in range(100, 106)])
    await settle()
    assert ("insert", "m/0/100-102") in log, "same range, same token: ClickHouse drops the repeat"
    assert ("commit", {0: (103, "")}) in log
    assert ingest.partitions[0].open is not None
    assert ingest.partitions[0].open.first_offset == 103


async def test_an_intent_for_a_range_no_longer_retained_is_dropped() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=4)
    ingest.on_rebalance(Assigned({0: Intent(10, 20)}))
    sink.gate.set()
    ingest.submit([message(0, offset) for offset in range(50, 52)])  # retention moved past 10
    await settle()
    assert ("insert", "m/0/50-51") in log


async def test_rejected_messages_stay_in_the_range_but_add_no_rows() -> None:
    ingest, _, sink, dead = make_ingest(max_rows=4)
    ingest.on_rebalance(Assigned({0: None}))
    sink.gate.set()
    ingest.submit([message(0, 0), message(0, 1, valid=False), message(0, 2)])
    await settle()
    assert dead.sent == [(1, "not_avro")]
    assert sink.batches[0].token == "m/0/0-2"
    assert sink.batches[0].rows == 4


async def test_dead_letters_go_out_before_the_intent_which_says_they_went() -> None:
    ingest, log, sink, dead = make_ingest(max_rows=4)
    dead.log = log
    ingest.on_rebalance(Assigned({0: None}))
    sink.gate.set()
    ingest.submit([message(0, 0), message(0, 1, valid=False), message(0, 2)])
    await settle()
    assert log == [
        ("deliver", [1]),
        ("commit", {0: (0, "sg1:0-2:dl")}),
        ("insert", "m/0/0-2"),
        ("commit", {0: (3, "")}),
    ]


async def test_the_replay_of_an_intent_whose_letters_went_sends_none_again() -> None:
    ingest, log, sink, dead = make_ingest(max_rows=1000)
    ingest.on_rebalance(Assigned({0: Intent(0, 2, letters_sent=True)}))
    sink.gate.set()
    ingest.submit([message(0, 0), message(0, 1, valid=False), message(0, 2), message(0, 3)])
    await settle()
    assert ("insert", "m/0/0-2") in log
    assert ("commit", {0: (0, "sg1:0-2:dl")}) in log, "a second replay sends none either"
    assert ("commit", {0: (3, "")}) in log
    assert dead.sent == []


async def test_the_replay_of_an_older_intent_sends_its_letters() -> None:
    ingest, log, sink, dead = make_ingest(max_rows=1000)
    ingest.on_rebalance(Assigned({0: Intent(0, 2)}))  # a worker stopped before its letters went
    sink.gate.set()
    ingest.submit([message(0, 0), message(0, 1, valid=False), message(0, 2), message(0, 3)])
    await settle()
    assert ("commit", {0: (3, "")}) in log
    assert dead.sent == [(1, "not_avro")]


async def test_a_batch_whose_insert_failed_is_stored_again_without_its_letters() -> None:
    ingest, log, sink, dead = make_ingest(max_rows=100, linger=0.0, max_seconds=0.0)
    sink.gate.set()
    sink.fail_once = True
    ingest.on_rebalance(Assigned({0: None}))
    ingest.submit([message(0, 0), message(0, 1, valid=False), message(0, 2)])
    await logged(log, ("commit", {0: (3, "")}))
    assert [b.token for b in sink.batches] == ["m/0/0-2"]
    assert dead.sent == [(1, "not_avro")]


async def test_a_batch_of_only_rejected_messages_commits_without_inserting() -> None:
    ingest, log, _, _ = make_ingest(max_rows=4, linger=0.0)
    cast(FakeSource, ingest.source).high = {0: 2}  # caught up after these two
    ingest.on_rebalance(Assigned({0: None}))
    ingest.submit([message(0, 0, valid=False), message(0, 1, valid=False)])
    await settle()
    assert log == [("commit", {0: (2, "")})]


async def test_the_data_path_is_quiet_only_with_nothing_open_halted_or_in_flight() -> None:
    """An idle worker's polls slow down only while quiet, so no flush or commit is late."""
    ingest, log, sink, _ = make_ingest(max_rows=4)
    ingest.on_rebalance(Assigned({0: None, 1: None}))
    assert ingest.quiet
    ingest.submit([message(0, 0)])
    assert not ingest.quiet, "an open batch waits for its linger"
    ingest.submit([message(0, 1)])  # full: announced, then the insert waits on the gate
    await settle()
    assert ingest.partitions[0].open is None
    assert not ingest.quiet, "a flush in flight waits for its commits' answers"
    ingest.submit([message(0, offset) for offset in range(2, 5)])  # fills the next: paused
    sink.gate.set()
    await settle()
    ingest.poll()
    await settle()
    assert not ingest.quiet, "the message held by the pause is in the open batch"
    ingest.submit([message(0, 5)])  # full again
    await settle()
    assert ("commit", {0: (6, "")}) in log
    assert ingest.quiet


async def test_back_pressure_pauses_a_full_partition_and_takes_what_it_polled_first() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=4)
    ingest.on_rebalance(Assigned({0: None}))
    ingest.submit([message(0, offset) for offset in range(2)])  # full: flush starts, blocks
    await settle()
    ingest.submit([message(0, offset) for offset in range(2, 6)])  # 2-3 fill the next batch
    ingest.submit([message(0, 6)])  # queued behind the poll that paused it
    await settle()
    assert ("pause", [0]) in log
    assert not [entry for entry in log if entry[0] == "rewind"], "nothing is fetched twice"
    open_batch = ingest.partitions[0].open
    assert open_batch is not None
    assert (open_batch.first_offset, open_batch.last_offset) == (2, 3)
    sink.gate.set()
    await settle()
    assert ("resume", [0]) in log
    assert [b.token for b in sink.batches] == ["m/0/0-1", "m/0/2-3", "m/0/4-5"]
    open_batch = ingest.partitions[0].open
    assert open_batch is not None, "4-6 were held, then taken in order"
    assert (open_batch.first_offset, open_batch.last_offset) == (6, 6)
    ingest.submit([message(0, 7)])  # fetched after the resume
    assert open_batch.last_offset == 7


async def test_a_full_partition_that_fills_again_from_what_it_held_stays_paused() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=4)
    ingest.on_rebalance(Assigned({0: None}))
    ingest.submit([message(0, offset) for offset in range(2)])  # in flight
    await settle()
    ingest.submit([message(0, offset) for offset in range(2, 10)])  # 2-3 open, 4-9 held
    await settle()
    sink.gate.set()
    await settle()
    tokens = [b.token for b in sink.batches]
    assert tokens == ["m/0/0-1", "m/0/2-3", "m/0/4-5", "m/0/6-7", "m/0/8-9"]
    assert log.count(("resume", [0])) == 1, "resumed once, after the last held message"
    assert log.count(("pause", [0])) == 3, "paused again each time the held messages filled it"
    assert ("commit", {0: (10, "")}) in log, "every held message stored once, in order"


async def test_an_error_on_a_held_message_fetches_it_again() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=4)
    ingest.on_rebalance(Assigned({0: None}))
    ingest.submit([message(0, offset) for offset in range(2)])
    await settle()
    ingest.submit([message(0, offset) for offset in range(2, 6)])  # 4-5 held
    await settle()
    held = cast(Any, ingest.partitions[0].halt).held
    held[0] = Broken(0, 4, b"")
    sink.gate.set()
    await settle()
    assert ("rewind", (0, 4)) in log, "the failing message is fetched again, not skipped"
    halt = ingest.partitions[0].halt
    assert halt is not None
    assert halt.cause == "error"
    assert 0 in ingest.source.paused


async def test_a_partition_resumes_once_its_own_batch_is_in_flight_not_when_all_are() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=4, max_in_flight=1)
    ingest.on_rebalance(Assigned({0: None, 1: None}))
    ingest.submit([message(0, 0), message(0, 1)])  # p0 flushes: the one insert slot
    await settle()
    ingest.submit([message(1, 0), message(1, 1), message(1, 2), message(0, 2), message(0, 3)])
    ingest.submit([message(0, 4)], epoch=ingest.partitions[0].epoch)
    await settle()
    assert ingest.source.paused == {0, 1}  # both full, no slot
    first = ingest.partitions[0].in_flight
    assert first is not None
    sink.gate.set()  # p0's insert ends: the slot goes to p1's batch (the oldest)...
    await first  # (the data path's own callback on it ran first)
    # ... p1 fetches again at once while p0 still waits for the slot with its full batch.
    assert ingest.source.paused == {0}
    assert ("resume", [1]) in log


async def test_draining_for_shutdown_resumes_nothing() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=4)
    ingest.on_rebalance(Assigned({0: None}))
    ingest.submit([message(0, offset) for offset in range(4)])
    await settle()
    ingest.source.pause([0])
    sink.gate.set()
    await ingest.drain(grace=1, serve=lambda: None)
    assert ingest.source.paused == {0}
    assert not [entry for entry in log if entry[0] == "resume"]


async def test_a_revoked_partition_drops_its_batches_and_commits_nothing_more() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=4)
    ingest.on_rebalance(Assigned({0: None, 1: None}))
    ingest.submit([message(0, 0), message(0, 1), message(1, 0)])
    await settle()
    in_flight = ingest.partitions[0].in_flight
    ingest.on_rebalance(Revoked(frozenset({0, 1})))
    sink.gate.set()
    await settle()
    assert in_flight is not None
    assert in_flight.cancelled()
    assert not sink.batches
    assert ("commit", {0: (2, "")}) not in log
    ingest.submit([message(0, 2)])  # fetched before the revocation: ignored
    assert not ingest.partitions


async def test_caught_up_batches_flush_after_linger_backlogged_ones_keep_filling() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=1000, max_seconds=60.0)
    sink.gate.set()
    source = cast(FakeSource, ingest.source)
    ingest.on_rebalance(Assigned({0: None, 1: None}))
    source.high = {0: 3, 1: 500}  # partition 0 is at its end, partition 1 has a backlog
    ingest.submit([message(0, o) for o in range(3)] + [message(1, o) for o in range(3)])
    await asyncio.sleep(0.3)  # past the default linger of 0.25 s
    ingest.poll()
    await settle()
    inserted = [token for kind, token in log if kind == "insert"]
    assert inserted == ["m/0/0-2"], "only the caught-up partition flushes early"


async def test_a_live_partition_flushes_after_linger_though_new_messages_keep_arriving() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=1000, max_seconds=60.0)
    sink.gate.set()
    source = cast(FakeSource, ingest.source)
    ingest.on_rebalance(Assigned({0: None, 1: None}))
    # Partition 0: devices keep sending, librdkafka has fetched 2 more than this poll holds.
    # Partition 1: a backlog many times its batch.
    source.high = {0: 12, 1: 500}
    ingest.submit([message(0, o) for o in range(10)] + [message(1, o) for o in range(10)])
    await asyncio.sleep(0.3)
    ingest.poll()
    await settle()
    inserted = [token for kind, token in log if kind == "insert"]
    assert inserted == ["m/0/0-9"], "the live partition flushes at linger, the backlog waits"


async def test_messages_polled_before_a_reassignment_do_not_enter_the_new_batches() -> None:
    ingest, _, sink, _ = make_ingest(max_rows=1000)
    sink.gate.set()
    cast(FakeSource, ingest.source).high = {0: 1000}
    ingest.on_rebalance(Assigned({0: None}, epoch=1))
    stale = [message(0, offset) for offset in range(500, 510)]  # polled at epoch 1, queued
    ingest.on_rebalance(Revoked(frozenset({0})))
    ingest.on_rebalance(Assigned({0: None}, epoch=3))  # back, from committed offset 300
    ingest.submit(stale, epoch=1)
    ingest.submit([message(0, offset) for offset in range(300, 305)], epoch=3)
    batch = ingest.partitions[0].open
    assert batch is not None
    assert (batch.first_offset, batch.last_offset, batch.messages) == (300, 304, 5)


async def test_a_refused_commit_repeats_the_batch_and_never_skips_it() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=4)
    sink.gate.set()
    source = cast(FakeSource, ingest.source)
    source.refuse = 1  # e.g. STALE_MEMBER_EPOCH while the group rebalances
    ingest.on_rebalance(Assigned({0: None}))
    ingest.submit([message(0, 0), message(0, 1)])
    await logged(log, ("commit", {0: (2, "")}))
    commits = [entry for kind, entry in log if kind == "commit"]
    assert commits == [{0: (0, "sg1:0-1")}, {0: (0, "sg1:0-1")}, {0: (2, "")}]
    assert [b.token for b in sink.batches] == ["m/0/0-1"]


@dataclass
class FlakyRegistry:
    """A schema registry that is down until ``up`` is set."""

    up: bool = False

    def get_schema(self, schema_id: int) -> Any:
        if not self.up:
            raise ConnectionError("connection refused")
        return type("Schema", (), {"schema_str": json.dumps(VERSIONS[-1].source)})()


def framed(partition: int, offset: int) -> Message:
    record = {
        "device_id": "dev-r",
        "event_time": 1_795_670_400_000,
        "seq": offset,
        "readings": {"a": 1.0},
        "firmware": "",
        "site": None,
    }
    payload = Encoder(VERSIONS[-1], schema_id=7).encode(record)
    return cast(Message, FakeMessage(partition, offset, payload))


async def test_an_unreachable_registry_halts_the_partition_and_dead_letters_nothing() -> None:
    ingest, log, sink, dead = make_ingest(max_rows=100, linger=0.0, max_seconds=0.0)
    registry = FlakyRegistry()
    ingest.decoder = Decoder(VERSIONS, registry)
    sink.gate.set()
    ingest.on_rebalance(Assigned({0: None}))
    ingest.submit([message(0, 0), framed(0, 1), framed(0, 2)])
    await settle()
    assert ("rewind", (0, 1)) in log
    assert ("pause", [0]) in log
    assert dead.sent == []
    assert [b.token for b in sink.batches] == ["m/0/0-0"], "what came before is stored"
    halt = ingest.partitions[0].halt
    assert halt is not None
    assert halt.cause == "registry"
    assert ingest.partitions[0].open is None
    assert not ingest.quiet, "its backoff ends with no message to tell the polls"
    registry.up = True
    halt.until = 0  # the backoff is over
    ingest.poll()
    assert ("resume", [0]) in log
    ingest.submit([framed(0, 1), framed(0, 2)], epoch=ingest.partitions[0].epoch)
    ingest.poll()
    await settle()
    assert [b.token for b in sink.batches] == ["m/0/0-0", "m/0/1-2"]
    assert dead.sent == []


async def test_an_unexpected_error_stops_the_partition_at_its_offset_never_skips_it() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=100, linger=0.0, max_seconds=0.0)
    sink.gate.set()
    ingest.on_rebalance(Assigned({0: None, 1: None}))
    ingest.validator = cast(Validator, None)  # any use of it raises
    ingest.submit([message(0, 0, valid=False), message(0, 1), message(1, 0, valid=False)])
    await settle()
    assert ("rewind", (0, 1)) in log
    halt = ingest.partitions[0].halt
    assert halt is not None
    assert halt.cause == "error"
    assert ("commit", {0: (1, "")}) in log, "up to the failing message"
    assert not [e for e in log if e[0] == "commit" and e[1].get(0, (0,))[0] > 1], "not past it"
    assert ("commit", {1: (1, "")}) in log, "the other partition goes on"


async def test_a_refused_message_kafka_no_longer_holds_stops_its_partition_at_it() -> None:
    ingest, log, sink, dead = make_ingest(max_rows=100, linger=0.0, max_seconds=0.0)
    sink.gate.set()
    sink.refuse = {"poison"}
    ingest.on_rebalance(Assigned({0: None}))
    ingest.submit([message(0, 0), message(0, 1, device="poison"), message(0, 2)])
    for _ in range(20):
        await settle()
    assert dead.sent == [], "no dead letter without the message"
    committed = [e[1][0][0] for e in log if e[0] == "commit" and 0 in e[1]]
    assert max(committed) <= 1, "nothing at or past the refused message is committed"
    assert sorted(o for b in sink.batches for o in b.offsets) == [0]


async def test_a_resend_of_a_stored_message_and_of_one_in_the_same_batch_add_no_rows() -> None:
    ingest, _, sink, _ = make_ingest(max_rows=100, linger=0.0, max_seconds=0.0)
    sink.gate.set()
    ingest.on_rebalance(Assigned({0: None}))
    ingest.submit([message(0, 0, device="d", seq=5), message(0, 1, device="d", seq=6)])
    await settle()
    ingest.on_rebalance(Assigned({0: None}))  # a new ownership knows nothing in memory
    again = [message(0, o, device="d", seq=s) for o, s in ((2, 6), (3, 7), (4, 7), (5, 5))]
    ingest.submit(again)
    await settle()
    assert sorted(sink.rows()) == [("d", 5)] * 2 + [("d", 6)] * 2 + [("d", 7)] * 2
    assert sink.batches[-1].resent == [2, 4, 5]
    assert ingest.metrics.resends._value.get() == 3


async def test_a_batch_clickhouse_refuses_is_split_until_the_message_is_dead_lettered() -> None:
    ingest, log, sink, dead = make_ingest(max_rows=100, linger=0.0, max_seconds=0.0)
    sink.gate.set()
    sink.refuse = {"poison"}
    ingest.on_rebalance(Assigned({0: None}))
    batch = [message(0, o) for o in range(6)] + [message(0, 6, device="poison")]
    polled = [*batch, message(0, 7, valid=False), message(0, 8)]
    cast(FakeSource, ingest.source).kafka = {0: polled}
    ingest.submit(polled)
    for _ in range(50):
        await settle()
        if ("commit", {0: (9, "")}) in log:
            break
    assert dead.sent == [(7, "not_avro"), (6, "rejected_by_clickhouse")]
    assert ("read", (0, 6, 6)) in log, "the refused message is read again for its dead letter"
    assert sorted(o for b in sink.batches for o in b.offsets) == [0, 1, 2, 3, 4, 5, 8]
    commits = [e[1][0] for e in log if e[0] == "commit"]
    assert commits[-1] == (9, "")
    assert [c[0] for c in commits] == sorted(c[0] for c in commits), "never backwards"


async def test_undeliverable_dead_letters_hold_only_their_own_partition() -> None:
    ingest, log, sink, dead = make_ingest(max_rows=100, linger=0.0, max_seconds=0.0)
    sink.gate.set()
    dead.gate.clear()  # the dead-letter topic is gone
    ingest.on_rebalance(Assigned({0: None, 1: None}))
    ingest.submit([message(0, 0, valid=False), message(0, 1), message(1, 0), message(1, 1)])
    await settle()
    committed = {p for kind, e in log if kind == "commit" for p, (o, m) in e.items() if not m}
    assert committed == {1}
    dead.gate.set()
    await settle()
    assert ("commit", {0: (2, "")}) in log
    assert dead.sent == [(0, "not_avro")]


async def test_a_failing_store_is_retried_never_skipped() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=100, linger=0.0, max_seconds=0.0)
    sink.gate.set()
    sink.fail_once = True
    ingest.on_rebalance(Assigned({0: None}))
    ingest.submit([message(0, 0), message(0, 1)])
    await logged(log, ("commit", {0: (2, "")}))
    assert [b.token for b in sink.batches] == ["m/0/0-1"]
    assert ingest.metrics._flush_failures.labels("m", "runtimeerror")._value.get() == 1


async def test_steady_traffic_is_never_looked_up_while_batches_overlap() -> None:
    ingest, _, sink, _ = make_ingest(max_rows=20, linger=0.0, max_seconds=0.0)
    lookups: list[int] = []
    stored_identities = sink.stored_identities

    async def counted(wanted: Sequence[Identity]) -> set[Identity]:
        lookups.append(len(wanted))
        return await stored_identities(wanted)

    sink.stored_identities = counted  # type: ignore[method-assign]
    sink.gate.set()
    ingest.on_rebalance(Assigned({0: None}))
    offset = 0
    for _ in range(8):  # each poll fills one batch while the previous one is in flight
        polled = [message(0, offset + i, device=f"d{i % 5}", seq=offset + i) for i in range(15)]
        offset += 15
        ingest.submit(polled, epoch=ingest.partitions[0].epoch)
        await settle()
    resent = message(0, offset, device="d1", seq=offset - 4)  # the newest of d1 again
    ingest.submit([resent], epoch=ingest.partitions[0].epoch)
    await asyncio.sleep(0.05)
    ingest.poll()
    await settle()
    assert lookups == [1], "only the resend is looked up"
    assert len(sink.rows()) == offset * 2


# -- groups: one insert for several partitions' batches ------------------------------------


def fleet_message(partition: int, offset: int, valid: bool = True, device: str = "") -> Message:
    """A message of a device that sends to this partition only (as keyed devices do)."""
    return message(partition, offset, valid, device=device or f"p{partition}-d{offset % 2}")


def caught_up(ingest: Ingest, **high: int) -> FakeSource:
    source = cast(FakeSource, ingest.source)
    source.high = {int(p[1:]): offset for p, offset in high.items()}
    return source


async def test_caught_up_partitions_go_in_one_insert_under_one_token() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=1000, linger=0.0)
    caught_up(ingest, p0=2, p1=2, p2=900)  # partition 2 has a backlog: it keeps filling
    ingest.on_rebalance(Assigned({0: None, 1: None, 2: None}))
    sink.gate.set()
    ingest.submit([fleet_message(p, o) for p in (0, 1, 2) for o in (0, 1)])
    await settle()
    metadata = "sg2:0:0-1,1:0-1"
    assert log == [
        ("commit", {0: (0, metadata), 1: (0, metadata)}),
        ("insert", "m/0:0-1,1:0-1"),
        ("commit", {0: (2, ""), 1: (2, "")}),
    ]
    assert sorted(b.partition for b in sink.batches) == [0, 1]
    assert len(sink.rows()) == 8
    assert ingest.metrics.insert_partitions._sum.get() == 2
    open_batch = ingest.partitions[2].open
    assert open_batch is not None
    assert open_batch.messages == 2


async def test_a_live_partition_whose_batch_just_opened_joins_a_backlogged_one_does_not() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=1000, linger=0.0)
    # Partition 1 opened its batch a moment ago: 4 messages fetched behind its 1, fewer than
    # the due batch of partition 0 took. Partition 2 is a backlog.
    caught_up(ingest, p0=10, p1=5, p2=500)
    ingest.on_rebalance(Assigned({0: None, 1: None, 2: None}))
    sink.gate.set()
    ingest.submit([fleet_message(1, 0), fleet_message(2, 0)])
    ingest.submit([fleet_message(0, o) for o in range(10)])
    await settle()
    assert [token for kind, token in log if kind == "insert"] == ["m/0:0-9,1:0-0"]


async def test_a_group_holds_at_most_max_rows_and_a_full_batch_goes_alone() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=6, linger=0.0)
    caught_up(ingest, p0=2, p1=2, p2=2)
    ingest.on_rebalance(Assigned({0: None, 1: None, 2: None}))
    sink.gate.set()
    ingest.submit([fleet_message(p, o) for p in (0, 1, 2) for o in (0, 1)])  # 4 readings each
    await settle()
    inserted = [token for kind, token in log if kind == "insert"]
    assert inserted == ["m/0/0-1", "m/1/0-1", "m/2/0-1"], "two batches would be 8 readings"
    ingest2, log2, sink2, _ = make_ingest(max_rows=10, linger=0.0)
    caught_up(ingest2, p0=5, p1=2)
    ingest2.on_rebalance(Assigned({0: None, 1: None}))
    sink2.gate.set()
    ingest2.submit([fleet_message(1, o) for o in (0, 1)])
    ingest2.submit([fleet_message(0, o) for o in range(5)])  # 10 readings: full
    await settle()
    assert [token for kind, token in log2 if kind == "insert"] == ["m/1/0-1", "m/0/0-4"]


async def test_a_group_of_live_batches_grows_past_the_batch_cap_up_to_the_backlog_cap() -> None:
    # Live partitions' batches stay small, but together they may hold more than one batch
    # may: one insert for all of them (up to the backlog cap), not several at once.
    ingest, log, sink, _ = make_ingest(max_rows=6, backlog_max_rows=12, linger=0.0)
    caught_up(ingest, p0=2, p1=2, p2=2, p3=2)
    ingest.on_rebalance(Assigned({0: None, 1: None, 2: None, 3: None}))
    sink.gate.set()
    ingest.submit([fleet_message(p, o) for p in (0, 1, 2, 3) for o in (0, 1)])  # 4 readings
    await settle()
    inserted = [token for kind, token in log if kind == "insert"]
    assert inserted == ["m/0:0-1,1:0-1,2:0-1", "m/3/0-1"], "a fourth batch would be 16 readings"
    assert len(sink.rows()) == 16


async def test_a_batch_with_dead_letters_goes_alone() -> None:
    ingest, log, sink, dead = make_ingest(max_rows=1000, linger=0.0)
    caught_up(ingest, p0=2, p1=2)
    ingest.on_rebalance(Assigned({0: None, 1: None}))
    sink.gate.set()
    dead.gate.clear()  # the dead-letter topic is unavailable
    ingest.submit([fleet_message(0, 0), fleet_message(0, 1, valid=False)])
    ingest.submit([fleet_message(1, 0), fleet_message(1, 1)])
    await settle()
    assert ("insert", "m/1/0-1") in log, "partition 1 is not held by partition 0's letters"
    assert ("commit", {1: (2, "")}) in log
    dead.gate.set()
    await settle()
    assert ("commit", {0: (2, "")}) in log


async def test_the_replay_of_a_group_re_forms_it_reading_the_other_parts_again() -> None:
    ingest, log, sink, dead = make_ingest(max_rows=1000)
    source = cast(FakeSource, ingest.source)
    # A process owning partitions 0 and 3 announced one insert for 0:10-12 and 3:5-6, and died.
    source.kafka = {3: [fleet_message(3, 5), fleet_message(3, 6, valid=False)]}
    group = ((0, 10, 12), (3, 5, 6))
    ingest.on_rebalance(Assigned({0: Intent(10, 12, True, group)}))  # partition 3 went elsewhere
    sink.gate.set()
    ingest.submit([fleet_message(0, o) for o in range(10, 15)])
    await settle()
    assert ("read", (3, 5, 6)) in log
    assert ("insert", "m/0:10-12,3:5-6") in log, "the token of the crashed owner's insert"
    assert ("commit", {0: (13, "")}) in log
    assert not [e for e in log if e[0] == "commit" and 3 in e[1]], "partition 3 is not ours"
    assert dead.sent == [], "the group's letters went before its intents"
    assert sorted((b.partition, list(b.offsets)) for b in sink.batches) == [
        (0, [10, 11, 12]),
        (3, [5]),
    ]
    open_batch = ingest.partitions[0].open
    assert open_batch is not None
    assert open_batch.first_offset == 13


async def test_a_group_stored_before_the_crash_is_not_stored_again_by_either_owner() -> None:
    group = ((0, 10, 11), (3, 5, 6))
    kafka = {
        0: [fleet_message(0, o) for o in range(10, 12)],
        3: [fleet_message(3, o) for o in (5, 6)],
    }
    sink_tokens: set[str] = {"m/0:10-11,3:5-6"}  # the crashed owner's insert went in
    for mine in (0, 3):
        ingest, log, sink, _ = make_ingest(max_rows=1000)
        sink.tokens = sink_tokens
        cast(FakeSource, ingest.source).kafka = kafka
        first, last = {0: (10, 11), 3: (5, 6)}[mine]
        ingest.on_rebalance(Assigned({mine: Intent(first, last, True, group)}))
        sink.gate.set()
        ingest.submit(kafka[mine])
        await settle()
        assert ("insert", "m/0:10-11,3:5-6") in log
        assert ("commit", {mine: (last + 1, "")}) in log
        assert not sink.batches, "dropped by its token"


async def test_a_group_whose_other_part_is_gone_is_replayed_alone_by_identity() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=1000)
    ingest.on_rebalance(Assigned({0: Intent(10, 11, True, ((0, 10, 11), (3, 5, 6)))}))
    sink.gate.set()
    stored = fleet_message(0, 10)
    sink.batches.append(Batch("m", 0, 10))  # message 10 went in before the crash
    sink.batches[0].add(10, 1, Decoder(VERSIONS).decode(stored.value() or b""))
    ingest.submit([stored, fleet_message(0, 11)])
    await settle()
    assert ("insert", "m/0/10-11") in log, "its own range, alone"
    assert ("commit", {0: (12, "")}) in log
    assert sorted(sink.rows()) == sorted([("p0-d0", 10)] * 2 + [("p0-d1", 11)] * 2)


async def test_a_member_lost_before_the_announcement_is_left_out_of_the_group() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=1000, linger=0.0)
    caught_up(ingest, p0=2, p1=2)
    ingest.on_rebalance(Assigned({0: None, 1: None}))
    sink.gate.set()
    lookups = asyncio.Event()
    highest = sink.highest_seqs

    async def slow_lookup(devices: Sequence[str]) -> dict[str, int]:
        await lookups.wait()  # the group is held before its announcement
        return await highest(devices)

    sink.highest_seqs = slow_lookup  # type: ignore[method-assign]
    ingest.submit([fleet_message(p, o) for p in (0, 1) for o in (0, 1)])
    await settle()
    task = ingest.partitions[0].in_flight
    ingest.on_rebalance(Revoked(frozenset({1})))
    lookups.set()
    await settle()
    assert task is not None
    assert not task.cancelled(), "partition 0 is still ours"
    assert log == [
        ("commit", {0: (0, "sg1:0-1")}),
        ("insert", "m/0/0-1"),
        ("commit", {0: (2, "")}),
    ], "partition 1 starts over at its next owner"


async def test_a_member_lost_after_the_announcement_leaves_the_group_whole() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=1000, linger=0.0)
    caught_up(ingest, p0=2, p1=2)
    ingest.on_rebalance(Assigned({0: None, 1: None}))
    ingest.submit([fleet_message(p, o) for p in (0, 1) for o in (0, 1)])
    await settle()
    assert ("insert", "m/0:0-1,1:0-1") in log  # waiting for ClickHouse
    ingest.on_rebalance(Revoked(frozenset({1})))
    sink.gate.set()
    await settle()
    assert len(sink.rows()) == 8, "its next owner replays the same group: dropped"
    assert log[-1] == ("commit", {0: (2, "")})


async def test_an_announcement_written_though_refused_keeps_the_group_whole() -> None:
    ingest, log, sink, _ = make_ingest(max_rows=1000, linger=0.0)
    source = caught_up(ingest, p0=2, p1=2)
    ingest.on_rebalance(Assigned({0: None, 1: None}))
    sink.gate.set()
    metadata = "sg2:0:0-1,1:0-1"
    source.refuse = 1
    source.committed_offsets = {0: (0, metadata), 1: (0, metadata)}  # written all the same
    ingest.submit([fleet_message(p, o) for p in (0, 1) for o in (0, 1)])
    await settle()
    ingest.on_rebalance(Revoked(frozenset({1})))
    await logged(log, ("commit", {0: (2, "")}))
    commits = [entry for kind, entry in log if kind == "commit"]
    assert commits == [
        {0: (0, metadata), 1: (0, metadata)},
        {0: (0, metadata)},
        {0: (2, "")},
    ]
    assert ("insert", "m/0:0-1,1:0-1") in log, "partition 1's next owner replays this group"


async def test_a_refused_group_is_stored_partition_by_partition() -> None:
    ingest, log, sink, dead = make_ingest(max_rows=1000, linger=0.0)
    caught_up(ingest, p0=2, p1=3)
    ingest.on_rebalance(Assigned({0: None, 1: None}))
    sink.gate.set()
    sink.refuse = {"poison"}
    poison = fleet_message(1, 1, device="poison")
    polled = [fleet_message(p, 0) for p in (0, 1)] + [fleet_message(0, 1), poison]
    cast(FakeSource, ingest.source).kafka = {1: [polled[1], poison]}
    ingest.submit(polled)
    ingest.submit([fleet_message(1, 2)])
    for _ in range(50):
        await settle()
        if ("commit", {1: (3, "")}) in log:
            break
    commits = [entry for kind, entry in log if kind == "commit"]
    assert commits[0] == {0: (0, "sg2:0:0-1,1:0-1"), 1: (0, "sg2:0:0-1,1:0-1")}
    assert commits[1] == {0: (0, "sg1:0-1"), 1: (0, "sg1:0-1")}, "both replace the group at once"
    assert dead.sent == [(1, "rejected_by_clickhouse")], "no neighbour of another partition"
    assert sorted((b.partition, o) for b in sink.batches for o in b.offsets) == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 2),
    ]


async def test_a_batch_grows_to_the_backlog_cap_only_while_kafka_holds_enough_to_fill_it() -> None:
    ingest, _, sink, _ = make_ingest(max_rows=10, backlog_max_rows=40, max_in_flight=1)
    caught_up(ingest, p0=1000, p1=15)
    ingest.on_rebalance(Assigned({0: None, 1: None}))
    sink.gate.set()
    # 2 readings a message: at the batch cap (5 messages) partition 0 has 995 messages waiting,
    # enough for the 15 more its batch can take; partition 1 only 10: it stays at the cap.
    ingest.submit([fleet_message(0, o) for o in range(25)])
    ingest.submit([fleet_message(1, o) for o in range(15)])
    for _ in range(20):
        await settle()
    sizes = {(b.partition, b.first_offset): b.rows for b in sink.batches}
    assert sizes[(0, 0)] == 40, "partition 0's backlog fills the first batch to the backlog cap"
    assert sizes[(1, 0)] == 10, "partition 1's first batch stops at the batch cap"
