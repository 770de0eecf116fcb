"""The read API's fixtures: a seeded database, a fake lag source, running apps.

The seeded database is shared by the whole session (the API only reads it); each test starts
its own app (its own ClickHouse client and lag poller) on its own loop.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.lag import LAG
from streams import migrations
from streams.settings import Settings
from tests.support.api_world import (
    DEVICES,
    KEYS,
    LAGS,
    METRIC_NAMES,
    SAMPLES,
    ApiClient,
    Seeded,
    StartApi,
    insert,
    until,
    value,
)
from tests.support.lagsource import FakeLagSource
from tests.support.pipeline import migrate_up


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
