"""The local ClickHouse's data directory, checked and prepared before chDB opens it."""

from __future__ import annotations

from pathlib import Path

from devstack.clickhouse_http.__main__ import usable_data_dir

KAFKA_TABLE = """ATTACH TABLE _ UUID '0b9d'
(
    `device_id` String
)
ENGINE = Kafka
SETTINGS kafka_broker_list = '127.0.0.1:9092', kafka_topic_list = 't', kafka_format = 'Avro'
"""
MERGE_TREE = "ATTACH TABLE _ UUID '1c2e'\n(\n    `x` UInt8\n)\nENGINE = MergeTree\nORDER BY x\n"


def test_kafka_engine_tables_left_behind_are_set_aside_so_the_engine_can_start(
    tmp_path: Path,
) -> None:
    # chDB cannot load a Kafka table at start: one left by a killed benchmark stops it there.
    database = tmp_path / "metadata" / "bench_versus_engine_1"
    database.mkdir(parents=True)
    (database / "kafka_measurements.sql").write_text(KAFKA_TABLE)
    (database / "readings.sql").write_text(MERGE_TREE)
    assert usable_data_dir(tmp_path) == tmp_path.resolve()
    assert sorted(p.name for p in database.iterdir()) == ["readings.sql"]
    aside = tmp_path / "metadata_kafka_tables" / "bench_versus_engine_1" / "kafka_measurements.sql"
    assert aside.read_text() == KAFKA_TABLE
