"""The lag-source client against the exporter's /status contract, and freshness from it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from api.freshness import FreshnessSource
from api.lag import LagContractError, LagPoller, parse_status
from streams.partitioner import partition_for
from tests.support.lagsource import FakeLagSource, status

GROUP, TOPIC = "streamgauge-ingest", "measurements"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as client:
        yield client


def test_the_contract_example_parses() -> None:
    example = {
        "refreshed_at": "2026-11-26T05:00:00.123Z",
        "refreshed_at_unix": 1795670400.123,
        "refresh_seconds": 0.05,
        "healthy": True,
        "error": None,
        "groups": [
            {
                "group": GROUP,
                "state": "Stable",
                "members": 2,
                "status": "OK",
                "topics": [
                    {
                        "topic": TOPIC,
                        "lag_messages": 12,
                        "lag_seconds": 0.8,
                        "partitions": [
                            {
                                "partition": 0,
                                "start_offset": 0,
                                "end_offset": 100,
                                "committed_offset": 90,
                                "lag_messages": 10,
                                "lag_seconds": 0.5,
                                "status": "OK",
                            }
                        ],
                    }
                ],
            }
        ],
    }
    parsed = parse_status(example, GROUP, TOPIC)
    assert parsed.refreshed_at == 1795670400.123
    assert parsed.partition_count == 1
    lag = parsed.partitions[0]
    assert (lag.lag_seconds, lag.lag_messages, lag.status) == (0.5, 10, "OK")
    assert (lag.committed_offset, lag.end_offset) == (90, 100)


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ({"groups": []}, "not the lag exporter's"),
        ([], "not the lag exporter's"),
        (status("other-group", TOPIC, {0: 1.0}), "does not report group"),
        (status(GROUP, "other-topic", {0: 1.0}), "no topic"),
        (
            {
                **status(GROUP, TOPIC, {}),
                "groups": [
                    {
                        "group": GROUP,
                        "topics": [{"topic": TOPIC, "partitions": [{"lag_seconds": 1}]}],
                    }
                ],
            },
            "partition entry",
        ),
    ],
)
def test_documents_off_contract_are_refused_with_a_reason(document: object, complaint: str) -> None:
    with pytest.raises(LagContractError, match=complaint):
        parse_status(document, GROUP, TOPIC)


async def test_freshness_is_the_lag_of_the_devices_partition(
    session: aiohttp.ClientSession,
) -> None:
    fake = FakeLagSource(GROUP, TOPIC, {p: float(p) for p in range(6)})
    try:
        poller = LagPoller(fake.url, GROUP, TOPIC, refresh_seconds=5.0)
        await poller.poll(session)
        source = FreshnessSource(poller, slo_seconds=3.5)
        for device in ("dev-000001", "dev-000002", "dev-000003", "x"):
            partition = partition_for(device, 6)
            freshness = source.for_device(device)
            assert freshness.partition == partition
            assert freshness.lag_seconds == float(partition)
            assert freshness.stale is (partition > 3.5)
        topic = source.for_topic()
        assert (topic.lag_seconds, topic.partition, topic.lag_messages) == (5.0, None, 60)
    finally:
        fake.close()


async def test_an_unreachable_or_old_source_is_unavailable_never_zero(
    session: aiohttp.ClientSession,
) -> None:
    fake = FakeLagSource(GROUP, TOPIC, {0: 0.0})
    clock_offset = 0.0
    poller = LagPoller(
        fake.url, GROUP, TOPIC, refresh_seconds=1.0, clock=lambda: time.time() + clock_offset
    )
    assert poller.view().status is None, "not polled yet"
    await poller.poll(session)
    assert poller.view().status is not None

    fake.close()
    await poller.poll(session)
    assert poller.view().status is not None, "a recent refresh is still good"
    clock_offset = poller.max_age + 1
    view = poller.view()
    assert view.status is None
    assert view.detail is not None
    assert "old" in view.detail

    freshness = FreshnessSource(poller, 60).for_device("dev-000001")
    assert (freshness.source, freshness.lag_seconds, freshness.stale) == ("unavailable", None, None)
    assert freshness.headers() == {
        "X-Streamgauge-Lag-Seconds": "unknown",
        "X-Streamgauge-Stale": "unknown",
    }


async def test_history_keeps_each_refresh_once(session: aiohttp.ClientSession) -> None:
    fake = FakeLagSource(GROUP, TOPIC, {0: 1.0, 1: 2.0})
    try:
        poller = LagPoller(fake.url, GROUP, TOPIC, refresh_seconds=1.0)
        fake.frozen_at = time.time()
        await poller.poll(session)
        await poller.poll(session)
        fake.frozen_at += 1
        await poller.poll(session)
        assert [lags for _, lags in poller.history] == [{0: 1.0, 1: 2.0}] * 2
    finally:
        fake.close()
