"""Kafka's murmur2 partitioner, checked against Kafka's test vectors and librdkafka."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Message, Producer
from confluent_kafka.admin import NewTopic

from streams.partitioner import murmur2, partition_for
from streams.settings import Settings
from tests.support.kafka import admin, delete_topics


def test_murmur2_matches_kafkas_test_vectors() -> None:
    # From Kafka's UtilsTest.testMurmur2.
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    assert {key: murmur2(key) for key in cases} == cases


@pytest.mark.integration
def test_partition_for_agrees_with_the_producer(local_stack: Settings, unique: str) -> None:
    topic = f"test-partitioner-{unique}"
    with admin(local_stack) as client:
        client.create_topics([NewTopic(topic, num_partitions=7, replication_factor=1)])[
            topic
        ].result()
    producer = Producer(
        {"bootstrap.servers": local_stack.kafka_bootstrap_servers, "partitioner": "murmur2_random"}
    )
    landed: dict[str, int] = {}

    def record(device: str) -> Callable[[object, Message], None]:
        return lambda _error, message: landed.__setitem__(device, message.partition() or 0)

    for i in range(200):
        device = f"dev-{i:06d}"
        producer.produce(topic, b"x", device.encode(), on_delivery=record(device))
    assert producer.flush(30) == 0
    assert landed == {device: partition_for(device, 7) for device in landed}
    delete_topics(local_stack, topic)
