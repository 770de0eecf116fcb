"""chDB's exceptions become ClickHouse's error responses."""

from __future__ import annotations

import pytest

from devstack.clickhouse_http.errors import ClickHouseError


@pytest.mark.parametrize(
    ("raised", "code", "name", "message", "status"),
    [
        (
            "Code: 62. DB::Exception: Syntax error: failed at position 1. (SYNTAX_ERROR)",
            62,
            "SYNTAX_ERROR",
            "Syntax error: failed at position 1.",
            400,
        ),
        (
            "Code: 27. DB::Exception: Code: 27. DB::Exception: Cannot parse input: (at row 1)\n"
            ": While executing Native. (CANNOT_PARSE_INPUT_ASSERTION_FAILED) (version 26.9.2.1). "
            "(CANNOT_PARSE_INPUT_ASSERTION_FAILED)",
            27,
            "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
            "Cannot parse input: (at row 1)\n: While executing Native.",
            400,
        ),
        (
            "Code: 469. DB::Exception: Constraint `c` is violated. Expression: (X). "
            "(VIOLATED_CONSTRAINT)",
            469,
            "VIOLATED_CONSTRAINT",
            "Constraint `c` is violated. Expression: (X).",
            500,
        ),
        (
            "Code: 60. DB::Exception: Table default.t does not exist. (UNKNOWN_TABLE)",
            60,
            "UNKNOWN_TABLE",
            "Table default.t does not exist.",
            404,
        ),
        (
            "Code: 394. DB::Exception: Query was cancelled. (QUERY_WAS_CANCELLED)",
            394,
            "QUERY_WAS_CANCELLED",
            "Query was cancelled.",
            500,
        ),
        ("something broke", 1001, "STD_EXCEPTION", "something broke", 500),
    ],
)
def test_engine_messages(raised: str, code: int, name: str, message: str, status: int) -> None:
    error = ClickHouseError.from_engine(RuntimeError(raised))
    assert (error.code, error.name, error.message, error.http_status) == (
        code,
        name,
        message,
        status,
    )


def test_body_reads_like_clickhouse() -> None:
    error = ClickHouseError((62, "SYNTAX_ERROR"), "Empty query")
    assert error.text("26.9.2.1") == (
        "Code: 62. DB::Exception: Empty query (SYNTAX_ERROR) (version 26.9.2.1)"
    )
