"""Cluster rendering: every migration, rendered for a cluster, parses and runs on a real engine."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from streams.clickhouse import sync_client
from streams.errors import UserError
from streams.migrations.files import Migration, load
from streams.migrations.ledger import _TABLES
from streams.migrations.render import REPLICA_PATH, Renderer
from streams.settings import Settings
from tests.support.migrations import FIXTURES, SHIPPED

CLUSTER = Renderer("streamgauge")
_ENGINE = re.compile(r"ENGINE = (\w+)")


def every_migration() -> list[Migration]:
    """The shipped migrations, and the fixtures' (they use EXCHANGE, DROP, INSERT ... SELECT)."""
    fixtures = [m for d in sorted(FIXTURES.iterdir()) for m in load(d)]
    return load(SHIPPED) + fixtures


def every_statement() -> list[str]:
    ledger = [ddl.strip() for ddl in _TABLES]
    return ledger + [s for m in every_migration() for s in m.statements]


_ADDED_COLUMN = re.compile(r"ALTER TABLE (\w+) ADD COLUMN IF NOT EXISTS (.+)", re.S)
_CREATED = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)\n\(")


def with_added_columns(statements: list[str]) -> list[str]:
    """The columns ALTERs add, folded into their table's CREATE: an engine whose replicated
    tables are read-only runs no ALTER, and later views select those columns."""
    added: dict[str, list[str]] = {}
    for statement in statements:
        if match := _ADDED_COLUMN.fullmatch(statement):
            added.setdefault(match[1], []).append(match[2])

    def fold(statement: str) -> str:
        match = _CREATED.match(statement)
        if match is None or match[1] not in added:
            return statement
        columns, rest = statement.split("\n)\nENGINE", 1)
        return columns + "".join(f",\n    {c}" for c in added[match[1]]) + "\n)\nENGINE" + rest

    return [fold(statement) for statement in statements]


def test_single_server_rendering_is_the_file_itself() -> None:
    for statement in every_statement():
        assert Renderer().render(statement) == statement


def test_cluster_rendering_adds_on_cluster_and_replicated_engines() -> None:
    readings, latest_table, latest_view = (
        CLUSTER.render(s) for m in load(SHIPPED)[:2] for s in m.statements
    )
    assert readings.startswith("CREATE TABLE IF NOT EXISTS readings ON CLUSTER 'streamgauge'\n")
    assert f"ENGINE = ReplicatedReplacingMergeTree('{REPLICA_PATH}', '{{replica}}')\n" in readings
    assert "SETTINGS replicated_deduplication_window = 10000, " in readings
    assert "replicated_deduplication_window_seconds = 604800" in readings
    assert "non_replicated" not in readings
    assert f"ReplicatedReplacingMergeTree('{REPLICA_PATH}', '{{replica}}', event_time)" in (
        latest_table
    )
    assert latest_view.startswith(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS latest_mv ON CLUSTER 'streamgauge' TO latest AS"
    )


@pytest.mark.parametrize(
    ("statement", "rendered"),
    [
        ("ALTER TABLE readings ADD COLUMN x UInt8", "ALTER TABLE readings ON CLUSTER 'c' ADD"),
        ("DROP TABLE IF EXISTS `d`.`t` SYNC", "DROP TABLE IF EXISTS `d`.`t` ON CLUSTER 'c' SYNC"),
        ("EXCHANGE TABLES a AND b", "EXCHANGE TABLES a AND b ON CLUSTER 'c'"),
        ("RENAME TABLE a TO b", "RENAME TABLE a TO b ON CLUSTER 'c'"),
        ("TRUNCATE TABLE IF EXISTS t", "TRUNCATE TABLE IF EXISTS t ON CLUSTER 'c'"),
        ("INSERT INTO a SELECT * FROM b", "INSERT INTO a SELECT * FROM b"),
        ("OPTIMIZE TABLE t FINAL", "OPTIMIZE TABLE t FINAL"),
        (
            "CREATE TABLE t (s String DEFAULT 'ENGINE = MergeTree') "
            "ENGINE = MergeTree() ORDER BY s",
            "CREATE TABLE t ON CLUSTER 'c' (s String DEFAULT 'ENGINE = MergeTree') "
            f"ENGINE = ReplicatedMergeTree('{REPLICA_PATH}', '{{replica}}') ORDER BY s",
        ),
    ],
)
def test_cluster_rendering_of_each_kind_of_statement(statement: str, rendered: str) -> None:
    assert Renderer("c").render(statement).startswith(rendered)


def test_ddl_the_renderer_cannot_place_on_cluster_in_is_refused() -> None:
    with pytest.raises(UserError, match="cannot render"):
        Renderer("c").render("CREATE USER analyst IDENTIFIED BY 'x'")


@pytest.mark.integration
def test_every_rendered_statement_parses_with_its_cluster_clause(local_stack: Settings) -> None:
    """ClickHouse's own parser (formatQuery) reads each one, ON CLUSTER and engine included."""
    client = sync_client(local_stack, database="default")
    for statement in every_statement():
        rendered = CLUSTER.render(statement)
        formatted = str(
            client.query(
                "SELECT formatQuery({sql:String})", parameters={"sql": rendered}
            ).result_rows[0][0]
        )
        if statement.startswith(("CREATE", "ALTER", "DROP", "EXCHANGE")):
            assert "ON CLUSTER streamgauge" in formatted, formatted
        for engine in _ENGINE.findall(formatted):
            if "MergeTree" in engine:
                assert engine.startswith("Replicated"), formatted


@pytest.mark.integration
def test_every_rendered_statement_runs_on_an_engine_with_keeper(tmp_path: Path) -> None:
    """Without ON CLUSTER (an embedded engine has no DDL queue), on a private engine with
    macros and a test Keeper: the Replicated engines, their arguments and settings are real.
    Its replicated tables stay read-only, so ALTERs are only parsed (the test above)."""
    statements = ["CREATE DATABASE db", "USE db"]
    for statement in with_added_columns(every_statement()):
        if not statement.startswith(("CREATE", "DROP", "EXCHANGE", "RENAME")):
            continue  # data statements are not rendered; ALTER and INSERT need a writable table
        rendered = re.sub(r" ON CLUSTER '[^']*'", "", CLUSTER.render(statement))
        # {uuid} in a replica path needs ON CLUSTER or an explicit UUID: give it one.
        rendered = re.sub(
            r"^(CREATE TABLE (?:IF NOT EXISTS )?\w+)",
            lambda m: f"{m.group(1)} UUID '{uuid.uuid4()}'",
            rendered,
        )
        statements.append(rendered)
    process = subprocess.run(
        [sys.executable, "-m", "tests.support.replicated", str(tmp_path / "engine")],
        input=json.dumps(statements),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    errors = json.loads(process.stdout)
    failed = [(s, e) for s, e in zip(statements, errors, strict=True) if e is not None]
    assert not failed, failed
