"""The read workload: every query on both staging databases, run by run, alternating sides.

Running the same query on *before* and on *after* back to back, and alternating which goes
first, puts both under the same machine noise; what differs is the schema. The rows a run
reads come from ClickHouse's query summary (``X-ClickHouse-Summary``: ``read_rows``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client

from streams.migrations.gate.read_queries import Query
from streams.migrations.runner import server_message

SIDES = ("before", "after")


@dataclass
class QueryRound:
    """One query on one database over one round: latencies, and what a run reads."""

    seconds: list[float] = field(default_factory=list)
    rows_read: int = 0
    error: str = ""

    @property
    def p95_ms(self) -> float:
        ranked = sorted(self.seconds)
        return ranked[max(0, -(-95 * len(ranked) // 100) - 1)] * 1000 if ranked else 0.0


def read_round(
    clients: dict[str, Client], queries: list[Query], repeats: int
) -> dict[str, dict[str, QueryRound]]:
    """side -> query name -> its round; every run alternates which side goes first."""
    rounds = {side: {q.name: QueryRound() for q in queries} for side in SIDES}
    for repeat in range(repeats):
        for query in queries:
            parameters = query.parameters[repeat % len(query.parameters)]
            first_time = repeat < len(query.parameters)
            order = SIDES if repeat % 2 == 0 else SIDES[::-1]
            for side in order:
                _run(clients[side], query, parameters, rounds[side][query.name], first_time)
    return rounds


def _run(
    client: Client, query: Query, parameters: dict[str, Any], out: QueryRound, count: bool
) -> None:
    if out.error:
        return
    started = time.perf_counter()
    try:
        result = client.query(query.sql, parameters=parameters)
    except Exception as error:
        out.error = server_message(error)
        return
    out.seconds.append(time.perf_counter() - started)
    if count:  # rows read: the sum over one run of each parameter set
        summary = result.summary or {}
        out.rows_read += int(summary.get("read_rows", 0))
