"""``streamgauge migrate check``: the staging step that catches performance regressions.

1. Read what the target applied (read-only: nothing is written to the target).
2. Staging: two scratch databases at the target's schema, loaded with the same data set.
3. The pending migrations on *after* (a failure here fails the gate).
4. Both fully merged; the read workload, then the insert workload, interleaved, in rounds.
5. Figures judged (report.py), table printed, JSON written, exit 1 on a regression.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from clickhouse_connect.driver.client import Client

from streams.clickhouse import sync_client
from streams.errors import UserError
from streams.migrations.gate.dataset import Dataset, DatasetSpec, sample_batches
from streams.migrations.gate.figures import insert_figures, read_figures
from streams.migrations.gate.inserts import Inserter, InsertRound
from streams.migrations.gate.layout import set_merges, settle
from streams.migrations.gate.read_queries import workload
from streams.migrations.gate.reads import read_round
from streams.migrations.gate.report import Report, judge
from streams.migrations.gate.staging import Staging
from streams.migrations.runner import MigrationFailed, Runner, Status, refuse_changed
from streams.settings import Settings

Say = Callable[[str], None]


@dataclass(frozen=True)
class CheckOptions:
    keep_staging: bool = False


def check(settings: Settings, options: CheckOptions, say: Say = print) -> int:
    """Run the gate, print and write its report; the exit status (1: regressed)."""
    report = run(settings, options, say)
    if report.judgements:
        say("")
        say(report.table())
    say("")
    say(report.summary())
    path = settings.migrations_check_report
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    except OSError as error:
        raise UserError(
            f"cannot write the report to {path} ({error.strerror}); pass --report PATH."
        ) from None
    say(f"report: {path}")
    return report.exit_code


def run(settings: Settings, options: CheckOptions, say: Say) -> Report:
    spec = _spec(settings)
    runner = Runner(settings, say)
    statuses = runner.statuses() if runner.database_exists() else _all_pending(runner)
    refuse_changed(statuses)
    pending = [s for s in statuses if s.state != "applied"]
    report = Report(threshold=settings.migrations_check_threshold)
    report.target = {
        "server": f"{settings.clickhouse_host}:{settings.clickhouse_port}",
        "database": settings.clickhouse_database,
        "cluster": settings.clickhouse_cluster,
    }
    report.pending = [s.migration.file for s in pending]
    if not pending:
        report.verdict = "nothing-pending"
        return report
    if not settings.migrations_staging_url and not settings.migrations_check_on_target:
        raise UserError(
            "`migrate check` needs a server to load its synthetic workload on: set "
            "STREAMGAUGE_MIGRATIONS_STAGING_URL, or pass --on-target "
            "(STREAMGAUGE_MIGRATIONS_CHECK_ON_TARGET=true) to load this one, "
            f"{settings.clickhouse_host}:{settings.clickhouse_port}."
        )
    say(f"checking {len(pending)} pending migration(s): {', '.join(report.pending)}")
    report.dataset = {**asdict(spec), "rows": spec.rows}
    staging = Staging(settings)
    report.staging = {
        "server": staging.address,
        "before": staging.before.clickhouse_database,
        "after": staging.after.clickhouse_database,
    }
    if settings.clickhouse_cluster and not settings.migrations_staging_url:
        report.notes.append(
            "the target is a cluster and staging runs on its address: if that address balances "
            "over replicas, set STREAMGAUGE_MIGRATIONS_STAGING_URL to one replica's address"
        )
        say(f"note: {report.notes[-1]}")
    staging.create()
    say(f"staging: {staging.before.clickhouse_database} and _after on {staging.address}")
    try:
        _gate(settings, staging, statuses, pending, Dataset(spec), report, say)
    finally:
        if options.keep_staging:
            say("staging databases kept (--keep-staging)")
        else:
            staging.drop()
    report.decide()
    return report


def _all_pending(runner: Runner) -> list[Status]:
    return [Status(m, "pending") for m in runner.migrations]


def _spec(settings: Settings) -> DatasetSpec:
    for name in ("devices", "metrics", "messages", "batch_rows", "batches", "rounds", "repeats"):
        if getattr(settings, f"migrations_check_{name}") < 1:
            variable = f"STREAMGAUGE_MIGRATIONS_CHECK_{name.upper()}"
            raise UserError(f"{variable} (--{name.replace('_', '-')}) must be at least 1.")
    return DatasetSpec(
        devices=settings.migrations_check_devices,
        metrics=settings.migrations_check_metrics,
        messages=settings.migrations_check_messages,
        batch_rows=settings.migrations_check_batch_rows,
        batches=settings.migrations_check_batches,
        rounds=settings.migrations_check_rounds,
    )


def _gate(
    settings: Settings,
    staging: Staging,
    statuses: list[Status],
    pending: list[Status],
    dataset: Dataset,
    report: Report,
    say: Say,
) -> None:
    started = time.monotonic()
    applied = staging.baseline(statuses)
    if applied:
        report.phases["schema"] = round(time.monotonic() - started, 3)
        say(f"schema: both databases at the target's ({applied} migrations)")
    else:
        report.verdict = "no-baseline"
        if _migrate(staging, pending, report, say):
            asyncio.run(_load({"after": staging.after}, dataset, settings, 0, say))
        return
    with _phase(report, "load", say):
        sample = settings.migrations_check_sample_rows
        asyncio.run(_load(staging.sides, dataset, settings, sample, say))
    if not _migrate(staging, pending, report, say):
        return
    clients = {side: staging.client(side) for side in staging.sides}
    with _phase(report, "merge: both databases fully merged (OPTIMIZE FINAL)", say):
        for client in clients.values():
            settle(client)
    queries = workload(dataset)
    rounds = settings.migrations_check_rounds
    repeats = settings.migrations_check_repeats
    with _phase(report, f"reads: {rounds} rounds x {repeats} runs of {len(queries)} queries", say):
        reads = [read_round(clients, queries, repeats) for _ in range(rounds)]
    batches = dataset.spec.batches
    with _phase(report, f"inserts: {rounds} rounds x {batches} batches, merges stopped", say):
        for client in clients.values():
            set_merges(client, running=False)
        try:
            inserts = asyncio.run(_insert_rounds(staging, dataset, clients, rounds, report))
        finally:
            for client in clients.values():
                set_merges(client, running=True)
    report.judgements = [
        judge(figure, report.threshold)
        for figure in [*read_figures(reads, report), *insert_figures(inserts)]
    ]


@contextlib.contextmanager
def _phase(report: Report, name: str, say: Say) -> Iterator[None]:
    started = time.monotonic()
    yield
    seconds = time.monotonic() - started
    report.phases[name.split(":")[0]] = round(seconds, 3)
    say(f"{name}: {seconds:.1f} s")


def _migrate(staging: Staging, pending: list[Status], report: Report, say: Say) -> bool:
    try:
        report.migration_seconds = staging.migrate(pending)
    except MigrationFailed as error:
        report.failures.append(f"on staging: {error}")
        report.verdict = "regressed"
        return False
    say(f"pending migration(s) applied to _after in {report.migration_seconds:.2f} s")
    return True


async def _load(
    sides: dict[str, Settings], dataset: Dataset, settings: Settings, sample: int, say: Say
) -> None:
    spec = dataset.spec
    async with Inserter(sides) as inserter:
        rows = await inserter.load(dataset.load())
        say(
            f"loaded {rows:,} readings ({spec.devices} devices x {spec.metrics} metrics x "
            f"{spec.messages} messages) into {' and '.join(sides)}, through the sink"
        )
        if sample:
            target = sync_client(settings)
            copied = await inserter.load(sample_batches(target, sample, spec.batch_rows))
            say(f"copied {copied:,} recent readings of the target into {' and '.join(sides)}")


async def _insert_rounds(
    staging: Staging,
    dataset: Dataset,
    clients: dict[str, Client],
    rounds: int,
    report: Report,
) -> list[dict[str, InsertRound]]:
    results = []
    async with Inserter(staging.sides) as inserter:
        for _ in range(rounds):
            try:
                results.append(await inserter.insert_round(dataset.workload_round(), clients))
            except UserError as error:
                report.failures.append(str(error))
                return []
            lost = _lost_rows(results[-1])
            if lost:
                report.failures.append(lost)
                return []
    return results


def _lost_rows(round_: dict[str, InsertRound]) -> str:
    """An acknowledged insert must store its rows (``readings`` alone keeps every one)."""
    for side, result in round_.items():
        if result.rows_written < result.rows:
            return (
                f"inserts into readings of the {side} database were acknowledged but stored "
                f"{result.rows_written:,} rows in all tables for {result.rows:,} inserted"
            )
    return ""
