"""chDB's ClickHouse engine over one data directory, and one request's statement run on it.

What chDB 4.4 (ClickHouse 26.9) allows, measured, and what this server serializes because of it:

- A process hosts one engine, bound to one data directory; any number of connections to it may
  be open at once. Each connection has its own current database, settings and temporary tables.
- chDB releases the GIL while a statement runs, and statements on different connections run in
  parallel. Statements therefore run in worker threads, and the event loop keeps answering
  ``/ping`` and other requests meanwhile.
- One connection runs one statement at a time (a statement sent while a streaming result is open
  on the same connection silently returns nothing). Hence:
  * a request without ``session_id`` opens a fresh connection (about 0.1 ms) and runs in parallel
    with every other request;
  * the requests of one session share that session's connection and are serialized: as in
    ClickHouse, a request for a session that is busy fails with SESSION_IS_LOCKED (373).
    clickhouse-connect's synchronous client sends a session_id of its own, so one client object
    must not be used from two threads at once (the same holds against a real server).
- ``KILL QUERY`` is engine-wide (``system.processes`` lists every connection's statements) and
  cancels a running statement. chDB assigns query ids itself, so the server stores the HTTP
  request's query id in the ``log_comment`` setting and rewrites ``KILL QUERY WHERE query_id = 'x'``
  to match it there as well.
- INSERT data is written to a file in a private directory and inserted with ``INSERT INTO t
  FROM INFILE``, the same insert as data after FORMAT, whose errors chDB reports. Its streaming
  insert (``send_insert``) loses every error raised while rows are written (a CONSTRAINT, a
  materialized view that throws, TOO_MANY_PARTS) and reports success; data inline in a query is
  cut at the first two consecutive line-break bytes, even in Native.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import chdb

from devstack.clickhouse_http.errors import READONLY, SYNTAX_ERROR, ClickHouseError
from devstack.clickhouse_http.job import Job
from devstack.clickhouse_http.query_settings import applied
from devstack.clickhouse_http.statement import insert_from_file, output_format

Connection = Any  # chdb.state.sqlitelike.Connection; chdb has no type information
_MUTATING = {"MUTATING", "MUTATING_GLOBAL"}


@dataclass(frozen=True)
class Summary:
    """The counters of ClickHouse's X-ClickHouse-Summary header."""

    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    total_rows_to_read: int = 0
    result_rows: int = 0
    result_bytes: int = 0
    elapsed_ns: int = 0

    def header(self) -> str:
        # ClickHouse writes the numbers as strings, for JavaScript's sake.
        return json.dumps({k: str(v) for k, v in asdict(self).items()}, separators=(",", ":"))


# This server shares a developer's or CI's cores with Kafka, the workers and the tests, where
# production ClickHouse has hosts of its own. Background merges yield the CPU to everything in
# the foreground (as production servers are often told to, for their queries), so a merge burst
# does not decide how fast the pipeline drains in a test.
ENGINE_SETTINGS = "os_threads_nice_value_merge_mutate=10"


@dataclass(frozen=True)
class Outcome:
    body: bytes
    summary: Summary
    output_format: str | None  # None: the statement produced no result set


class Engine:
    """The engine over ``data_dir``, kept running by an anchor connection until ``close()``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.spool = Path(tempfile.mkdtemp(prefix="clickhouse_http-"))  # INSERT data, mode 0700
        self._anchor = self.connect()
        row = self._anchor.query(
            "SELECT version(), timezone(), getSetting('enable_http_compression')", "TabSeparated"
        )
        self.version, self.timezone, compression = row.bytes().decode().rstrip("\n").split("\t")
        self.http_compression_default = compression in ("1", "true")

    def connect(self) -> Connection:
        try:
            return chdb.connect(f"{self.data_dir}?{ENGINE_SETTINGS}")  # type: ignore[no-untyped-call]
        except Exception as error:
            raise ClickHouseError.from_engine(error) from error

    def close(self) -> None:
        self._anchor.close()
        shutil.rmtree(self.spool, ignore_errors=True)


def run(
    connection: Connection,
    job: Job,
    database: str,
    settings: dict[str, str],
    restore: bool,
    spool: Path,
) -> Outcome:
    """Run ``job`` on ``connection`` with the request's database and settings (blocking).

    INSERT data goes through a file in ``spool`` (see the module's docstring).
    """
    try:
        if job.insert_format is not None:
            if job.readonly:
                raise _readonly()
            with applied(connection, database, settings, restore):
                return _insert(connection, job.sql, job.insert_format, job.data, spool)
        read_only = _check_statement(connection, job)
        with applied(connection, database, settings, restore):
            return _statement(connection, job, read_only)
    except ClickHouseError:
        raise
    except Exception as error:
        raise ClickHouseError.from_engine(error) from error


def _check_statement(connection: Connection, job: Job) -> bool:
    """ClickHouse's HTTP rules chDB does not apply: one statement, read-only unless POST."""
    if not job.sql.strip():
        raise ClickHouseError(SYNTAX_ERROR, "Empty query")
    # classify_query is the engine's own parser; chDB exposes it on the raw connection only.
    verdict = connection._conn.classify_query(job.sql)
    # A statement the parser rejects counts 0: running it reports the syntax error.
    if verdict["statement_count"] > 1:
        raise ClickHouseError(SYNTAX_ERROR, "Syntax error (Multi-statements are not allowed)")
    kind = verdict["query_class"].name
    if job.readonly and kind in _MUTATING:
        raise _readonly()
    return bool(kind == "READ_ONLY")


def _readonly() -> ClickHouseError:
    return ClickHouseError(
        READONLY,
        "Cannot execute query in readonly mode. For queries over HTTP, method GET implies "
        "readonly. You should use method POST for modifying queries",
    )


def _statement(connection: Connection, job: Job, read_only: bool) -> Outcome:
    result = connection.query(job.sql, job.output_format, params=job.parameters)
    body = result.bytes() or b""
    summary = Summary(
        read_rows=result.storage_rows_read(),
        read_bytes=result.storage_bytes_read(),
        written_rows=result.rows_written(),
        written_bytes=result.bytes_written(),
        total_rows_to_read=result.storage_rows_read(),
        result_rows=result.rows_read(),  # chDB counts the result's rows and bytes as "read"
        result_bytes=result.bytes_read(),
        elapsed_ns=int(result.elapsed() * 1e9),
    )
    # A statement has a result set if it reads (even zero rows) or writes something out.
    has_result = read_only or bool(body)
    return Outcome(body, summary, output_format(job.sql, job.output_format) if has_result else None)


def _insert(connection: Connection, statement: str, fmt: str, data: bytes, spool: Path) -> Outcome:
    started = time.monotonic_ns()
    descriptor, path = tempfile.mkstemp(dir=spool)
    try:
        sql = insert_from_file(statement, path, fmt)
        with open(descriptor, "wb") as file:
            file.write(data)
        try:
            result = connection.query(sql)
        except Exception as error:
            raise _without_file(ClickHouseError.from_engine(error), path) from error
    finally:
        os.unlink(path)
    summary = Summary(
        written_rows=result.rows_written(),
        written_bytes=result.bytes_written(),
        result_rows=result.rows_written(),
        result_bytes=result.bytes_written(),
        elapsed_ns=time.monotonic_ns() - started,
    )
    return Outcome(b"", summary, None)


def _without_file(error: ClickHouseError, path: str) -> ClickHouseError:
    """The error as a server reports it for data in the request: no word of the file."""
    message = error.message.replace(f": (in file/uri {path})", "")
    message = message.replace(": While executing File: data for INSERT was parsed from file", "")
    return ClickHouseError((error.code, error.name), message)
