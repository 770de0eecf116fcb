"""What one HTTP request asks of ClickHouse: query, credentials, database, settings, session."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from devstack.clickhouse_http.errors import (
    AUTHENTICATION_FAILED,
    BAD_ARGUMENTS,
    INVALID_SESSION_TIMEOUT,
    NOT_IMPLEMENTED,
    UNKNOWN_SETTING,
    ClickHouseError,
)

# URL parameters that are part of the HTTP protocol, never settings (ClickHouse's HTTPHandler list).
RESERVED_PARAMS = frozenset(
    {
        "query",
        "compress",
        "decompress",
        "user",
        "password",
        "quota_key",
        "query_id",
        "stacktrace",
        "role",
        "buffer_size",
        "wait_end_of_query",
        "session_id",
        "session_timeout",
        "session_check",
        "client_protocol_version",
        "close_session",
        "database",
        "default_format",
    }
)
# Settings that only steer the HTTP layer; this server reads them itself and keeps them away from
# the engine (sending progress headers and cancelling on disconnect are not implemented).
HTTP_SETTINGS = frozenset(
    {
        "enable_http_compression",
        "send_progress_in_http_headers",
        "cancel_http_readonly_queries_on_client_close",
        "add_http_cors_header",
    }
)
QUERY_PARAMETER_PREFIX = "param_"
DEFAULT_SESSION_TIMEOUT = 60
MAX_SESSION_TIMEOUT = 3600
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


@dataclass(frozen=True)
class Session:
    """The named session a request runs in (``session_id`` and friends)."""

    id: str
    timeout: int
    check: bool  # session_check=1: the session must exist already
    close: bool  # close_session=1: drop it after this request


@dataclass(frozen=True)
class QueryRequest:
    """A parsed request; the body (query text or INSERT data) travels separately."""

    method: str
    query: str  # the ``query`` URL parameter or form field; the body is appended to it
    query_id: str
    credentials: Credentials
    database: str
    default_format: str
    settings: dict[str, str]
    parameters: dict[str, str]  # server-side query parameters, without the ``param_`` prefix
    session: Session | None
    content_encoding: str
    accept_encoding: str
    enable_http_compression: bool | None  # None: the engine's default
    compression_level: int | None


def parse_request(
    method: str, params: Iterable[tuple[str, str]], headers: Mapping[str, str]
) -> QueryRequest:
    """Interpret URL parameters and headers the way ClickHouse's HTTPHandler does."""
    values = dict(params)
    if _truthy(values.get("compress")) or _truthy(values.get("decompress")):
        raise ClickHouseError(
            NOT_IMPLEMENTED,
            "ClickHouse's internal compression (compress=1, decompress=1) is not supported by the "
            "local ClickHouse; use HTTP compression (Content-Encoding, Accept-Encoding) instead",
        )
    compression = values.get("enable_http_compression")
    level = values.get("http_zlib_compression_level")
    return QueryRequest(
        method=method.upper(),
        query=values.get("query", ""),
        query_id=values.get("query_id")
        or headers.get("X-ClickHouse-Query-Id")
        or str(uuid.uuid4()),
        credentials=credentials(values, headers),
        database=headers.get("X-ClickHouse-Database") or values.get("database", ""),
        default_format=headers.get("X-ClickHouse-Format")
        or values.get("default_format", "TabSeparated"),
        settings=settings(values),
        parameters={
            name.removeprefix(QUERY_PARAMETER_PREFIX): value
            for name, value in values.items()
            if name.startswith(QUERY_PARAMETER_PREFIX)
        },
        session=session(values),
        content_encoding=headers.get("Content-Encoding", "").strip().lower(),
        accept_encoding=headers.get("Accept-Encoding", ""),
        enable_http_compression=None if compression is None else _truthy(compression),
        compression_level=None if level is None else _integer("http_zlib_compression_level", level),
    )


def settings(values: Mapping[str, str]) -> dict[str, str]:
    """The URL parameters that are query settings (the engine rejects unknown ones)."""
    found = {}
    for name, value in values.items():
        if (
            not name
            or name in RESERVED_PARAMS
            or name in HTTP_SETTINGS
            or name.startswith(("http_", QUERY_PARAMETER_PREFIX))
        ):
            continue
        if not _SETTING_NAME.fullmatch(name):
            raise ClickHouseError(UNKNOWN_SETTING, f"Unknown setting '{name}'")
        found[name] = value
    return found


def session(values: Mapping[str, str]) -> Session | None:
    session_id = values.get("session_id", "")
    if not session_id:
        return None
    raw = values.get("session_timeout", str(DEFAULT_SESSION_TIMEOUT))
    if not raw.isdigit():
        raise ClickHouseError(INVALID_SESSION_TIMEOUT, f"Invalid session timeout: '{raw}'")
    if int(raw) > MAX_SESSION_TIMEOUT:
        raise ClickHouseError(
            INVALID_SESSION_TIMEOUT,
            f"Session timeout '{raw}' is larger than max_session_timeout: {MAX_SESSION_TIMEOUT}. "
            "Maximum session timeout could be modified in configuration file.",
        )
    return Session(
        session_id,
        int(raw),
        _truthy(values.get("session_check")),
        _truthy(values.get("close_session")),
    )


def credentials(values: Mapping[str, str], headers: Mapping[str, str]) -> Credentials:
    """User and password from X-ClickHouse-User/-Key, HTTP Basic auth or URL parameters."""
    in_params = "user" in values or "password" in values
    authorization = headers.get("Authorization", "")
    user_header, key_header = (
        headers.get("X-ClickHouse-User", ""),
        headers.get("X-ClickHouse-Key", ""),
    )
    if user_header or key_header:
        if authorization or in_params:
            raise _invalid(
                "it is not allowed to use X-ClickHouse HTTP headers and other "
                "authentication methods simultaneously"
            )
        return Credentials(user_header or "default", key_header)
    if authorization:
        if in_params:
            raise _invalid(
                "it is not allowed to use Authorization HTTP header and "
                "authentication via parameters simultaneously"
            )
        return _basic(authorization)
    return Credentials(values.get("user") or "default", values.get("password", ""))


def _basic(authorization: str) -> Credentials:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise _invalid(f"'{scheme}' HTTP Authorization scheme is not supported")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as error:
        raise _invalid("malformed Basic credentials") from error
    user, _, password = decoded.partition(":")
    return Credentials(user or "default", password)


def _invalid(reason: str) -> ClickHouseError:
    return ClickHouseError(AUTHENTICATION_FAILED, f"Invalid authentication: {reason}")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true"}


def _integer(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError as error:
        raise ClickHouseError(BAD_ARGUMENTS, f"Cannot parse '{value}' as {name}") from error
