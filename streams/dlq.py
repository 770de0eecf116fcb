"""The dead-letter topic: rejected messages, with the reason and where they came from.

A batch's offsets are committed only after its dead-letter writes were delivered; a failed
delivery is produced again, never skipped (docs/delivery.md).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from streams.settings import Settings
from streams.validate import Rejection

log = logging.getLogger(__name__)

HEADER_PREFIX = "streamgauge."


class DeadLetters:
    """Owns the process's producer for ``measurements.dlq``."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.dlq_topic
        self._producer = Producer(
            {
                **settings.kafka_config(),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                "compression.type": "lz4",
                "client.id": f"streamgauge-dlq-{settings.worker_index}",
            }
        )
        self._outstanding = 0
        self._failed: list[dict[str, Any]] = []

    def send(self, message: Message, rejection: Rejection) -> None:
        headers = list(message.headers() or [])
        headers += [
            (HEADER_PREFIX + "reason", rejection.reason.encode()),
            (HEADER_PREFIX + "detail", rejection.detail.encode()),
            (HEADER_PREFIX + "source.topic", (message.topic() or "").encode()),
            (HEADER_PREFIX + "source.partition", str(message.partition()).encode()),
            (HEADER_PREFIX + "source.offset", str(message.offset()).encode()),
            (HEADER_PREFIX + "source.timestamp", str(message.timestamp()[1]).encode()),
        ]
        self._produce({"key": message.key(), "value": message.value(), "headers": headers})

    async def flush(self) -> None:
        """Return once every message sent so far was delivered, producing failures again."""
        while True:
            self._producer.poll(0)
            if self._failed:
                retry, self._failed = self._failed, []
                for record in retry:
                    self._produce(record)
            if self._outstanding == 0:
                return
            await asyncio.sleep(0.005)

    def close(self) -> None:
        self._producer.flush(10)

    def _produce(self, record: dict[str, Any]) -> None:
        def delivered(error: KafkaError | None, _message: Message) -> None:
            self._outstanding -= 1
            if error is not None:
                log.warning("dead-letter write failed, producing it again: %s", error)
                self._failed.append(record)

        while True:
            try:
                self._producer.produce(self.topic, on_delivery=delivered, **record)
                break
            except BufferError:
                self._producer.poll(0.05)
        self._outstanding += 1
