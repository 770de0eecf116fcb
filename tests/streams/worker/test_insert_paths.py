"""The two insert paths store the same thing: the Avro path (ClickHouse parses the validated
message bodies, the default) against the Native path (the worker builds the rows), draining the
same topic into their own databases — every row, rollup and dead letter alike."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams import migrations, topics
from streams.clickhouse import async_client
from streams.codec import Decoder, Encoder, load_versions
from streams.producer import MeasurementProducer
from streams.settings import Settings
from streams.worker.batch import Batch, Group
from streams.worker.sink import AvroContainer, ClickHouseSink
from streams.worker.telemetry import WorkerMetrics
from tests.support.accounting import dead_letters
from tests.support.fleet import committed, count, end_offsets, produce, stored
from tests.support.kafka import delete_topics
from tests.support.pipeline import migrate_up
from tests.support.workers import Workers, wait_until

pytestmark = pytest.mark.integration

ROWS = (
    "SELECT device_id, metric, toUnixTimestamp64Milli(event_time), value, seq, firmware, site, "
    "source_partition, source_offset FROM readings ORDER BY ALL"
)
ROLLUPS = (
    "SELECT device_id, metric, minute, sum(count), sum(sum), min(min), max(max), "
    "argMaxMerge(last) FROM readings_1m GROUP BY device_id, metric, minute ORDER BY ALL"
)
LATEST = "SELECT device_id, metric, value, seq FROM latest FINAL ORDER BY ALL"


@pytest.fixture
def native(pipeline: Settings) -> Iterator[Settings]:
    """The same topic, drained by Native-path workers into a database and DLQ of their own."""
    settings = dataclasses.replace(
        pipeline,
        insert_format="native",
        consumer_group=f"{pipeline.consumer_group}-native",
        clickhouse_database=f"{pipeline.clickhouse_database}_native",
        dlq_topic=f"{pipeline.dlq_topic}-native",
    )
    topics.create(settings)
    migrate_up(settings)
    yield settings
    migrations.drop(settings)
    delete_topics(settings, settings.dlq_topic)


def drain(settings: Settings, log: Path) -> None:
    end = end_offsets(settings)
    workers = Workers(settings, 1, log)
    try:
        assert wait_until(lambda: committed(settings) == end, 90), workers.output()[-3000:]
    finally:
        assert workers.stop() == 0


def test_the_avro_and_native_paths_store_the_same_rows_and_dead_letters(
    pipeline: Settings, native: Settings, tmp_path: Path
) -> None:
    registry = f"http://127.0.0.1:{pipeline.devstack_registry_port}"
    framed = dataclasses.replace(pipeline, schema_registry_url=registry)
    # Both schema versions, single-object and registry framing, every malformed kind.
    sent = produce(pipeline, devices=30, messages_per_device=20, bad_ratio=0.05)
    produce(framed, devices=30, messages_per_device=10, bad_ratio=0.05, sent=sent)
    producer = MeasurementProducer(pipeline)
    for record in sent.records[:40]:  # resends: the same messages (identities) again
        producer.send(record, 1 if record["site"] is None else 2)
    producer.flush()

    avro = dataclasses.replace(pipeline, schema_registry_url=registry)
    drain(avro, tmp_path / "avro.log")
    drain(dataclasses.replace(native, schema_registry_url=registry), tmp_path / "native.log")

    rows = stored(avro, ROWS)
    assert len(rows) == sent.readings, "every reading once, resends stored no rows"
    assert rows == stored(native, ROWS)
    assert stored(avro, ROLLUPS) == stored(native, ROLLUPS)
    assert stored(avro, LATEST) == stored(native, LATEST)
    letters = dead_letters(avro)
    assert len(letters) == sum(sent.bad.values())
    assert letters == dead_letters(native)


@pytest.mark.parametrize("insert_format", ["avro", "native"])
async def test_a_replayed_group_adds_nothing_to_readings_or_any_view(
    pipeline: Settings, insert_format: str
) -> None:
    versions = load_versions(pipeline.schemas_dir)
    decoder = Decoder(versions)
    avro = insert_format == "avro"
    group = Group([Batch(f"{pipeline.topic}/id", 2, 40), Batch(f"{pipeline.topic}/id", 5, 7)])
    for batch, offsets in zip(group.parts, (range(40, 46), range(7, 10)), strict=True):
        for offset in offsets:
            record = {
                "device_id": f"d{batch.partition}-{offset % 3}",
                "event_time": int(time.time() * 1000) - offset,
                "seq": offset,
                "readings": {"t": float(offset), "rh": 40.0},
                "firmware": "1.0",
                "site": None,
            }
            decoded, body = decoder.decode_stored(Encoder(versions[offset % 2]).encode(record))
            if avro:
                identity = (decoded["device_id"], decoded["event_time"], decoded["seq"])
                batch.add_body(offset, 100, identity, len(decoded["readings"]), body)
            else:
                batch.add(offset, 100, decoded)
    client = await async_client(pipeline)
    container = AvroContainer(decoder.stored_schema) if avro else None
    sink = ClickHouseSink(client, 30, WorkerMetrics("m", 0), container=container)
    tables = ("readings", "latest", "readings_1m", "devices")
    # device_partitions keeps only minima and maxima: a repeat adds rows, changes no answer.
    partitions = (
        "SELECT device_id, source_partition, min(first_event), max(last_event), max(max_seq) "
        "FROM device_partitions GROUP BY ALL ORDER BY ALL"
    )
    try:
        await sink.insert(group)
        once = [count(pipeline, f"SELECT count() FROM {table}") for table in tables]
        answers = stored(pipeline, partitions)
        await sink.insert(group)  # the next owner of either partition replaying the intent
        assert [count(pipeline, f"SELECT count() FROM {table}") for table in tables] == once
        assert stored(pipeline, partitions) == answers
    finally:
        await client.close()
    assert once[0] == 18
    assert stored(pipeline, "SELECT DISTINCT source_partition FROM readings ORDER BY 1") == [
        (2,),
        (5,),
    ]
