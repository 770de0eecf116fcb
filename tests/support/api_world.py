"""The read API's test world: keys, the seeded fleet and how it was written, the app client.

Fixtures using these are in tests/api/conftest.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.test_utils import TestClient

from api.auth import hash_key, new_key
from api.lag import LAG
from streams.clickhouse import sync_client
from streams.settings import Settings
from tests.support import readings

ApiClient = TestClient[web.Request, web.Application]
StartApi = Callable[[Settings], Awaitable[ApiClient]]

READ_KEY = new_key()
METRICS_KEY = new_key()
BOTH_KEY = new_key()
KEYS = ",".join(
    [
        f"read:{hash_key(READ_KEY)}",
        f"metrics:{hash_key(METRICS_KEY)}",
        f"read+metrics:{hash_key(BOTH_KEY)}",
    ]
)
READ = {"Authorization": f"Bearer {READ_KEY}"}
METRICS = {"Authorization": f"Bearer {METRICS_KEY}"}

DEVICES = ("dev-000001", "dev-000002", "dev-000003", "dev-000004", "lab.probe:7")
# The partition each device's readings arrived on, as the workers record it: whatever the
# producers' partitioner (none of these is murmur2's answer for 6 partitions).
PARTITION_OF = {
    "dev-000001": 2,
    "dev-000002": 0,
    "dev-000003": 5,
    "dev-000004": 1,
    "lab.probe:7": 3,
}
METRIC_NAMES = ("humidity_pct", "temperature_c")
SAMPLES = 180  # one reading every 10 s: half an hour
PARTITIONS = 6
LAGS = {p: 0.5 + p for p in range(PARTITIONS)}  # each partition's lag tells it apart


@dataclass(frozen=True)
class Seeded:
    """The session's database and what was written to it."""

    settings: Settings
    rows: list[tuple[str, str, float, float, int]]  # device, metric, event time, value, seq

    def last(self, device: str) -> list[tuple[str, float, int, float]]:
        """(metric, value, seq, event time) of the device's newest reading of each metric."""
        newest: dict[str, tuple[str, float, int, float]] = {}
        for d, metric, at, value, seq in self.rows:
            if d == device and (metric not in newest or seq > newest[metric][2]):
                newest[metric] = (metric, value, seq, at)
        return sorted(newest.values())


def value(device: int, metric: int, i: int) -> float:
    return round(device * 100 + metric * 10 + (i * 7 % 13) * 0.5 + i * 0.01, 3)


TAGS = ("fw-1.0.0", "plant-north")  # firmware, site


def insert(settings: Settings, rows: list[tuple[str, str, float, float, int]]) -> None:
    """The rows as the workers store them: with the partition each device's messages came from."""
    columns = [*readings.COLUMNS, "source_partition", "source_offset"]
    sync_client(settings).insert(
        "readings",
        [
            (
                device,
                metric,
                datetime.fromtimestamp(at, UTC),
                v,
                seq,
                *TAGS,
                PARTITION_OF[device],
                seq,
            )
            for device, metric, at, v, seq in rows
        ],
        column_names=columns,
    )


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def api_on_exporter(
    settings: Settings, exporter_url: str, start_api: StartApi, refresh: float, slo: float
) -> ApiClient:
    """An app reading a real lag exporter, once it has heard from it."""
    client = await start_api(
        dataclasses.replace(
            settings,
            api_keys=KEYS,
            api_lag_url=f"{exporter_url}/status",
            lag_refresh_seconds=refresh,
            lag_slo_seconds=slo,
            api_cache_seconds=0.5,
        )
    )
    app = client.app
    assert app is not None
    await until(lambda: app[LAG].view().status is not None, within=30)
    return client
