"""The lag-source client against the exporter's /status contract, and freshness from it."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from api.arrivals import Arrival, Arrivals
from api.freshness import FreshnessSource
from api.lag import LagContractError, LagPoller, parse_status
from streams.lag.snapshot import status_document
from streams.lag.state import NOT_YET
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
    assert list(parsed.partitions) == [0]
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


LONG_AGO = time.time() - 86400
FIRSTS = {p: LONG_AGO for p in range(6)}  # every partition stored readings since a day ago


def on(*partitions: tuple[int, float, float]) -> Arrivals:
    """A device whose readings arrived on (partition, first, last event time ago) over a day."""
    now = time.time()
    device = tuple(Arrival(p, now - first, now - last, now - last) for p, first, last in partitions)
    return Arrivals(device, FIRSTS)


async def test_freshness_is_the_worst_lag_of_the_partitions_the_device_really_writes_to(
    session: aiohttp.ClientSession,
) -> None:
    fake = FakeLagSource(GROUP, TOPIC, {p: float(p) for p in range(6)})
    try:
        poller = LagPoller(fake.url, GROUP, TOPIC, refresh_seconds=5.0)
        await poller.poll(session)
        source = FreshnessSource(poller, slo_seconds=3.5, window_seconds=600)

        keyed = source.for_device(on((1, 3600, 1)))
        assert (keyed.partition, keyed.partitions, keyed.lag_seconds) == (1, (1,), 1.0)
        assert (keyed.stale, keyed.partitions_basis, keyed.lag_messages) == (False, "readings", 10)

        moved = source.for_device(on((4, 3600, 300), (1, 299, 1)))  # within the window
        assert (moved.partition, moved.partitions, moved.lag_seconds) == (4, (1, 4), 4.0)
        assert moved.stale is True
        settled = source.for_device(on((4, 7200, 3600), (1, 3599, 1)))  # moved an hour ago
        assert (settled.partitions, settled.lag_seconds) == ((1,), 1.0)

        for spread in (on((0, 3600, 1), (3, 3000, 2)), Arrivals((), FIRSTS)):
            worst = source.for_device(spread)
            assert (worst.partition, worst.lag_seconds) == (5, 5.0)
            assert worst.partitions == (0, 1, 2, 3, 4, 5)
            assert worst.detail is not None
            assert "the worst partition's lag" in worst.detail

        topic = source.for_topic()
        assert (topic.lag_seconds, topic.partition, topic.lag_messages) == (5.0, None, 60)
        assert (topic.partitions, topic.partitions_basis) == (None, "topic")
    finally:
        fake.close()


async def test_a_partition_without_a_figure_makes_the_device_unavailable_not_zero(
    session: aiohttp.ClientSession,
) -> None:
    fake = FakeLagSource(GROUP, TOPIC, {0: 0.0, 1: None, 2: 0.0})
    try:
        poller = LagPoller(fake.url, GROUP, TOPIC, refresh_seconds=5.0)
        await poller.poll(session)
        source = FreshnessSource(poller, slo_seconds=60, window_seconds=600)
        for arrivals in (on((1, 60, 1)), on((7, 60, 1))):  # no figure; no such partition
            freshness = source.for_device(arrivals)
            assert (freshness.source, freshness.lag_seconds, freshness.stale) == (
                "unavailable",
                None,
                None,
            )
            assert freshness.detail is not None
            assert "reports no lag for partition" in freshness.detail
        assert source.for_device(on((0, 60, 1))).lag_seconds == 0.0
    finally:
        fake.close()


async def test_lag_is_the_oldest_waiting_messages_age_when_answering_not_at_the_refresh(
    session: aiohttp.ClientSession,
) -> None:
    refreshed = time.time()
    fake = FakeLagSource(GROUP, TOPIC, {0: 30.0, 1: 0.0})
    fake.frozen_at = refreshed
    fake.oldest = {0: refreshed - 30.0}
    now = [refreshed + 4.0]
    try:
        poller = LagPoller(fake.url, GROUP, TOPIC, refresh_seconds=5.0)
        await poller.poll(session)
        source = FreshnessSource(poller, 60, 600, clock=lambda: now[0])
        assert source.for_device(on((0, 60, 1))).lag_seconds == pytest.approx(34.0, abs=0.001)
        now[0] += 3.0  # no new refresh
        assert source.for_device(on((0, 60, 1))).lag_seconds == pytest.approx(37.0, abs=0.001)
        assert source.for_device(on((1, 60, 1))).lag_seconds == 0.0, "nothing waits there"
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

    freshness = FreshnessSource(poller, 60, 600).for_device(on((0, 60, 1)))
    assert (freshness.source, freshness.lag_seconds, freshness.stale) == ("unavailable", None, None)
    assert freshness.headers() == {
        "X-Streamgauge-Lag-Seconds": "unknown",
        "X-Streamgauge-Stale": "unknown",
    }


async def test_an_exporter_before_its_first_refresh_is_unavailable_without_a_warning(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeLagSource(GROUP, TOPIC, {0: 0.0})
    fake.document = status_document(None, NOT_YET, 5.0)  # what the exporter serves at start
    try:
        poller = LagPoller(fake.url, GROUP, TOPIC, refresh_seconds=1.0)
        with caplog.at_level(logging.INFO, logger="api.lag"):
            await poller.poll(session)
            view = poller.view()
            assert view.status is None
            assert view.detail is not None
            assert "has not completed its first refresh" in view.detail
            fake.document = None  # the first refresh completed
            await poller.poll(session)
            assert poller.view().status is not None
        assert not [r for r in caplog.records if r.levelno >= logging.INFO], caplog.text
    finally:
        fake.close()


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
