"""``/v1/devices/{id}/series``: the same figures from the rollups and from raw readings."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime
from typing import Any

import pytest

from api.series import MAX_POINTS
from api.times import iso
from tests.support.api_world import READ, SAMPLES, ApiClient, Seeded

pytestmark = pytest.mark.integration

DEVICE = "dev-000002"
METRIC = "temperature_c"


def expected(seeded: Seeded, body: dict[str, Any]) -> list[tuple[str, float]]:
    """The buckets computed here from what was written."""
    start = datetime.fromisoformat(body["from"]).timestamp()
    end = datetime.fromisoformat(body["to"]).timestamp()
    step = body["step_seconds"]
    buckets: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for device, metric, at, value, _ in seeded.rows:
        if device == DEVICE and metric == METRIC and start <= at < end:
            buckets[int(at // step) * step].append((at, value))
    reduce = {
        "avg": lambda pairs: statistics.fmean(v for _, v in pairs),
        "min": lambda pairs: min(v for _, v in pairs),
        "max": lambda pairs: max(v for _, v in pairs),
        "last": lambda pairs: max(pairs)[1],
        "count": len,
    }[body["agg"]]
    return [(iso(bucket), reduce(pairs)) for bucket, pairs in sorted(buckets.items())]


def series_start(seeded: Seeded) -> float:
    return min(at for _, _, at, _, _ in seeded.rows)


@pytest.mark.parametrize(
    ("step", "source"),
    [("60", "readings_1m"), ("5m", "readings_1m"), ("30s", "readings"), ("45", "readings")],
)
@pytest.mark.parametrize("agg", ["avg", "min", "max", "last", "count"])
async def test_buckets_hold_what_was_written_whichever_table_serves_them(
    api: ApiClient, seeded: Seeded, step: str, source: str, agg: str
) -> None:
    start = series_start(seeded)
    query = f"metric={METRIC}&from={start - 30:.0f}&to={start + SAMPLES * 10:.0f}"
    response = await api.get(
        f"/v1/devices/{DEVICE}/series?{query}&step={step}&agg={agg}", headers=READ
    )
    body = await response.json()
    assert response.status == 200, body
    assert body["source"] == source
    got = [(p["time"], p["value"]) for p in body["points"]]
    want = expected(seeded, body)
    assert [t for t, _ in got] == [t for t, _ in want]
    assert [v for _, v in got] == pytest.approx([v for _, v in want])
    assert body["freshness"]["source"] == "lag-exporter"


async def test_without_step_the_series_picks_one_minute_buckets_for_an_hour(
    api: ApiClient,
) -> None:
    response = await api.get(f"/v1/devices/{DEVICE}/series?metric={METRIC}", headers=READ)
    body = await response.json()
    assert response.status == 200
    assert body["step_seconds"] == 60
    assert body["agg"] == "avg"
    assert 25 <= len(body["points"]) <= 31


async def test_the_point_cap_is_a_clear_400(api: ApiClient, seeded: Seeded) -> None:
    start = int(series_start(seeded) // 60 * 60)
    base = f"/v1/devices/{DEVICE}/series?metric={METRIC}&step=1&from={start}"
    at_cap = await api.get(f"{base}&to={start + MAX_POINTS}", headers=READ)
    assert at_cap.status == 200
    past_cap = await api.get(f"{base}&to={start + MAX_POINTS + 1}", headers=READ)
    body = await past_cap.json()
    assert past_cap.status == 400
    assert body["error"]["parameter"] == "step"
    assert str(MAX_POINTS) in body["error"]["message"]


async def test_a_known_device_without_that_metric_has_an_empty_series(api: ApiClient) -> None:
    response = await api.get(f"/v1/devices/{DEVICE}/series?metric=pressure_hpa", headers=READ)
    assert response.status == 200
    assert (await response.json())["points"] == []


async def test_an_unknown_device_has_no_series(api: ApiClient) -> None:
    response = await api.get(f"/v1/devices/nobody/series?metric={METRIC}", headers=READ)
    assert response.status == 404
