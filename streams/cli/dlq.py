"""``streamgauge dlq inspect|replay``: look at dead letters, send chosen ones back."""

from __future__ import annotations

import argparse
import time
from typing import Any

from streams import deadletters
from streams.deadletters import Selection
from streams.errors import UserError
from streams.settings import Settings

EXAMPLES = """examples:
  streamgauge dlq inspect --since-hours 24
  streamgauge dlq inspect --reason unknown_schema --samples 5
  streamgauge dlq replay --reason unknown_schema --dry-run   # after shipping the schema
  streamgauge dlq replay --source 3:1207 --source 3:1208
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dlq",
        help="inspect dead letters (counts by reason, samples) or replay chosen ones",
        description="Read the dead-letter topic: counts by reason and samples with their "
        "source partition and offset and the decoded (or hex) payload; or send chosen dead "
        "letters back to their source partition once their cause is fixed. Replaying twice "
        "stores once: the workers drop a message they already stored.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    inspect = actions.add_parser("inspect", help="counts by reason and samples")
    replay = actions.add_parser("replay", help="send chosen dead letters back (a selector needed)")
    for action in (inspect, replay):
        action.add_argument("--reason", action="append", default=[], help="only this reason")
        action.add_argument("--partition", type=int, help="only from this source partition")
        action.add_argument(
            "--source",
            action="append",
            default=[],
            metavar="P:O",
            help="only the dead letter of source partition P, offset O (repeatable)",
        )
        action.add_argument("--since-hours", type=float, help="only dead letters this recent")
    inspect.add_argument("--samples", type=int, default=3, help="samples per reason (3)")
    replay.add_argument("--all", action="store_true", help="every dead letter selected")
    replay.add_argument("--dry-run", action="store_true", help="say what would be sent")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(log_level=args.log_level)
    selection = _selection(args)
    letters = deadletters.read(settings, selection)
    if args.action == "inspect":
        return _inspect(settings, letters, args.samples)
    if not (args.all or args.reason or args.source or args.partition is not None):
        raise UserError(
            "Say which dead letters to replay: --reason, --source, --partition or --all."
        )
    if args.dry_run:
        for letter in letters:
            partition, offset = letter.source
            print(f"would replay partition {partition} offset {offset} ({letter.reason})")
        print(f"{len(letters)} dead letters selected; nothing sent (--dry-run)")
        return 0
    sent = deadletters.replay(settings, letters)
    print(f"replayed {sent} dead letters to {settings.topic}")
    return 0


def _selection(args: argparse.Namespace) -> Selection:
    sources = set()
    for text in args.source:
        try:
            partition, offset = (int(part) for part in text.split(":"))
        except ValueError:
            raise UserError(f"--source {text!r} is not PARTITION:OFFSET, e.g. 3:1207.") from None
        sources.add((partition, offset))
    since_ms = int((time.time() - args.since_hours * 3600) * 1000) if args.since_hours else 0
    return Selection(frozenset(args.reason), args.partition, frozenset(sources), since_ms)


def _inspect(settings: Settings, letters: list[deadletters.DeadLetter], samples: int) -> int:
    summary = deadletters.summarize(letters, samples)
    print(f"{sum(summary.counts.values())} dead letters in {settings.dlq_topic}")
    decoder = deadletters.decoder(settings)
    for reason, count in summary.counts.most_common():
        print(f"{reason}: {count}")
        for letter in summary.samples[reason]:
            print(deadletters.describe(letter, decoder))
    return 0
