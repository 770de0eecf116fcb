"""Small direct Kafka operations for tests: topics, messages at chosen timestamps, commits."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from devstack.kafka_broker import KafkaBroker, find_java
from streams.settings import Settings
from streams.worker.source import MOVING
from tests.support.workers import wait_until


def admin(settings: Settings) -> AdminClient:
    """A client to use in a ``with`` block: destroyed at its end, never by a garbage collection
    (one run by a callback on the client's own thread aborts the process)."""
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})


def create_topic(
    settings: Settings, name: str, partitions: int, config: Mapping[str, str] | None = None
) -> None:
    topic = NewTopic(name, partitions, 1, config=dict(config or {}))
    with admin(settings) as client:
        client.create_topics([topic])[name].result(60)
        wait_for_leaders(client, name, partitions)


def wait_for_leaders(client: AdminClient, name: str, partitions: int, timeout: float = 30) -> None:
    """Until every partition of a new topic answers ListOffsets: the controller acknowledges a
    topic before its broker leads all partitions, and a busy broker can lag by a second."""

    def answered() -> bool:
        futures = client.list_offsets(
            {TopicPartition(name, p): OffsetSpec.latest() for p in range(partitions)},  # type: ignore[no-untyped-call]
            request_timeout=10,
        )
        try:
            return all(f.result().offset >= 0 for f in futures.values())
        except KafkaException:
            return False

    assert wait_until(answered, timeout, 0.2), f"topic {name}: a partition has no leader"


def delete_topics(settings: Settings, *names: str) -> None:
    with admin(settings) as client:
        for future in client.delete_topics(list(names)).values():
            future.result(60)


def produce(
    settings: Settings,
    topic: str,
    counts: Mapping[int, int],
    timestamp_ms: int | None = None,
) -> None:
    """``counts[p]`` small messages into partition p, with one explicit timestamp if given."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "linger.ms": 5})
    for partition, count in counts.items():
        for i in range(count):
            if timestamp_ms is None:
                producer.produce(topic, f"m{i}".encode(), partition=partition)
            else:
                producer.produce(
                    topic, f"m{i}".encode(), partition=partition, timestamp=timestamp_ms
                )
            producer.poll(0)
    assert producer.flush(30) == 0


def commit(
    settings: Settings, group: str, offsets: Mapping[tuple[str, int], int | tuple[int, str]]
) -> None:
    """Commit ``(topic, partition) -> offset`` (or ``(offset, metadata)``) outside any member."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": group})

    def committed() -> bool:
        try:
            consumer.commit(offsets=_partitions(offsets), asynchronous=False)
        except KafkaException as error:
            if error.args[0].code() not in MOVING:
                raise
            return False  # the coordinator is moving, or a broker just started is loading groups
        return True

    try:
        assert wait_until(committed, 30, 0.5), f"group {group}: its coordinator never answered"
    finally:
        consumer.close()


def _partitions(offsets: Mapping[tuple[str, int], int | tuple[int, str]]) -> list[TopicPartition]:
    result = []
    for (topic, partition), value in offsets.items():
        offset, metadata = value if isinstance(value, tuple) else (value, "")
        result.append(TopicPartition(topic, partition, offset, metadata=metadata))
    return result


def watermarks(settings: Settings, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
    """partition -> (earliest retained offset, log end offset)."""
    with admin(settings) as client:
        earliest, latest = (
            {
                tp.partition: future.result(30).offset
                for tp, future in client.list_offsets(
                    {TopicPartition(topic, p): spec for p in range(partitions)}
                ).items()
            }
            for spec in (OffsetSpec.earliest(), OffsetSpec.latest())  # type: ignore[no-untyped-call]
        )
    return {p: (earliest[p], latest[p]) for p in range(partitions)}


def kafka_tool_describe(settings: Settings, group: str) -> dict[tuple[str, int], dict[str, str]]:
    """Kafka's own consumer-groups tool (ConsumerGroupCommand --describe), row per partition."""
    broker = KafkaBroker(settings.devstack_dir, settings.cache_dir)
    command = [
        find_java(),
        "-cp",
        broker.resolve_classpath(),
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        "--bootstrap-server",
        settings.kafka_bootstrap_servers,
        "--describe",
        "--group",
        group,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    lines = [line.split() for line in output.stdout.splitlines() if line.strip()]
    header = next(i for i, line in enumerate(lines) if line[:2] == ["GROUP", "TOPIC"])
    names = lines[header]
    rows = [dict(zip(names, line, strict=False)) for line in lines[header + 1 :]]
    return {(row["TOPIC"], int(row["PARTITION"])): row for row in rows if row["GROUP"] == group}
