"""The gate's read workload: the read API's queries and the analysts' documented ones.

The API's SQL is imported from streams/queries.py; the analysts' is docs/tables.md's SQL blocks
with their literals as parameters (a test keeps them equal).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streams.migrations.gate.dataset import Dataset
from streams.queries import ARRIVALS_SQL, DEVICES_SQL, LATEST_SQL, RAW, RAW_SQL, ROLLUP, ROLLUP_SQL

# The read API's own SQL (streams/queries.py): what the gate measures is what the API runs.
API_LATEST = LATEST_SQL  # GET /v1/devices/{device_id}/latest
API_DEVICES = DEVICES_SQL  # GET /v1/devices
API_ARRIVALS = ARRIVALS_SQL  # every answer's freshness: the partitions devices' readings came from
API_SERIES = ROLLUP_SQL  # GET /v1/devices/{id}/series, step of whole minutes
API_SERIES_RAW = RAW_SQL  # the same, other steps
SERIES_VALUE = {"rollup": ROLLUP["avg"], "raw": RAW["avg"]}  # $VALUE: the average
# docs/tables.md, with the literals as parameters (DOC_LITERALS holds the doc's values).
ANALYST_DEVICE_DAY = """
SELECT metric, event_time, value
FROM readings FINAL
WHERE device_id = {device_id:String}
  AND event_time >= {day_start:String} AND event_time < {day_end:String}
ORDER BY metric, event_time
"""
ANALYST_FLEET_HOURLY = """
SELECT toStartOfHour(minute) AS hour,
       sum(sum) / sum(count) AS avg_value,
       max(max) AS max_value,
       uniqExact(device_id) AS devices
FROM readings_1m
WHERE metric = {metric:String} AND minute >= now() - INTERVAL 7 DAY
GROUP BY hour
ORDER BY hour
"""
ANALYST_LATEST = """
SELECT metric, value, event_time, stored_at FROM latest FINAL WHERE device_id = {device_id:String}
"""
ANALYST_DEVICES = """
SELECT device_id, min(first_seen) AS first_seen, max(last_seen) AS last_seen,
       argMaxMerge(firmware) AS firmware, argMaxMerge(site) AS site
FROM devices
WHERE startsWith(device_id, {prefix:String})
GROUP BY device_id
ORDER BY device_id
LIMIT 100
"""
DOC_LITERALS = {
    "device_id": "dev-000042",
    "day_start": "2026-11-25 00:00:00",
    "day_end": "2026-11-26 00:00:00",
    "metric": "temperature_c",
    "prefix": "pump-",
}
PROBE_DEVICES = 5  # queries about one device run for this many devices, spread over the fleet


@dataclass(frozen=True)
class Query:
    """One query of the workload and the parameter sets it runs with, in turn."""

    name: str
    sql: str
    parameters: tuple[dict[str, Any], ...]


def workload(dataset: Dataset) -> list[Query]:
    """Every query, with parameters that hit the data set."""
    ids = dataset.device_ids
    probes = [ids[i * len(ids) // PROBE_DEVICES] for i in range(min(PROBE_DEVICES, len(ids)))]
    metric = dataset.metric_names[0]
    end_s = dataset.load_end_ms // 1000
    hour = {"start": end_s - 3600, "end": end_s, "step": 60, "metric": metric}
    day = {"day_start": _text(end_s - 86400), "day_end": _text(end_s)}
    per_device = [{"device_id": device} for device in probes]
    return [
        Query("api_latest", API_LATEST, tuple(per_device)),
        Query(
            "api_series", _series(API_SERIES, "rollup"), tuple({**hour, **p} for p in per_device)
        ),
        Query(
            "api_series_raw",
            _series(API_SERIES_RAW, "raw"),
            tuple({**hour, **p} for p in per_device),
        ),
        Query("api_devices", API_DEVICES, ({"after": "", "prefix": "", "limit": 100},)),
        Query("api_arrivals", API_ARRIVALS, ({"devices": probes},)),
        Query("analyst_device_day", ANALYST_DEVICE_DAY, tuple({**day, **p} for p in per_device)),
        Query("analyst_fleet_hourly", ANALYST_FLEET_HOURLY, ({"metric": metric},)),
        Query("analyst_latest", ANALYST_LATEST, tuple(per_device)),
        Query("analyst_devices", ANALYST_DEVICES, ({"prefix": f"{ids[0][:-2]}"},)),
    ]


def _series(sql: str, kind: str) -> str:
    return sql.replace("$VALUE", SERIES_VALUE[kind])


def _text(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
