"""ClickHouse's HTTP interface over aiohttp: ``/ping`` and the query endpoint ``/``."""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from aiohttp import web

from devstack.clickhouse_http import compression
from devstack.clickhouse_http.engine import Engine, Outcome, Summary, run
from devstack.clickhouse_http.errors import (
    AUTHENTICATION_FAILED,
    NOT_IMPLEMENTED,
    QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING,
    STD_EXCEPTION,
    ClickHouseError,
)
from devstack.clickhouse_http.job import QUERY_ID_SETTING, Job, build_job
from devstack.clickhouse_http.request import (
    QUERY_PARAMETER_PREFIX,
    Credentials,
    QueryRequest,
    parse_request,
)
from devstack.clickhouse_http.sessions import Sessions

log = logging.getLogger(__name__)
T = TypeVar("T")

WORKER_THREADS = 32  # statements running at once; chDB runs them in parallel
MAX_BODY_BYTES = 4 * 2**30
SESSION_EXPIRY_INTERVAL = 1.0
_CONTENT_TYPES = {
    "JSON": "application/json; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
}
_BINARY_FORMATS = ("Native", "RowBinary", "Parquet", "Arrow", "ORC", "Avro", "MsgPack", "Protobuf")


@dataclass(frozen=True)
class Account:
    """The one user this server knows, with its password (empty: none)."""

    user: str = "default"
    password: str = ""


class Service:
    """Runs requests: checks credentials, picks a connection (session or fresh), uses threads."""

    def __init__(self, engine: Engine, account: Account) -> None:
        self.engine = engine
        self.account = account
        self.sessions = Sessions(engine.connect)
        self.executor = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="chdb")
        self.display_name = socket.gethostname()
        self._running: set[str] = set()

    def authenticate(self, credentials: Credentials) -> None:
        same_user = credentials.user == self.account.user
        same_password = hmac.compare_digest(
            credentials.password.encode(), self.account.password.encode()
        )
        if not (same_user and same_password):
            raise ClickHouseError(
                AUTHENTICATION_FAILED,
                f"{credentials.user}: Authentication failed: password is incorrect, "
                "or there is no user with such name",
            )

    async def execute(self, request: QueryRequest, job: Job) -> Outcome:
        if request.query_id in self._running:
            raise ClickHouseError(
                QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING,
                f"Query with id = {request.query_id} is already running.",
            )
        settings = {QUERY_ID_SETTING: request.query_id, **request.settings}
        self._running.add(request.query_id)
        try:
            if request.session is None:
                return await self.in_thread(self._run_fresh, job, request.database, settings)
            session = self.sessions.acquire(request.session)
            try:
                return await self.in_thread(
                    run,
                    session.connection,
                    job,
                    request.database,
                    settings,
                    True,
                    self.engine.spool,
                )
            finally:
                # aiohttp does not cancel handlers when clients go away, so the thread is done.
                self.sessions.release(session, close=request.session.close)
        finally:
            self._running.discard(request.query_id)

    async def in_thread(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    def _run_fresh(self, job: Job, database: str, settings: dict[str, str]) -> Outcome:
        connection = self.engine.connect()
        try:
            return run(connection, job, database, settings, False, self.engine.spool)
        finally:
            connection.close()


SERVICE = web.AppKey("service", Service)


def create_app(engine: Engine, account: Account) -> web.Application:
    # The body is decoded here, by ClickHouse's rules (aiohttp would decode gzip and zstd only).
    app = web.Application(client_max_size=MAX_BODY_BYTES, handler_args={"auto_decompress": False})
    app[SERVICE] = Service(engine, account)
    app.router.add_get("/ping", ping)
    app.router.add_get("/", query)
    app.router.add_post("/", query)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def ping(_request: web.Request) -> web.Response:
    return web.Response(text="Ok.\n")


async def query(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    if request.method == "GET" and "query" not in request.query:
        return web.Response(text="Ok.\n")
    parsed: QueryRequest | None = None
    try:
        parsed = parse_request(request.method, request.query.items(), request.headers)
        service.authenticate(parsed.credentials)
        parsed, body = await _read_body(request, parsed)
        body = await service.in_thread(compression.decompress, body, parsed.content_encoding)
        outcome = await service.execute(parsed, build_job(parsed, body))
        return await _result(service, parsed, outcome)
    except ClickHouseError as error:
        return _error(service, parsed, error)
    except Exception as error:
        log.exception("unexpected error")
        return _error(service, parsed, ClickHouseError(STD_EXCEPTION, repr(error)))


async def _read_body(request: web.Request, parsed: QueryRequest) -> tuple[QueryRequest, bytes]:
    """The body; for a multipart form (long parameters), its ``query`` and ``param_`` fields."""
    if not request.content_type.startswith("multipart/form-data"):
        return parsed, await request.read()
    fields = await request.post()
    if any(not isinstance(value, str) for value in fields.values()):
        raise ClickHouseError(NOT_IMPLEMENTED, "External data (files in the form) is not supported")
    texts = {name: str(value) for name, value in fields.items()}
    parameters = {
        name.removeprefix(QUERY_PARAMETER_PREFIX): value
        for name, value in texts.items()
        if name.startswith(QUERY_PARAMETER_PREFIX)
    }
    query_text = texts.get("query", parsed.query)
    return replace(parsed, query=query_text, parameters={**parsed.parameters, **parameters}), b""


async def _result(service: Service, parsed: QueryRequest, outcome: Outcome) -> web.Response:
    headers = _headers(service, parsed, outcome.summary)
    body = outcome.body
    if outcome.output_format is not None:
        headers["X-ClickHouse-Format"] = outcome.output_format
        headers["Content-Type"] = _content_type(outcome.output_format)
    enabled = parsed.enable_http_compression
    if enabled is None:
        enabled = service.engine.http_compression_default
    method = compression.choose(parsed.accept_encoding) if enabled and body else None
    if method is not None:
        level = 3 if parsed.compression_level is None else parsed.compression_level
        body = await service.in_thread(compression.compress, body, method, level)
        headers["Content-Encoding"] = method
    return web.Response(body=body, headers=headers)


def _error(service: Service, parsed: QueryRequest | None, error: ClickHouseError) -> web.Response:
    log.info("error %s: %s", error.code, error.message)
    headers = _headers(service, parsed, Summary())
    headers["X-ClickHouse-Exception-Code"] = str(error.code)
    return web.Response(
        status=error.http_status, text=error.text(service.engine.version) + "\n", headers=headers
    )


def _headers(service: Service, parsed: QueryRequest | None, summary: Summary) -> dict[str, str]:
    headers = {
        "Content-Type": "text/plain; charset=UTF-8",
        "X-ClickHouse-Server-Display-Name": service.display_name,
        "X-ClickHouse-Summary": summary.header(),
    }
    if parsed is not None:
        headers["X-ClickHouse-Query-Id"] = parsed.query_id
        timezone = parsed.settings.get("session_timezone") or service.engine.timezone
        headers["X-ClickHouse-Timezone"] = timezone
    return headers


def _content_type(fmt: str) -> str:
    if fmt.startswith(_BINARY_FORMATS):
        return "application/octet-stream"
    for prefix, content_type in _CONTENT_TYPES.items():
        if fmt.startswith(prefix):
            return content_type
    return "text/plain; charset=UTF-8"


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Close idle sessions as their timeouts pass; on shutdown, close them all."""
    service = app[SERVICE]

    async def expire() -> None:
        while True:
            await asyncio.sleep(SESSION_EXPIRY_INTERVAL)
            service.sessions.expire()

    expiry = asyncio.create_task(expire())
    yield
    expiry.cancel()
    service.executor.shutdown(wait=True, cancel_futures=True)
    service.sessions.close_all()
