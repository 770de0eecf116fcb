"""``streamgauge migrate status|plan|up|unlock|check|users``: versioned ClickHouse migrations,
and the users of each role."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from streams.migrations import users
from streams.migrations.files import first_line, load
from streams.migrations.gate.check import CheckOptions, check
from streams.migrations.render import Renderer
from streams.migrations.runner import Runner, Status
from streams.settings import Settings

_DESCRIPTION = """\
Versioned, checksummed ClickHouse migrations: schemas/clickhouse/NNNN_name.sql, applied in
order and recorded in schema_migrations (who, when, how long) and schema_migrations_steps
(statement by statement). An applied file that changed is refused by name. With
STREAMGAUGE_CLICKHOUSE_CLUSTER set, statements are rendered for a replicated cluster (ON CLUSTER,
Replicated engines). Exit status: 0 done, 1 error (or, for `check`, a regression).
Guide: docs/migrations.md."""

_CHECK = """\
Prove the pending migrations are safe for performance before `up` runs them: two scratch
databases on a staging server (STREAMGAUGE_MIGRATIONS_STAGING_URL, else the target server) are
brought to the target's current schema and loaded with the same data set; the pending
migrations are applied to one of them; the same workload (inserts through the workers' sink,
the read API's and analysts' queries) runs on both, interleaved, in several rounds. Prints a
before/after/ratio table, writes it as JSON, and exits 1 when a figure regressed beyond the
threshold (rows read, parts and rows written per insert need no noise allowance; timings must
be worse in every round and by more than their spread), 0 otherwise. Needs no TTY."""


_USERS = """\
Create the roles of docs/clickhouse-users.md (migrate, ingest, api, analyst: grants, settings
profiles, quotas) and a user for each component whose password is set:
STREAMGAUGE_CLICKHOUSE_MIGRATE_PASSWORD (user streamgauge_migrate), _INGEST_PASSWORD
(streamgauge_ingest, the workers), _API_PASSWORD (streamgauge_api, the read API). Runs as
STREAMGAUGE_CLICKHOUSE_USER, which needs access_management. Idempotent: what exists is kept,
but a user's password follows its setting.

example:
  STREAMGAUGE_CLICKHOUSE_USER=admin STREAMGAUGE_CLICKHOUSE_PASSWORD=... \\
  STREAMGAUGE_CLICKHOUSE_INGEST_PASSWORD=... STREAMGAUGE_CLICKHOUSE_API_PASSWORD=... \\
      streamgauge migrate users"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="apply, inspect or check the ClickHouse migrations in schemas/clickhouse/",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    status = actions.add_parser(
        "status", help="every migration's state (applied, pending, partial, changed) and the lock"
    )
    plan = actions.add_parser("plan", help="print the SQL `up` would run, rendered for the target")
    plan.add_argument(
        "--all",
        action="store_true",
        help="print every migration, without asking the server what is applied",
    )
    up = actions.add_parser("up", help="create the database if needed, apply pending migrations")
    up.add_argument(
        "--break-lock",
        action="store_true",
        help="clear another runner's lock first (only when that runner is gone)",
    )
    up.add_argument(
        "--lock-wait",
        type=float,
        metavar="SECONDS",
        help="wait this long for another runner's lock (STREAMGAUGE_MIGRATIONS_LOCK_WAIT_SECONDS)",
    )
    actions.add_parser("unlock", help="clear the migration lock, showing who held it and since")
    users = actions.add_parser(
        "users",
        help="create the roles and a ClickHouse user per component (as an administrator)",
        description=_USERS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    users.add_argument(
        "--print",
        dest="print_sql",
        action="store_true",
        help="print the SQL, with placeholders for the passwords, instead of running it",
    )
    gate = actions.add_parser(
        "check",
        help="the staging gate: exit 1 if pending migrations make ingestion or queries slower",
        description=_CHECK,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _check_arguments(gate)
    users.add_argument(
        "--database",
        metavar="NAME",
        help="the database granted on (STREAMGAUGE_CLICKHOUSE_DATABASE)",
    )
    for action in (status, plan, up, actions.choices["unlock"], gate):
        _common_arguments(action)
    parser.set_defaults(handler=run)


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", type=Path, metavar="PATH", help="migrations directory (STREAMGAUGE_MIGRATIONS_DIR)"
    )
    parser.add_argument(
        "--database", metavar="NAME", help="target database (STREAMGAUGE_CLICKHOUSE_DATABASE)"
    )
    parser.add_argument(
        "--cluster",
        metavar="NAME",
        help="render for this replicated cluster (STREAMGAUGE_CLICKHOUSE_CLUSTER)",
    )


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    option = parser.add_argument
    option("--report", type=Path, metavar="PATH", help="JSON report (MIGRATIONS_CHECK_REPORT)")
    option("--threshold", type=float, metavar="X", help="0.2 = 20%% worse fails (..._THRESHOLD)")
    option(
        "--staging-url",
        metavar="URL",
        help="staging server (MIGRATIONS_STAGING_URL; with a password, prefer the variable: "
        "arguments are visible to every user of the machine)",
    )
    option("--devices", type=int, metavar="N", help="synthetic devices (..._CHECK_DEVICES)")
    option("--metrics", type=int, metavar="N", help="metrics per device (..._CHECK_METRICS)")
    option("--messages", type=int, metavar="N", help="messages per device (..._CHECK_MESSAGES)")
    option(
        "--sample-rows", type=int, metavar="N", help="recent target rows (..._CHECK_SAMPLE_ROWS)"
    )
    option("--batch-rows", type=int, metavar="N", help="rows per insert (..._CHECK_BATCH_ROWS)")
    option("--batches", type=int, metavar="N", help="inserts per round (..._CHECK_BATCHES)")
    option("--rounds", type=int, metavar="N", help="workload rounds (..._CHECK_ROUNDS)")
    option("--repeats", type=int, metavar="N", help="runs per query per round (..._REPEATS)")
    option(
        "--keep-staging",
        action="store_true",
        help="keep the two scratch databases afterwards, to look into them",
    )
    option(
        "--on-target",
        action="store_true",
        default=None,
        help="without a staging URL, load the target server itself with the synthetic "
        "workload (..._CHECK_ON_TARGET)",
    )
    parser.epilog = (
        "Settings in parentheses are STREAMGAUGE_MIGRATIONS_*; "
        "`streamgauge --help-settings` lists them with their defaults."
    )


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {
        "migrations_dir": getattr(args, "dir", None),
        "clickhouse_database": args.database,
        "clickhouse_cluster": getattr(args, "cluster", None),
        "migrations_lock_wait_seconds": getattr(args, "lock_wait", None),
        "migrations_check_report": getattr(args, "report", None),
        "migrations_check_threshold": getattr(args, "threshold", None),
        "migrations_staging_url": getattr(args, "staging_url", None),
        "migrations_check_on_target": getattr(args, "on_target", None),
        "migrations_check_devices": getattr(args, "devices", None),
        "migrations_check_metrics": getattr(args, "metrics", None),
        "migrations_check_messages": getattr(args, "messages", None),
        "migrations_check_sample_rows": getattr(args, "sample_rows", None),
        "migrations_check_batch_rows": getattr(args, "batch_rows", None),
        "migrations_check_batches": getattr(args, "batches", None),
        "migrations_check_rounds": getattr(args, "rounds", None),
        "migrations_check_repeats": getattr(args, "repeats", None),
    }
    return Settings.from_env(**overrides)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.action == "plan" and args.all:
        everything = [Status(m, "pending") for m in load(settings.migrations_dir)]
        return print_plan(Renderer(settings.clickhouse_cluster), everything)
    if args.action == "check":
        return check(settings, CheckOptions(keep_staging=args.keep_staging))
    if args.action == "users":
        return print_users(settings) if args.print_sql else create_users(settings)
    runner = Runner(settings)
    if args.action == "up":
        runner.up(settings.migrations_lock_wait_seconds, break_lock=args.break_lock)
    elif args.action == "unlock":
        runner.unlock()
    elif args.action == "plan":
        exists = runner.database_exists()
        todo = runner.todo() if exists else [Status(m, "pending") for m in runner.migrations]
        return print_plan(runner.renderer, todo)
    else:
        return print_status(runner)
    return 0


def print_users(settings: Settings) -> int:
    for statement in users.statements(settings, placeholders=True):
        print(statement + ";")
    return 0


def create_users(settings: Settings) -> int:
    made = users.create(settings)
    print(
        f"roles of database {settings.clickhouse_database}: "
        + ", ".join(user.role for user in users.USERS)
        + ", streamgauge_analyst_role"
    )
    for user in made:
        print(f"user {user.name}: {user.role}")
    missing = [user.variable for user in users.USERS if user not in made]
    if missing:
        print("no user for " + ", ".join(missing) + " (unset)")
    return 0


def print_plan(renderer: Renderer, todo: list[Status]) -> int:
    """The statements `up` would run, as it would send them."""
    target = f"cluster {renderer.cluster!r}" if renderer.clustered else "a single server"
    print(f"-- rendered for {target}")
    if not todo:
        print("-- nothing to do: every migration is applied")
    for status in todo:
        migration = status.migration
        note = f", resumes at statement {status.remaining[0]}" if status.state == "partial" else ""
        print(f"\n-- {migration.file} ({status.state}{note}; sha256 {migration.checksum[:12]})")
        for index in status.remaining:
            print(f"-- statement {index} of {len(migration.statements)}")
            print(renderer.render(migration.statements[index - 1]) + ";")
    return 0


def print_status(runner: Runner) -> int:
    settings = runner.settings
    mode = f"cluster {settings.clickhouse_cluster!r}" if settings.clickhouse_cluster else "server"
    where = f"{settings.clickhouse_host}:{settings.clickhouse_port}"
    print(f"database {settings.clickhouse_database} on {mode} {where}")
    if not runner.database_exists():
        print("the database does not exist yet: every migration is pending")
        for migration in runner.migrations:
            print(f"{migration.version:04d} {migration.name:28} pending")
        return 0
    print(f"{'version':7} {'name':28} {'state':8} {'applied (UTC)':19}  {'took':>8}  by")
    for status in runner.statuses():
        print(_status_line(status))
    known = {m.version for m in runner.migrations}
    for version, applied in sorted(runner.ledger.applied().items()):
        if version not in known:
            print(f"{version:04d}    {applied.name:28} applied, but its file is missing")
    holder = runner.lock("status").holder()
    print(f"lock: {'free' if holder is None else 'held by ' + holder.describe()}")
    return 0


def _status_line(status: Status) -> str:
    migration = status.migration
    head = f"{migration.version:04d}    {migration.name:28} {status.state:8}"
    if status.applied is not None and status.state == "applied":
        applied = status.applied
        took = f"{applied.duration_ms / 1000:.2f} s"
        return f"{head} {applied.applied_at:%Y-%m-%d %H:%M:%S}  {took:>8}  {applied.applied_by}"
    if status.state == "changed":
        return f"{head} {status.problem}"
    total = len(migration.statements)
    detail = f"{len(status.done)}/{total} statements ran" if status.done else ""
    failure = status.progress.failure
    if failure is not None:
        detail += (
            f"{'; ' if detail else ''}statement {failure.statement} failed "
            f"{failure.at:%Y-%m-%d %H:%M:%S}: {first_line(failure.error, 160)}"
        )
    return f"{head} {detail}".rstrip()
