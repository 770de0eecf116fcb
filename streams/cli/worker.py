"""``streamgauge worker --processes N``: the ingestion workers."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from clickhouse_connect.driver.exceptions import OperationalError

from streams.clickhouse import sync_client
from streams.errors import UserError
from streams.settings import Settings
from streams.worker import preflight
from streams.worker.intents import MAX_GROUP_PARTS
from streams.worker.sink import INSERT_FORMATS
from streams.worker.supervisor import Supervisor


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run N worker processes consuming measurements into ClickHouse",
        description="Start N independent worker processes in the consumer group; each owns its "
        "Kafka consumer and ClickHouse client. A process that dies is restarted (with backoff); "
        "SIGTERM or Ctrl-C stops all of them, committing only what ClickHouse acknowledged.",
    )
    parser.add_argument(
        "--processes", type=int, help="worker processes (STREAMGAUGE_WORKER_PROCESSES, default 2)"
    )
    parser.add_argument("--batch-max-rows", type=int, help="flush a batch at this many readings")
    parser.add_argument(
        "--batch-max-seconds",
        type=float,
        help="flush a batch at the latest this long after it opened",
    )
    parser.add_argument(
        "--batch-linger-seconds", type=float, help="flush a caught-up partition's batch this old"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(
        log_level=args.log_level,
        worker_processes=args.processes,
        batch_max_rows=args.batch_max_rows,
        batch_max_seconds=args.batch_max_seconds,
        batch_linger_seconds=args.batch_linger_seconds,
    )
    if settings.worker_processes < 1:
        raise UserError("--processes must be at least 1.")
    if not 1 <= settings.max_partitions_per_insert <= MAX_GROUP_PARTS:
        raise UserError(
            f"STREAMGAUGE_MAX_PARTITIONS_PER_INSERT must be 1 to {MAX_GROUP_PARTS}, "
            f"got {settings.max_partitions_per_insert}."
        )
    if settings.insert_format not in INSERT_FORMATS:
        raise UserError(
            f"STREAMGAUGE_INSERT_FORMAT must be one of {', '.join(INSERT_FORMATS)}, "
            f"got {settings.insert_format!r}."
        )
    topic = preflight.describe_topic(settings)
    client = sync_client(settings)
    try:
        warnings = preflight.check(settings, client, topic)
    except OperationalError as error:  # connected, then cut: the workers wait for it anyway
        first = str(error).strip().splitlines()[0][:200]
        warnings = [f"ClickHouse did not answer the start-up checks ({first}); starting anyway"]
    for warning in warnings:
        print(f"streamgauge worker: warning: {warning}", file=sys.stderr)
    return Supervisor(settings, settings.worker_processes).run()
