"""The migration lock: the table ``schema_migrations_lock`` exists while a runner holds it.

Taking the lock is ``CREATE TABLE schema_migrations_lock ... COMMENT '<holder>'`` without
``IF NOT EXISTS``. ClickHouse has no transactions, but creating a table is atomic: the server
serializes DDL on one table name (its DDL guard), so of two runners exactly one creates the
table and the other gets TABLE_ALREADY_EXISTS. On a cluster the statement runs ``ON CLUSTER``:
the distributed DDL queue in Keeper orders the two statements, every host runs them in that
order, and the first one wins on every host. The holder (who, where, since when, a token) is
in the table's comment, written by the same atomic statement, so a lock never exists without
its owner. Releasing is dropping the table. Why this and not a KeeperMap table or a row with
an insert deduplication token: docs/migrations.md.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from streams.errors import UserError
from streams.migrations.ledger import who
from streams.migrations.render import Renderer, quote_identifier, quote_literal

LOCK_TABLE = "schema_migrations_lock"
_EXISTS = re.compile(r"TABLE_ALREADY_EXISTS|Code: 57\b")
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Holder:
    """Who holds the lock: the comment written when it was taken."""

    owner: str
    since: datetime
    token: str
    purpose: str

    @property
    def age_seconds(self) -> float:
        return max(0.0, (datetime.now(UTC) - self.since).total_seconds())

    def describe(self) -> str:
        return (
            f"{self.owner} ({self.purpose}) since {self.since:%Y-%m-%d %H:%M:%S} UTC, "
            f"{_duration(self.age_seconds)} ago"
        )

    def comment(self) -> str:
        return json.dumps(
            {
                "owner": self.owner,
                "since": self.since.isoformat(),
                "token": self.token,
                "purpose": self.purpose,
            }
        )

    @classmethod
    def parse(cls, comment: str) -> Holder:
        try:
            data = json.loads(comment)
            return cls(
                str(data["owner"]),
                datetime.fromisoformat(data["since"]),
                str(data["token"]),
                str(data.get("purpose", "")),
            )
        except (ValueError, KeyError, TypeError):
            return cls("unknown holder", datetime.now(UTC), "", comment[:80])


class LockHeld(UserError):
    """Another runner holds the lock (and did not release it in time)."""


class MigrationLock:
    """The lock of one database; ``acquire`` then ``release``, or use it as a context."""

    def __init__(self, client: Client, database: str, renderer: Renderer, purpose: str) -> None:
        self._client = client
        self._database = database
        self._renderer = renderer
        self._purpose = purpose
        self.mine: Holder | None = None

    def holder(self) -> Holder | None:
        rows = self._client.query(
            "SELECT comment FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            parameters={"db": self._database, "t": LOCK_TABLE},
        ).result_rows
        return Holder.parse(str(rows[0][0])) if rows else None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it."""
        holder = Holder(who(), datetime.now(UTC), uuid.uuid4().hex, self._purpose)
        try:
            self._client.command(
                f"CREATE TABLE {self._table()}{self._renderer.on_cluster()} (held UInt8) "
                f"ENGINE = Memory COMMENT {quote_literal(holder.comment())}"
            )
        except Exception as error:
            if _EXISTS.search(str(error)):
                return False
            raise
        self.mine = holder
        return True

    def acquire(self, wait_seconds: float, say: Callable[[str], None] = print) -> None:
        """Take the lock, waiting up to ``wait_seconds`` for another runner to release it."""
        deadline = time.monotonic() + wait_seconds
        told = False
        while not self.try_acquire():
            other = self.holder()
            if other is None:
                continue  # released between our CREATE and our look: try again at once
            if time.monotonic() >= deadline:
                raise LockHeld(
                    f"the migration lock of database {self._database} is held by "
                    f"{other.describe()}; if that runner is gone, clear the lock with "
                    "`streamgauge migrate unlock` (or `migrate up --break-lock`)."
                )
            if not told:
                say(f"waiting for the migration lock, held by {other.describe()}")
                told = True
            time.sleep(POLL_SECONDS)

    def still_mine(self) -> bool:
        current = self.holder()
        return self.mine is not None and current is not None and current.token == self.mine.token

    def release(self) -> None:
        """Drop the lock if it is still ours (someone may have broken it meanwhile)."""
        if self.mine is not None and self.still_mine():
            self.drop()
        self.mine = None

    def drop(self) -> None:
        """Remove the lock whoever holds it (``migrate unlock``)."""
        self._client.command(
            f"DROP TABLE IF EXISTS {self._table()}{self._renderer.on_cluster()} SYNC"
        )

    def _table(self) -> str:
        return f"{quote_identifier(self._database)}.{LOCK_TABLE}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
