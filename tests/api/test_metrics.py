"""``/metrics``: requests by route and status, latency, cache hits and misses."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api_world import METRICS, READ, ApiClient

pytestmark = pytest.mark.integration

LATEST = "/v1/devices/{device_id}/latest"


async def samples(api: ApiClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await api.get("/metrics", headers=METRICS)
    assert response.status == 200
    assert response.content_type == "text/plain"
    found = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_requests_latency_and_cache_are_counted_by_route(api: ApiClient) -> None:
    storm = [api.get("/v1/devices/dev-000001/latest", headers=READ) for _ in range(20)]
    assert {r.status for r in await asyncio.gather(*storm)} == {200}
    await api.get("/v1/devices/nobody/latest", headers=READ)
    await api.get("/v1/devices/dev-000001/latest")

    found = await samples(api)

    def requests(status: str) -> float:
        labels = (("method", "GET"), ("route", LATEST), ("status", status))
        return found[("streamgauge_api_requests_total", labels)]

    assert (requests("200"), requests("404"), requests("401")) == (20, 1, 1)
    route = (("route", LATEST),)
    assert found[("streamgauge_api_request_duration_seconds_count", route)] == 22
    cache = (("route", "latest"),)
    hits = found[("streamgauge_api_cache_hits_total", cache)]
    misses = found[("streamgauge_api_cache_misses_total", cache)]
    assert misses == 2, "one query for the storm, one for the unknown device"
    assert hits == 19
