"""The read API's fixtures: a seeded database, API keys, a fake lag source, running apps.

The seeded database is shared by the whole session (the API only reads it); each test starts
its own app (its own ClickHouse client and lag poller) on its own loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.auth import hash_key, new_key
from api.lag import LAG
from streams import migrations
from streams.clickhouse import sync_client
from streams.settings import Settings
from tests.support import readings
from tests.support.lagsource import FakeLagSource
from tests.support.pipeline import migrate_up

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


@pytest.fixture(scope="session")
def seeded(local_stack: Settings) -> Iterator[Seeded]:
    unique = uuid.uuid4().hex[:10]
    settings = dataclasses.replace(
        local_stack,
        clickhouse_database=f"test_api_{unique}",
        topic=f"measurements-{unique}",
        consumer_group=f"ingest-{unique}",
        api_keys=KEYS,
        lag_refresh_seconds=0.2,
        lag_slo_seconds=60.0,
    )
    migrate_up(settings)
    start = (int(time.time()) // 60 - 30) * 60 + 0.25
    rows = [
        (device, metric, start + i * 10, value(d, m, i), i + 1)
        for d, device in enumerate(DEVICES)
        for m, metric in enumerate(METRIC_NAMES)
        for i in range(SAMPLES)
    ]
    insert(settings, rows)
    yield Seeded(settings, rows)
    migrations.drop(settings)


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


@pytest.fixture
def lag_source(seeded: Seeded) -> Iterator[FakeLagSource]:
    fake = FakeLagSource(seeded.settings.consumer_group, seeded.settings.topic, dict(LAGS))
    yield fake
    fake.close()


@pytest.fixture
async def start_api() -> AsyncIterator[StartApi]:
    """Starts apps on the test's loop; closes them (and their clients) afterwards."""
    clients: list[ApiClient] = []

    async def start(settings: Settings) -> ApiClient:
        client = TestClient(TestServer(create_app(settings)))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
async def api(seeded: Seeded, lag_source: FakeLagSource, start_api: StartApi) -> ApiClient:
    """An app on the seeded database, reading the fake lag source (polled at least once)."""
    client = await start_api(dataclasses.replace(seeded.settings, api_lag_url=lag_source.url))
    await until(lambda: client.app[LAG].view().status is not None)
    return client


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
