"""The HTTP interface over a published state: /healthz, /status, /metrics."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from streams.lag.collector import LagCollector
from streams.lag.requests import RequestTotals
from streams.lag.server import create_app
from streams.lag.state import ExporterState
from tests.streams.lag.fakes import REFRESHED_AT, partition, snapshot


def client_for(state: ExporterState) -> TestClient[web.Request, web.Application]:
    registry = CollectorRegistry()
    registry.register(LagCollector(state, RequestTotals()))
    return TestClient(TestServer(create_app(state, registry)))


async def test_healthz_is_503_until_a_refresh_succeeded_then_200() -> None:
    state = ExporterState(5.0, clock=lambda: REFRESHED_AT + 1)
    async with client_for(state) as client:
        response = await client.get("/healthz")
        assert response.status == 503
        assert (await response.json())["error"] == "The first lag refresh has not completed yet."
        state.succeeded(snapshot(partition(0)))
        response = await client.get("/healthz")
        assert (response.status, await response.json()) == (200, {"healthy": True, "error": None})


async def test_status_turns_unhealthy_when_refreshes_stop_succeeding() -> None:
    now = [REFRESHED_AT + 1]
    state = ExporterState(5.0, clock=lambda: now[0])
    state.succeeded(snapshot(partition(0)))
    async with client_for(state) as client:
        assert (await (await client.get("/status")).json())["healthy"] is True
        now[0] += 31  # no success for longer than max(3 intervals, 30 s)
        response = await client.get("/status")
        document = await response.json()
        assert response.status == 200
        assert document["healthy"] is False
        assert document["error"].startswith("No lag refresh succeeded in the last 32 s")
        assert document["groups"][0]["topics"][0]["lag_messages"] == 10


async def test_metrics_is_prometheus_text() -> None:
    state = ExporterState(5.0)
    state.succeeded(snapshot(partition(0)))
    async with client_for(state) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        assert "streamgauge_consumer_lag_seconds{" in await response.text()
