"""``streamgauge topics create``: the measurements topic and its dead-letter topic."""

from __future__ import annotations

import argparse
from typing import Any

from streams import topics
from streams.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "topics",
        help="create the measurements topic and its dead-letter topic",
        description="Create `measurements` and `measurements.dlq` if missing (idempotent); an "
        "existing topic is checked against the settings and differences are explained.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create missing topics, check existing ones")
    create.add_argument("--partitions", type=int, help="partitions of the measurements topic")
    create.add_argument("--retention-hours", type=float, help="retention of the measurements topic")
    create.add_argument("--replication", type=int, help="replication factor of both topics")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(
        topic_partitions=args.partitions,
        topic_retention_hours=args.retention_hours,
        topic_replication=args.replication,
    )
    for line in topics.create(settings):
        print(line)
    return 0
