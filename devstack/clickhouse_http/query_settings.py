"""Per-request database and settings on a chDB connection, undone afterwards in a session.

ClickHouse applies URL settings and ``database`` to the query only, never to the session. A chDB
connection has one current database and one set of settings, so a request in a session applies
them with ``USE``/``SET`` and restores what the session had before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from devstack.clickhouse_http.statement import quote_identifier, quote_literal

Connection = Any  # chdb.state.sqlitelike.Connection; chdb has no type information


@dataclass(frozen=True)
class Snapshot:
    database: str
    settings: dict[str, tuple[str, bool]]  # name -> (value, changed from the default)


@contextmanager
def applied(
    connection: Connection, database: str, settings: Mapping[str, str], restore: bool
) -> Iterator[None]:
    """Run the body with ``database`` current and ``settings`` set; restore them if asked."""
    snapshot = take_snapshot(connection, settings) if restore else None
    try:
        if database and (snapshot is None or snapshot.database != database):
            connection.query(f"USE {quote_identifier(database)}")
        if settings:
            connection.query(
                "SET " + ", ".join(f"{k} = {quote_literal(v)}" for k, v in settings.items())
            )
        yield
    finally:
        if snapshot is not None:
            restore_snapshot(connection, snapshot, database)


def take_snapshot(connection: Connection, names: Mapping[str, str]) -> Snapshot:
    listed = ", ".join(quote_literal(name) for name in names) or "''"
    row = json.loads(
        connection.query(
            "SELECT currentDatabase(), groupArray((name, value, changed)) "
            f"FROM system.settings WHERE name IN ({listed})",
            "JSONCompactEachRow",
        ).bytes()
    )
    return Snapshot(row[0], {name: (value, bool(changed)) for name, value, changed in row[1]})


def restore_snapshot(connection: Connection, snapshot: Snapshot, database: str) -> None:
    if snapshot.settings:
        connection.query(
            "SET "
            + ", ".join(
                f"{name} = {quote_literal(value) if changed else 'DEFAULT'}"
                for name, (value, changed) in snapshot.settings.items()
            )
        )
    if database and database != snapshot.database:
        connection.query(f"USE {quote_identifier(snapshot.database)}")
