"""``streamgauge migrate``: every action and flag documented; plan renders without a server."""

from __future__ import annotations

import argparse

import pytest

from streams.cli import build_parser, main
from tests.support.migrations import SHIPPED


def migrate_actions() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    migrate = commands.choices["migrate"]
    actions = next(a for a in migrate._actions if isinstance(a, argparse._SubParsersAction))
    return dict(actions.choices)


def test_every_action_and_flag_has_help() -> None:
    actions = migrate_actions()
    assert set(actions) == {"status", "plan", "up", "unlock", "check", "users"}
    for name, parser in actions.items():
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"migrate {name} {action.option_strings[0]} has no help"
    check_flags = {s for a in actions["check"]._actions for s in a.option_strings}
    assert {"--report", "--threshold", "--staging-url", "--devices", "--metrics"} <= check_flags
    assert {"--break-lock", "--lock-wait"} <= {
        s for a in actions["up"]._actions for s in a.option_strings
    }


def test_plan_all_prints_the_cluster_rendering_without_a_server(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMGAUGE_CLICKHOUSE_HOST", "192.0.2.1")  # unreachable: not asked
    assert main(["migrate", "plan", "--all", "--cluster", "prod", "--dir", str(SHIPPED)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("-- rendered for cluster 'prod'")
    assert "-- 0004_devices.sql (pending; sha256 6ca4a69ebf3f)" in out
    assert "CREATE TABLE IF NOT EXISTS readings ON CLUSTER 'prod'" in out
    assert out.count("ENGINE = Replicated") == 6
    assert "non_replicated" not in out
