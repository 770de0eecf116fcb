"""docs/tables.md stays true: every query it shows runs against the migrated schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streams.clickhouse import sync_client
from streams.settings import Settings
from tests.support.fleet import produce
from tests.support.workers import Workers, wait_until

DOC = Path(__file__).resolve().parents[2] / "docs" / "tables.md"


def queries() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_page_shows_queries() -> None:
    assert len(queries()) >= 4


@pytest.mark.integration
def test_every_documented_query_runs_and_answers(pipeline: Settings, tmp_path: Path) -> None:
    workers = Workers(pipeline, 1, tmp_path / "workers.log")
    try:
        produce(pipeline, devices=3, messages_per_device=5)
        client = sync_client(pipeline)
        assert wait_until(
            lambda: client.query("SELECT count() FROM readings").result_rows[0][0] == 60, 60
        )
    finally:
        workers.stop()
    for sql in queries():
        # The examples name device dev-000042 and prefix pump-; point them at this fleet.
        runnable = sql.replace("dev-000042", "dev-000001").replace("'pump-'", "'dev-'")
        runnable = re.sub(r"'2026-11-2\d 00:00:00'", "now() - INTERVAL 1 DAY", runnable, count=1)
        runnable = re.sub(r"'2026-11-2\d 00:00:00'", "now() + INTERVAL 1 DAY", runnable, count=1)
        rows = client.query(runnable.strip().rstrip(";")).result_rows
        assert rows, f"no answer from the documented query:\n{sql}"
