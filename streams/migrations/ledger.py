"""What a database has applied: ``schema_migrations`` (whole migrations, who/when/how long) and
``schema_migrations_steps`` (every statement run, done or failed, so a rerun resumes exactly).

ClickHouse has no transactions: a migration is recorded statement by statement, and it counts
as applied only once its row in ``schema_migrations`` exists.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from clickhouse_connect.driver.client import Client

from streams.migrations.files import Migration
from streams.migrations.render import Renderer

log = logging.getLogger(__name__)

MIGRATIONS_TABLE = "schema_migrations"
STEPS_TABLE = "schema_migrations_steps"

_TABLES = (
    f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE}
(
    version     UInt32,
    name        String,
    checksum    String,
    applied_at  DateTime64(3, 'UTC'),
    applied_by  String,
    duration_ms UInt64
)
ENGINE = MergeTree
ORDER BY version
""",
    f"""
CREATE TABLE IF NOT EXISTS {STEPS_TABLE}
(
    version            UInt32,
    name               String,
    statement          UInt32,
    statement_checksum String,
    outcome            LowCardinality(String),
    error              String,
    at                 DateTime64(3, 'UTC'),
    by                 String,
    duration_ms        UInt64
)
ENGINE = MergeTree
ORDER BY (version, statement, at)
""",
)
_MIGRATION_COLUMNS = ["version", "name", "checksum", "applied_at", "applied_by", "duration_ms"]
_STEP_COLUMNS = [
    "version",
    "name",
    "statement",
    "statement_checksum",
    "outcome",
    "error",
    "at",
    "by",
    "duration_ms",
]


@dataclass(frozen=True)
class Applied:
    """A row of ``schema_migrations``."""

    version: int
    name: str
    checksum: str
    applied_at: datetime
    applied_by: str
    duration_ms: int


@dataclass(frozen=True)
class Step:
    """The latest outcome of one statement of a migration."""

    statement: int
    statement_checksum: str
    outcome: Literal["done", "failed"]
    error: str
    at: datetime
    by: str
    duration_ms: int


@dataclass
class Progress:
    """The statements of one not-yet-applied migration that ran, by index (1-based)."""

    steps: dict[int, Step] = field(default_factory=dict)

    @property
    def done(self) -> dict[int, Step]:
        return {i: s for i, s in self.steps.items() if s.outcome == "done"}

    @property
    def failure(self) -> Step | None:
        failures = [s for s in self.steps.values() if s.outcome == "failed"]
        return max(failures, key=lambda s: s.at) if failures else None


def who() -> str:
    """user@host pid N: who ran a statement or holds the lock."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


class Ledger:
    """Reads and writes the two ledger tables of the client's database."""

    def __init__(self, client: Client, renderer: Renderer) -> None:
        self._client = client
        self._renderer = renderer
        # On a cluster a runner may reach another replica than the last one: writes wait for a
        # quorum and reads see every quorum write (docs/deploy-cluster.md).
        self._write: dict[str, Any] = {"insert_quorum": "auto"} if renderer.clustered else {}
        self._read: dict[str, Any] = (
            {"select_sequential_consistency": 1} if renderer.clustered else {}
        )

    def ensure(self) -> None:
        for ddl in _TABLES:
            self._client.command(self._renderer.render(ddl.strip()))

    def tables(self) -> set[str]:
        """Which ledger tables exist (reading a database must not create them)."""
        rows = self._client.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            "AND name IN ({names:Array(String)})",
            parameters={"names": [MIGRATIONS_TABLE, STEPS_TABLE]},
        ).result_rows
        return {str(row[0]) for row in rows}

    def applied(self) -> dict[int, Applied]:
        if MIGRATIONS_TABLE not in self.tables():
            return {}
        rows = self._client.query(
            f"SELECT {', '.join(_MIGRATION_COLUMNS)} FROM {MIGRATIONS_TABLE} ORDER BY version",
            settings=self._read,
        ).result_rows
        return {
            int(version): Applied(int(version), name, checksum, at, by, int(duration_ms))
            for version, name, checksum, at, by, duration_ms in rows
        }

    def progress(self) -> dict[int, Progress]:
        """version -> the latest outcome of each statement that ran."""
        if STEPS_TABLE not in self.tables():
            return {}
        rows = self._client.query(
            "SELECT version, statement, "
            "argMax(tuple(statement_checksum, outcome, error, at, by, duration_ms), at) "
            f"FROM {STEPS_TABLE} GROUP BY version, statement ORDER BY version, statement",
            settings=self._read,
        ).result_rows
        progress: dict[int, Progress] = {}
        for version, statement, latest in rows:
            checksum, outcome, error, at, by, duration_ms = latest
            step = Step(int(statement), checksum, outcome, error, at, by, int(duration_ms))
            progress.setdefault(int(version), Progress()).steps[int(statement)] = step
        return progress

    def record_step(
        self, migration: Migration, index: int, seconds: float, error: str | None = None
    ) -> None:
        row = [
            migration.version,
            migration.name,
            index,
            migration.statement_checksums[index - 1],
            "done" if error is None else "failed",
            error or "",
            datetime.now(UTC),
            who(),
            int(seconds * 1000),
        ]
        self._client.insert(STEPS_TABLE, [row], column_names=_STEP_COLUMNS, settings=self._write)

    def record_failure(self, migration: Migration, index: int, seconds: float, error: str) -> None:
        """Like record_step, but never raises: the statement's own error is the one to report."""
        try:
            self.record_step(migration, index, seconds, error)
        except Exception as failure:
            log.warning("could not record the failure of %s: %s", migration.file, failure)

    def record_applied(self, migration: Migration, seconds: float) -> None:
        row = [
            migration.version,
            migration.name,
            migration.checksum,
            datetime.now(UTC),
            who(),
            int(seconds * 1000),
        ]
        self._client.insert(
            MIGRATIONS_TABLE, [row], column_names=_MIGRATION_COLUMNS, settings=self._write
        )
