"""The local Kafka is a real broker: produce to a partitioned topic, consume it back as a group."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streams.settings import Settings

pytestmark = pytest.mark.integration


class Member(threading.Thread):
    """One consumer of the group, polling in its own thread until told to stop."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.config = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
        self.topic = topic
        self.assigned: set[int] = set()
        self.values: Counter[str] = Counter()
        self.stopping = threading.Event()

    def on_assign(self, _consumer: Any, partitions: list[Any]) -> None:
        self.assigned = {p.partition for p in partitions}

    def run(self) -> None:
        consumer = Consumer(self.config)
        consumer.subscribe([self.topic], on_assign=self.on_assign)
        while not self.stopping.is_set():
            message = consumer.poll(0.2)
            if message is None:
                continue
            assert message.error() is None, message.error()
            self.values[(message.value() or b"").decode()] += 1
            consumer.commit(message=message, asynchronous=True)
        consumer.close()


def test_two_member_group_consumes_every_message(local_stack: Settings, unique: str) -> None:
    topic, group = f"test-roundtrip-{unique}", f"test-group-{unique}"
    bootstrap = local_stack.kafka_bootstrap_servers
    with AdminClient({"bootstrap.servers": bootstrap}) as admin:
        admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])[
            topic
        ].result()

    members = [Member(bootstrap, group, topic) for _ in range(2)]
    for member in members:
        member.start()
    deadline = time.monotonic() + 60
    while not all(m.assigned for m in members) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert members[0].assigned | members[1].assigned == set(range(6))
    assert not members[0].assigned & members[1].assigned

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(1000):
        producer.produce(topic, key=f"device-{i % 37}", value=str(i).encode())
    assert producer.flush(30) == 0

    while sum(sum(m.values.values()) for m in members) < 1000 and time.monotonic() < deadline:
        time.sleep(0.1)
    for member in members:
        member.stopping.set()
        member.join(30)

    total = members[0].values + members[1].values
    assert sorted(total, key=int) == [str(i) for i in range(1000)]
    assert set(total.values()) == {1}, "every message exactly once across the group"
    assert members[0].values, "the first member consumed"
    assert members[1].values, "the second member consumed"
