"""DeadLetters at its seam: a fake librdkafka producer in place of confluent_kafka's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.reasons import Rejection
from streams.settings import Settings
from streams.worker import dlq as dlq_module
from streams.worker.dlq import DeadLetters, Letter
from streams.worker.telemetry import WorkerMetrics


class FakeProducer:
    """Delivers on poll(); ``outcomes`` gives each produce's delivery error (None: delivered)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.outcomes: list[Any] = []
        self.produced: list[dict[str, Any]] = []
        self._due: list[tuple[Callable[..., None], KafkaError | None]] = []

    def produce(self, topic: str, **record: Any) -> None:
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, KafkaException) or outcome is BufferError:
            if outcome is BufferError:
                raise BufferError
            raise outcome
        self.produced.append({"topic": topic, **record})
        self._due.append((record["on_delivery"], outcome))

    def poll(self, timeout: float) -> None:
        due, self._due = self._due, []
        for callback, error in due:
            callback(error, None)

    def flush(self, timeout: float) -> None:
        self.poll(0)


class FakeMessage:
    def __init__(self, offset: int, value: bytes) -> None:
        self._offset, self._value = offset, value

    def topic(self) -> str:
        return "measurements"

    def partition(self) -> int:
        return 4

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"dev-1"

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return [("trace", b"abc")]

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_795_670_400_000)


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> tuple[DeadLetters, FakeProducer, list[Letter]]:
    producers: list[FakeProducer] = []

    def make(config: dict[str, Any]) -> FakeProducer:
        producers.append(FakeProducer(config))
        return producers[-1]

    monkeypatch.setattr(dlq_module, "Producer", make)
    monkeypatch.setattr(dlq_module, "backoff", lambda attempt, cap: 0.0)
    spilled: list[Letter] = []

    async def spill(letters: Sequence[Letter]) -> None:
        spilled.extend(letters)

    letters = DeadLetters(Settings(), spill, WorkerMetrics("m", 0))
    return letters, producers[0], spilled


def letter(offset: int = 7, value: bytes = b"garbage") -> Letter:
    return Letter.of(FakeMessage(offset, value), Rejection("not_avro", "header 6761"))  # type: ignore[arg-type]


async def test_a_dead_letter_keeps_the_original_and_says_where_it_came_from(
    made: tuple[DeadLetters, FakeProducer, list[Letter]],
) -> None:
    letters, producer, _ = made
    await letters.deliver([letter()])
    (record,) = producer.produced
    headers = dict(record["headers"])
    assert (record["topic"], record["key"], record["value"]) == (
        "measurements.dlq",
        b"dev-1",
        b"garbage",
    )
    assert headers["trace"] == b"abc"
    assert headers["streamgauge.reason"] == b"not_avro"
    assert (headers["streamgauge.source.partition"], headers["streamgauge.source.offset"]) == (
        b"4",
        b"7",
    )
    assert producer.config["message.max.bytes"] == Settings().dlq_max_message_bytes


async def test_a_failed_delivery_is_produced_again_until_it_is_delivered(
    made: tuple[DeadLetters, FakeProducer, list[Letter]],
) -> None:
    letters, producer, _ = made
    missing = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)
    producer.outcomes = [missing, missing, BufferError, None]
    await letters.deliver([letter()])
    assert len(producer.produced) == 3


async def test_a_letter_too_large_for_the_topic_is_kept_in_clickhouse_and_referenced(
    made: tuple[DeadLetters, FakeProducer, list[Letter]],
) -> None:
    letters, producer, spilled = made
    producer.outcomes = [KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))]
    await letters.deliver([letter(value=b"x" * 100)])
    assert [s.value for s in spilled] == [b"x" * 100]
    (reference,) = producer.produced
    assert reference["value"] is None
    assert ("streamgauge.stored.in", b"clickhouse:dead_letters") in reference["headers"]


async def test_a_reference_the_topic_refuses_too_waits_it_is_not_kept_twice(
    made: tuple[DeadLetters, FakeProducer, list[Letter]],
) -> None:
    letters, producer, spilled = made
    too_large = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)
    producer.outcomes = [too_large, too_large, too_large, None]  # a topic taking 16 bytes
    await letters.deliver([letter(value=b"x" * 100)])
    assert [s.value for s in spilled] == [b"x" * 100], "the payload is kept once, whole"
    assert [r["value"] for r in producer.produced] == [b"x" * 100, None, None, None]
