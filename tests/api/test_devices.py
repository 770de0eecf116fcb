"""``/v1/devices/{id}/latest`` and ``/v1/devices``: values, pages, and freshness in both."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from api.lag import LAG
from api.times import iso
from tests.support.api_world import (
    DEVICES,
    LAGS,
    PARTITION_OF,
    PARTITIONS,
    READ,
    ApiClient,
    Seeded,
    until,
)
from tests.support.lagsource import FakeLagSource

pytestmark = pytest.mark.integration


async def get(api: ApiClient, path: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = await api.get(path, headers=READ)
    return response.status, await response.json(), dict(response.headers)


async def test_latest_is_each_metrics_last_reading_with_the_freshness_of_its_real_partition(
    api: ApiClient, seeded: Seeded
) -> None:
    device = "lab.probe:7"
    status, body, headers = await get(api, f"/v1/devices/{device}/latest")

    assert status == 200
    assert body["device_id"] == device
    got = [(m["metric"], m["value"], m["seq"], m["event_time"]) for m in body["metrics"]]
    assert got == [(metric, v, seq, iso(at)) for metric, v, seq, at in seeded.last(device)]
    assert all(m["stored_at"] >= m["event_time"] for m in body["metrics"])

    partition = PARTITION_OF[device]  # where its readings arrived, not murmur2's answer
    freshness = body["freshness"]
    assert freshness["partition"] == partition
    assert freshness["partitions"] == [partition]
    assert freshness["partitions_basis"] == "readings"
    assert freshness["lag_seconds"] == LAGS[partition]
    assert freshness["stale"] is False
    assert freshness["source"] == "lag-exporter"
    assert freshness["clickhouse"] == "ok"
    assert headers["X-Streamgauge-Lag-Seconds"] == f"{LAGS[partition]:.3f}"
    assert headers["X-Streamgauge-Stale"] == "false"


async def test_devices_asked_for_at_once_each_get_their_own_partitions_lag(
    api: ApiClient,
) -> None:
    answers = await asyncio.gather(*(get(api, f"/v1/devices/{d}/latest") for d in DEVICES * 3))
    for device, (status, body, _) in zip(DEVICES * 3, answers, strict=True):
        assert status == 200
        assert body["freshness"]["partitions"] == [PARTITION_OF[device]], device
        assert body["freshness"]["lag_seconds"] == LAGS[PARTITION_OF[device]]


async def test_a_device_never_seen_is_404_with_the_worst_partitions_freshness(
    api: ApiClient,
) -> None:
    status, body, headers = await get(api, "/v1/devices/never-seen-1/latest")
    assert status == 404
    assert body["error"]["code"] == "not_found"
    freshness = body["freshness"]
    assert freshness["lag_seconds"] == max(LAGS.values()), "no partition of its own is known"
    assert freshness["partitions"] == list(range(PARTITIONS))
    assert freshness["partitions_basis"] == "not-stored-yet"
    assert "no reading of this device is stored yet" in freshness["detail"]
    assert headers["X-Streamgauge-Lag-Seconds"] == f"{max(LAGS.values()):.3f}"


async def test_lag_past_the_slo_makes_answers_stale(
    api: ApiClient, lag_source: FakeLagSource
) -> None:
    lag_source.lags = {p: 75.0 for p in range(PARTITIONS)}
    stale: dict[str, Any] = {}

    async def poll() -> None:
        _, body, headers = await get(api, "/v1/devices/dev-000001/latest")
        stale.update(body=body, headers=headers)

    deadline = time.monotonic() + 5
    while not stale or stale["body"]["freshness"]["stale"] is not True:
        assert time.monotonic() < deadline
        await poll()
    assert stale["body"]["freshness"]["lag_seconds"] == 75.0
    assert stale["headers"]["X-Streamgauge-Stale"] == "true"
    assert stale["headers"]["X-Streamgauge-Lag-Seconds"] == "75.000"


@pytest.mark.parametrize("failure", ["refresh too old", "HTTP 500", "gone"])
async def test_without_a_trustworthy_lag_source_freshness_is_unknown_never_zero(
    api: ApiClient, lag_source: FakeLagSource, failure: str
) -> None:
    if failure == "refresh too old":
        lag_source.frozen_at = time.time() - 60
    elif failure == "HTTP 500":
        lag_source.http_status = 500
    else:
        lag_source.close()
    app = api.app
    assert app is not None
    await until(lambda: app[LAG].view().status is None)
    status, body, headers = await get(api, "/v1/devices/dev-000001/latest")

    assert status == 200, "values are still served"
    freshness = body["freshness"]
    assert freshness["source"] == "unavailable"
    assert freshness["lag_seconds"] is None
    assert freshness["stale"] is None
    assert freshness["detail"]
    assert headers["X-Streamgauge-Lag-Seconds"] == "unknown"
    assert headers["X-Streamgauge-Stale"] == "unknown"


async def test_listing_pages_through_every_device_in_order(api: ApiClient) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, body, _ = await get(api, f"/v1/devices?{query}")
        assert status == 200
        assert len(body["devices"]) <= 2
        seen += [d["device_id"] for d in body["devices"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(DEVICES)
    assert pages == 3
    assert body["freshness"]["lag_seconds"] == max(LAGS.values()), "the worst partition"


async def test_listing_describes_each_device(api: ApiClient, seeded: Seeded) -> None:
    status, body, _ = await get(api, "/v1/devices?prefix=lab.&limit=10")
    assert status == 200
    [device] = body["devices"]
    times = [at for d, _, at, _, _ in seeded.rows if d == "lab.probe:7"]
    assert device == {
        "device_id": "lab.probe:7",
        "first_seen": iso(min(times)),
        "last_seen": iso(max(times)),
        "firmware": "fw-1.0.0",
        "site": "plant-north",
        "metrics": ["humidity_pct", "temperature_c"],
    }
    assert body["next_cursor"] is None
