"""Versioned ClickHouse migrations: ``schemas/clickhouse/NNNN_name.sql``, applied in order.

Each file is checksummed; applied files are recorded in ``schema_migrations`` with who applied
them, when and how long it took. A file changed after it was applied is refused by name.
"""

from __future__ import annotations

import getpass
import hashlib
import re
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from clickhouse_connect.driver.client import Client

from streams.errors import UserError

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations
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
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def statements(self) -> list[str]:
        return split_statements(self.sql)


def load(directory: Path) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise UserError(f"{path} is not named NNNN_lower_snake_case.sql; rename it.")
        migrations.append(Migration(int(match.group(1)), match.group(2), path, path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise UserError(f"two migrations in {directory} share a version number; renumber one.")
    return migrations


def split_statements(sql: str) -> list[str]:
    """Statements separated by ';' at the end of a line; '--' comment lines dropped."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    chunks = re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE)
    return [chunk.strip() for chunk in chunks if chunk.strip()]


def applied(client: Client) -> dict[int, str]:
    """version -> checksum of every applied migration."""
    client.command(LEDGER)
    rows = client.query("SELECT version, checksum FROM schema_migrations ORDER BY version")
    return {int(version): str(checksum) for version, checksum in rows.result_rows}


def pending(client: Client, migrations: list[Migration]) -> list[Migration]:
    """Migrations not yet applied; refuses when an applied file has changed since."""
    done = applied(client)
    for migration in migrations:
        recorded = done.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise UserError(
                f"{migration.path.name} was changed after it was applied (checksum differs); "
                "restore it and put the change in a new migration."
            )
    return [m for m in migrations if m.version not in done]


def apply(client: Client, migration: Migration) -> float:
    """Run one migration's statements and record it; return the seconds it took."""
    start = time.monotonic()
    for index, statement in enumerate(migration.statements, 1):
        try:
            client.command(statement)
        except Exception as error:
            first = str(error).strip().splitlines()[0][:300] if str(error).strip() else repr(error)
            raise UserError(f"{migration.path.name}, statement {index} failed: {first}") from None
    seconds = time.monotonic() - start
    client.insert(
        "schema_migrations",
        [
            [
                migration.version,
                migration.name,
                migration.checksum,
                datetime.now(UTC),
                _who(),
                int(seconds * 1000),
            ]
        ],
        column_names=["version", "name", "checksum", "applied_at", "applied_by", "duration_ms"],
    )
    return seconds


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
