"""``migrate check`` catches what it exists for: harmful migrations fail it, harmless ones pass.

Small data (the verdicts rest on exact figures: rows read, parts and rows written per insert),
so each run takes seconds. The workload runs on a private staging server (the shared local
ClickHouse is busy with everyone's tests); the last test uses scratch databases on the target
server, the gate's other way of running.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.clickhouse_local import LocalClickHouse
from streams.cli import main
from streams.clickhouse import sync_client
from streams.errors import UserError
from streams.migrations.runner import Runner
from streams.settings import Settings
from tests.support.migrations import migrations_dir

pytestmark = pytest.mark.integration

SMALL = [
    *("--devices", "100", "--messages", "150", "--batch-rows", "1000", "--batches", "3"),
    *("--rounds", "3", "--repeats", "3"),
]


@pytest.fixture(scope="module")
def staging_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private local ClickHouse, as a separate staging server (its URL)."""
    server = _start(tmp_path_factory)
    try:
        yield f"http://default:staging@127.0.0.1:{server.port}"
    finally:
        server.daemon.stop()


def _start(tmp_path_factory: pytest.TempPathFactory, attempts: int = 2) -> LocalClickHouse:
    """Started on a free port; once more on another if that one was taken in between."""
    for attempt in range(attempts):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        server = LocalClickHouse(tmp_path_factory.mktemp("staging"), port=port, password="staging")
        server.start()
        try:
            server.daemon.wait_ready(server.ready, timeout=60)
            return server
        except UserError:
            server.daemon.stop()
            if attempt + 1 == attempts:
                raise
    raise AssertionError("unreachable")


def check(
    target: Settings,
    directory: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *extra: str,
) -> tuple[int, dict[str, Any]]:
    Runner(target, lambda _line: None).up(5)  # the target: the shipped migrations applied
    monkeypatch.setenv("STREAMGAUGE_CLICKHOUSE_DATABASE", target.clickhouse_database)
    report = tmp_path / "report.json"
    code = main(
        ["migrate", "check", "--dir", str(directory), "--report", str(report), *SMALL, *extra]
    )
    return code, json.loads(report.read_text())


def timings_only(report: dict[str, Any]) -> bool:
    """Every figure the gate found regressed is a timing (none of the exact ones)."""
    kinds = {f["name"]: f["kind"] for f in report["figures"]}
    return all(kinds[name] == "timing" for name in report["regressed"])


def figure(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in report["figures"] if f["name"] == name)


def scratch_databases(target: Settings) -> list[str]:
    rows = sync_client(target, database="default").query(
        "SELECT name FROM system.databases WHERE startsWith(name, {p:String})",
        parameters={"p": f"{target.clickhouse_database}_check_"},
    )
    return [str(row[0]) for row in rows.result_rows]


def test_a_migration_that_re_sorts_readings_by_time_fails_the_gate(
    target: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    staging_server: str,
) -> None:
    directory = migrations_dir(tmp_path, "harmful")
    code, report = check(target, directory, tmp_path, monkeypatch, "--staging-url", staging_server)
    out = capsys.readouterr().out
    assert code == 1, out
    assert report["verdict"] == "regressed"
    assert report["pending"] == ["0099_readings_by_time.sql"]
    assert "read analyst_device_day rows read" in report["regressed"]
    assert "read api_series_raw rows read" in report["regressed"]
    assert figure(report, "read analyst_device_day rows read")["worse"] > 2
    assert "verdict: REGRESSED: read api_series_raw rows read" in out
    assert figure(report, "read api_latest rows read")["ratio"] == 1.0


def test_a_view_that_doubles_every_insert_fails_the_gate(
    target: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, staging_server: str
) -> None:
    directory = migrations_dir(tmp_path, "harmful_view")
    code, report = check(target, directory, tmp_path, monkeypatch, "--staging-url", staging_server)
    assert code == 1
    assert "insert rows written per row" in report["regressed"]
    assert "insert parts per batch" in report["regressed"]
    assert all(f["ratio"] == 1.0 for f in report["figures"] if f["name"].endswith("rows read"))


def test_a_new_column_with_a_default_passes_the_gate_on_a_staging_server(
    target: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    staging_server: str,
) -> None:
    Runner(target, lambda _line: None).up(5)
    sync_client(target).command(  # recent rows on the target, for --sample-rows to copy
        "INSERT INTO readings (device_id, metric, event_time, value, seq, firmware, site) "
        "SELECT 'prod-' || toString(number % 20), 'temperature_c', now64(3) - number, "
        "number, number, 'fw', 'site' FROM numbers(3000)"
    )
    arguments = ("--staging-url", staging_server, "--sample-rows", "2000")
    directory = migrations_dir(tmp_path, "harmless")
    code, report = check(target, directory, tmp_path, monkeypatch, *arguments)
    for _ in range(2):
        if code == 0 or report["failures"] or not timings_only(report):
            break
        # 2 shared cores, busy with the rest of the suite, can slow one query in every round
        # of a small run (a different query each time): measure again
        code, report = check(target, directory, tmp_path, monkeypatch, *arguments)
    out = capsys.readouterr().out
    assert code == 0, out
    assert report["verdict"] == "ok"
    assert report["regressed"] == []
    assert report["failures"] == []
    assert report["staging"]["server"] == staging_server.rsplit("@", 1)[1]
    assert "copied 2,000 recent readings of the target" in out
    exact = [f for f in report["figures"] if f["kind"] == "exact"]
    assert len(exact) >= 12
    assert all(f["ratio"] == 1.0 for f in exact if "rows" in f["name"] or "parts" in f["name"])
    assert scratch_databases(target) == []


def test_without_a_staging_server_it_loads_the_target_only_when_told(
    target: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    Runner(target, lambda _line: None).up(5)
    monkeypatch.setenv("STREAMGAUGE_CLICKHOUSE_DATABASE", target.clickhouse_database)
    monkeypatch.delenv("STREAMGAUGE_MIGRATIONS_STAGING_URL", raising=False)
    directory = migrations_dir(tmp_path, "harmless")
    assert main(["migrate", "check", "--dir", str(directory), *SMALL]) == 1
    err = capsys.readouterr().err
    assert "`migrate check` needs a server to load its synthetic workload on" in err
    assert "--on-target" in err
    assert scratch_databases(target) == [], "nothing was loaded"


def test_nothing_pending_passes_at_once(
    target: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, report = check(target, target.migrations_dir, tmp_path, monkeypatch)
    assert code == 0
    assert report["verdict"] == "nothing-pending"
    assert report["figures"] == []


def test_a_migration_that_fails_on_staging_fails_the_gate(
    target: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scratch databases on the target server this time; they are dropped afterwards."""
    directory = migrations_dir(tmp_path, "harmless")
    (directory / "0098_typo.sql").write_text("ALTER TABLE readings ADD COLUMN x NoSuchType;\n")
    code, report = check(target, directory, tmp_path, monkeypatch, "--devices", "10", "--on-target")
    assert code == 1
    assert report["failures"][0].startswith("on staging: 0098_typo.sql, statement 1 of 1 failed")
    assert "NoSuchType" in report["failures"][0]
    assert scratch_databases(target) == []


def test_a_migration_that_makes_inserts_fail_fails_the_gate(
    target: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, staging_server: str
) -> None:
    directory = migrations_dir(tmp_path)
    (directory / "0099_impossible.sql").write_text(
        "ALTER TABLE readings ADD CONSTRAINT IF NOT EXISTS huge CHECK value > 1e12;\n"
    )
    code, report = check(
        target, directory, tmp_path, monkeypatch, "--staging-url", staging_server, "--devices", "10"
    )
    assert code == 1
    # A ClickHouse server refuses the insert (VIOLATED_CONSTRAINT); the local engine's streaming
    # insert acknowledges it and stores nothing: the gate fails both.
    assert report["failures"][0].startswith("inserts into readings of the after database")
