"""Versioned ClickHouse migrations: ``schemas/clickhouse/NNNN_name.sql``, applied in order.

``files`` loads and checksums them, ``render`` writes them for one server or a cluster,
``ledger`` records what ran, ``lock`` keeps two runners apart, ``runner`` applies them, and
``gate`` is ``migrate check``, the staging step that catches performance regressions.
docs/migrations.md is the guide.
"""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from streams.clickhouse import sync_client
from streams.migrations.files import Migration, load, split_statements
from streams.migrations.ledger import Ledger
from streams.migrations.render import Renderer, quote_identifier
from streams.migrations.runner import Runner, Say, execute, refuse_changed, survey
from streams.settings import Settings

__all__ = ["Migration", "Runner", "apply", "drop", "load", "pending", "split_statements", "up"]


def up(settings: Settings, say: Say = print) -> list[Migration]:
    """Create the database if needed and apply every pending migration, under the lock."""
    return Runner(settings, say).up(settings.migrations_lock_wait_seconds)


def drop(settings: Settings, database: str | None = None) -> None:
    """Drop ``database`` (default: the settings' own) and wait until it is gone: scratch and
    staging databases, a test's or a benchmark's own."""
    name = database if database is not None else settings.clickhouse_database
    sync_client(settings, database="default").command(
        f"DROP DATABASE IF EXISTS {quote_identifier(name)} SYNC"
    )


def pending(client: Client, migrations: list[Migration]) -> list[Migration]:
    """Migrations ``client``'s database has not applied (single server); refuses changed files."""
    ledger = Ledger(client, Renderer())
    ledger.ensure()
    statuses = survey(migrations, ledger.applied(), ledger.progress())
    refuse_changed(statuses)
    return [s.migration for s in statuses if s.state != "applied"]


def apply(client: Client, migration: Migration) -> float:
    """Apply one migration without taking the lock (tools that own their database); seconds."""
    ledger = Ledger(client, Renderer())
    statuses = survey([migration], ledger.applied(), ledger.progress())
    refuse_changed(statuses)
    status = statuses[0]
    if status.state == "applied":
        return 0.0
    seconds = execute(client, Renderer(), migration, status.remaining, ledger)
    ledger.record_applied(migration, seconds)
    return seconds
