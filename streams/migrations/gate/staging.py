"""Staging: two scratch databases, *before* and *after*, on the staging server.

The staging server is ``STREAMGAUGE_MIGRATIONS_STAGING_URL`` when set, else the target server
itself (the scratch databases are named after the target's, with ``_check_<id>``). Both are
brought to the target's current schema; *after* then gets the pending migrations. Staging is
always a single server (plain engines), whatever the target is.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
import uuid

from clickhouse_connect.driver.client import Client

from streams import migrations
from streams.clickhouse import sync_client
from streams.errors import UserError
from streams.migrations.render import Renderer, quote_identifier
from streams.migrations.runner import Status, execute
from streams.settings import Settings, redacted

_DEFAULT_PORTS = {"http": 8123, "https": 8443}


def staging_server(settings: Settings) -> Settings:
    """The settings of the staging server: the URL's, or the target's own."""
    url = settings.migrations_staging_url
    base = dataclasses.replace(settings, clickhouse_cluster="")
    if not url:
        return base
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise UserError(
            f"STREAMGAUGE_MIGRATIONS_STAGING_URL must look like http[s]://user:password@host:port, "
            f"got {redacted(url)!r}."
        )
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise UserError(f"the port of the staging URL {redacted(url)!r} is not a number.") from None
    return dataclasses.replace(
        base,
        clickhouse_host=parts.hostname,
        clickhouse_port=port,
        clickhouse_secure=parts.scheme == "https",
        clickhouse_user=urllib.parse.unquote(parts.username or "default"),
        clickhouse_password=urllib.parse.unquote(parts.password or ""),
    )


class Staging:
    """The two scratch databases; ``create()``, ``baseline()``, then ``drop()``."""

    def __init__(self, settings: Settings) -> None:
        server = staging_server(settings)
        name = f"{settings.clickhouse_database}_check_{uuid.uuid4().hex[:8]}"
        self.server = server
        self.before = dataclasses.replace(server, clickhouse_database=f"{name}_before")
        self.after = dataclasses.replace(server, clickhouse_database=f"{name}_after")
        self.renderer = Renderer()

    @property
    def sides(self) -> dict[str, Settings]:
        return {"before": self.before, "after": self.after}

    @property
    def address(self) -> str:
        return f"{self.server.clickhouse_host}:{self.server.clickhouse_port}"

    def create(self) -> None:
        admin = sync_client(self.server, database="default")
        for side in self.sides.values():
            admin.command(f"CREATE DATABASE {quote_identifier(side.clickhouse_database)}")

    def drop(self) -> None:
        for side in self.sides.values():
            migrations.drop(self.server, side.clickhouse_database)

    def client(self, side: str) -> Client:
        return sync_client(self.sides[side])

    def baseline(self, statuses: list[Status]) -> int:
        """Both databases to the target's schema: what it applied, fully or statement by
        statement (a partial migration's statements that ran). Returns migrations applied."""
        count = 0
        for status in statuses:
            indices = sorted(status.done) if status.state == "partial" else None
            if status.state == "applied":
                indices = list(range(1, len(status.migration.statements) + 1))
            if not indices:
                continue
            for side in self.sides:
                execute(self.client(side), self.renderer, status.migration, indices, None)
            count += 1
        return count

    def migrate(self, pending: list[Status]) -> float:
        """Apply what the target has not to *after*; seconds it took on the data set."""
        client = self.client("after")
        seconds = 0.0
        for status in pending:
            seconds += execute(client, self.renderer, status.migration, status.remaining, None)
        return seconds
