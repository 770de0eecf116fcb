"""Hostile input on one partition, between valid messages of several devices, against the real
stack: each message is stored exactly once or dead-lettered with its reason, and the partition
catches up (docs/delivery.md)."""

from __future__ import annotations

import calendar
import math
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from streams import topics
from streams.clickhouse import sync_client
from streams.codec import Encoder, Record, load_versions
from streams.settings import REPO_ROOT, Settings
from tests.support.accounting import Expect, audit, dead_letters, kept_in_clickhouse, totals
from tests.support.fleet import committed, count, stored
from tests.support.kafka import admin, delete_topics
from tests.support.registry import RegistryStub
from tests.support.workers import Workers, wait_until

pytestmark = pytest.mark.integration

VERSIONS = load_versions(REPO_ROOT / "schemas" / "avro")
LATEST = VERSIONS[-1]
NOW_MS = int(time.time() * 1000)
OTHER_RECORD = {"type": "record", "name": "Other", "fields": [{"name": "x", "type": "int"}]}


class Partition0:
    """Produces to partition 0 and remembers what each offset must become."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic
        self.producer = Producer(
            {"bootstrap.servers": settings.kafka_bootstrap_servers, "message.max.bytes": 2**21}
        )
        self.expected: dict[int, Expect] = {}
        self._pending: list[Expect] = []
        self.seq: dict[str, int] = {}

    def record(self, device: str, readings: dict[str, float], **change: Any) -> Record:
        self.seq[device] = self.seq.get(device, 0) + 1
        base = {
            "device_id": device,
            "event_time": NOW_MS - 60_000 + self.seq[device],
            "seq": self.seq[device],
            "readings": readings,
            "firmware": "1.0",
            "site": "lab",
        }
        return {**base, **change}

    def send(self, payload: bytes, expect: Expect, key: str = "k") -> None:
        self.producer.produce(self.topic, payload, key.encode(), partition=0)
        self._pending.append(expect)

    def valid(self, device: str, **change: Any) -> bytes:
        record = self.record(device, {"temp_c": 20.5, "rh": 40.0}, **change)
        payload = Encoder(LATEST).encode(record)
        self.send(payload, Expect("stored", 2), device)
        return payload

    def bad(self, payload: bytes, reason: str) -> None:
        self.send(payload, Expect("dead", reason=reason))

    def flush(self) -> None:
        assert self.producer.flush(30) == 0
        offsets = committed_end(self)
        start = offsets - len(self._pending)
        self.expected.update({start + i: e for i, e in enumerate(self._pending)})
        self._pending = []


def committed_end(stream: Partition0) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": "127.0.0.1:9092", "group.id": "probe"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(stream.topic, 0), timeout=10)[1])
    finally:
        consumer.close()


@pytest.fixture
def registry() -> Iterator[RegistryStub]:
    stub = RegistryStub({1: LATEST.source, 2: "string", 3: OTHER_RECORD})
    yield stub
    stub.stop()


def months_back(months: int) -> int:
    """Epoch ms of the first day of the month ``months`` before this one."""
    year, month = time.gmtime().tm_year, time.gmtime().tm_mon - months
    while month < 1:
        year, month = year - 1, month + 12
    return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000  # midnight: never in the future


def duplicate_keys(stream: Partition0) -> bytes:
    """A readings map whose key ``ta`` appears twice (Avro readers keep the last value)."""
    record = stream.record("dup-keys", {"ta": 1.0, "tb": 2.0})
    payload = Encoder(LATEST).encode(record)
    assert payload.count(b"\x04tb") == 1
    return payload.replace(b"\x04tb", b"\x04ta")


def test_every_kind_of_hostile_message_is_stored_once_or_dead_lettered(
    pipeline: Settings, registry: RegistryStub, tmp_path: Path
) -> None:
    settings = pipeline.isolated(pipeline.topic, schema_registry_url=registry.url)
    settings = settings.__class__(**{**settings.__dict__, "batch_max_seconds": 0.5})
    stream = Partition0(settings)
    framed = Encoder(LATEST, schema_id=1)
    stream.valid("a")
    stream.bad(b"\xc3\x01" + b"x" * (settings.max_message_bytes + 1), "oversized")
    stream.valid("b")
    stream.bad(b"\xc3\x01" + b"y" * 999_800, "oversized")  # near the topic's own limit
    for month in range(120):  # one device over ten years: > 100 partitions in one block
        stream.valid("decade", event_time=months_back(month), seq=10_000 + month)
    stream.valid("c")
    body = Encoder(LATEST).encode(stream.record("z", {"x": 1.0}))[10:]
    stream.bad(b"\x00\x00\x00\x00\x02" + body, "incompatible_schema")  # id 2: "string"
    stream.bad(b"\x00\x00\x00\x00\x63" + body, "unknown_schema")  # id 99: not registered
    stream.bad(b"\x00\x00\x00\x00\x03" + body, "incompatible_schema")  # id 3: another record
    stream.send(framed.encode(stream.record("r", {"t": 1.0})), Expect("stored", 1), "r")
    letters = "abcdefghijklmnopqrstuvwxyz"
    names = (a + b + c for a in letters for b in letters for c in letters)
    many = {name: 1.0 for name, _ in zip(names, range(5000), strict=False)}  # under 64 KiB
    stream.bad(Encoder(LATEST).encode(stream.record("big", many)), "too_many_readings")
    stream.valid("a")
    nan, inf = stream.record("n", {"t": math.nan}), stream.record("n", {"t": math.inf})
    stream.bad(Encoder(LATEST).encode(nan), "non_finite_value")
    stream.bad(Encoder(LATEST).encode(inf), "non_finite_value")
    future = stream.record("f", {"t": 1.0}, event_time=NOW_MS + 10 * 86_400_000)
    past = stream.record("f", {"t": 1.0}, event_time=631_152_000_000)  # 1990
    stream.bad(Encoder(LATEST).encode(future), "invalid_event_time")
    stream.bad(Encoder(LATEST).encode(past), "invalid_event_time")
    stream.send(duplicate_keys(stream), Expect("stored", 1), "dup-keys")
    original = stream.valid("b")
    stream.valid("c")
    stream.send(original, Expect("resend"), "b")  # the device did not hear back: sent again
    v1 = Encoder(VERSIONS[0]).encode({**stream.record("old", {"t": 3.0}), "site": None})
    stream.send(v1, Expect("stored", 1), "old")
    stream.flush()

    registry.down = True  # valid registry messages must wait, not be dead-lettered
    workers = Workers(settings, 1, tmp_path / "workers.log")
    try:
        assert wait_until(lambda: committed(settings)[0] > 0, 60), workers.output()[-3000:]
        time.sleep(3)
        assert committed(settings)[0] <= min(
            o for o, e in stream.expected.items() if e.kind == "dead" and "schema" in e.reason
        ), "nothing past the waiting message is committed"
        registry.down = False
        for _ in range(3):  # more traffic after the trouble, as in the found case
            stream.valid("a")
        stream.flush()
        end = max(stream.expected) + 1
        assert wait_until(lambda: committed(settings)[0] == end, 90), workers.output()[-3000:]
    finally:
        assert workers.stop() == 0
    assert audit(settings, 0, stream.expected) == []
    readings = sum(e.readings for e in stream.expected.values() if e.kind == "stored")
    assert totals(settings) == dict.fromkeys(("raw", "final", "distinct", "rollups"), readings)
    assert stored(settings, "SELECT value FROM latest FINAL WHERE device_id = 'dup-keys'") == [
        (2.0,)
    ]
    big = next(o for o, e in stream.expected.items() if e.reason == "oversized" and o > 2)
    assert dead_letters(settings)[(0, big)] == "oversized"
    output = workers.output()
    assert "refused batch" in output, "the 120-month batch was split"
    assert "schema registry failed" in output
    assert count(settings, "SELECT uniqExact(device_id) FROM devices") == 7


def test_a_dead_letter_too_large_for_its_topic_is_kept_whole_in_clickhouse(
    pipeline: Settings, tmp_path: Path
) -> None:
    small = pipeline.isolated(pipeline.topic, dlq_max_message_bytes=100_000)
    with admin(pipeline) as client:
        delete_topics(pipeline, pipeline.dlq_topic)
        assert wait_until(lambda: pipeline.dlq_topic not in client.list_topics().topics, 30)
        assert wait_until(lambda: _recreated(small), 30)
        # A topic just created may be unknown to the broker answering for a moment.
        assert wait_until(lambda: _max_message_bytes(client, pipeline.dlq_topic) == "100000", 30)
    stream = Partition0(small)
    stream.valid("a")
    noise = random.Random(5).randbytes(300_000)  # incompressible: 3x the DLQ's limit
    stream.bad(b"\xc3\x01" + noise, "oversized")
    stream.valid("a")
    stream.flush()
    workers = Workers(pipeline, 1, tmp_path / "workers.log")  # produces up to 4 MiB
    try:
        assert wait_until(lambda: committed(pipeline)[0] == 3, 60), workers.output()[-3000:]
    finally:
        assert workers.stop() == 0
    assert audit(pipeline, 0, stream.expected) == []
    assert kept_in_clickhouse(pipeline) == {(0, 1): ("oversized", 300_002)}


def _max_message_bytes(admin: AdminClient, topic: str) -> str | None:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    try:
        return str(admin.describe_configs([resource])[resource].result()["max.message.bytes"].value)
    except KafkaException:
        return None


def _recreated(settings: Settings) -> bool:
    try:
        topics.create(settings)
    except Exception:
        return False
    return True


def test_a_deleted_dead_letter_topic_holds_its_partition_until_it_is_back(
    pipeline: Settings, tmp_path: Path
) -> None:
    stream = Partition0(pipeline)
    workers = Workers(pipeline, 1, tmp_path / "workers.log")
    try:
        stream.valid("a")
        stream.flush()
        assert wait_until(lambda: committed(pipeline)[0] == 1, 60), workers.output()[-3000:]
        with admin(pipeline) as client:
            delete_topics(pipeline, pipeline.dlq_topic)
            stream.bad(b"not avro", "not_avro")
            for _ in range(20):
                stream.valid("a")
            stream.flush()
            time.sleep(6)
            assert committed(pipeline)[0] <= 1, "no commit passes the undelivered dead letter"
            assert wait_until(lambda: pipeline.dlq_topic not in client.list_topics().topics, 30)
        assert wait_until(lambda: _recreated(pipeline), 30)
        assert wait_until(lambda: committed(pipeline)[0] == 22, 90), workers.output()[-3000:]
    finally:
        assert workers.stop() == 0
    assert audit(pipeline, 0, stream.expected) == []


def test_a_message_clickhouse_refuses_alone_is_dead_lettered_as_it_was_sent(
    pipeline: Settings, tmp_path: Path
) -> None:
    """A schema change that makes one valid message unstorable: its neighbours are stored, and
    its dead letter carries the message as Kafka holds it (read again: batches keep no copy)."""
    sync_client(pipeline).command(
        "ALTER TABLE readings ADD CONSTRAINT value_below_1e9 CHECK value < 1e9"
    )
    stream = Partition0(pipeline)
    for i in range(30):
        stream.valid(f"d{i % 3}")
    refused = Encoder(LATEST).encode(stream.record("d9", {"temp_c": 1e12, "rh": 40.0}))
    stream.send(refused, Expect("dead", reason="rejected_by_clickhouse"), "d9")
    for i in range(30):
        stream.valid(f"d{i % 3}")
    stream.flush()
    workers = Workers(pipeline, 1, tmp_path / "workers.log")
    try:
        assert wait_until(lambda: committed(pipeline)[0] == 61, 90), workers.output()[-3000:]
    finally:
        assert workers.stop() == 0
    assert audit(pipeline, 0, stream.expected) == []
    assert count(pipeline, "SELECT count() FROM readings") == 120
    assert _dead_letter_values(pipeline) == [refused]


def _dead_letter_values(settings: Settings) -> list[bytes | None]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": "a"})
    try:
        partition = TopicPartition(settings.dlq_topic, 0, 0)
        end = consumer.get_watermark_offsets(partition, timeout=10)[1]
        consumer.assign([partition])
        values: list[bytes | None] = []
        deadline = time.monotonic() + 30
        while len(values) < end and time.monotonic() < deadline:
            values.extend(m.value() for m in consumer.consume(100, 1) if m.error() is None)
        return values
    finally:
        consumer.close()
