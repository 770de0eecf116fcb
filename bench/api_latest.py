"""``python -m bench.api_latest``: ``GET /v1/devices/{id}/latest`` under concurrent load, next
to its floor measured in the same run.

A fresh database holds --devices devices with 4 metrics each (readings inserted directly; the
materialized view fills ``latest``). The API runs as deployed (``streamgauge api`` in its own
process, its own ClickHouse client), its freshness from the real lag exporter watching a
consumer group that has committed on a topic of its own. An aiohttp load generator keeps
--concurrency requests in flight over loopback, each scenario bounded by --seconds and
--requests:

  (a) floor: the API's own ``latest`` query sent straight to ClickHouse by clickhouse-connect's
      async client, devices round-robin; measured right before and right after (b);
  (b) the API with its cache off (TTL 0): every request is a ClickHouse query;
  (c) the API with the default 2 s cache, devices round-robin (a fleet of dashboards);
  (d) the API with the default cache, one device (a polling storm on one dashboard).

Each scenario starts with a 1 s warm-up that is not measured. Prints requests/s, p50 and p99
for each and b/a, and writes bench/results/api_latest.json. The machine is shared: the load
average at the start is recorded, and a gap between the two floors shows a neighbour's load.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp
from confluent_kafka import Consumer, TopicPartition

from bench._results import write
from bench._teardown import discard
from devstack.daemon import free_port
from streams import migrations, topics
from streams.clickhouse import async_client, sync_client
from streams.queries import LATEST_SQL
from streams.settings import Settings

METRICS = ("temperature_c", "humidity_pct", "battery_v", "rssi_dbm")
WARM_UP_SECONDS = 1.0  # connections and the API's client initialization, not measured
SCENARIOS = (  # label, cache TTL, one device only
    ("b_api_no_cache", 0.0, False),
    ("c_api_cache_fleet", 2.0, False),
    ("d_api_cache_one_device", 2.0, True),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_latest", description=__doc__)
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario, at most")
    parser.add_argument("--requests", type=int, default=50_000, help="per scenario, at most")
    args = parser.parse_args(argv)
    run_id = uuid.uuid4().hex[:8]
    settings = Settings.from_env().isolated(
        f"bench-api-{run_id}", lag_exporter_port=free_port(), log_level="WARNING"
    )
    devices = [f"dev-{i:06d}" for i in range(args.devices)]
    print(f"seeding {len(devices):,} devices x {len(METRICS)} metrics into {run_id} ...")
    seed(settings, devices)
    figures: dict[str, Any] = {
        "devices": args.devices,
        "concurrency": args.concurrency,
        "bound_seconds": args.seconds,
        "bound_requests": args.requests,
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }
    print(f"load average at start: {figures['load_average_at_start']:.2f} (2 cores, shared)")
    bound = (args.concurrency, args.seconds, args.requests)
    with tempfile.TemporaryDirectory() as logs:
        exporter = start(settings, ["lag-exporter"], Path(logs) / "exporter.log")
        try:
            api_settings = dataclasses.replace(
                settings,
                api_lag_url=f"http://127.0.0.1:{settings.lag_exporter_port}/status",
            )
            measure(api_settings, devices, bound, Path(logs), figures)
        finally:
            stop(exporter)
            discard(settings)
    floor_rate = statistics.fmean(
        figures[f"a_floor_{when}"]["requests_per_second"] for when in ("before", "after")
    )
    api_rate = figures["b_api_no_cache"]["requests_per_second"]
    figures["ratio_b_over_a"] = round(api_rate / floor_rate, 3)
    print(f"b/a = {api_rate / floor_rate:.2f} (the uncached API over its query's floor)")
    write("api_latest", figures)
    return 0


def measure(
    settings: Settings,
    devices: list[str],
    bound: tuple[int, float, int],
    logs: Path,
    figures: dict[str, Any],
) -> None:
    # The floor right before and right after the uncached API: a neighbour's load shows as a
    # gap between the two.
    figures["a_floor_before"] = asyncio.run(floor(settings, devices, *bound))
    report("(a) floor: the query via clickhouse-connect", figures["a_floor_before"])
    for label, ttl, hot in SCENARIOS:
        port = free_port()
        api = start(
            dataclasses.replace(settings, api_cache_seconds=ttl, api_port=port),
            ["api", "--no-auth"],  # measured without the key check, as the floor is
            logs / f"{label}.log",
            f"http://127.0.0.1:{port}/readyz",
        )
        try:
            targets = devices[:1] if hot else devices
            figures[label] = asyncio.run(load(f"http://127.0.0.1:{port}", targets, *bound))
        finally:
            stop(api)
        report(f"({label[0]}) {label[2:].replace('_', ' ')}", figures[label])
        if label == "b_api_no_cache":
            figures["a_floor_after"] = asyncio.run(floor(settings, devices, *bound))
            report("(a) floor again", figures["a_floor_after"])


def seed(settings: Settings, devices: list[str]) -> None:
    """The database with its readings; the topic with the group's commits (lag 0)."""
    migrations.up(settings, say=lambda _line: None)
    now = time.time()
    rows = [
        (device, metric, datetime.fromtimestamp(now - 60 + i, UTC), 20.0 + d % 10 + i / 10, i + 1)
        for d, device in enumerate(devices)
        for metric in METRICS
        for i in range(10)
    ]
    columns = ["device_id", "metric", "event_time", "value", "seq"]
    sync_client(settings).insert("readings", rows, column_names=columns)
    topics.create(settings)
    consumer = Consumer({**settings.kafka_config(), "group.id": settings.consumer_group})
    try:
        partitions = [
            TopicPartition(settings.topic, p, 0) for p in range(settings.topic_partitions)
        ]
        consumer.commit(offsets=partitions, asynchronous=False)
    finally:
        consumer.close()


def start(
    settings: Settings, command: list[str], log: Path, ready_url: str | None = None
) -> subprocess.Popen[bytes]:
    """``streamgauge COMMAND`` with ``settings``; waits until ``ready_url`` answers 200."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *command],
            env={**os.environ, **settings.to_env()},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while ready_url is not None:
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"{command[0]} did not start: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(ready_url, timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.2)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(30)


async def floor(
    settings: Settings, devices: list[str], concurrency: int, seconds: float, requests: int
) -> dict[str, float]:
    client = await async_client(settings, query_retries=0)
    picks = count()

    async def one() -> bool:
        device = devices[next(picks) % len(devices)]
        result = await client.query(
            LATEST_SQL,
            parameters={"device_id": device},
            settings={"max_execution_time": settings.api_query_timeout_seconds},
        )
        return bool(result.result_rows)

    try:
        return await drive(one, concurrency, seconds, requests)
    finally:
        await client.close()


async def load(
    url: str, devices: list[str], concurrency: int, seconds: float, requests: int
) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        picks = count()

        async def one() -> bool:
            device = devices[next(picks) % len(devices)]
            async with session.get(f"{url}/v1/devices/{device}/latest") as response:
                await response.read()
                return response.status == 200

        return await drive(one, concurrency, seconds, requests)


async def drive(
    one: Callable[[], Awaitable[bool]], concurrency: int, seconds: float, requests: int
) -> dict[str, float]:
    """``concurrency`` loops calling ``one`` until ``seconds`` pass or ``requests`` started,
    after a short warm-up that is not measured."""
    warm_until = time.perf_counter() + WARM_UP_SECONDS

    async def warm() -> None:
        while time.perf_counter() < warm_until:
            await one()

    await asyncio.gather(*(warm() for _ in range(concurrency)))
    latencies: list[float] = []
    failures = 0
    started = count()
    start = time.perf_counter()
    deadline = start + seconds

    async def loop() -> None:
        nonlocal failures
        while time.perf_counter() < deadline and next(started) < requests:
            sent = time.perf_counter()
            try:
                ok = await one()
            except Exception:
                ok = False
            latencies.append(time.perf_counter() - sent)
            failures += not ok

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "failures": failures,
        "seconds": round(elapsed, 3),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
    }


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report(label: str, figure: dict[str, float]) -> None:
    print(
        f"{label:46} {figure['requests_per_second']:>9,.0f} req/s  "
        f"p50 {figure['p50_ms']:>7.2f} ms  p99 {figure['p99_ms']:>7.2f} ms  "
        f"({figure['requests']:,} requests, {figure['failures']} failed)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
