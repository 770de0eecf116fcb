"""Fixtures of the migration tests: a migrations directory to edit, a database of one's own."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams import migrations
from streams.settings import REPO_ROOT, Settings

SHIPPED = REPO_ROOT / "schemas" / "clickhouse"
FIXTURES = Path(__file__).resolve().parent.parent / "migrations_fixtures"


def migrations_dir(tmp_path: Path, *extra: str) -> Path:
    """A copy of the shipped migrations, plus the fixture directories named."""
    directory = tmp_path / "-".join(["migrations", *extra])
    directory.mkdir(parents=True, exist_ok=True)
    for path in SHIPPED.glob("*.sql"):
        shutil.copy(path, directory)
    for name in extra:
        for path in (FIXTURES / name).glob("*.sql"):
            shutil.copy(path, directory)
    return directory


@pytest.fixture
def target(local_stack: Settings, unique: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a database of this test's own (dropped afterwards), and its migrations."""
    settings = dataclasses.replace(
        local_stack,
        clickhouse_database=f"test_migrate_{unique}",
        migrations_dir=migrations_dir(tmp_path / "target"),
        migrations_lock_wait_seconds=30.0,
    )
    yield settings
    migrations.drop(settings)
