"""The gate runs the very queries the API and the analysts run."""

from __future__ import annotations

import re

import pytest

from streams.migrations.gate import read_queries as queries
from streams.migrations.gate.dataset import Dataset, DatasetSpec
from streams.migrations.gate.staging import staging_server
from streams.settings import REPO_ROOT, Settings

_PARAMETER = re.compile(r"\{(\w+):String\}")


def doc_blocks() -> list[str]:
    text = (REPO_ROOT / "docs" / "tables.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
    return [_normal(b) for b in blocks]


def _normal(sql: str) -> str:
    lines = [line for line in sql.strip().splitlines() if not line.lstrip().startswith("--")]
    return " ".join(" ".join(lines).split()).rstrip(";")


def with_doc_literals(sql: str) -> str:
    return _PARAMETER.sub(lambda m: f"'{queries.DOC_LITERALS[m.group(1)]}'", sql)


def test_the_analysts_queries_are_docs_tables_md_sql_blocks() -> None:
    analysts = [
        queries.ANALYST_DEVICE_DAY,
        queries.ANALYST_FLEET_HOURLY,
        queries.ANALYST_LATEST,
        queries.ANALYST_DEVICES,
    ]
    assert [_normal(with_doc_literals(sql)) for sql in analysts] == doc_blocks()


def test_every_query_gets_parameters_that_hit_the_data_set() -> None:
    dataset = Dataset(DatasetSpec(10, 6, 20, 100, 2, 1), now_ms=1_790_000_000_000)
    assert dataset.metric_names[:4] == ["temperature_c", "humidity_pct", "battery_v", "rssi_dbm"]
    assert dataset.metric_names[4:] == ["aux_004", "aux_005"]
    workload = {q.name: q for q in queries.workload(dataset)}
    assert workload["api_latest"].parameters[0] == {"device_id": "dev-000000"}
    assert len(workload["analyst_device_day"].parameters) == 5
    for query in workload.values():
        for parameters in query.parameters:
            assert set(re.findall(r"\{(\w+):", query.sql)) <= set(parameters), query.name


def test_data_set_batches_are_identical_for_the_same_spec_and_time() -> None:
    spec = DatasetSpec(devices=7, metrics=3, messages=11, batch_rows=50, batches=2, rounds=2)
    first, second = (Dataset(spec, now_ms=1_790_000_000_000) for _ in range(2))
    loaded = [b.columns() for b in first.load()]
    assert loaded == [b.columns() for b in second.load()]
    assert sum(len(columns[0]) for columns in loaded) == spec.rows
    round_ = first.workload_round()
    assert [b.rows for b in round_] == [51, 51]
    assert round_[0].first_offset > 0, "workload batches continue the offsets: distinct tokens"


def test_the_staging_url_names_a_separate_server() -> None:
    server = staging_server(
        Settings(
            migrations_staging_url="https://ops:s%40cret@staging.internal", clickhouse_cluster="c"
        )
    )
    assert (server.clickhouse_host, server.clickhouse_port) == ("staging.internal", 8443)
    assert (server.clickhouse_user, server.clickhouse_password) == ("ops", "s@cret")
    assert server.clickhouse_secure is True
    assert server.clickhouse_cluster == "", "staging is a single server"
    with pytest.raises(Exception, match="http"):
        staging_server(Settings(migrations_staging_url="staging:8123"))
