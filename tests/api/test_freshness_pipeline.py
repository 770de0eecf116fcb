"""Freshness end to end: real workers, the real lag exporter, the API reading both.

The values the API serves are the last ones produced; when the workers stop while devices keep
publishing, the API says how late its data is (and that it is stale past the SLO) and
recovers once the workers have caught up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.settings import Settings
from tests.support.api_world import READ, ApiClient, StartApi, api_on_exporter
from tests.support.exporter import ExporterProcess
from tests.support.fleet import SteadyProducer, committed, end_offsets, produce
from tests.support.workers import Workers, wait_until

pytestmark = pytest.mark.integration

SLO = 20.0
PAUSE = 30.0
REFRESH = 1.0  # the exporter's, and what the API expects of it


def drained(settings: Settings) -> bool:
    """Every partition committed up to its end (one that never got a message has no commit)."""
    positions = committed(settings)
    return all(max(positions[p], 0) >= end for p, end in end_offsets(settings).items())


@pytest.fixture
def exporter(pipeline: Settings, tmp_path: Path) -> Iterator[ExporterProcess]:
    log = tmp_path / "exporter.log"
    process = ExporterProcess(pipeline, [pipeline.consumer_group], log, REFRESH)
    assert process.wait_healthy(), process.output()[-2000:]
    yield process
    process.stop()


@pytest.fixture
async def api(pipeline: Settings, exporter: ExporterProcess, start_api: StartApi) -> ApiClient:
    return await api_on_exporter(pipeline, exporter.url, start_api, REFRESH, SLO)


async def latest(api: ApiClient, device: str) -> tuple[int, dict[str, Any], str]:
    response = await api.get(f"/v1/devices/{device}/latest", headers=READ)
    return response.status, await response.json(), response.headers["X-Streamgauge-Lag-Seconds"]


async def settle(pipeline: Settings) -> None:
    assert await asyncio.to_thread(wait_until, lambda: drained(pipeline), 120)


async def test_the_api_serves_the_last_reading_produced_for_each_metric(
    pipeline: Settings, api: ApiClient, tmp_path: Path
) -> None:
    workers = Workers(pipeline, 1, tmp_path / "workers.log")
    try:
        sent = await asyncio.to_thread(produce, pipeline, 30, 5)
        await settle(pipeline)
    finally:
        assert workers.stop() == 0

    expected: dict[str, dict[str, float]] = {}
    for (device, metric), value in sent.last_values().items():
        expected.setdefault(device, {})[metric] = value
    for device, metrics in expected.items():
        status, body, _ = await latest(api, device)
        assert status == 200
        assert {m["metric"]: m["value"] for m in body["metrics"]} == metrics
        assert body["freshness"]["source"] == "lag-exporter", body["freshness"]
        assert body["freshness"]["lag_seconds"] is not None


async def poll(
    api: ApiClient, device: str, done: Callable[[dict[str, Any]], bool], within: float
) -> tuple[dict[str, Any], str]:
    """The device's latest answer (body, lag header) once ``done(freshness)``."""
    deadline = time.monotonic() + within
    while True:
        status, body, header = await latest(api, device)
        assert status == 200, body
        if done(body["freshness"]):
            return body, header
        assert time.monotonic() < deadline, body["freshness"]
        await asyncio.sleep(0.5)


@pytest.mark.slow
async def test_stopped_workers_show_as_delay_and_staleness_then_recover(
    pipeline: Settings, api: ApiClient, tmp_path: Path
) -> None:
    log = tmp_path / "workers.log"
    device = "dev-000007"
    workers = Workers(pipeline, 1, log)
    try:
        await asyncio.to_thread(produce, pipeline, 20, 2)
        await settle(pipeline)
        await poll(api, device, lambda f: f["stale"] is False, 10)
    finally:
        assert workers.stop() == 0

    fleet = SteadyProducer(pipeline, devices=20, count=int((PAUSE + 15) * 100), rate=100)
    fleet.start()
    stopped = time.monotonic()
    await asyncio.sleep(PAUSE)
    body, header = await poll(api, device, lambda f: (f["lag_seconds"] or 0) >= PAUSE, 15)
    print(f"workers stopped {time.monotonic() - stopped:.1f} s: {body['freshness']}")
    assert body["freshness"]["stale"] is True
    assert float(header) >= PAUSE
    assert body["metrics"], "the last values stored are still served, marked stale"

    workers = Workers(pipeline, 1, log)
    restarted = time.monotonic()
    try:
        await asyncio.to_thread(fleet.join, 60)
        assert fleet.error is None
        await settle(pipeline)
        body, _ = await poll(api, device, lambda f: f["stale"] is False, 30)
    finally:
        assert workers.stop() == 0
    print(f"fresh again {time.monotonic() - restarted:.1f} s after restart: {body['freshness']}")
    assert body["freshness"]["lag_seconds"] < SLO
    last = {m: v for (d, m), v in fleet.sent.last_values().items() if d == device}
    assert {m["metric"]: m["value"] for m in body["metrics"]} == last
