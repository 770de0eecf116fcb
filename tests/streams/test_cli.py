"""The command line: errors a user causes are one sentence, global flags go anywhere."""

from __future__ import annotations

import argparse
import time

import pytest

from streams.cli import build_parser, main
from streams.settings import Settings

pytestmark = pytest.mark.integration

SECRET = "s3cret-Not-To-Show"


@pytest.mark.parametrize(
    ("change", "command", "sentence"),
    [
        (
            {"STREAMGAUGE_CLICKHOUSE_USER": "nobody", "STREAMGAUGE_CLICKHOUSE_PASSWORD": SECRET},
            ["worker", "--processes", "1"],
            "refused user 'nobody' (wrong password, or no such user)",
        ),
        (
            {"STREAMGAUGE_CLICKHOUSE_USER": "nobody", "STREAMGAUGE_CLICKHOUSE_PASSWORD": SECRET},
            ["migrate", "status"],
            "refused user 'nobody'",
        ),
        (
            {"STREAMGAUGE_CLICKHOUSE_DATABASE": "no_such_database_here"},
            ["worker", "--processes", "1"],
            "has no database 'no_such_database_here'; `streamgauge migrate up` creates it",
        ),
        (
            {"STREAMGAUGE_CLICKHOUSE_PORT": "1"},
            ["worker", "--processes", "1"],
            "ClickHouse at 127.0.0.1:1 is unreachable",
        ),
        (
            {"STREAMGAUGE_TOPIC": "no-such-topic-here"},
            ["worker", "--processes", "1"],
            "Cannot describe topic no-such-topic-here",
        ),
        (
            {"STREAMGAUGE_MAX_PARTITIONS_PER_INSERT": "200"},
            ["worker", "--processes", "1"],
            "STREAMGAUGE_MAX_PARTITIONS_PER_INSERT must be 1 to 150, got 200.",
        ),
    ],
)
def test_a_wrong_setting_is_one_sentence(
    pipeline: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    command: list[str],
    sentence: str,
) -> None:
    for name, value in {**pipeline.to_env(), **change}.items():
        monkeypatch.setenv(name, value)
    assert main(command) == 1
    err = capsys.readouterr().err
    assert sentence in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert SECRET not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--log-level", "DEBUG", "worker"],
        ["worker", "--log-level", "DEBUG"],
        ["migrate", "up", "--log-level", "DEBUG"],
        ["dlq", "inspect", "--log-level", "DEBUG"],
    ],
)
def test_global_flags_work_before_and_after_the_subcommand(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).log_level == "DEBUG"


def test_every_commands_help_ends_with_examples() -> None:
    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    for name, parser in commands.choices.items():
        lines = parser.format_help().rstrip().splitlines()
        assert "examples:" in lines, name
        assert "streamgauge " in lines[-1], name


def test_simulate_reports_progress_and_fails_fast_without_kafka(
    pipeline: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in pipeline.to_env().items():
        monkeypatch.setenv(name, value)
    assert main(["simulate", "--devices", "5", "--rate", "50", "--duration", "6"]) == 0
    out = capsys.readouterr().out
    assert "sent " in out.splitlines()[0], "a progress line while it runs"
    monkeypatch.setenv("STREAMGAUGE_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    started = time.monotonic()
    assert main(["simulate", "--devices", "5", "--rate", "50", "--duration", "60"]) == 1
    assert time.monotonic() - started < 15, "seconds, not the whole --duration"
    err = capsys.readouterr().err
    assert "Kafka at 127.0.0.1:1 is unreachable" in err
    assert "Traceback" not in err
