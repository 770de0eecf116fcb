"""Producing a known fleet and reading back what the pipeline stored."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from confluent_kafka import Consumer, TopicPartition

from streams import simulator
from streams.clickhouse import sync_client
from streams.codec import Record, load_versions
from streams.producer import MeasurementProducer
from streams.settings import Settings


@dataclass
class Sent:
    """What a test produced: every valid record, and the malformed ones by kind."""

    records: list[Record] = field(default_factory=list)
    bad: Counter[str] = field(default_factory=Counter)

    @property
    def readings(self) -> int:
        return sum(len(r["readings"]) for r in self.records)

    def last_values(self) -> dict[tuple[str, str], float]:
        """(device, metric) -> value of the device's newest message."""
        newest: dict[tuple[str, str], tuple[int, float]] = {}
        for record in self.records:
            for metric, value in record["readings"].items():
                key = (record["device_id"], metric)
                if key not in newest or record["seq"] > newest[key][0]:
                    newest[key] = (record["seq"], value)
        return {key: value for key, (_, value) in newest.items()}


def produce(
    settings: Settings,
    devices: int,
    messages_per_device: int,
    bad_ratio: float = 0.0,
    sent: Sent | None = None,
    fleet: simulator.Fleet | None = None,
) -> Sent:
    """Round-robin over the fleet: each device sends ``messages_per_device`` messages."""
    versions = [v.version for v in load_versions(settings.schemas_dir)]
    fleet = fleet or simulator.Fleet(devices, versions)
    producer = MeasurementProducer(settings)
    sent = sent or Sent()
    chooser = random.Random(3)
    for round_ in range(messages_per_device):
        now_ms = int(time.time() * 1000)
        for device in fleet.devices:
            record = fleet.reading(device, now_ms)
            if bad_ratio and chooser.random() < bad_ratio:
                kind = simulator.BAD_KINDS[(round_ + len(sent.bad)) % len(simulator.BAD_KINDS)]
                device.seq -= 1
                producer.send_raw(
                    device.device_id.encode(), simulator.malformed(kind, record, producer)
                )
                sent.bad[kind] += 1
            else:
                producer.send(record, device.version)
                sent.records.append(record)
    producer.flush()
    return sent


def stored(settings: Settings, query: str) -> list[tuple[object, ...]]:
    client = sync_client(settings)
    return [tuple(row) for row in client.query(query).result_rows]


def count(settings: Settings, query: str) -> int:
    value = stored(settings, query)[0][0]
    assert isinstance(value, int)
    return value


def committed(settings: Settings) -> dict[int, int]:
    """The consumer group's committed offsets, by partition (-1001 when none)."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": settings.consumer_group}
    )
    try:
        partitions = [TopicPartition(settings.topic, p) for p in range(settings.topic_partitions)]
        return {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
    finally:
        consumer.close()


def end_offsets(settings: Settings) -> dict[int, int]:
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": "probe"}
    )
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(settings.topic, p), timeout=10)[1]
            for p in range(settings.topic_partitions)
        }
    finally:
        consumer.close()


class SteadyProducer(threading.Thread):
    """Produces a fleet's messages at a steady rate in the background until ``count``."""

    def __init__(self, settings: Settings, devices: int, count: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        versions = [v.version for v in load_versions(settings.schemas_dir)]
        self.fleet = simulator.Fleet(devices, versions)
        self.count = count
        self.rate = rate
        self.sent = Sent()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            producer = MeasurementProducer(self.settings)
            start = time.monotonic()
            devices = self.fleet.devices
            for i in range(self.count):
                while i >= (time.monotonic() - start) * self.rate:
                    time.sleep(0.005)
                device = devices[i % len(devices)]
                record = self.fleet.reading(device, int(time.time() * 1000))
                producer.send(record, device.version)
                self.sent.records.append(record)
            producer.flush()
        except BaseException as error:  # surfaced by the test through .error
            self.error = error
