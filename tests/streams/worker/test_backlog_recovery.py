"""The outage itself: a slow database builds a backlog; it must clear at full speed after.

The workers reach ClickHouse through a fault-injection proxy (devstack/fault_proxy.py) and
run exactly as deployed. Memory bound stated here: a worker process stays under 1 GiB RSS
with the default batch caps (measured 0.5 to 0.8 GiB; docs/design/worker.md).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench._torture_faults import free_port_range
from bench.catchup import (
    Outcome,
    discard,
    metric_sum,
    run_scenario,
    scrape,
    settled_rebalances,
)
from devstack.daemon import free_port
from devstack.fault_proxy import FaultProxyProcess
from streams.settings import Settings
from tests.support.accounting import assert_stored_exactly_once, drained
from tests.support.fleet import SteadyProducer, committed, count
from tests.support.workers import Workers, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

WORKER_RSS_BOUND_MB = 1024


@pytest.mark.serial  # its recovery ratio compares drain speeds: nothing else may run meanwhile
def test_after_a_10x_slower_database_the_backlog_drains_at_full_speed(
    local_stack: Settings, tmp_path: Path
) -> None:
    def scenario() -> Outcome:
        return run_scenario(
            dataclasses.replace(local_stack, log_level="WARNING"),
            processes=1,
            rate=20_000,
            # Long enough that the 90%..10% windows span several batch cycles on a noisy machine.
            backlog=400_000,
            # A tenth of the insert bandwidth stores ~1,000-5,000 msg/s against 20,000 arriving:
            # 30 s build a backlog of ~500,000 whose 90%..10% recovery lasts well over the 3 s
            # bench/catchup.py needs (peak 570,621, caught up in 18 s, on 2 cores draining 47,000/s;
            # `streamgauge bench catchup --backlog 400000 --slow-seconds 30 --processes 1
            # --slow-mode bandwidth`).
            slow_seconds=30,
            slow_mode="bandwidth",  # a tenth of the throughput: a backlog however big the batches
            log_dir=tmp_path,
        )

    outcomes = [scenario()]
    try:
        if outcomes[0].recovery_ratio is not None and outcomes[0].recovery_ratio < 0.9:
            # Measured once more: on 2 shared cores one window in several drains 0.74-0.85 of
            # the other over the same code; a lingering slowdown drains a tenth, run after run.
            outcomes.append(scenario())
        outcome = outcomes[-1]
        summary = {k: v for k, v in outcome.summary().items() if k != "samples"}
        assert outcome.peak_lag > 150_000, f"the slowdown built a backlog: {summary}"
        assert outcome.recovery_ratio is not None, f"a recovery long enough to measure: {summary}"
        assert outcome.recovery_ratio >= 0.9, f"no lingering slowdown after recovery: {summary}"
        assert 0 < outcome.peak_worker_rss_mb < WORKER_RSS_BOUND_MB, summary
        stored = dataclasses.replace(local_stack, clickhouse_database=outcome.database)
        assert count(stored, "SELECT count() FROM readings") == outcome.readings_sent
        assert count(stored, "SELECT count() FROM readings FINAL") == outcome.readings_sent
    finally:
        for run in outcomes:  # their data would keep merging under the tests after this one
            discard(local_stack, run)


@pytest.fixture
def proxied(pipeline: Settings, tmp_path: Path) -> Iterator[tuple[Settings, FaultProxyProcess]]:
    """The pipeline's settings for workers that reach ClickHouse through the fault proxy."""
    proxy = FaultProxyProcess(
        free_port(), pipeline.clickhouse_port, free_port(), str(tmp_path / "proxy.log")
    )
    yield (
        # Two ports: the tests below run 2 processes, listening on the first and the next.
        dataclasses.replace(
            pipeline, clickhouse_port=proxy.port, worker_metrics_port=free_port_range(2)
        ),
        proxy,
    )
    proxy.stop()


def test_connections_reset_mid_insert_lose_and_duplicate_nothing(
    pipeline: Settings, proxied: tuple[Settings, FaultProxyProcess], tmp_path: Path
) -> None:
    settings, proxy = proxied
    workers = Workers(settings, 2, tmp_path / "workers.log")
    ports = [settings.worker_metrics_port + i for i in range(2)]
    try:
        # The cuts start once both processes are past their start-up checks and serving: on a
        # busy machine a cut of the start-up's own connection made the command exit instead.
        assert wait_until(lambda: len(workers.children()) == 2, 30), workers.output()[-3000:]
        assert wait_until(lambda: all(scrape(p) for p in ports), 30), workers.output()[-3000:]
        fleet = SteadyProducer(pipeline, devices=100, count=24_000, rate=2_000)
        fleet.start()
        for _ in range(8):
            time.sleep(1.2)
            # Cut requests halfway through their body, and others after the server stored
            # them but before the answer reached the worker.
            proxy.set(reset_requests=2, reset_after_response=2)
        fleet.join(60)
        assert fleet.error is None
        proxy.set()
        assert wait_until(lambda: drained(pipeline), 120), workers.output()[-3000:]
        resets = proxy.stats()["resets"]
    finally:
        assert workers.stop() == 0
    assert resets >= 8, "the proxy cut connections"
    assert_stored_exactly_once(pipeline, fleet.sent.readings)


def test_database_unavailable_for_60_s_no_crash_loop_and_the_backlog_clears(
    pipeline: Settings, proxied: tuple[Settings, FaultProxyProcess], tmp_path: Path
) -> None:
    settings, proxy = proxied
    exporter_port = free_port()
    exporter = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "lag-exporter",
            "--port",
            str(exporter_port),
            "--groups",
            pipeline.consumer_group,
            "--refresh-seconds",
            "1",
        ],
        env={**os.environ, **pipeline.to_env()},
        stdout=(tmp_path / "exporter.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    workers = Workers(settings, 2, tmp_path / "workers.log")
    ports = [settings.worker_metrics_port + i for i in range(2)]
    try:
        assert wait_until(lambda: len(workers.children()) == 2, 30)
        fleet = SteadyProducer(pipeline, devices=100, count=95_000, rate=1_000)
        fleet.start()
        assert wait_until(lambda: sum(max(0, o) for o in committed(pipeline).values()) > 5_000, 60)
        rebalances = settled_rebalances(ports)
        pids = workers.children()
        proxy.set(down=True)
        lag_during = []
        for _ in range(6):
            time.sleep(10)
            lag_during.append(
                metric_sum(
                    scrape(exporter_port),
                    "streamgauge_consumer_lag_messages",
                    group=pipeline.consumer_group,
                )
            )
        assert workers.children() == pids, "no worker restarted: no crash loop"
        proxy.set()
        fleet.join(120)
        assert fleet.error is None
        assert wait_until(lambda: drained(pipeline), 120), workers.output()[-3000:]
        after = [metric_sum(scrape(p), "streamgauge_rebalances_total") for p in ports]
    finally:
        assert workers.stop() == 0
        exporter.terminate()
        exporter.wait(30)
    assert all(b - a <= 1 for a, b in zip(rebalances, after, strict=True)), (rebalances, after)
    assert lag_during == sorted(lag_during), f"the lag grew throughout the outage: {lag_during}"
    assert lag_during[-1] - lag_during[0] > 40_000
    assert_stored_exactly_once(pipeline, fleet.sent.readings)
