"""bench torture's workload: valid, hostile and resent messages, each knowing its fate.

The generator decides for every message what the pipeline must do with it: store it (every
reading exactly once), dead-letter it, or either of the two (a policy choice, e.g. a message
with thousands of readings). The checker (bench/_torture_check.py) holds the pipeline to that
after the trial; the producer here records each message's partition and offset on delivery.
"""

from __future__ import annotations

import math
import random
import string
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from confluent_kafka import KafkaError, Message, Producer

from streams.codec import SINGLE_OBJECT_MAGIC, Encoder, Record, SchemaVersion
from streams.settings import Settings
from streams.simulator import METRICS, SITES

Expect = Literal["stored", "dead_letter", "either"]
# A reading's identity in ``readings``: (device_id, metric, event_time ms, seq as UInt64).
Identity = tuple[str, str, int, int]

# Kafka's limits: a producer's default message.max.bytes, and a topic's max.message.bytes
# (a whole record batch). Dead letters near them are what the worker's producer may refuse.
PRODUCER_LIMIT = 1_000_000
TOPIC_LIMIT = 1_048_588
INVALID_SEQ_BASE = 10**9  # invalid messages use seqs no valid one has: their rows are telling


@dataclass
class Planned:
    """One message of the workload and what must become of it."""

    index: int
    kind: str
    expect: Expect
    key: bytes | None
    payload: bytes
    readings: dict[Identity, float]  # what storing it means (empty when undecodable)
    reason: str = ""  # the dead-letter reason the generator expects (informative)
    original: int | None = None  # a resend: index of the message it repeats
    burst: bool = False  # sent without waiting for the rate (a device uploading history)
    partition: int = -1
    offset: int = -1


@dataclass
class Device:
    """A device of the trial's fleet: its schema version, sequence and clock."""

    device_id: str
    encoder: Encoder
    metrics: list[str]
    firmware: str
    site: str | None
    seq: int
    clock_ms: int
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Mix:
    """How one trial's workload is composed (drawn per trial)."""

    invalid: float  # fraction of messages that are hostile
    resend: float  # fraction that resend an earlier valid message
    many_readings: int  # messages with thousands of readings
    over_worker_limit: int  # just above STREAMGAUGE_MAX_MESSAGE_BYTES
    near_kafka_limit: int  # 900 KB to 1 MB
    backfill: bool  # a device uploads ten years of monthly history in one burst


def identities(record: Record) -> dict[Identity, float]:
    seq = record["seq"] % 2**64  # how ClickHouse's UInt64 column holds it
    return {
        (record["device_id"], metric, record["event_time"], seq): value
        for metric, value in record["readings"].items()
    }


def draw_mix(rng: random.Random) -> Mix:
    # Half the trials nearly clean: a batch with a dead letter is inserted alone, so only
    # batches without one share an insert with other partitions' (streams/worker/ingest.py).
    clean = rng.random() < 0.5
    return Mix(
        invalid=rng.uniform(0.0, 0.01) if clean else rng.uniform(0.04, 0.15),
        resend=rng.uniform(0.02, 0.08),
        many_readings=rng.randint(1, 3),
        over_worker_limit=rng.randint(1, 4),
        near_kafka_limit=rng.randint(1, 2),
        backfill=rng.random() < 0.3,
    )


def draw_group_mix(rng: random.Random) -> Mix:
    """The groups profile: every hostile kind once (in the workload anyway) and nothing more,
    so nearly every batch may share an insert with the other partitions' batches."""
    return Mix(
        invalid=0.0,
        resend=rng.uniform(0.01, 0.04),
        many_readings=1,
        over_worker_limit=1,
        near_kafka_limit=1,
        backfill=False,
    )


class Workload:
    """Draws a trial's messages in send order."""

    def __init__(
        self, rng: random.Random, versions: list[SchemaVersion], max_message_bytes: int
    ) -> None:
        self.rng = rng
        self.encoders = [Encoder(v) for v in versions]
        self.max_message_bytes = max_message_bytes
        self.messages: list[Planned] = []
        self.devices: list[Device] = []
        self._invalid_seq = INVALID_SEQ_BASE
        self._valid_indexes: list[int] = []
        self.mix = Mix(0.0, 0.0, 0, 0, 0, backfill=False)
        self.now_ms = 0

    def draw(self, count: int, now_ms: int, mix: Mix) -> list[Planned]:
        """About ``count`` messages (a backfill adds its 121): every hostile kind at least
        once, the specials of the drawn mix, the rest ordinary, in a shuffled order."""
        rng = self.rng
        self.mix = mix
        self.now_ms = now_ms
        self.devices = [self._device(i, now_ms) for i in range(rng.randint(6, 16))]
        plan: list[Callable[[], None]] = [partial(self._invalid, kind) for kind in INVALID]
        plan += [self._many_readings] * mix.many_readings
        plan += [partial(self._oversized, "worker")] * mix.over_worker_limit
        plan += [partial(self._oversized, "kafka")] * mix.near_kafka_limit
        plan += [self._backfill] * mix.backfill
        plan += [self._ordinary] * max(0, count - len(plan))
        rng.shuffle(plan)
        for step in plan:
            step()
        return self.messages

    def _ordinary(self) -> None:
        if self.rng.random() < self.mix.invalid:
            self._invalid(self.rng.choice(INVALID))
        elif self.rng.random() < self.mix.resend and self._valid_indexes:
            self._resend()
        else:
            self._valid()

    # -- valid messages -------------------------------------------------------------------

    def _device(self, number: int, now_ms: int) -> Device:
        rng = self.rng
        encoder = rng.choice(self.encoders)
        metrics = rng.sample(sorted(METRICS), rng.randint(1, len(METRICS)))
        return Device(
            f"dev-{number:03d}",
            encoder,
            metrics,
            f"fw-1.{rng.randint(0, 9)}.0",
            rng.choice(SITES) if encoder is not self.encoders[0] else None,
            seq=rng.randint(0, 1000),
            clock_ms=now_ms - rng.randint(10, 40) * 60_000,
            values={m: METRICS[m][0] for m in metrics},
        )

    def _next_record(self, device: Device, readings: dict[str, float] | None = None) -> Record:
        """The device's next message: seq + 1, its clock a little further."""
        device.seq += 1
        device.clock_ms += self.rng.randint(1, 1500)
        if readings is None:
            readings = {}
            for metric in device.metrics:
                _, step, low, high = METRICS[metric]
                value = device.values[metric] + self.rng.gauss(0, step)
                device.values[metric] = min(high, max(low, value))
                readings[metric] = round(device.values[metric], 4)
        return self._record(device, device.clock_ms, device.seq, readings)

    def _record(
        self, device: Device, event_ms: int, seq: int, readings: dict[str, float]
    ) -> Record:
        return {
            "device_id": device.device_id,
            "event_time": event_ms,
            "seq": seq,
            "readings": readings,
            "firmware": device.firmware,
            "site": device.site,
        }

    def _add(
        self, kind: str, expect: Expect, key: bytes | None, payload: bytes, **extra: Any
    ) -> None:
        self.messages.append(Planned(len(self.messages), kind, expect, key, payload, **extra))

    def _valid(self) -> None:
        device = self.rng.choice(self.devices)
        record = self._next_record(device)
        self._valid_indexes.append(len(self.messages))
        self._add(
            "valid",
            "stored",
            device.device_id.encode(),
            device.encoder.encode(record),
            readings=identities(record),
        )

    def _resend(self) -> None:
        """A device retrying: the exact bytes of an earlier message, at a new offset."""
        original = self.messages[self.rng.choice(self._valid_indexes)]
        self._add(
            "resend",
            "stored",
            original.key,
            original.payload,
            readings=dict(original.readings),
            original=original.index,
        )

    def _many_readings(self) -> None:
        """Thousands of readings under the size limit: stored whole or refused whole."""
        device = self.rng.choice(self.devices)
        count = self.rng.randint(2000, 5000)
        readings = {f"x{i:x}": round(self.rng.uniform(-100, 100), 3) for i in range(count)}
        record = self._next_record(device, readings)
        payload = device.encoder.encode(record)
        while len(payload) > self.max_message_bytes - 64:  # keep it a size-valid message
            readings = dict(list(readings.items())[: len(readings) * 9 // 10])
            record["readings"] = readings
            payload = device.encoder.encode(record)
        self._add(
            "many_readings",
            "either",
            device.device_id.encode(),
            payload,
            readings=identities(record),
        )

    def _backfill(self) -> None:
        """One message per month for ten years, in one burst: one batch spans 120 months."""
        device = self.rng.choice(self.devices)
        start = device.clock_ms - 121 * 30 * 86_400_000
        for month in range(121):
            device.seq += 1
            readings = {m: round(device.values[m], 4) for m in device.metrics}
            record = self._record(device, start + month * 30 * 86_400_000, device.seq, readings)
            self._add(
                "backfill",
                "stored",
                device.device_id.encode(),
                device.encoder.encode(record),
                readings=identities(record),
                burst=True,
            )

    # -- hostile messages -----------------------------------------------------------------

    def _invalid(self, kind: str) -> None:
        device = self.rng.choice(self.devices)
        self._invalid_seq += 1
        readings = {m: round(device.values[m], 4) for m in device.metrics}
        record = self._record(device, device.clock_ms, self._invalid_seq, readings)
        payload, reason, decoded = HOSTILE[kind](self, device, record)
        key = None if kind == "not_avro" and self.rng.random() < 0.5 else device.device_id.encode()
        self._add(
            kind,
            "dead_letter",
            key,
            payload,
            readings=identities(decoded) if decoded else {},
            reason=reason,
        )

    def _oversized(self, limit: Literal["worker", "kafka"]) -> None:
        """An otherwise valid message just above the worker's limit or near Kafka's, its
        bulk in readings or in one huge string."""
        rng = self.rng
        if limit == "worker":
            size = self.max_message_bytes + rng.randint(1, 4096)
        else:
            low, high = rng.choice(
                [(900_000, PRODUCER_LIMIT - 1000), (PRODUCER_LIMIT - 1000, TOPIC_LIMIT - 2000)]
            )
            size = rng.randint(low, high)
        device = rng.choice(self.devices)
        self._invalid_seq += 1
        record = self._record(device, device.clock_ms, self._invalid_seq, {"temperature_c": 20.0})
        if rng.random() < 0.5:
            record["readings"] = {
                "m" + "".join(rng.choices(string.ascii_lowercase, k=11)): 1.0
                for _ in range((size - 200) // 21)  # 21 bytes each: length, name, double
            }
        self._add(
            f"oversized_{limit}",
            "dead_letter",
            device.device_id.encode(),
            _padded(device.encoder, record, size, rng),
            readings=identities(record),
            reason="oversized",
        )


def _padded(encoder: Encoder, record: Record, size: int, rng: random.Random) -> bytes:
    """``record`` encoded to ``size`` bytes (a byte or two over), padding its firmware."""
    payload = encoder.encode(record)
    for _ in range(3):  # the string's length prefix can grow by a byte
        missing = size - len(payload)
        if missing <= 0:
            break
        record["firmware"] += "".join(rng.choices(string.ascii_letters, k=missing))
        payload = encoder.encode(record)
    return payload


# Each hostile kind: (payload, the reason expected, the record whose rows would be telling).
Hostile = Callable[[Workload, Device, Record], tuple[bytes, str, Record | None]]


def _with(**changes: Any) -> Hostile:
    def make(_w: Workload, device: Device, record: Record) -> tuple[bytes, str, Record | None]:
        bad = {**record, **{k: v for k, v in changes.items() if k != "reason"}}
        return device.encoder.encode(bad), str(changes["reason"]), bad

    return make


def _non_finite(w: Workload, device: Device, record: Record) -> tuple[bytes, str, Record | None]:
    value = w.rng.choice([math.nan, math.inf, -math.inf])
    bad = {**record, "readings": {**record["readings"], "temperature_c": value}}
    return device.encoder.encode(bad), "non_finite_value", bad


def _far_future(w: Workload, device: Device, record: Record) -> tuple[bytes, str, Record | None]:
    bad = {**record, "event_time": w.now_ms + w.rng.randint(2, 3650) * 86_400_000}
    return device.encoder.encode(bad), "invalid_event_time", bad


def _far_past(w: Workload, device: Device, record: Record) -> tuple[bytes, str, Record | None]:
    bad = {**record, "event_time": w.rng.choice([0, 1, 86_400_000, 946_684_800_000])}
    return device.encoder.encode(bad), "invalid_event_time", bad


def _bad_device_id(w: Workload, device: Device, record: Record) -> tuple[bytes, str, Record | None]:
    device_id = w.rng.choice(["", "bad id/with space", "x" * 200, "düse-7", "a\nb"])
    bad = {**record, "device_id": device_id}
    return device.encoder.encode(bad), "invalid_device_id", bad


def _negative_seq(w: Workload, device: Device, record: Record) -> tuple[bytes, str, Record | None]:
    bad = {**record, "seq": -w.rng.randint(1, 10**6)}
    return device.encoder.encode(bad), "invalid_seq", bad


def _not_avro(w: Workload, _device: Device, _record: Record) -> tuple[bytes, str, Record | None]:
    payload = w.rng.choice([b'{"device_id": "json"}', b"", b"\xc3", bytes(w.rng.randbytes(40))])
    return payload, "not_avro", None


def _truncated(_w: Workload, device: Device, record: Record) -> tuple[bytes, str, Record | None]:
    good = device.encoder.encode(record)
    return good[: max(11, len(good) // 2)], "not_avro", None


def _trailing(w: Workload, device: Device, record: Record) -> tuple[bytes, str, Record | None]:
    return device.encoder.encode(record) + w.rng.randbytes(3), "not_avro", None


def _unknown_fingerprint(
    w: Workload, device: Device, record: Record
) -> tuple[bytes, str, Record | None]:
    body = device.encoder.encode(record)[10:]
    return SINGLE_OBJECT_MAGIC + w.rng.randbytes(8) + body, "unknown_schema", None


def _confluent_unknown_id(
    w: Workload, device: Device, record: Record
) -> tuple[bytes, str, Record | None]:
    # Without a registry configured this is not our wire format; with one, an unknown id.
    body = device.encoder.encode(record)[10:]
    return struct.pack(">bI", 0, w.rng.randint(10**6, 2**31)) + body, "not_avro", None


HOSTILE: dict[str, Hostile] = {
    "not_avro": _not_avro,
    "truncated": _truncated,
    "trailing_bytes": _trailing,
    "unknown_fingerprint": _unknown_fingerprint,
    "confluent_unknown_id": _confluent_unknown_id,
    "non_finite_value": _non_finite,
    "far_future": _far_future,
    "far_past": _far_past,
    "invalid_device_id": _bad_device_id,
    "negative_seq": _negative_seq,
    "no_readings": _with(readings={}, reason="no_readings"),
    "invalid_metric": _with(readings={"Temp C": 1.0, "ok": 2.0}, reason="invalid_metric"),
}
INVALID = tuple(HOSTILE)


class WorkloadProducer:
    """Sends planned messages at a rate and records where each one landed."""

    def __init__(self, settings: Settings, **config: Any) -> None:
        """``config``: librdkafka properties over the defaults below."""
        self.topic = settings.topic
        self.failures: list[str] = []
        self._producer = Producer(
            {
                **settings.kafka_config(),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "partitioner": "murmur2_random",  # as MeasurementProducer: key → partition
                "message.max.bytes": TOPIC_LIMIT,
                **config,
            }
        )

    def send_all(
        self, messages: list[Planned], rate: float, stop: Callable[[], bool] = lambda: False
    ) -> None:
        """Send in order at ``rate`` msg/s (bursts at once); flush; raise if any failed."""
        start = time.monotonic()
        for paced, message in _paced(messages):
            while not message.burst and paced > (time.monotonic() - start) * rate:
                self._producer.poll(0.005)
            if stop():
                break
            self._send(message)
        if self._producer.flush(60) or self.failures:
            raise RuntimeError(f"the workload was not delivered: {self.failures[:3]}")

    def _send(self, message: Planned) -> None:
        def delivered(error: KafkaError | None, kafka: Message) -> None:
            if error is not None:
                self.failures.append(str(error))
                return
            message.partition = kafka.partition() or 0
            message.offset = kafka.offset() or 0

        while True:
            try:
                self._producer.produce(
                    self.topic, message.payload, message.key, on_delivery=delivered
                )
                break
            except BufferError:
                self._producer.poll(0.05)
        self._producer.poll(0)


def _paced(messages: list[Planned]) -> Iterator[tuple[int, Planned]]:
    """Each message with its position on the rate's schedule (a burst takes no time)."""
    paced = 0
    for message in messages:
        yield paced, message
        if not message.burst:
            paced += 1


def duration(messages: list[Planned], rate: float) -> float:
    """Seconds the producer takes for ``messages`` at ``rate``."""
    return sum(1 for m in messages if not m.burst) / rate
