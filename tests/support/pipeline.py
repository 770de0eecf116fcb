"""Pipelines of a test's own: migrations applied quietly."""

from __future__ import annotations

from streams import migrations
from streams.settings import Settings


def migrate_up(settings: Settings) -> None:
    migrations.up(settings, say=lambda _line: None)
