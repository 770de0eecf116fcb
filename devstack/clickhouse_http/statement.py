"""The statements this server must look into: INSERT with data, KILL QUERY, the FORMAT clause."""

from __future__ import annotations

import re
from dataclasses import dataclass

from devstack.clickhouse_http.errors import NOT_IMPLEMENTED, ClickHouseError

_SKIPPED = r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*"  # whitespace and comments
_STARTS_WITH_INSERT = re.compile(_SKIPPED + r"INSERT\b", re.I | re.S)
_STARTS_WITH_KILL_QUERY = re.compile(_SKIPPED + r"KILL\s+QUERY\b", re.I | re.S)
# Literals, quoted names and comments are matched whole so that a keyword inside them is skipped.
_QUOTED_OR_COMMENT = r"""'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*"|--[^\n]*|/\*.*?\*/"""
_TOKENS = re.compile(_QUOTED_OR_COMMENT + r"|\b(?P<keyword>FORMAT|VALUES)\b", re.I | re.S)
# In an INSERT without its FORMAT clause: SELECT, and a SETTINGS clause (a setting's name and "="
# follow the keyword, which tells it from a table named settings).
_INSERT_HEAD = re.compile(
    _QUOTED_OR_COMMENT + r"|\b(?P<keyword>SELECT\b|SETTINGS(?=\s+\w+\s*=))", re.I | re.S
)
# As in ClickHouse's ParserInsertQuery: the data starts after the format name, blanks and at most
# one line break.
_FORMAT_NAME = re.compile(r"\s+(\w+)[ \t\f]*(?:\r?\n)?")
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.I)
_QUERY_ID_EQUALS = re.compile(r"\bquery_id\s*=\s*('(?:[^'\\]|\\.)*')", re.I)


@dataclass(frozen=True)
class InsertData:
    """``INSERT INTO t [(columns)] [SETTINGS ...] FORMAT <format>`` followed by its data."""

    statement: str  # without the FORMAT clause
    format: str
    data_start: int  # offset of the data in the scanned text


def find_insert_data(text: str) -> InsertData | None:
    """Split an INSERT that carries data in a named format; None for any other statement."""
    if not _STARTS_WITH_INSERT.match(text):
        return None
    for token in _TOKENS.finditer(text):
        keyword = token.group("keyword")
        if keyword is None:
            continue
        if keyword.upper() == "VALUES":
            return None  # VALUES data is SQL: the engine parses it with the statement
        name = _FORMAT_NAME.match(text, token.end())
        if name is None:
            return None
        return InsertData(text[: token.start()].rstrip(), name.group(1), name.end())
    return None


def insert_from_file(statement: str, path: str, fmt: str) -> str:
    """``INSERT INTO t [(columns)] [SETTINGS ...]`` reading its data, in ``fmt``, from ``path``.

    ``FROM INFILE`` runs the same insert as data after FORMAT; it must precede SETTINGS.
    """
    cut = len(statement)
    for token in _INSERT_HEAD.finditer(statement):
        keyword = token.group("keyword")
        if keyword is None:
            continue
        if keyword.upper() == "SELECT":
            # chDB would accept FROM INFILE here and ignore the file.
            raise ClickHouseError(
                NOT_IMPLEMENTED,
                "INSERT ... SELECT with data (the input() table function) is not supported by the "
                "local ClickHouse; send the data with INSERT INTO t FORMAT <format>",
            )
        cut = min(cut, token.start())
    source = f"FROM INFILE {quote_literal(path)} COMPRESSION 'none'"
    # A clause a line, lest a trailing -- comment swallow the next one.
    clauses = [statement[:cut], source, statement[cut:], f"FORMAT {fmt}"]
    return "\n".join(clause.strip() for clause in clauses if clause.strip())


def output_format(sql: str, default: str) -> str:
    """The format a result is written in: the query's FORMAT clause, else the default."""
    match = _TRAILING_FORMAT.search(sql)
    return match.group(1) if match else default


def kill_by_http_query_id(sql: str, marker_setting: str) -> str:
    """Make ``KILL QUERY WHERE query_id = 'x'`` find queries by the id their HTTP request gave.

    chDB names its queries itself, so the server records each request's query id in
    ``marker_setting``; ``system.processes.Settings`` shows it while the query runs.
    """
    if not _STARTS_WITH_KILL_QUERY.match(sql):
        return sql
    return _QUERY_ID_EQUALS.sub(
        lambda m: f"(query_id = {m[1]} OR Settings['{marker_setting}'] = {m[1]})", sql
    )


def quote_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
