"""A slow or silent ClickHouse: answers within a bound (504/503), old answers flagged as old."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest

from api.errors import ApiError
from api.lag import LAG
from api.reader import Reader
from tests.support.api_world import METRICS, READ, ApiClient, Seeded, StartApi, until
from tests.support.lagsource import FakeLagSource
from tests.support.stall import Stall

pytestmark = pytest.mark.integration

TIMEOUT = 1.0
BOUND = TIMEOUT + 2.0  # the server's limit, the client's slack, and some scheduling


@pytest.fixture
async def stall(seeded: Seeded) -> AsyncIterator[Stall]:
    relay = await Stall(seeded.settings.clickhouse_host, seeded.settings.clickhouse_port).start()
    yield relay
    await relay.close()


@pytest.fixture
async def behind_stall(
    seeded: Seeded, lag_source: FakeLagSource, stall: Stall, start_api: StartApi
) -> ApiClient:
    """An app whose ClickHouse goes through the stall, with no answer cache (TTL 0)."""
    settings = dataclasses.replace(
        seeded.settings,
        clickhouse_port=stall.port,
        api_lag_url=lag_source.url,
        api_query_timeout_seconds=TIMEOUT,
        api_cache_seconds=0.0,
    )
    api = await start_api(settings)
    app = api.app
    assert app is not None
    await until(lambda: app[LAG].view().status is not None)
    return api


async def test_a_clickhouse_that_never_answers_is_a_504_within_the_bound(
    behind_stall: ApiClient, stall: Stall
) -> None:
    stall.stalled = True
    started = time.monotonic()
    latest, health = await asyncio.gather(
        behind_stall.get("/v1/devices/dev-000003/latest", headers=READ),
        behind_stall.get("/healthz"),
    )
    elapsed = time.monotonic() - started
    body = await latest.json()

    assert latest.status == 504
    assert elapsed < BOUND
    assert body["error"]["code"] == "clickhouse_timeout"
    assert body["freshness"]["clickhouse"] == "timeout"
    assert body["freshness"]["source"] == "lag-exporter", "freshness is still served"
    assert latest.headers["X-Streamgauge-Stale"] == "false"
    assert health.status == 200, "the API itself stays up"

    started = time.monotonic()
    ready = await behind_stall.get("/readyz", headers=METRICS)
    assert ready.status == 503
    assert time.monotonic() - started < BOUND
    assert "did not answer" in (await ready.json())["checks"]["clickhouse"]["detail"]


async def test_while_clickhouse_hangs_an_earlier_answer_is_served_and_says_so(
    behind_stall: ApiClient, stall: Stall
) -> None:
    path = "/v1/devices/dev-000004/latest"
    fresh = await (await behind_stall.get(path, headers=READ)).json()
    assert fresh["freshness"]["clickhouse"] == "ok"

    stall.stalled = True
    response = await behind_stall.get(path, headers=READ)
    old = await response.json()
    assert response.status == 200
    assert old["metrics"] == fresh["metrics"]
    assert old["freshness"]["clickhouse"] == "timeout"
    assert old["freshness"]["read_at"] == fresh["freshness"]["read_at"]
    assert old["freshness"]["age_seconds"] >= TIMEOUT
    assert "earlier answer" in old["freshness"]["detail"]

    stall.stalled = False
    recovered = await (await behind_stall.get(path, headers=READ)).json()
    assert recovered["freshness"]["clickhouse"] == "ok"
    assert recovered["freshness"]["read_at"] > fresh["freshness"]["read_at"]


async def test_the_server_cancels_a_query_past_max_execution_time(seeded: Seeded) -> None:
    reader = Reader(dataclasses.replace(seeded.settings, api_query_timeout_seconds=0.5))
    started = time.monotonic()
    with pytest.raises(ApiError) as error:
        await reader.rows(
            "SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) % 7 = 3", {}
        )
    await reader.close()
    assert error.value.status == 504
    assert error.value.code == "clickhouse_timeout"
    assert time.monotonic() - started < 0.5 + 1.5
