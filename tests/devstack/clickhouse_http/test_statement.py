"""Finding INSERT data, FORMAT clauses and KILL QUERY by HTTP query id."""

from __future__ import annotations

import pytest

from devstack.clickhouse_http.errors import ClickHouseError
from devstack.clickhouse_http.statement import (
    InsertData,
    find_insert_data,
    insert_from_file,
    kill_by_http_query_id,
    output_format,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("INSERT INTO t FORMAT Native\n", InsertData("INSERT INTO t", "Native", 28)),
        (
            "insert into db.t (`a`, `format`) format CSV \r\n1,2\n",
            InsertData("insert into db.t (`a`, `format`)", "CSV", 46),
        ),
        (
            "INSERT INTO t SETTINGS insert_deduplication_token='x FORMAT y' FORMAT RowBinary\n",
            InsertData(
                "INSERT INTO t SETTINGS insert_deduplication_token='x FORMAT y'", "RowBinary", 80
            ),
        ),
        (
            "/* FORMAT a */ INSERT INTO t -- FORMAT b\nFORMAT TSV 1\t2\n",
            InsertData("/* FORMAT a */ INSERT INTO t -- FORMAT b", "TSV", 52),
        ),
    ],
)
def test_insert_data_starts_after_the_format_name_and_one_line_break(
    text: str, expected: InsertData
) -> None:
    assert find_insert_data(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "INSERT INTO t VALUES (1, 'FORMAT CSV')",
        "INSERT INTO t SELECT * FROM numbers(3)",
        "SELECT 1 FORMAT JSON",
        "CREATE TABLE t (format String) ENGINE = Memory",
    ],
)
def test_other_statements_carry_no_insert_data(text: str) -> None:
    assert find_insert_data(text) is None


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("INSERT INTO t", "INSERT INTO t\n{source}\nFORMAT Native"),
        (
            "INSERT INTO t (id, `settings`) -- the ids",
            "INSERT INTO t (id, `settings`) -- the ids\n{source}\nFORMAT Native",
        ),
        (
            "INSERT INTO settings SETTINGS insert_deduplication_token = 'SETTINGS a=1 SELECT'",
            "INSERT INTO settings\n{source}\n"
            "SETTINGS insert_deduplication_token = 'SETTINGS a=1 SELECT'\nFORMAT Native",
        ),
    ],
)
def test_insert_from_file_reads_the_file_before_the_settings_clause(
    statement: str, expected: str
) -> None:
    source = "FROM INFILE '/spool/it\\'s' COMPRESSION 'none'"
    assert insert_from_file(statement, "/spool/it's", "Native") == expected.format(source=source)


def test_insert_select_cannot_read_a_file() -> None:
    with pytest.raises(ClickHouseError) as raised:
        insert_from_file("INSERT INTO t SELECT x FROM input('x Int32')", "/spool/f", "CSV")
    assert raised.value.name == "NOT_IMPLEMENTED"


def test_output_format_is_the_trailing_format_clause_or_the_default() -> None:
    assert output_format("SELECT 1 FORMAT JSONEachRow;", "TabSeparated") == "JSONEachRow"
    assert output_format("SELECT 'FORMAT JSON'", "Native") == "Native"


def test_kill_query_matches_the_http_query_id_too() -> None:
    sql = "KILL QUERY WHERE query_id = 'q-1' SYNC"
    assert kill_by_http_query_id(sql, "log_comment") == (
        "KILL QUERY WHERE (query_id = 'q-1' OR Settings['log_comment'] = 'q-1') SYNC"
    )
    assert kill_by_http_query_id("SELECT query_id = 'x'", "log_comment") == "SELECT query_id = 'x'"
