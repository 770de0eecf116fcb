"""Looking at dead letters and sending them back: ``streamgauge dlq inspect|replay``.

A dead letter is the original message (key, value, headers) plus the worker's headers: the
reason, a detail, and where it came from. One too large for the dead-letter topic is a
reference there, its payload in ClickHouse's ``dead_letters``. Replaying sends the original
back to its source partition once the cause is fixed; the workers store a message they already
stored only once (docs/delivery.md: resends), so replaying twice stores once.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import cast

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from streams.clickhouse import sync_client
from streams.codec import DecodeError, Decoder, load_versions
from streams.errors import UserError
from streams.registry import registry_client
from streams.settings import Settings

PREFIX = "streamgauge."
REPLAYED_FROM = PREFIX + "replayed.from"
HEX_BYTES = 48


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter: why, where from, and the original message."""

    offset: int  # in the dead-letter topic
    reason: str
    detail: str
    source: tuple[int, int]  # partition, offset in the measurements topic
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]  # the original's, without the worker's
    in_clickhouse: bool = False  # the payload is in the dead_letters table


@dataclass(frozen=True)
class Selection:
    """Which dead letters a command acts on; empty fields select everything."""

    reasons: frozenset[str] = frozenset()
    partition: int | None = None
    sources: frozenset[tuple[int, int]] = frozenset()
    since_ms: int = 0

    def __contains__(self, letter: object) -> bool:
        assert isinstance(letter, DeadLetter)
        return (
            (not self.reasons or letter.reason in self.reasons)
            and (self.partition is None or letter.source[0] == self.partition)
            and (not self.sources or letter.source in self.sources)
        )


def read(settings: Settings, selection: Selection, timeout: float = 30.0) -> list[DeadLetter]:
    """Every selected dead letter now in the topic, oldest first."""
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": "streamgauge-dlq-inspect",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        return [letter for letter in _letters(consumer, settings, selection, timeout)]
    except KafkaException as error:
        raise UserError(
            f"Cannot read {settings.dlq_topic} at {settings.kafka_bootstrap_servers} "
            f"({error.args[0].str()}); is Kafka up and the topic created?"
        ) from None
    finally:
        consumer.close()


def _letters(
    consumer: Consumer, settings: Settings, selection: Selection, timeout: float
) -> Iterator[DeadLetter]:
    metadata = consumer.list_topics(settings.dlq_topic, timeout=10).topics[settings.dlq_topic]
    if metadata.error is not None:
        raise UserError(f"There is no topic {settings.dlq_topic}; `streamgauge topics create`.")
    starts, ends = {}, {}
    for partition in metadata.partitions:
        tp = TopicPartition(settings.dlq_topic, partition)
        low, high = consumer.get_watermark_offsets(tp, timeout=10)
        starts[partition], ends[partition] = low, high
    if selection.since_ms:
        wanted = [TopicPartition(settings.dlq_topic, p, selection.since_ms) for p in starts]
        for tp in consumer.offsets_for_times(wanted, timeout=10):
            starts[tp.partition] = tp.offset if tp.offset >= 0 else ends[tp.partition]
    todo = {p for p in starts if starts[p] < ends[p]}
    consumer.assign([TopicPartition(settings.dlq_topic, p, starts[p]) for p in todo])
    deadline = time.monotonic() + timeout
    while todo and time.monotonic() < deadline:
        for message in consumer.consume(500, 0.5):
            if message.error() is not None:
                continue
            partition, offset = cast(int, message.partition()), cast(int, message.offset())
            if offset + 1 >= ends[partition]:
                todo.discard(partition)
            raw = message.headers() or []
            headers = list(raw.items()) if isinstance(raw, dict) else list(raw)
            letter = _parse(offset, message.key(), message.value(), headers)
            if letter is not None and letter in selection:
                yield letter


def _parse(
    offset: int, key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, object]]
) -> DeadLetter | None:
    ours: dict[str, str] = {}
    original = []
    for name, raw in headers:
        data = raw if isinstance(raw, bytes) else str(raw or "").encode()
        if name.startswith(PREFIX):
            ours[name[len(PREFIX) :]] = data.decode(errors="replace")
        else:
            original.append((name, data))
    try:
        source = (int(ours["source.partition"]), int(ours["source.offset"]))
    except (KeyError, ValueError):
        return None  # not a worker's dead letter
    return DeadLetter(
        offset,
        ours.get("reason", "?"),
        ours.get("detail", ""),
        source,
        key,
        value,
        original,
        in_clickhouse="stored.in" in ours,
    )


@dataclass
class Summary:
    """Counts by reason, and a few samples of each."""

    counts: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[DeadLetter]] = field(default_factory=dict)


def summarize(letters: Iterable[DeadLetter], samples: int) -> Summary:
    summary = Summary()
    for letter in letters:
        summary.counts[letter.reason] += 1
        kept = summary.samples.setdefault(letter.reason, [])
        if len(kept) < samples:
            kept.append(letter)
    return summary


def describe(letter: DeadLetter, decoder: Decoder) -> str:
    """One line: where from, why, and the payload decoded (or its first bytes in hex)."""
    where = f"partition {letter.source[0]} offset {letter.source[1]}"
    if letter.in_clickhouse:
        payload = "(payload in ClickHouse's dead_letters)"
    else:
        payload = _payload(letter.value or b"", decoder)
    return f"  {where}: {letter.detail}\n    {payload}"


def _payload(value: bytes, decoder: Decoder) -> str:
    try:
        return json.dumps(decoder.decode(value), sort_keys=True, default=str)[:300]
    except (DecodeError, Exception):
        more = f" ... ({len(value)} bytes)" if len(value) > HEX_BYTES else ""
        return f"hex {value[:HEX_BYTES].hex()}{more}"


def decoder(settings: Settings) -> Decoder:
    return Decoder(load_versions(settings.schemas_dir), registry_client(settings))


def replay(settings: Settings, letters: list[DeadLetter]) -> int:
    """Send the originals back to their source partitions; returns how many were sent."""
    producer = Producer(
        {**settings.kafka_config(), "enable.idempotence": True, "message.max.bytes": 2**24}
    )
    failures: list[str] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failures.append(str(error))

    for letter in letters:
        value = _stored_payload(settings, letter) if letter.in_clickhouse else letter.value
        origin = f"{letter.source[0]}/{letter.source[1]}".encode()
        headers: list[tuple[str, str | bytes | None]] = [*letter.headers, (REPLAYED_FROM, origin)]
        producer.produce(
            settings.topic,
            value=value,
            key=letter.key,
            headers=headers,
            partition=letter.source[0],
            on_delivery=delivered,
        )
        producer.poll(0)
    remaining = producer.flush(30)
    if remaining or failures:
        raise UserError(
            f"{remaining + len(failures)} of {len(letters)} replayed messages were not "
            f"delivered to {settings.topic} ({(failures or ['timed out'])[0]}); nothing else "
            "changed: replaying them again is safe."
        )
    return len(letters)


def _stored_payload(settings: Settings, letter: DeadLetter) -> bytes:
    rows = (
        sync_client(settings)
        .query(
            "SELECT payload FROM dead_letters FINAL WHERE source_topic = {topic:String} "
            "AND source_partition = {p:UInt32} AND source_offset = {o:UInt64}",
            parameters={"topic": settings.topic, "p": letter.source[0], "o": letter.source[1]},
            column_formats={"payload": "bytes"},
        )
        .result_rows
    )
    if not rows:
        raise UserError(
            f"The payload of the dead letter from partition {letter.source[0]} offset "
            f"{letter.source[1]} is not in ClickHouse's dead_letters table."
        )
    payload: bytes = rows[0][0]
    return payload
