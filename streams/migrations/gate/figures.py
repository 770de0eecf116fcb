"""The gate's figures, from the workload's measurements: what is compared, and how.

Reads give, per query, its p95 latency (a timing, with the back-to-back pairs' ratios) and the
rows it reads (exact). Inserts give their throughput (a timing) and, measured with merges
stopped, parts per batch, rows and bytes written per row inserted, and the parts piled up in
the fullest partition (all exact). docs/migrations.md explains what each one catches.
"""

from __future__ import annotations

from collections.abc import Callable

from streams.migrations.gate.inserts import InsertRound
from streams.migrations.gate.reads import QueryRound
from streams.migrations.gate.report import Figure, Report


def read_figures(reads: list[dict[str, dict[str, QueryRound]]], report: Report) -> list[Figure]:
    figures = []
    for name in reads[0]["before"]:
        before = [r["before"][name] for r in reads]
        after = [r["after"][name] for r in reads]
        if any(q.error for q in before):
            report.notes.append(f"read {name} fails before the migrations: {before[0].error}")
            continue
        failed = next((q.error for q in after if q.error), "")
        if failed:
            report.failures.append(f"read {name} fails after the migrations: {failed}")
            continue
        pairs = [
            a / b
            for rb, ra in zip(before, after, strict=True)
            for b, a in zip(rb.seconds, ra.seconds, strict=True)
            if b > 0
        ]
        figures += [
            Figure(
                f"read {name} p95",
                "ms",
                "timing",
                "lower",
                tuple(q.p95_ms for q in before),
                tuple(q.p95_ms for q in after),
                tuple(pairs),
            ),
            Figure(
                f"read {name} rows read",
                "rows",
                "exact",
                "lower",
                tuple(float(q.rows_read) for q in before),
                tuple(float(q.rows_read) for q in after),
            ),
        ]
    return figures


def insert_figures(inserts: list[dict[str, InsertRound]]) -> list[Figure]:
    if not inserts:
        return []

    def rounds(side: str, value: Callable[[InsertRound], float]) -> tuple[float, ...]:
        return tuple(value(r[side]) for r in inserts)

    def exact(name: str, unit: str, value: Callable[[InsertRound], float]) -> Figure:
        return Figure(name, unit, "exact", "lower", rounds("before", value), rounds("after", value))

    def throughput(r: InsertRound) -> float:
        return r.rows_per_second

    pairs = [
        a / b
        for r in inserts
        for b, a in zip(r["before"].batch_seconds, r["after"].batch_seconds, strict=True)
        if b > 0
    ]
    return [
        Figure(
            "insert throughput",
            "rows/s",
            "timing",
            "higher",
            rounds("before", throughput),
            rounds("after", throughput),
            tuple(pairs),
        ),
        exact("insert parts per batch", "parts", lambda r: r.parts / r.batches),
        exact("insert rows written per row", "rows", lambda r: r.rows_written / r.rows),
        exact("insert bytes written per row", "bytes", lambda r: r.bytes_written / r.rows),
        Figure(  # after the last round: merges were stopped, so the parts piled up
            "insert parts in the fullest partition",
            "parts",
            "exact",
            "lower",
            (inserts[-1]["before"].max_partition_parts,),
            (inserts[-1]["after"].max_partition_parts,),
        ),
    ]
