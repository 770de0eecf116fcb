"""``streamgauge dev up|down|status``: the local stack (Kafka + local ClickHouse)."""

from __future__ import annotations

import argparse
from typing import Any

from devstack import mainjob, stack
from streams.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dev",
        help="run the local stack: Kafka on 127.0.0.1:9092, local ClickHouse on 127.0.0.1:8123",
        description="Start, stop or inspect the local stack. Kafka runs from Maven Central jars "
        "(KRaft, single node); ClickHouse is chDB behind ClickHouse's HTTP interface. Data and "
        "logs live under STREAMGAUGE_DEVSTACK_DIR (default .devstack/).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser(
        "up",
        help="start the stack and wait until it is ready (harmless twice)",
        epilog="example: streamgauge dev up --brokers 3",
    )
    actions.add_parser("down", help="stop it all; no process and no listening port stay behind")
    status = actions.add_parser("status", help="whether each runs, its address, pid and data")
    for action in (up, status):
        action.add_argument(
            "--brokers",
            type=int,
            choices=(1, 3),
            help="Kafka as one broker (default) or a 3-broker cluster: KRaft with 3 voters, "
            "topics replicated 3 times with min.insync.replicas 2, on the bootstrap port and "
            "the next even ports (STREAMGAUGE_DEVSTACK_BROKERS)",
        )
    main_job = actions.add_parser(
        "run",
        help="the main job (make run): stack, migrations, topics, workers and a simulated fleet",
        description="Start the local stack, apply migrations, create topics, start worker "
        "processes and a simulated fleet, and show a live line until Ctrl-C, which stops "
        "everything this command started.",
    )
    main_job.add_argument("--devices", type=int, default=500, help="simulated devices (500)")
    main_job.add_argument("--rate", type=float, default=2000.0, help="fleet messages/s (2000)")
    main_job.add_argument("--processes", type=int, default=2, help="worker processes (2)")
    main_job.add_argument(
        "--brokers", type=int, choices=(1, 3), help="Kafka brokers, as for `dev up`"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    brokers = getattr(args, "brokers", None) or settings.devstack_brokers
    settings = stack.cluster_settings(settings, brokers)
    if args.action == "up":
        stack.up(settings, print, brokers)
        if brokers > 1:
            print(
                "other commands reach this cluster with: "
                f"STREAMGAUGE_DEVSTACK_BROKERS={brokers} "
                f"STREAMGAUGE_KAFKA_BOOTSTRAP_SERVERS={settings.kafka_bootstrap_servers} "
                f"STREAMGAUGE_TOPIC_REPLICATION={settings.topic_replication}"
            )
    elif args.action == "down":
        stack.down(settings, print)
    elif args.action == "run":
        return mainjob.run(settings, args.devices, args.rate, args.processes)
    else:
        return print_status(settings, brokers)
    return 0


def print_status(settings: Settings, brokers: int) -> int:
    rows = stack.status(settings, brokers)
    print(f"{'component':10} {'state':8} {'address':16} {'pid':>7}  data")
    for row in rows:
        state = "running" if row.running else "stopped"
        pid = str(row.pid) if row.pid else "-"
        print(f"{row.name:10} {state:8} {row.address:16} {pid:>7}  {row.data_dir}")
    return 0 if all(row.running for row in rows) else 3
