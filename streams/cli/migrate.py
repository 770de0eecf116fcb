"""``streamgauge migrate status|up``: versioned ClickHouse migrations."""

from __future__ import annotations

import argparse
from typing import Any

from streams import migrations
from streams.clickhouse import sync_client
from streams.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="apply or inspect the ClickHouse migrations in schemas/clickhouse/",
        description="Versioned, checksummed ClickHouse migrations. `up` creates the database if "
        "needed and applies pending migrations in order; `status` lists applied and pending ones.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("status", help="list applied and pending migrations")
    actions.add_parser("up", help="apply pending migrations in order")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    available = migrations.load(settings.migrations_dir)
    admin = sync_client(settings, database="default")
    admin.command(f"CREATE DATABASE IF NOT EXISTS `{settings.clickhouse_database}`")
    client = sync_client(settings)
    todo = migrations.pending(client, available)
    if args.action == "status":
        for migration in available:
            state = "pending" if migration in todo else "applied"
            print(f"{migration.version:04d} {migration.name:32} {state}")
        return 0
    for migration in todo:
        seconds = migrations.apply(client, migration)
        print(f"applied {migration.path.name} in {seconds:.2f} s")
    if not todo:
        print(
            f"database {settings.clickhouse_database} is up to date ({len(available)} migrations)"
        )
    return 0
