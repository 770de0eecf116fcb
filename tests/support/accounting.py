"""The accounting identity, checked from Kafka and ClickHouse alone (not the worker's books).

For every offset below a partition's committed offset, the message there is stored (each of
its readings exactly once, rows tied to it by ``source_partition``/``source_offset``), a
resend of a stored message (no rows of its own), or a dead letter with its reason, source
partition and offset — never neither, never both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from streams.settings import Settings
from tests.support.fleet import committed, count, end_offsets, stored


@dataclass(frozen=True)
class Expect:
    """What the message at one offset must have become."""

    kind: str  # "stored", "resend" or "dead"
    readings: int = 0  # rows, for "stored"
    reason: str = ""  # for "dead"


def dead_letters(settings: Settings) -> dict[tuple[int, int], str]:
    """(source partition, offset) -> reason, from the dead-letter topic and ClickHouse."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": "audit"}
    )
    letters: dict[tuple[int, int], str] = {}
    try:
        tp = TopicPartition(settings.dlq_topic, 0, 0)
        end = consumer.get_watermark_offsets(tp, timeout=10)[1]
        consumer.assign([tp])
        deadline = time.monotonic() + 30
        seen = 0
        while seen < end and time.monotonic() < deadline:
            for message in consumer.consume(500, 1):
                seen += 1
                headers = {k: _text(v) for k, v in dict(message.headers() or {}).items()}
                key = (
                    int(headers["streamgauge.source.partition"]),
                    int(headers["streamgauge.source.offset"]),
                )
                letters[key] = headers["streamgauge.reason"]
    finally:
        consumer.close()
    return letters


def kept_in_clickhouse(settings: Settings) -> dict[tuple[int, int], tuple[str, int]]:
    """(source partition, offset) -> (reason, payload bytes) of dead letters in ClickHouse."""
    rows = stored(
        settings,
        "SELECT source_partition, source_offset, reason, length(payload) FROM dead_letters FINAL",
    )
    return {(int(p), int(o)): (str(r), int(n)) for p, o, r, n in rows}  # type: ignore[call-overload]


def audit(settings: Settings, partition: int, expected: dict[int, Expect]) -> list[str]:
    """Every way the partition breaks the identity; empty when it holds."""
    problems = []
    position, end = committed(settings)[partition], end_offsets(settings)[partition]
    if position != end:
        problems.append(f"p{partition}: committed {position}, end {end}: not caught up")
    rows = {
        int(offset): int(n)  # type: ignore[call-overload]
        for offset, n in stored(
            settings,
            "SELECT source_offset, count() FROM readings "
            f"WHERE source_partition = {partition} GROUP BY source_offset",
        )
    }
    letters = dead_letters(settings)
    for offset in range(max(position, 0)):
        expect = expected.get(offset)
        have, letter = rows.get(offset, 0), letters.get((partition, offset))
        if expect is None:
            problems.append(f"p{partition}/{offset}: not produced by the test")
        elif expect.kind == "stored" and (have != expect.readings or letter is not None):
            problems.append(f"p{partition}/{offset}: {have} rows of {expect.readings}, {letter=}")
        elif expect.kind == "resend" and (have or letter is not None):
            problems.append(f"p{partition}/{offset}: a resend has {have} rows, {letter=}")
        elif expect.kind == "dead" and (letter != expect.reason or have):
            problems.append(
                f"p{partition}/{offset}: dead letter {letter!r}, expected "
                f"{expect.reason!r}; {have} rows"
            )
    stray = [o for o in rows if o >= max(position, 0)]
    if stray:
        problems.append(f"p{partition}: rows of uncommitted offsets {stray[:5]}")
    return problems


def totals(settings: Settings) -> dict[str, int]:
    """Readings as each part of the query surface counts them."""
    queries = {
        "raw": "SELECT count() FROM readings",
        "final": "SELECT count() FROM readings FINAL",
        "distinct": "SELECT uniqExact(device_id, metric, event_time, seq) FROM readings",
        "rollups": "SELECT sum(count) FROM readings_1m",
    }
    return {name: int(stored(settings, sql)[0][0]) for name, sql in queries.items()}  # type: ignore[call-overload]


def _text(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""


def drained(settings: Settings) -> bool:
    return committed(settings) == end_offsets(settings)


def positions(settings: Settings) -> dict[int, int]:
    """Where the group resumes per partition (no commit yet, or an intent at 0, is 0)."""
    return {partition: max(offset, 0) for partition, offset in committed(settings).items()}


def assert_stored_exactly_once(settings: Settings, readings: int) -> None:
    assert count(settings, "SELECT count() FROM readings FINAL") == readings
    assert count(settings, "SELECT count() FROM readings") == readings, "an insert was repeated"
    assert count(settings, "SELECT uniqExact(device_id, metric, seq) FROM readings") == readings
    assert count(settings, "SELECT sum(count) FROM readings_1m") == readings
