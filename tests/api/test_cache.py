"""The answer cache: a TTL, one computation for concurrent requests, old answers on failure."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Awaitable, Callable

import pytest

from api.cache import Answer, AnswerCache, Rows
from api.errors import ApiError
from api.freshness import Freshness
from api.metrics import ApiMetrics

ROWS: Rows = [("humidity_pct", 41.5)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counted(metrics: ApiMetrics, kind: str) -> float:
    value = metrics.registry.get_sample_value(f"streamgauge_api_cache_{kind}_total", {"route": "r"})
    return value or 0.0


async def test_answers_are_reused_for_the_ttl() -> None:
    clock, metrics = Clock(), ApiMetrics()
    cache = AnswerCache(2.0, metrics, clock=clock)
    calls = 0

    async def compute() -> Rows:
        nonlocal calls
        calls += 1
        return [(calls,)]

    assert (await cache.get("r", "k", compute)).value == [(1,)]
    clock.now += 1.9
    assert (await cache.get("r", "k", compute)).value == [(1,)]
    assert (await cache.get("r", "other", compute)).value == [(2,)]
    clock.now += 0.2
    answer = await cache.get("r", "k", compute)
    assert answer.value == [(3,)]
    assert answer.read_at == clock.now
    assert (counted(metrics, "hits"), counted(metrics, "misses")) == (1, 3)


async def test_concurrent_requests_share_one_computation() -> None:
    metrics = ApiMetrics()
    cache = AnswerCache(0.0, metrics)
    release = asyncio.Event()
    calls = 0

    async def compute() -> Rows:
        nonlocal calls
        calls += 1
        await release.wait()
        return ROWS

    waiters = [asyncio.create_task(cache.get("r", "k", compute)) for _ in range(50)]
    await asyncio.sleep(0.01)
    release.set()
    answers = await asyncio.gather(*waiters)
    assert calls == 1
    assert all(a.value is ROWS for a in answers)
    assert (counted(metrics, "hits"), counted(metrics, "misses")) == (49, 1)


async def test_a_cancelled_waiter_does_not_cancel_the_others() -> None:
    cache = AnswerCache(0.0, ApiMetrics())
    release = asyncio.Event()

    async def compute() -> Rows:
        await release.wait()
        return ROWS

    first = asyncio.create_task(cache.get("r", "k", compute))
    second = asyncio.create_task(cache.get("r", "k", compute))
    await asyncio.sleep(0.01)
    first.cancel()
    release.set()
    assert (await second).value is ROWS


async def test_on_a_clickhouse_failure_the_last_answer_stands_in_and_says_why() -> None:
    clock = Clock()
    cache = AnswerCache(1.0, ApiMetrics(), keep_seconds=60.0, clock=clock)
    failure = ApiError(504, "clickhouse_timeout", "ClickHouse did not answer within 1 s")

    async def ok() -> Rows:
        return ROWS

    async def failing() -> Rows:
        raise failure

    await cache.get("r", "k", ok)
    clock.now += 30
    answer = await cache.get("r", "k", failing)
    assert (answer.value, answer.read_at, answer.error) == (ROWS, 1000.0, failure)

    lag = Freshness(slo_seconds=60, source="lag-exporter", lag_seconds=40.0)
    freshness = answer.freshness(lag, now=clock.now)
    assert freshness.clickhouse == "timeout"
    assert freshness.age_seconds == 30
    assert freshness.stale is True, "40 s of lag + a 30 s old answer is past the 60 s SLO"
    assert freshness.detail is not None
    assert "earlier answer" in freshness.detail

    clock.now += 31
    with pytest.raises(ApiError):
        await cache.get("r", "k", failing)  # too old to stand in
    with pytest.raises(ApiError):
        await cache.get("r", "never", failing)  # nothing to stand in


async def test_a_client_error_is_never_covered_up() -> None:
    cache = AnswerCache(0.0, ApiMetrics())

    async def ok() -> Rows:
        return ROWS

    async def bad() -> Rows:
        raise ApiError(400, "invalid_parameter", "no")

    await cache.get("r", "k", ok)
    with pytest.raises(ApiError):
        await cache.get("r", "k", bad)


async def test_memory_is_bounded_in_rows() -> None:
    cache = AnswerCache(60.0, ApiMetrics(), max_rows=10)
    sizes = {"a": 4, "b": 4, "c": 4}
    calls: list[str] = []

    def rows_of(key: str) -> Callable[[], Awaitable[Rows]]:
        async def compute() -> Rows:
            calls.append(key)
            return [(i,) for i in range(sizes[key])]

        return compute

    for key in "abc":
        await cache.get("r", key, rows_of(key))
    await cache.get("r", "c", rows_of("c"))
    await cache.get("r", "b", rows_of("b"))
    await cache.get("r", "a", rows_of("a"))
    assert calls == ["a", "b", "c", "a"], "a, the oldest, made room for c"


def test_a_flood_of_distinct_unknown_ids_stays_bounded() -> None:
    # 200,000 distinct device ids nobody knows: each an empty answer. Before the entry bound,
    # they grew one API process by ~97 MiB; now the cache keeps max_entries (50,000) of them,
    # about 20 MiB. (Every answer get() computes is stored this way.)
    tracemalloc.start()
    try:
        clock = Clock()
        cache = AnswerCache(2.0, ApiMetrics(), clock=clock)
        before, _ = tracemalloc.get_traced_memory()
        for number in range(200_000):
            cache._store(("latest", f"unknown-device-{number:07d}"), Answer([], clock.now))
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(cache) == cache.max_entries == 50_000
    assert held - before < 32 * 2**20, f"{(held - before) / 2**20:.1f} MiB held"


async def test_answers_past_their_keep_time_are_dropped() -> None:
    clock = Clock()
    cache = AnswerCache(1.0, ApiMetrics(), keep_seconds=60.0, clock=clock)

    async def one() -> Rows:
        return ROWS

    for key in ("a", "b"):
        await cache.get("r", key, one)
    clock.now += 61.0
    await cache.get("r", "c", one)
    assert len(cache) == 1  # a and b could no longer stand in for a failure: gone


def test_the_stale_verdict_follows_from_the_figures_the_answer_reports() -> None:
    lag = Freshness(slo_seconds=5, source="lag-exporter", lag_seconds=4.77)
    # 0.2302 s old: unrounded, 4.77 + 0.2302 is past the SLO; as reported, 4.77 + 0.23 is not.
    freshness = lag.answered(read_at=1000.0, now=1000.2302)
    body, headers = freshness.as_json(), freshness.headers()
    assert body["age_seconds"] == 0.23
    reported = float(headers["X-Streamgauge-Lag-Seconds"]) + body["age_seconds"]
    assert body["stale"] is (reported > 5) is False
    assert headers["X-Streamgauge-Stale"] == "false"

    later = lag.answered(read_at=1000.0, now=1000.2312)
    assert later.as_json()["stale"] is True
    assert later.headers()["X-Streamgauge-Stale"] == "true"
