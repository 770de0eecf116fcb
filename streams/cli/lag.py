"""``streamgauge lag-exporter``: consumer lag and status for Prometheus and the read API."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from streams.lag.exporter import serve
from streams.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lag-exporter",
        help="export consumer lag (messages, seconds) and consumer status on /metrics, /status",
        description="Query Kafka every --refresh-seconds for the committed offsets of each "
        "consumer group, the watermarks of their partitions and the timestamp of each oldest "
        "unconsumed message; serve lag in messages and seconds and a consumer status per "
        "partition on /metrics (Prometheus), /status (JSON) and /healthz. Runs independently "
        "of the workers and keeps reporting when none is alive (docs/design/lag.md).",
    )
    parser.add_argument("--host", help="listen address (STREAMGAUGE_LAG_EXPORTER_HOST)")
    parser.add_argument("--port", type=int, help="listen port (STREAMGAUGE_LAG_EXPORTER_PORT)")
    parser.add_argument(
        "--groups",
        help="comma-separated consumer groups (STREAMGAUGE_LAG_GROUPS, streamgauge-ingest)",
    )
    parser.add_argument(
        "--refresh-seconds",
        type=float,
        help="seconds between two refreshes (STREAMGAUGE_LAG_REFRESH_SECONDS, 5)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(
        log_level=args.log_level,
        lag_exporter_host=args.host,
        lag_exporter_port=args.port,
        lag_groups=args.groups,
        lag_refresh_seconds=args.refresh_seconds,
    )
    return asyncio.run(serve(settings))
