"""The device-side producer: measurements keyed by device id, idempotent, deliveries checked.

The public producer API (docs/producing.md). It needs confluent-kafka and fastavro only (the
base install); Confluent framing with a registry also needs the ``registry`` extra.
"""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import KafkaError, Message, Producer

from streams.codec import Encoder, Record, load_versions
from streams.errors import UserError
from streams.registry import registry_client, schema_id
from streams.settings import Settings


class DeliveryFailed(Exception):
    """Some messages were not acknowledged by Kafka."""


class MeasurementProducer:
    """Publishes measurement records to the measurements topic.

    The producer is idempotent (no duplicates from internal retries, order kept per
    partition); ``flush()`` waits for every delivery report and raises if any failed.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        version: int | None = None,
        schemas_dir: Path | None = None,
        extra_config: dict[str, object] | None = None,
    ) -> None:
        settings = settings or Settings.from_env()
        versions = load_versions(schemas_dir or settings.schemas_dir)
        self.topic = settings.topic
        registry = registry_client(settings)
        register = settings.schema_registry_register
        self.encoders = {
            v.version: Encoder(
                v, schema_id(registry, self.topic, v, register) if registry else None
            )
            for v in versions
        }
        self.version = version or versions[-1].version
        if self.version not in self.encoders:
            raise UserError(f"schema version {self.version} is not in {settings.schemas_dir}.")
        self._producer = Producer(
            {
                **settings.kafka_config(),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                "batch.size": 1_000_000,
                "compression.type": "lz4",
                # Reports for failures only: a report per delivered message was a Python call
                # each, 18 % of the CPU per message sent (bench/produce.py). Delivered ones
                # are counted from what left the queue without a failure.
                "delivery.report.only.error": True,
                # The Java client's default: a device lands on the same partition whatever
                # language its firmware publishes from (streams/partitioner.py).
                "partitioner": "murmur2_random",
                **(extra_config or {}),
            }
        )
        self.sent = 0
        self.failures: list[str] = []

    def send(self, record: Record, version: int | None = None) -> None:
        payload = self.encoders[version or self.version].encode(record)
        self.send_raw(record["device_id"].encode(), payload)

    def send_raw(self, key: bytes | None, payload: bytes) -> None:
        """Publish an already-encoded payload (the simulator uses it for malformed messages)."""
        while True:
            try:
                self._producer.produce(self.topic, payload, key, on_delivery=self._failed)
                break
            except BufferError:
                self._producer.poll(0.05)
        self.sent += 1
        if self.sent % 1000 == 0:
            self._producer.poll(0)

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining or self.failures:
            raise DeliveryFailed(
                f"{remaining} messages undelivered after {timeout:.0f} s, "
                f"{len(self.failures)} failed: {self.failures[:3]}"
            )

    @property
    def delivered(self) -> int:
        """Messages Kafka acknowledged: sent, no longer waiting, and not failed."""
        return self.sent - len(self._producer) - len(self.failures)

    def _failed(self, error: KafkaError | None, _message: Message) -> None:
        """A delivery report: only failures are reported (``delivery.report.only.error``)."""
        if error is not None:
            self.failures.append(str(error))
