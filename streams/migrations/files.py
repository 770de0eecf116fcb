"""Migration files: ``NNNN_lower_snake_case.sql``, loaded in order, checksummed, split.

A file's checksum is the SHA-256 of its bytes, so it does not depend on how the file is
rendered (single server or cluster); each statement also has a checksum of its own, which is
what a resumed migration compares (docs/migrations.md).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from streams.errors import UserError

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One file of ``schemas/clickhouse/``: its version, name and statements."""

    version: int
    name: str
    path: Path
    sql: str

    @property
    def file(self) -> str:
        return self.path.name

    @cached_property
    def checksum(self) -> str:
        return digest(self.sql)

    @cached_property
    def statements(self) -> list[str]:
        return split_statements(self.sql)

    @cached_property
    def statement_checksums(self) -> list[str]:
        return [digest(statement) for statement in self.statements]


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load(directory: Path) -> list[Migration]:
    """Every migration in ``directory``, ordered by version."""
    if not directory.is_dir():
        raise UserError(
            f"the migrations directory {directory} does not exist; "
            "set STREAMGAUGE_MIGRATIONS_DIR or pass --dir."
        )
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise UserError(f"{path} is not named NNNN_lower_snake_case.sql; rename it.")
        migration = Migration(int(match.group(1)), match.group(2), path, path.read_text())
        if not migration.statements:
            raise UserError(f"{path} holds no statement; add one or remove the file.")
        migrations.append(migration)
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise UserError(f"two migrations in {directory} share a version number; renumber one.")
    return migrations


def split_statements(sql: str) -> list[str]:
    """Statements separated by ';' at the end of a line; '--' comment lines dropped."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    chunks = re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE)
    return [chunk.strip() for chunk in chunks if chunk.strip()]


def first_line(text: str, limit: int = 120) -> str:
    """The first non-blank line of a statement or an error, shortened: for messages."""
    for line in text.strip().splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""
