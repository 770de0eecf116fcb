"""bench torture's observations: what Kafka and ClickHouse hold after (or during) a trial.

Read straight from the broker and the database, never from the worker's metrics or logs:
committed and end offsets of the group, the dead-letter topic with its headers, the
``dead_letters`` table when the schema has one, and the ``readings``, ``readings_1m`` and
``latest`` tables.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, KafkaException, TopicPartition

from bench._torture_check import Bucket, DeadLetter, Observed, Offset, Row
from streams.clickhouse import sync_client
from streams.settings import Settings
from streams.worker.source import MOVING, answer_error

HEADER = "streamgauge."


def offsets(settings: Settings, timeout: float = 30) -> tuple[dict[int, int], dict[int, int]]:
    """(committed, end) offset per partition of the measurements topic (every partition it
    has now: partitions may have been added); no commit is 0. Asked again for up to
    ``timeout`` s while a leader or the group's coordinator is moving (as when a broker comes
    back)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _offsets(settings)
        except KafkaException as error:
            kafka = error.args[0]
            moving = kafka.retriable() or kafka.code() in MOVING
            if not moving or time.monotonic() >= deadline:
                raise
        time.sleep(0.5)


def _offsets(settings: Settings) -> tuple[dict[int, int], dict[int, int]]:
    consumer = Consumer({**settings.kafka_config(), "group.id": settings.consumer_group})
    try:
        topic = consumer.list_topics(settings.topic, timeout=15).topics[settings.topic]
        partitions = [TopicPartition(settings.topic, p) for p in sorted(topic.partitions)]
        answer = consumer.committed(partitions, timeout=15)
        error = answer_error(answer)
        if error is not None:  # never read as 0
            raise KafkaException(error)
        committed = {tp.partition: max(0, tp.offset) for tp in answer}
        end = {tp.partition: consumer.get_watermark_offsets(tp, timeout=15)[1] for tp in partitions}
        return committed, end
    finally:
        consumer.close()


def wait_caught_up(settings: Settings, timeout: float) -> bool:
    """Wait until every partition's committed offset is its end offset."""
    deadline = time.monotonic() + timeout
    while True:
        committed, end = offsets(settings, timeout=max(30.0, deadline - time.monotonic()))
        if committed == end:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


class DeadLetterLog:
    """The dead-letter topic's messages, kept across a deletion of the topic.

    ``archive()`` before deleting the topic keeps what the current incarnation holds;
    ``read()`` returns those and whatever the topic holds now.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.archived: list[DeadLetter] = []

    def archive(self) -> int:
        letters = self.current()
        self.archived += letters
        return len(letters)

    def read(self) -> list[DeadLetter]:
        return self.archived + self.current()

    def end_offsets(self) -> dict[int, int]:
        consumer = self._consumer()
        try:
            return {
                tp.partition: consumer.get_watermark_offsets(tp, timeout=15)[1]
                for tp in self._partitions(consumer)
            }
        finally:
            consumer.close()

    def current(self) -> list[DeadLetter]:
        """Every message the dead-letter topic holds now (none while it does not exist)."""
        consumer = self._consumer()
        try:
            partitions = self._partitions(consumer)
            ends = {
                tp.partition: consumer.get_watermark_offsets(tp, timeout=15)[1] for tp in partitions
            }
            todo = {p for p, end in ends.items() if end > 0}
            consumer.assign([TopicPartition(self.settings.dlq_topic, p, 0) for p in todo])
            letters: list[DeadLetter] = []
            deadline = time.monotonic() + 60
            while todo and time.monotonic() < deadline:
                for message in consumer.consume(500, 0.5):
                    if message.error() is not None:
                        raise KafkaException(message.error())
                    letters.append(parse(message.headers() or []))
                    partition, offset = message.partition() or 0, message.offset() or 0
                    if offset + 1 >= ends[partition]:
                        todo.discard(partition)
            if todo:
                raise TimeoutError(f"reading {self.settings.dlq_topic} took over 60 s")
            return letters
        finally:
            consumer.close()

    def _consumer(self) -> Consumer:
        return Consumer(
            {
                **self.settings.kafka_config(),
                "group.id": f"torture-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )

    def _partitions(self, consumer: Consumer) -> list[TopicPartition]:
        topic = consumer.list_topics(self.settings.dlq_topic, timeout=15).topics.get(
            self.settings.dlq_topic
        )
        if topic is None or topic.error is not None:
            return []
        return [TopicPartition(self.settings.dlq_topic, p) for p in sorted(topic.partitions)]


def parse(headers: Any) -> DeadLetter:
    """A dead letter from its Kafka headers (a list of name and bytes pairs)."""
    values = {key: bytes(value or b"").decode(errors="replace") for key, value in headers}

    def number(name: str) -> int | None:
        text = values.get(HEADER + name, "")
        return int(text) if text.lstrip("-").isdigit() else None

    return DeadLetter(
        number("source.partition"), number("source.offset"), values.get(HEADER + "reason", "")
    )


def clickhouse(
    settings: Settings, committed: dict[int, int], end: dict[int, int], letters: list[DeadLetter]
) -> Observed:
    """Everything the checker needs, with the dead letters of the topic and of the table."""
    client = sync_client(settings)
    return Observed(
        committed,
        end,
        rows(client),
        letters + table_dead_letters(client, settings.topic),
        rollup(client),
        {
            (device, metric): value
            for device, metric, value in client.query(
                "SELECT device_id, metric, value FROM latest FINAL"
            ).result_rows
        },
        shared_inserts(client),
    )


def shared_inserts(client: Client) -> int:
    """Inserts that carried several partitions' batches: rows of more than one partition
    stored at the same instant (``stored_at`` is set once per insert)."""
    result = client.query(
        "SELECT count() FROM (SELECT stored_at FROM readings GROUP BY stored_at "
        "HAVING uniqExact(source_partition) > 1)"
    )
    return int(result.result_rows[0][0])


def rollup(client: Client) -> dict[Bucket, int]:
    result = client.query(
        "SELECT device_id, metric, toUnixTimestamp(minute) * 1000 AS m, sum(count) "
        "FROM readings_1m GROUP BY device_id, metric, m"
    ).result_rows
    return {(device, metric, int(minute)): int(total) for device, metric, minute, total in result}


def stop_merges(settings: Settings) -> None:
    """Keep every copy of a reading visible without FINAL: ReplacingMergeTree would collapse
    copies in a background merge, hiding a duplicate from a count taken after it."""
    sync_client(settings).command("SYSTEM STOP MERGES readings")


def columns(client: Client, table: str) -> set[str]:
    return {row[0] for row in client.query(f"DESCRIBE TABLE {table}").result_rows}


def rows(client: Client) -> list[Row]:
    """``readings`` grouped by a reading's identity, counted without FINAL."""
    with_sources = {"source_partition", "source_offset"} <= columns(client, "readings")
    sources = ", groupArray((source_partition, source_offset))" if with_sources else ""
    result = client.query(
        "SELECT device_id, metric, toUnixTimestamp64Milli(event_time) AS t, seq, any(value), "
        f"count(){sources} FROM readings GROUP BY device_id, metric, t, seq"
    ).result_rows
    return [
        Row(
            (device, metric, int(t), int(seq)),
            float(value),
            int(copies),
            tuple(_offset(s) for s in rest[0]) if rest else None,
        )
        for device, metric, t, seq, value, copies, *rest in result
    ]


def table_dead_letters(client: Client, topic: str) -> list[DeadLetter]:
    """Dead letters too large for Kafka, when the schema has a ``dead_letters`` table (as
    read: a replacing table keyed by the source, so a letter kept twice is one)."""
    if not client.query("EXISTS TABLE dead_letters").result_rows[0][0]:
        return []
    result = client.query(
        "SELECT source_partition, source_offset, reason FROM dead_letters FINAL "
        "WHERE source_topic = {topic:String}",
        parameters={"topic": topic},
    ).result_rows
    return [DeadLetter(int(p), int(o), str(reason), "table") for p, o, reason in result]


def _offset(source: tuple[int, int]) -> Offset:
    return int(source[0]), int(source[1])
