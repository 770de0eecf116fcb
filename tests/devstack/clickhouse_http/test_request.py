"""Parsing a request the way ClickHouse's HTTPHandler does."""

from __future__ import annotations

import base64

import pytest

from devstack.clickhouse_http.errors import ClickHouseError
from devstack.clickhouse_http.request import Credentials, parse_request


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_settings_exclude_protocol_parameters_and_query_parameters() -> None:
    request = parse_request(
        "POST",
        [
            ("query", "SELECT {x:UInt8}"),
            ("database", "db"),
            ("session_id", "s1"),
            ("session_timeout", "120"),
            ("query_id", "q1"),
            ("wait_end_of_query", "1"),
            ("enable_http_compression", "1"),
            ("http_headers_progress_interval_ms", "100"),
            ("send_progress_in_http_headers", "1"),
            ("param_x", "7"),
            ("max_execution_time", "5"),
            ("insert_deduplication_token", "t-1"),
        ],
        {},
    )
    assert request.settings == {"max_execution_time": "5", "insert_deduplication_token": "t-1"}
    assert request.parameters == {"x": "7"}
    assert (request.database, request.query_id, request.query) == ("db", "q1", "SELECT {x:UInt8}")
    assert request.session is not None
    assert (request.session.id, request.session.timeout) == ("s1", 120)
    assert request.enable_http_compression is True


def test_headers_name_database_format_and_query_id() -> None:
    request = parse_request(
        "GET",
        [("database", "ignored"), ("default_format", "CSV")],
        {
            "X-ClickHouse-Database": "db",
            "X-ClickHouse-Format": "JSON",
            "X-ClickHouse-Query-Id": "q",
        },
    )
    assert (request.database, request.default_format, request.query_id) == ("db", "JSON", "q")


def test_defaults() -> None:
    request = parse_request("POST", [], {})
    assert request.default_format == "TabSeparated"
    assert request.session is None
    assert request.credentials == Credentials("default", "")
    assert request.query_id  # generated when the client sends none


@pytest.mark.parametrize(
    ("params", "headers", "expected"),
    [
        ([], {"Authorization": basic("alice", "s:cret")}, Credentials("alice", "s:cret")),
        ([], {"X-ClickHouse-User": "bob", "X-ClickHouse-Key": "k"}, Credentials("bob", "k")),
        ([("user", "carol"), ("password", "p")], {}, Credentials("carol", "p")),
        ([("password", "p")], {}, Credentials("default", "p")),
    ],
)
def test_credentials(
    params: list[tuple[str, str]], headers: dict[str, str], expected: Credentials
) -> None:
    assert parse_request("POST", params, headers).credentials == expected


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ([("user", "a")], {"Authorization": basic("a", "b")}),
        ([], {"Authorization": basic("a", "b"), "X-ClickHouse-User": "a"}),
        ([], {"Authorization": "Bearer token"}),
    ],
)
def test_mixed_or_unsupported_authentication_is_refused(
    params: list[tuple[str, str]], headers: dict[str, str]
) -> None:
    with pytest.raises(ClickHouseError) as error:
        parse_request("POST", params, headers)
    assert (error.value.code, error.value.http_status) == (516, 403)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ([("bad-name", "1")], 115),
        ([("session_id", "s"), ("session_timeout", "x")], 374),
        ([("session_id", "s"), ("session_timeout", "3601")], 374),
        ([("decompress", "1")], 48),
        ([("compress", "1")], 48),
    ],
)
def test_invalid_parameters(params: list[tuple[str, str]], code: int) -> None:
    with pytest.raises(ClickHouseError) as error:
        parse_request("POST", params, {})
    assert error.value.code == code
