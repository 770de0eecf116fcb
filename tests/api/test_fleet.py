"""``/v1/fleet``: readings per minute from the rollups, lag per partition now and lately."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest

from tests.support.api_world import LAGS, READ, ApiClient, Seeded

pytestmark = pytest.mark.integration


async def test_fleet_has_readings_per_minute_and_every_partitions_lag(
    api: ApiClient, seeded: Seeded
) -> None:
    response = await api.get("/v1/fleet?minutes=10", headers=READ)
    body = await response.json()
    assert response.status == 200

    since = datetime.fromisoformat(body["from"]).timestamp()
    per_minute = Counter(int(at // 60 * 60) for _, _, at, _, _ in seeded.rows if at >= since)
    assert [
        (datetime.fromisoformat(m["minute"]).timestamp(), m["readings"]) for m in body["ingest"]
    ] == sorted(per_minute.items())
    if per_minute:
        first = body["ingest"][0]
        assert first["readings_per_second"] == first["readings"] / 60

    assert [(p["partition"], p["lag_seconds"]) for p in body["partitions"]] == list(LAGS.items())
    assert body["lag_history"], "at least the first poll"
    assert body["lag_history"][-1]["lag_seconds"] == list(LAGS.values())
    assert body["freshness"]["lag_seconds"] == max(LAGS.values())
