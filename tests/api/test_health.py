"""``/healthz`` and ``/readyz``: alive always; ready with ClickHouse, whatever the lag source;
why a check fails only for a key with the metrics scope."""

from __future__ import annotations

import dataclasses
import time

import pytest

from api.lag import LAG
from devstack.daemon import free_port
from tests.support.api_world import METRICS, READ, ApiClient, Seeded, StartApi, until
from tests.support.lagsource import FakeLagSource

pytestmark = pytest.mark.integration


async def test_ready_with_clickhouse_and_a_fresh_lag_source(api: ApiClient) -> None:
    assert await (await api.get("/healthz")).json() == {"status": "ok"}
    response = await api.get("/readyz")
    assert response.status == 200
    assert await response.json() == {
        "status": "ready",
        "checks": {
            "clickhouse": {"ok": True, "required": True},
            "lag_source": {"ok": True, "required": False},
        },
    }


async def test_still_ready_while_the_lag_source_is_old_and_says_why_to_metrics_keys_only(
    api: ApiClient, lag_source: FakeLagSource
) -> None:
    lag_source.frozen_at = time.time() - 120
    app = api.app
    assert app is not None
    await until(lambda: app[LAG].view().status is None)
    response = await api.get("/readyz")
    body = await response.json()
    assert response.status == 200, "answers still carry data; freshness says unavailable"
    assert body["checks"]["lag_source"] == {"ok": False, "required": False}
    assert "detail" not in body["checks"]["clickhouse"], "no error text without a key"
    for headers in (READ, {"Authorization": "Bearer wrong"}):
        shown = await (await api.get("/readyz", headers=headers)).json()
        assert "detail" not in shown["checks"]["lag_source"]
    detailed = await (await api.get("/readyz", headers=METRICS)).json()
    assert "old" in detailed["checks"]["lag_source"]["detail"]
    assert detailed["checks"]["clickhouse"]["detail"] is None
    assert (await api.get("/healthz")).status == 200


async def test_without_clickhouse_the_api_starts_answers_freshness_and_is_not_ready(
    seeded: Seeded, lag_source: FakeLagSource, start_api: StartApi
) -> None:
    settings = dataclasses.replace(
        seeded.settings,
        clickhouse_port=free_port(),  # nothing listens there
        api_lag_url=lag_source.url,
    )
    api = await start_api(settings)
    app = api.app
    assert app is not None
    await until(lambda: app[LAG].view().status is not None)

    ready = await api.get("/readyz", headers=METRICS)
    assert ready.status == 503
    assert "unreachable" in (await ready.json())["checks"]["clickhouse"]["detail"]

    latest = await api.get("/v1/devices/dev-000001/latest", headers=READ)
    body = await latest.json()
    assert latest.status == 503
    assert body["error"]["code"] == "clickhouse_unavailable"
    assert body["freshness"]["source"] == "lag-exporter", "freshness is still served"
    assert body["freshness"]["clickhouse"] == "unavailable"
    assert body["freshness"]["read_at"] is None
    assert latest.headers["X-Streamgauge-Lag-Seconds"] != "unknown"

    fleet = await api.get("/v1/fleet", headers=READ)
    body = await fleet.json()
    assert fleet.status == 200, "the fleet's lag does not need ClickHouse"
    assert body["ingest"] is None
    assert len(body["partitions"]) == 6
    assert body["freshness"]["clickhouse"] == "unavailable"
