"""From a parsed request and its body to the one statement the engine runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from devstack.clickhouse_http.errors import BAD_ARGUMENTS, ClickHouseError
from devstack.clickhouse_http.request import QueryRequest
from devstack.clickhouse_http.statement import find_insert_data, kill_by_http_query_id

# Where the server records each request's query id, for KILL QUERY (chDB names queries itself).
QUERY_ID_SETTING = "log_comment"
# An INSERT statement in the body is looked for in its first bytes only; its data can be binary.
_STATEMENT_HEAD = 64 * 1024


@dataclass(frozen=True)
class Job:
    """A statement for the engine: SQL text, or an INSERT (without FORMAT) and its data."""

    sql: str
    output_format: str  # for results of statements without a FORMAT clause
    parameters: dict[str, str] = field(default_factory=dict)
    insert_format: str | None = None  # set when ``data`` is the INSERT's data in this format
    data: bytes = b""
    readonly: bool = False  # like ClickHouse, anything but POST may only read


def build_job(request: QueryRequest, body: bytes) -> Job:
    """ClickHouse's rule: the statement is the ``query`` parameter, a line break, and the body."""
    readonly = request.method != "POST"
    if request.query:
        text = request.query + "\n"
        insert = find_insert_data(text)
        if insert is not None:
            data = text[insert.data_start :].encode() + body
            return _insert(request, insert.statement, insert.format, data, readonly)
        sql = text + _utf8(body) if body else request.query
    else:
        insert = find_insert_data(body[:_STATEMENT_HEAD].decode("latin-1"))
        if insert is not None:
            statement = _utf8(body[: len(insert.statement)])
            data = body[insert.data_start :]
            return _insert(request, statement, insert.format, data, readonly)
        sql = _utf8(body)
    return Job(
        sql=kill_by_http_query_id(sql, QUERY_ID_SETTING),
        output_format=request.default_format,
        parameters=request.parameters,
        readonly=readonly,
    )


def _insert(request: QueryRequest, sql: str, fmt: str, data: bytes, readonly: bool) -> Job:
    return Job(sql, request.default_format, {}, fmt, data, readonly)


def _utf8(text: bytes) -> str:
    try:
        return text.decode()
    except UnicodeDecodeError as error:
        raise ClickHouseError(BAD_ARGUMENTS, f"The query is not valid UTF-8: {error}") from error
