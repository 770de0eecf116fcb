"""A group insert's intents left behind by a crash, replayed by the next owners on the real
Kafka and ClickHouse: every partition's part stored once, whichever process owns which."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest
from confluent_kafka import Consumer, TopicPartition

from streams.clickhouse import async_client
from streams.codec import Decoder, load_versions
from streams.settings import Settings
from streams.worker.batch import Batch, Group
from streams.worker.intents import group_intents
from streams.worker.preflight import describe_topic
from streams.worker.sink import AvroContainer, ClickHouseSink
from streams.worker.telemetry import WorkerMetrics
from tests.support.accounting import assert_stored_exactly_once, drained
from tests.support.fleet import count, end_offsets, produce
from tests.support.kafka import commit
from tests.support.workers import Workers, wait_until

pytestmark = pytest.mark.integration


def read(settings: Settings, partition: int, first: int, last: int) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": "test-read"}
    )
    consumer.assign([TopicPartition(settings.topic, partition, first)])
    values: list[bytes] = []
    try:
        while len(values) < last - first + 1:
            for message in consumer.consume(1000, 1.0):
                if cast(int, message.offset()) <= last:
                    values.append(message.value() or b"")
    finally:
        consumer.close()
    return values


async def insert_as_the_crashed_owner(
    settings: Settings, parts: list[tuple[int, int, int]]
) -> None:
    """The insert the crashed owner made before it could commit the parts' ends."""
    decoder = Decoder(load_versions(settings.schemas_dir))
    prefix = describe_topic(settings).token_prefix
    group = Group([])
    for partition, first, last in parts:
        batch = Batch(prefix, partition, first)
        for offset, value in enumerate(read(settings, partition, first, last), start=first):
            record, body = decoder.decode_stored(value)
            identity = (record["device_id"], record["event_time"], record["seq"])
            batch.add_body(offset, len(value), identity, len(record["readings"]), body)
        group.parts.append(batch)
    client = await async_client(settings, autogenerate_query_id=False)
    sink = ClickHouseSink(
        client, 30, WorkerMetrics("test", 0), container=AvroContainer(decoder.stored_schema)
    )
    try:
        await sink.insert(Group(group.parts))
    finally:
        await client.close()


@pytest.mark.parametrize("inserted", [False, True], ids=["announced", "inserted"])
def test_a_group_left_by_a_crash_is_stored_once_by_the_next_owners(
    pipeline: Settings, tmp_path: Path, inserted: bool
) -> None:
    sent = produce(pipeline, devices=40, messages_per_device=10)
    ends = end_offsets(pipeline)
    members = [p for p, end in sorted(ends.items()) if end >= 4][:3]
    assert len(members) == 3
    parts = [(p, 0, ends[p] // 2) for p in members]
    intents = group_intents(parts)
    commit(
        pipeline,
        pipeline.consumer_group,
        {(pipeline.topic, p): (0, intents[p].metadata()) for p in members},
    )
    if inserted:
        asyncio.run(insert_as_the_crashed_owner(pipeline, parts))
        assert count(pipeline, "SELECT count() FROM readings") > 0
    workers = Workers(pipeline, 2, tmp_path / "workers.log")
    try:
        assert wait_until(lambda: drained(pipeline), 90), workers.output()[-3000:]
    finally:
        assert workers.stop() == 0
    assert_stored_exactly_once(pipeline, sent.readings)
    replays = workers.output().count("replays intent")
    assert replays >= len(members), "each member's next owner replayed the group"
