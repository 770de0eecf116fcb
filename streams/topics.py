"""Creating the measurements topic and its dead-letter topic, idempotently."""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from streams.errors import UserError
from streams.kafka_reach import check_tls, unreachable
from streams.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    config: dict[str, str]


def min_insync_replicas(replication: int) -> int:
    """Replicas an acks=all write waits for: 2 of 3 (one broker may be down), 1 below that."""
    return max(1, min(2, replication - 1))


def specs(settings: Settings) -> list[TopicSpec]:
    retention_ms = str(int(settings.topic_retention_hours * 3600 * 1000))
    isr = str(min_insync_replicas(settings.topic_replication))
    return [
        TopicSpec(
            settings.topic,
            settings.topic_partitions,
            settings.topic_replication,
            {
                "retention.ms": retention_ms,
                "compression.type": "producer",
                "min.insync.replicas": isr,
            },
        ),
        # Dead letters are kept long enough for someone to look at them: 30 days.
        TopicSpec(
            settings.dlq_topic,
            1,
            settings.topic_replication,
            {
                "retention.ms": str(30 * 24 * 3600 * 1000),
                # Above the measurements topic's limit: a dead letter keeps the original bytes.
                "max.message.bytes": str(settings.dlq_max_message_bytes),
                "min.insync.replicas": isr,
            },
        ),
    ]


def create(settings: Settings) -> list[str]:
    """Create missing topics; check existing ones against the spec. One line per topic."""
    check_tls(settings)
    with AdminClient({**settings.kafka_config(), "socket.timeout.ms": 10_000}) as admin:
        try:
            existing = admin.list_topics(timeout=15).topics
        except KafkaException as error:
            raise unreachable(settings, str(error.args[0])) from None
        report = []
        for spec in specs(settings):
            if spec.name in existing:
                report.append(_check_existing(admin, spec, len(existing[spec.name].partitions)))
                continue
            future = admin.create_topics(
                [NewTopic(spec.name, spec.partitions, spec.replication, config=spec.config)]
            )[spec.name]
            try:
                future.result(30)
            except KafkaException as error:
                if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise UserError(
                        f"Creating topic {spec.name} failed: {error.args[0].str()}"
                    ) from None
                # Created meanwhile: by another `topics create`, or just before by this one while
                # the broker answering the listing had not learnt it from the controller yet.
                report.append(_check_existing(admin, spec, _partitions(admin, spec.name)))
                continue
            isr = spec.config["min.insync.replicas"]
            report.append(
                f"{spec.name}: created with {spec.partitions} partitions, "
                f"replication {spec.replication}, min.insync.replicas {isr}"
            )
        return report


def _partitions(admin: AdminClient, name: str, timeout: float = 15) -> int:
    """Partitions of a topic the controller says exists, once a broker's metadata shows it."""
    deadline = time.monotonic() + timeout
    while True:
        listed = admin.list_topics(name, timeout=timeout).topics.get(name)
        if listed is not None and listed.error is None and listed.partitions:
            return len(listed.partitions)
        if time.monotonic() > deadline:
            raise UserError(
                f"Topic {name} exists, says Kafka's controller, but no broker lists it after "
                f"{timeout:.0f} s; run `streamgauge topics create` again."
            )
        time.sleep(0.2)


def _check_existing(admin: AdminClient, spec: TopicSpec, partitions: int) -> str:
    if partitions < spec.partitions:
        raise UserError(
            f"Topic {spec.name} exists with {partitions} partitions, fewer than the "
            f"{spec.partitions} configured (STREAMGAUGE_TOPIC_PARTITIONS); add partitions with "
            f"kafka-topics --alter --partitions {spec.partitions}, or lower the setting."
        )
    resource = ConfigResource(ResourceType.TOPIC, spec.name)
    actual = admin.describe_configs([resource])[resource].result(30)
    differences = [
        f"{key}={actual[key].value} (configured {value})"
        for key, value in spec.config.items()
        if key in actual and actual[key].value != value
    ]
    note = f"; differs from the settings: {', '.join(differences)}" if differences else ""
    more = f" (more than the {spec.partitions} configured)" if partitions > spec.partitions else ""
    return f"{spec.name}: exists with {partitions} partitions{more}{note}"
