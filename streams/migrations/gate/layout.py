"""The staging tables' parts: counted, merged fully, merges stopped and started.

Everything here is limited to the staging database's own tables: ``SYSTEM STOP MERGES`` without
a table would stop merges server-wide, for every other database on the server too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from streams.errors import UserError
from streams.migrations.render import quote_identifier


@dataclass(frozen=True)
class Parts:
    count: int
    rows: int
    bytes: int
    max_in_partition: int


def parts(client: Client) -> Parts:
    """The database's active parts: how many, their rows and bytes, the most in one partition."""
    count, rows, size, most = client.query(
        "SELECT count(), sum(rows), sum(bytes_on_disk), max(in_partition) FROM ("
        " SELECT rows, bytes_on_disk, count() OVER (PARTITION BY table, partition_id)"
        " AS in_partition FROM system.parts WHERE database = currentDatabase() AND active)"
    ).result_rows[0]
    return Parts(int(count), int(rows or 0), int(size or 0), int(most or 0))


def merge_tree_tables(client: Client) -> list[str]:
    rows = client.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine LIKE '%MergeTree%' ORDER BY name"
    ).result_rows
    return [str(row[0]) for row in rows]


def set_merges(client: Client, running: bool) -> None:
    """Stop or start background merges on this database's tables only (never server-wide)."""
    verb = "START" if running else "STOP"
    for table in merge_tree_tables(client):
        client.command(f"SYSTEM {verb} MERGES {quote_identifier(table)}")


def settle(client: Client, timeout: float = 120.0) -> None:
    """Merge every table down to one part per partition, so reads see the same layout on
    both databases whatever the timing. OPTIMIZE may do nothing while a background merge
    holds some parts, so it is repeated until the layout is reached."""
    deadline = time.monotonic() + timeout
    for table in merge_tree_tables(client):
        while True:
            client.command(f"OPTIMIZE TABLE {quote_identifier(table)} FINAL")
            if _most_parts_in_a_partition(client, table) <= 1:
                break
            if time.monotonic() > deadline:
                raise UserError(f"staging table {table} could not be merged fully in time.")
            time.sleep(0.2)


def _most_parts_in_a_partition(client: Client, table: str) -> int:
    rows = client.query(
        "SELECT count() AS n FROM system.parts WHERE database = currentDatabase() "
        "AND table = {table:String} AND active GROUP BY partition_id ORDER BY n DESC LIMIT 1",
        parameters={"table": table},
    ).result_rows
    return int(rows[0][0]) if rows else 0
