"""Applying migrations: where each one stands, and ``up`` under the lock, statement by statement.

A failed statement stops the run. The statements before it stay applied and recorded in
``schema_migrations_steps``; the next ``up`` resumes at the failed statement (it does not run
the earlier ones again, which may not be repeatable: an EXCHANGE, an INSERT ... SELECT). A
statement that already ran may not change; the one that failed, and those after it, may.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from clickhouse_connect.driver.client import Client

from streams.clickhouse import sync_client
from streams.errors import UserError
from streams.migrations.files import Migration, first_line, load
from streams.migrations.ledger import Applied, Ledger, Progress
from streams.migrations.lock import MigrationLock
from streams.migrations.render import Renderer, quote_identifier
from streams.settings import Settings

State = Literal["applied", "pending", "partial", "changed"]
Say = Callable[[str], None]
_SERVER_MESSAGE = re.compile(r"server response:\s*(.*?)(?:\s*\(for url [^)]*\))?\s*$", re.S)


@dataclass(frozen=True)
class Status:
    """Where one migration stands in a database."""

    migration: Migration
    state: State
    applied: Applied | None = None
    progress: Progress = field(default_factory=Progress)
    problem: str = ""

    @property
    def done(self) -> set[int]:
        return set(self.progress.done)

    @property
    def remaining(self) -> list[int]:
        total = len(self.migration.statements)
        return [i for i in range(1, total + 1) if i not in self.done]


class MigrationFailed(UserError):
    """A statement failed; the message names the file, the statement and what to do."""


def survey(
    migrations: list[Migration], applied: dict[int, Applied], progress: dict[int, Progress]
) -> list[Status]:
    """The state of every migration file, from the ledger."""
    return [_status(m, applied.get(m.version), progress.get(m.version)) for m in migrations]


def _status(migration: Migration, applied: Applied | None, progress: Progress | None) -> Status:
    if applied is not None:
        if applied.checksum == migration.checksum:
            return Status(migration, "applied", applied)
        return Status(
            migration,
            "changed",
            applied,
            problem=f"{migration.file} was changed after it was applied (checksum differs); "
            "restore it and put the change in a new migration.",
        )
    progress = progress or Progress()
    for index, step in sorted(progress.done.items()):
        checksums = migration.statement_checksums
        if index > len(checksums) or checksums[index - 1] != step.statement_checksum:
            when = f"{step.at:%Y-%m-%d %H:%M:%S} UTC"
            return Status(
                migration,
                "changed",
                progress=progress,
                problem=f"{migration.file}: statement {index} already ran ({when}, by "
                f"{step.by}) and has changed since; restore it: statements that ran cannot "
                "change, only the one that failed and those after it.",
            )
    return Status(migration, "partial" if progress.done else "pending", progress=progress)


def refuse_changed(statuses: list[Status]) -> None:
    for status in statuses:
        if status.state == "changed":
            raise UserError(status.problem)


def server_message(error: BaseException) -> str:
    """ClickHouse's own message from a clickhouse-connect error, without the URL."""
    text = str(error).strip()
    match = _SERVER_MESSAGE.search(text)
    return (match.group(1) if match else text).strip() or type(error).__name__


def execute(
    client: Client,
    renderer: Renderer,
    migration: Migration,
    indices: list[int],
    ledger: Ledger | None,
) -> float:
    """Run the statements ``indices`` of ``migration`` in order, recording each; seconds taken."""
    total = len(migration.statements)
    started = time.monotonic()
    for index in indices:
        statement = migration.statements[index - 1]
        begin = time.monotonic()
        try:
            client.command(renderer.render(statement))
        except UserError:
            raise
        except Exception as error:
            message = server_message(error)
            if ledger is not None:
                ledger.record_failure(migration, index, time.monotonic() - begin, message)
            raise MigrationFailed(
                f"{migration.file}, statement {index} of {total} failed: "
                f"{first_line(message, 400)} (statement: {first_line(statement)!r}). "
                + _resume_hint(index, ledger is not None)
            ) from None
        if ledger is not None:
            ledger.record_step(migration, index, time.monotonic() - begin)
    return time.monotonic() - started


def _resume_hint(index: int, recorded: bool) -> str:
    if not recorded:
        return "Fix the statement."
    fix = (
        f"fix statement {index} (or its cause) and rerun `streamgauge migrate up`: "
        f"it resumes at statement {index}."
    )
    if index == 1:
        return fix[0].upper() + fix[1:]
    done = "Statement 1 is" if index == 2 else f"Statements 1-{index - 1} are"
    return f"{done} applied and recorded; {fix}"


class Runner:
    """Migrations of one database (settings.clickhouse_database) on the configured server."""

    def __init__(self, settings: Settings, say: Say = print) -> None:
        self.settings = settings
        self.say = say
        self.renderer = Renderer(settings.clickhouse_cluster)
        self.migrations = load(settings.migrations_dir)
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = sync_client(self.settings)
        return self._client

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.client, self.renderer)

    def lock(self, purpose: str) -> MigrationLock:
        return MigrationLock(self.client, self.settings.clickhouse_database, self.renderer, purpose)

    def database_exists(self) -> bool:
        admin = sync_client(self.settings, database="default")
        rows = admin.query(
            "SELECT count() FROM system.databases WHERE name = {db:String}",
            parameters={"db": self.settings.clickhouse_database},
        ).result_rows
        return bool(rows[0][0])

    def ensure(self) -> None:
        """The database and the ledger tables, created if missing."""
        admin = sync_client(self.settings, database="default")
        database = quote_identifier(self.settings.clickhouse_database)
        admin.command(f"CREATE DATABASE IF NOT EXISTS {database}{self.renderer.on_cluster()}")
        self.ledger.ensure()

    def statuses(self) -> list[Status]:
        ledger = self.ledger
        return survey(self.migrations, ledger.applied(), ledger.progress())

    def todo(self) -> list[Status]:
        """Migrations not applied yet, in order; refuses when a file changed after it ran."""
        statuses = self.statuses()
        refuse_changed(statuses)
        return [s for s in statuses if s.state != "applied"]

    def up(self, lock_wait: float, break_lock: bool = False) -> list[Migration]:
        """Apply every pending migration under the lock; return those applied."""
        self.ensure()
        if break_lock:
            self.unlock()
        if not self.todo():
            self._up_to_date()
            return []
        lock = self.lock("migrate up")
        lock.acquire(lock_wait, self.say)
        try:
            done = []
            for status in self.todo():  # again: another runner may have applied some meanwhile
                if not lock.still_mine():
                    raise UserError(
                        "the migration lock was taken from this runner (`migrate unlock` or "
                        "`--break-lock` elsewhere); stopped before "
                        f"{status.migration.file}. Run `streamgauge migrate status`."
                    )
                self.apply(status)
                done.append(status.migration)
        finally:
            lock.release()
        if not done:
            self._up_to_date()
        return done

    def apply(self, status: Status) -> float:
        """Run the remaining statements of one migration and record it as applied."""
        migration = status.migration
        if status.state == "partial":
            self.say(
                f"resuming {migration.file} at statement {status.remaining[0]} of "
                f"{len(migration.statements)} (statements {sorted(status.done)} ran before)"
            )
        ledger = self.ledger
        seconds = execute(self.client, self.renderer, migration, status.remaining, ledger)
        earlier = sum(step.duration_ms for step in status.progress.done.values()) / 1000
        ledger.record_applied(migration, seconds + earlier)
        self.say(f"applied {migration.file} in {seconds:.2f} s")
        return seconds

    def unlock(self) -> None:
        """Clear the lock, saying whose it was."""
        lock = self.lock("migrate unlock")
        holder = lock.holder()
        if holder is None:
            self.say(f"the migration lock of database {self.settings.clickhouse_database} is free")
            return
        lock.drop()
        self.say(f"cleared the migration lock held by {holder.describe()}")

    def _up_to_date(self) -> None:
        self.say(
            f"database {self.settings.clickhouse_database} is up to date "
            f"({len(self.migrations)} migrations)"
        )
