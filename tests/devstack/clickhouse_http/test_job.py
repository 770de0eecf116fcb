"""The statement and data a request amounts to: ``query`` parameter, a line break, the body."""

from __future__ import annotations

import pytest

from devstack.clickhouse_http.errors import ClickHouseError
from devstack.clickhouse_http.job import Job, build_job
from devstack.clickhouse_http.request import parse_request

NATIVE = b"\x01\x02\x02id\x06UInt64" + bytes(range(16))


def job(body: bytes, method: str = "POST", **params: str) -> Job:
    return build_job(parse_request(method, params.items(), {}), body)


def test_insert_statement_in_the_url_and_data_in_the_body() -> None:
    built = job(NATIVE, query="INSERT INTO t (id) FORMAT Native")
    assert (built.sql, built.insert_format, built.data) == ("INSERT INTO t (id)", "Native", NATIVE)


def test_insert_statement_and_binary_data_in_the_body() -> None:
    built = job(b"INSERT INTO db.t (`id`) FORMAT Native\n" + NATIVE)
    assert (built.sql, built.insert_format, built.data) == (
        "INSERT INTO db.t (`id`)",
        "Native",
        NATIVE,
    )


def test_inline_data_in_the_url_precedes_the_body() -> None:
    built = job(b"3,4\n", query="INSERT INTO t FORMAT CSV 1,2")
    assert built.data == b"1,2\n3,4\n"


def test_query_and_body_are_joined_by_a_line_break() -> None:
    built = job(b"WHERE x = {x:UInt8}", query="SELECT * FROM t", param_x="1")
    assert (built.sql, built.parameters, built.insert_format) == (
        "SELECT * FROM t\nWHERE x = {x:UInt8}",
        {"x": "1"},
        None,
    )


def test_values_inserts_stay_sql() -> None:
    assert job(b"INSERT INTO t VALUES (1)").sql == "INSERT INTO t VALUES (1)"


def test_only_post_may_write() -> None:
    assert job(b"", "GET", query="SELECT 1").readonly
    assert not job(b"SELECT 1").readonly


def test_kill_query_by_http_query_id() -> None:
    assert "Settings['log_comment'] = 'q'" in job(b"KILL QUERY WHERE query_id = 'q'").sql


def test_a_query_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(ClickHouseError) as error:
        job(b"SELECT '\xff'")
    assert error.value.code == 36
