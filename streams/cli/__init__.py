"""The ``streamgauge`` command: one subcommand module per job."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from streams import settings
from streams.errors import UserError

# The subcommands, imported when the parser is built: they need the `pipeline` extra, which
# the base install (the producer alone, docs/producing.md) does not have.
SUBCOMMANDS = ["topics", "simulate", "worker", "migrate", "lag", "dlq", "bench"]
# Commands that live with the code they run, found by name so that streams imports neither:
# the read API's (installed everywhere) and the local stack's (in a source checkout only).
COMMANDS_ELSEWHERE = {"devstack.cli": 0, "api.cli": 5}  # module -> position in the list


# Each command's --help ends with examples.
EXAMPLES = {
    "dev": ["streamgauge dev up", "streamgauge dev status", "streamgauge dev run --devices 100"],
    "topics": ["streamgauge topics create", "streamgauge topics create --partitions 12"],
    "simulate": [
        "streamgauge simulate --devices 500 --rate 2000 --duration 60",
        "streamgauge simulate --devices 50 --rate 100 --duration 30 --bad-ratio 0.05",
    ],
    "worker": [
        "streamgauge worker --processes 2",
        "STREAMGAUGE_KAFKA_BOOTSTRAP_SERVERS=kafka:9092 streamgauge worker --processes 1",
    ],
    "migrate": [
        "streamgauge migrate status",
        "streamgauge migrate plan",
        "STREAMGAUGE_MIGRATIONS_STAGING_URL=http://ops:PASSWORD@staging:8123 "
        "streamgauge migrate check",
        "streamgauge migrate check --on-target   # the local stack: load it, no staging",
        "streamgauge migrate up",
        "streamgauge migrate users --print   # the roles' SQL, for an administrator",
    ],
    "api": ["streamgauge api --port 8080", "streamgauge api hash-key"],
    "lag-exporter": [
        "curl -s 127.0.0.1:9308/status   # what it reports",
        "streamgauge lag-exporter --port 9308",
    ],
    "bench": [
        "streamgauge bench versus --messages 1000000 --latency",
        "streamgauge bench torture --trials 5",
    ],
}


class ExamplesFormatter(argparse.HelpFormatter):
    """Wraps descriptions as usual; keeps an epilog of example lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def commands() -> list[ModuleType]:
    found = [importlib.import_module(f"streams.cli.{name}") for name in SUBCOMMANDS]
    for name, position in COMMANDS_ELSEWHERE.items():
        if importlib.util.find_spec(name.split(".")[0]) is not None:
            found.insert(position, importlib.import_module(name))
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamgauge",
        description="Kafka to ClickHouse telemetry ingestion. Settings come from STREAMGAUGE_* "
        "variables (see --help-settings); flags override them.",
    )
    parser.add_argument(
        "--help-settings", action="store_true", help="list every STREAMGAUGE_* setting and exit"
    )
    parser.add_argument(
        "--markdown", action="store_true", help="with --help-settings: as a Markdown table"
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (STREAMGAUGE_LOG_LEVEL)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in commands():
        module.register(subparsers)
    _accept_everywhere(subparsers, "--log-level", "log_level")
    for name, sub in subparsers.choices.items():
        if name in EXAMPLES:
            sub.epilog = "examples:\n" + "".join(f"  {line}\n" for line in EXAMPLES[name])
        sub.formatter_class = ExamplesFormatter
    return parser


def _accept_everywhere(subparsers: argparse._SubParsersAction, flag: str, dest: str) -> None:  # type: ignore[type-arg]
    """Let a global flag also follow the subcommand (``streamgauge worker --log-level DEBUG``)."""
    for sub in subparsers.choices.values():
        sub.add_argument(flag, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                _accept_everywhere(action, flag, dest)


def print_settings() -> None:
    for name, default, doc in settings.describe():
        print(f"{name:44} {doc} (default: {default or 'empty'})")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
    except ModuleNotFoundError as missing:
        print(
            f"streamgauge: {missing.name} is not installed; the command runs the pipeline, which "
            "needs pip install 'streamgauge[pipeline]' (the base install is the producer only).",
            file=sys.stderr,
        )
        return 1
    args = parser.parse_args(argv)
    if args.help_settings:
        if args.markdown:
            print(settings.markdown(), end="")
        else:
            print_settings()
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        level = (args.log_level or settings.Settings.from_env().log_level).upper()
    except UserError as error:
        print(f"streamgauge: {error}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.handler(args)
    except UserError as error:
        print(f"streamgauge {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
