"""``streamgauge bench insert_cost``: what one insert costs the ClickHouse server, by its size,
with the rollup views and without them.

For each size (messages per insert) and each schema — ``views`` (as migrated: ``readings`` and
the views into ``latest``, ``readings_1m``, ``devices``, ``device_partitions``) and
``no-views`` (the same with those four views dropped), the views' schema with each
``--with SETTING=VALUE`` insert setting, and without each ``--without VIEW`` — it sends
``--inserts`` inserts one after another, as the workers do: an Avro container of message
bodies into ``readings_input`` with the workers' insert settings and a deduplication token
(``--with optimize_on_insert=1`` measures what the workers no longer pay). The sizes and
schemas take turns, insert by insert, so a noisy machine shifts all of them alike. It prints,
per combination, the server's CPU (user + system, from /proc) per insert and the median
insert's wall time, and writes bench/results/insert_cost.json. The local stack's ClickHouse
only (its CPU is read).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import random
import statistics
import sys
import time
import uuid
from typing import Any

import fastavro

from bench._results import write
from bench.versus import clickhouse_pid, cpu_seconds
from streams import migrations, simulator
from streams.clickhouse import sync_client
from streams.codec import load_versions
from streams.settings import Settings
from streams.worker.batch import Batch, Group
from streams.worker.sink import INPUT_TABLE, INSERT_SETTINGS, AvroContainer

VIEWS = ["latest_mv", "readings_1m_mv", "devices_mv", "device_partitions_mv"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streamgauge bench insert_cost", description=__doc__)
    parser.add_argument("--sizes", default="100,2000,8000", help="messages per insert")
    parser.add_argument("--inserts", type=int, default=30, help="per size and schema")
    parser.add_argument(
        "--with",
        dest="extra",
        action="append",
        default=[],
        metavar="SETTING=VALUE",
        help="also measure the views' schema with this insert setting (repeatable: one more "
        "combination each)",
    )
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=VIEWS,
        metavar="VIEW",
        help=f"also measure the views' schema without this one view, of {', '.join(VIEWS)} "
        "(repeatable: one more combination each)",
    )
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    base = Settings.from_env()
    pid = clickhouse_pid(base)
    if pid is None:
        raise SystemExit("insert_cost measures the local stack's ClickHouse: run `dev up`")
    newest = load_versions(base.schemas_dir)[-1]
    container = AvroContainer(newest.source)
    fleet = simulator.Fleet(1000, [newest.version])
    dropped = {"views": [], "no-views": VIEWS, **{f"without {v}": [v] for v in args.without}}
    databases = {name: schema(base, name, views) for name, views in dropped.items()}
    # Without a session, as the workers' client inserts: the local server does extra work
    # per statement in a session (it saves and restores the session's settings around it).
    clients = {
        name: sync_client(settings, autogenerate_session_id=False)
        for name, settings in databases.items()
    }
    # (label, database, insert settings): each --with adds the views' database with a setting
    combinations: list[tuple[str, str, dict[str, str]]] = [
        ("views", "views", {}),
        ("no-views", "no-views", {}),
    ]
    for item in args.extra:
        setting, _, value = item.partition("=")
        combinations.append((f"views, {item}", "views", {setting: value}))
    combinations += [(f"without {view}", f"without {view}", {}) for view in args.without]
    used: dict[tuple[str, int], list[float]] = {}
    took: dict[tuple[str, int], list[float]] = {}
    try:
        for round_ in range(args.inserts):
            for size in sizes:
                body = container.of(Group([batch(fleet, newest.parsed, size, round_)]))
                for label, database, extra in combinations:
                    before, start = cpu_seconds([pid]), time.monotonic()
                    clients[database].raw_insert(
                        INPUT_TABLE,
                        None,
                        body,
                        fmt="Avro",
                        settings={
                            **INSERT_SETTINGS,
                            "insert_deduplication_token": f"bench-{size}-{round_}",
                            **extra,
                        },
                    )
                    took.setdefault((label, size), []).append(time.monotonic() - start)
                    used.setdefault((label, size), []).append(cpu_seconds([pid]) - before)
    finally:
        for client in clients.values():
            client.close()
        for settings in databases.values():
            migrations.drop(settings)
    figures = []
    print("| messages per insert | schema | server CPU per insert | insert wall time (median) |")
    print("|---|---|---|---|")
    for size in sizes:
        for name, _, _ in combinations:
            cpu_ms = 1000 * sum(used[name, size]) / len(used[name, size])
            wall_ms = 1000 * statistics.median(took[name, size])
            figures.append(
                {
                    "messages": size,
                    "schema": name,
                    "cpu_ms": round(cpu_ms, 1),
                    "wall_ms_median": round(wall_ms, 1),
                }
            )
            print(f"| {size:,} | {name} | {cpu_ms:.0f} ms | {wall_ms:.0f} ms |")
    write("insert_cost", {"inserts": args.inserts, "figures": figures})
    return 0


def schema(base: Settings, name: str, dropped: list[str]) -> Settings:
    """A database of its own, migrated, with the ``dropped`` views dropped."""
    label = "".join(c if c.isalnum() else "_" for c in name)
    settings = dataclasses.replace(
        base, clickhouse_database=f"bench_insert_cost_{label}_{uuid.uuid4().hex[:6]}"
    )
    migrations.up(settings, say=lambda _line: None)
    client = sync_client(settings)
    for view in dropped:
        client.command(f"DROP VIEW IF EXISTS {view}")
    client.close()
    return settings


def batch(fleet: simulator.Fleet, parsed: Any, size: int, round_: int) -> Batch:
    """``size`` of the simulated fleet's messages, as the worker batches their bodies."""
    now_ms = int(time.time() * 1000)
    first = round_ * size
    batch = Batch("bench", round_ % 6, first)
    for i in range(size):
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, fleet.reading(random.choice(fleet.devices), now_ms))
        batch.offsets.append(first + i)
        batch.bodies.append(out.getvalue())
    return batch


if __name__ == "__main__":
    sys.exit(main())
