"""The dead-letter topic: rejected messages, with the reason and where they came from.

A batch's offsets are committed only after its dead letters were delivered. Delivery is
retried until it succeeds, so a missing or denied dead-letter topic makes the partitions
with dead letters wait, never skip them; other partitions go on. A dead letter larger than
the dead-letter topic accepts is kept whole in ClickHouse's ``dead_letters`` table, and the
topic gets a reference to it with the same headers and no payload (docs/delivery.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from streams.reasons import Rejection
from streams.settings import Settings
from streams.worker.retry import backoff
from streams.worker.telemetry import WorkerMetrics

log = logging.getLogger(__name__)

HEADER_PREFIX = "streamgauge."
STORED_IN_CLICKHOUSE = "clickhouse:dead_letters"
# Kafka refuses these for good: retrying the same record cannot succeed.
_TOO_LARGE = {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE}
# Headroom for our headers above the largest message the source topic can hold.
HEADER_ROOM = 64 * 1024


@dataclass
class Letter:
    """One dead letter as produced: the original key, value and headers, plus ours."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, str | bytes | None]]
    source: tuple[str, int, int]  # topic, partition, offset
    reason: str
    detail: str
    error: KafkaError | None = field(default=None)
    reference_only: bool = False  # the payload is in ClickHouse already

    @classmethod
    def of(cls, message: Message, rejection: Rejection) -> Letter:
        topic = message.topic() or ""
        partition, offset = message.partition(), message.offset()
        original = message.headers() or []
        headers = list(original.items() if isinstance(original, dict) else original)
        headers += [
            (HEADER_PREFIX + "reason", rejection.reason.encode()),
            (HEADER_PREFIX + "detail", rejection.detail.encode()),
            (HEADER_PREFIX + "source.topic", topic.encode()),
            (HEADER_PREFIX + "source.partition", str(partition).encode()),
            (HEADER_PREFIX + "source.offset", str(offset).encode()),
            (HEADER_PREFIX + "source.timestamp", str(message.timestamp()[1]).encode()),
        ]
        source = (topic, int(partition or 0), int(offset or 0))
        return cls(
            message.key(), message.value(), headers, source, rejection.reason, rejection.detail
        )

    def reference(self) -> Letter:
        """This letter without its payload, pointing at the copy kept in ClickHouse."""
        headers = [*self.headers, (HEADER_PREFIX + "stored.in", STORED_IN_CLICKHOUSE.encode())]
        return Letter(
            self.key, None, headers, self.source, self.reason, self.detail, reference_only=True
        )


# Keeps letters Kafka refused for their size in ClickHouse (ClickHouseSink.store_dead_letters).
Spill = Callable[[Sequence[Letter]], Awaitable[None]]


class DeadLetters:
    """Owns the process's producer for ``measurements.dlq``."""

    def __init__(self, settings: Settings, spill: Spill, metrics: WorkerMetrics) -> None:
        self.topic = settings.dlq_topic
        self._spill = spill
        self._metrics = metrics
        self._producer = Producer(
            {
                **settings.kafka_config(),
                "enable.idempotence": True,
                "acks": "all",
                # A batch's letters are produced together, then awaited before its insert.
                "linger.ms": 5,
                "compression.type": "lz4",
                "message.max.bytes": settings.dlq_max_message_bytes,
                # A missing topic or an unreachable broker fails a delivery within this time;
                # the batch then retries it, instead of librdkafka holding it for 5 minutes.
                "message.timeout.ms": 30_000,
                "client.id": f"streamgauge-dlq-{settings.worker_index}",
            }
        )

    async def deliver(self, letters: Sequence[Letter]) -> None:
        """Return once every letter is in the topic (or in ClickHouse, if too large for it)."""
        pending = list(letters)
        attempt = 0
        while pending:
            await self._produce_all(pending)
            too_large = [letter for letter in pending if _spillable(letter)]
            if too_large:
                await self._spill(too_large)
                log.warning(
                    "%d dead letters exceed the limit of %s; kept in ClickHouse's dead_letters",
                    len(too_large),
                    self.topic,
                )
            failed = [letter for letter in pending if letter.error is not None]
            pending = [letter.reference() if _spillable(letter) else letter for letter in failed]
            waiting = [letter for letter in failed if not _spillable(letter)]
            if waiting:
                attempt += 1
                self._failed(waiting, attempt)
                await asyncio.sleep(backoff(attempt, 10.0))

    def _failed(self, letters: list[Letter], attempt: int) -> None:
        error = letters[0].error
        self._metrics.dead_letter_failure(_kind(error))
        if attempt == 1 or attempt % 10 == 0:
            log.warning(
                "%d dead letters not delivered to %s (%s); partition %d waits, attempt %d",
                len(letters),
                self.topic,
                error,
                letters[0].source[1],
                attempt,
            )

    def close(self) -> None:
        self._producer.flush(10)

    async def _produce_all(self, letters: list[Letter]) -> None:
        """Produce each letter once; sets ``letter.error`` (None when delivered)."""
        waiting = [0]

        def delivered(letter: Letter) -> Callable[[KafkaError | None, Message], None]:
            def done(error: KafkaError | None, _message: Message) -> None:
                letter.error = error
                waiting[0] -= 1

            return done

        for letter in letters:
            letter.error = None
            while True:
                try:
                    self._producer.produce(
                        self.topic,
                        key=letter.key,
                        value=letter.value,
                        headers=letter.headers,
                        on_delivery=delivered(letter),
                    )
                    waiting[0] += 1
                    break
                except BufferError:  # the producer's queue is full: let it drain
                    self._producer.poll(0)
                    await asyncio.sleep(0.01)
                except KafkaException as error:  # refused before sending (e.g. too large)
                    letter.error = error.args[0]
                    break
        while waiting[0] > 0:
            self._producer.poll(0)
            await asyncio.sleep(0.005)


def _spillable(letter: Letter) -> bool:
    """Refused for its size, with its payload not yet kept in ClickHouse."""
    error = letter.error
    return error is not None and error.code() in _TOO_LARGE and not letter.reference_only


def _kind(error: KafkaError | None) -> str:
    return error.name().lower().lstrip("_") if error is not None else "none"


def letter_row(letter: Letter) -> list[Any]:
    """A ``dead_letters`` row: the letter whole, with its source."""
    topic, partition, offset = letter.source
    headers = {k: _text(v) for k, v in letter.headers}
    return [
        topic,
        partition,
        offset,
        letter.reason,
        letter.detail,
        letter.key or b"",
        letter.value or b"",
        headers,
    ]


def _text(value: str | bytes | None) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value or ""


LETTER_COLUMNS = (
    "source_topic",
    "source_partition",
    "source_offset",
    "reason",
    "detail",
    "key",
    "payload",
    "headers",
)
