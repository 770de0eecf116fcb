"""Fixtures of the migration tests: a migrations directory to edit, a database of one's own."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams import migrations
from streams.settings import Settings
from tests.support.migrations import migrations_dir


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
