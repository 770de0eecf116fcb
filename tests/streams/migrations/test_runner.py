"""``migrate up`` on the real engine: from zero, twice, with edited files, failures and rivals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.clickhouse import sync_client
from streams.errors import UserError
from streams.migrations.lock import LockHeld
from streams.migrations.runner import MigrationFailed, Runner
from streams.settings import Settings
from tests.support.fleet import stored

pytestmark = pytest.mark.integration

BROKEN = """\
-- Statement 1 is not repeatable on purpose: a rerun that ran it again would fail.
CREATE TABLE extra (x UInt8) ENGINE = MergeTree ORDER BY x;
ALTER TABLE extra ADD COLUMN y NoSuchType;
ALTER TABLE extra ADD COLUMN z UInt8;
"""


def runner(settings: Settings, said: list[str] | None = None) -> Runner:
    return Runner(settings, (said if said is not None else []).append)


def ledger(settings: Settings) -> list[tuple[object, ...]]:
    return stored(settings, "SELECT version, name FROM schema_migrations ORDER BY version")


def test_up_applies_from_zero_then_a_second_up_is_a_no_op(target: Settings) -> None:
    said: list[str] = []
    applied = runner(target, said).up(99)
    assert [m.file for m in applied] == [
        "0001_readings.sql",
        "0002_latest.sql",
        "0003_readings_1m.sql",
        "0004_devices.sql",
        "0005_accounting.sql",
        "0006_device_partitions.sql",
        "0007_readings_input.sql",
    ]
    assert ledger(target) == [
        (1, "readings"),
        (2, "latest"),
        (3, "readings_1m"),
        (4, "devices"),
        (5, "accounting"),
        (6, "device_partitions"),
        (7, "readings_input"),
    ]
    tables = stored(target, "SELECT name FROM system.tables WHERE database = currentDatabase()")
    expected = {"readings", "latest", "latest_mv", "readings_1m", "devices", "device_partitions"}
    expected |= {"device_partitions", "device_partitions_mv", "readings_input", "readings_input_mv"}
    assert expected | {"dead_letters"} <= {t[0] for t in tables}
    assert (
        stored(target, "SELECT count() FROM schema_migrations_steps WHERE outcome = 'done'")[0][0]
        == 18
    )
    who = stored(target, "SELECT DISTINCT applied_by FROM schema_migrations")
    assert len(who) == 1
    assert f"pid {os.getpid()}" in str(who[0][0])

    again: list[str] = []
    assert runner(target, again).up(99) == []
    assert again == [f"database {target.clickhouse_database} is up to date (7 migrations)"]
    assert len(ledger(target)) == 7


def test_an_applied_file_that_changed_is_refused_by_name(target: Settings) -> None:
    runner(target).up(99)
    edited = target.migrations_dir / "0004_devices.sql"
    edited.write_text(edited.read_text().replace("Every device ever seen", "Each device seen"))
    with pytest.raises(UserError, match=r"0004_devices\.sql was changed after it was applied"):
        runner(target).up(99)


def test_a_failing_statement_is_named_recorded_and_resumed_after_the_fix(
    target: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = target.migrations_dir / "0099_broken.sql"
    broken.write_text(BROKEN)
    with pytest.raises(MigrationFailed) as failure:
        runner(target).up(99)
    message = str(failure.value)
    assert "0099_broken.sql, statement 2 of 3 failed" in message
    assert "NoSuchType" in message
    assert "ALTER TABLE extra ADD COLUMN y NoSuchType" in message
    assert "it resumes at statement 2" in message

    # Consistent: 0099 is not applied; statement 1 is recorded done, statement 2 failed.
    assert len(ledger(target)) == 7
    steps = stored(
        target,
        "SELECT statement, outcome, error != '' FROM schema_migrations_steps "
        "WHERE version = 99 ORDER BY statement",
    )
    assert steps == [(1, "done", False), (2, "failed", True)]
    status = {s.migration.version: s for s in runner(target).statuses()}[99]
    assert (status.state, status.done, status.remaining) == ("partial", {1}, [2, 3])
    _cli(target, monkeypatch, "status")
    out = capsys.readouterr().out
    assert "partial  1/3 statements ran; statement 2 failed" in out

    # A statement that ran may not change...
    broken.write_text(BROKEN.replace("ORDER BY x;", "ORDER BY tuple();"))
    with pytest.raises(UserError, match=r"0099_broken\.sql: statement 1 already ran"):
        runner(target).up(99)
    # ... the one that failed may: the rerun starts there (statement 1 again would fail).
    broken.write_text(BROKEN.replace("NoSuchType", "UInt16"))
    said: list[str] = []
    assert [m.version for m in runner(target, said).up(99)] == [99]
    assert said[0].startswith("resuming 0099_broken.sql at statement 2 of 3")
    columns = stored(
        target,
        "SELECT name FROM system.columns WHERE table = 'extra' AND database = currentDatabase()",
    )
    assert [c[0] for c in columns] == ["x", "y", "z"]


def test_two_concurrent_up_runs_apply_each_migration_once(target: Settings) -> None:
    # A slow last migration keeps the first runner busy while the second one arrives.
    (target.migrations_dir / "0099_pause.sql").write_text("SELECT sleep(2);\n")
    env = {**os.environ, **target.to_env(), "STREAMGAUGE_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "streams.cli", "migrate", "up"]
    runs = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    shipped = sorted(int(path.name[:4]) for path in target.migrations_dir.glob("*.sql"))
    assert [v for v, _ in ledger(target)] == shipped, outputs
    assert shipped[-1] == 99
    steps = stored(
        target,
        "SELECT version, statement, count(), uniqExact(by) FROM schema_migrations_steps "
        "GROUP BY version, statement ORDER BY version, statement",
    )
    assert all(count == 1 for _, _, count, _ in steps), steps
    runners = stored(target, "SELECT uniqExact(by) FROM schema_migrations_steps")[0][0]
    assert runners == 1, "one runner applied everything; the other waited or found it done"
    assert sum("applied 0099_pause.sql" in out for out in outputs) == 1, outputs
    print(*outputs, sep="\n---\n")


def test_a_held_lock_names_its_holder_and_can_be_broken_deliberately(
    target: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = runner(target)
    holder.ensure()
    lock = holder.lock("a runner that died")
    lock.acquire(0)

    with pytest.raises(LockHeld) as held:
        runner(target).up(lock_wait=0.6)
    message = str(held.value)
    assert "held by" in message
    assert "(a runner that died)" in message
    assert f"pid {os.getpid()}" in message
    assert "streamgauge migrate unlock" in message
    assert ledger(target) == []

    _cli(target, monkeypatch, "status")
    assert "lock: held by" in capsys.readouterr().out

    said: list[str] = []
    shipped = len(list(target.migrations_dir.glob("*.sql")))
    assert len(runner(target, said).up(5, break_lock=True)) == shipped
    assert said[0].startswith("cleared the migration lock held by")
    assert not lock.still_mine()
    assert lock.holder() is None, "the breaking runner released the lock when done"

    lock.acquire(0)
    _cli(target, monkeypatch, "unlock")
    assert "cleared the migration lock held by" in capsys.readouterr().out
    assert lock.holder() is None


def _cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, *action: str) -> int:
    from streams.cli import main

    monkeypatch.setenv("STREAMGAUGE_CLICKHOUSE_DATABASE", settings.clickhouse_database)
    monkeypatch.setenv("STREAMGAUGE_MIGRATIONS_DIR", str(settings.migrations_dir))
    return main(["migrate", *action])


def test_status_of_a_database_that_does_not_exist(
    local_stack: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = Settings(
        clickhouse_database="no_such_database_here", migrations_dir=local_stack.migrations_dir
    )
    assert _cli(missing, monkeypatch, "status") == 0
    out = capsys.readouterr().out
    assert "does not exist yet" in out
    assert "0004 devices" in out
    assert "no_such_database_here" not in str(
        sync_client(local_stack, database="default").query("SHOW DATABASES").result_rows
    )
