"""A short-TTL cache of query results: a dashboard polling storm costs one query per key and TTL.

Concurrent requests for the same key share one query. When a query fails because ClickHouse is
slow or down (a 5xx ``ApiError``), the last result up to ``keep_seconds`` old is served
instead, carrying the error, so freshness can say how old it is and why. Memory is bounded in
rows and in entries (an answer costs its rows plus one, so a flood of distinct unknown ids,
each an empty answer, is bounded too), and answers past ``keep_seconds`` are dropped as new
ones are stored.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from api.errors import ApiError
from api.freshness import ClickHouseState, Freshness
from api.metrics import ApiMetrics

Key = tuple[str, Hashable]
Rows = list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Answer:
    value: Rows
    read_at: float  # Unix seconds when the query that made it started
    error: ApiError | None = None  # set on an old answer served because computing failed

    def freshness(self, lag: Freshness, now: float | None = None) -> Freshness:
        """``lag`` for this answer: how old its data is, and why when it is an old one."""
        now = time.time() if now is None else now
        if self.error is None:
            return lag.answered(self.read_at, now)
        state: ClickHouseState = "timeout" if self.error.status == 504 else "unavailable"
        return lag.answered(
            self.read_at, now, state, f"an earlier answer, because {self.error.message}"
        )


class AnswerCache:
    """Answers by (route, key), fresh for ``ttl`` seconds, kept ``keep_seconds`` for failures."""

    def __init__(
        self,
        ttl: float,
        metrics: ApiMetrics,
        keep_seconds: float = 300.0,
        max_rows: int = 500_000,
        max_entries: int = 50_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ttl = ttl
        self.metrics = metrics
        self.keep_seconds = keep_seconds
        self.max_rows = max_rows
        self.max_entries = max_entries
        self.clock = clock
        self._answers: OrderedDict[Key, Answer] = OrderedDict()  # least recently stored first
        self._rows = 0
        self._computing: dict[Key, asyncio.Task[Answer]] = {}

    async def get(
        self, route: str, key: Hashable, compute: Callable[[], Awaitable[Rows]]
    ) -> Answer:
        full = (route, key)
        answer = self._answers.get(full)
        if answer is not None and self.clock() - answer.read_at < self.ttl:
            self.metrics.cache_hits.labels(route).inc()
            return answer
        task = self._computing.get(full)
        if task is None:
            self.metrics.cache_misses.labels(route).inc()
            task = asyncio.create_task(self._compute(full, compute))
            self._computing[full] = task
            task.add_done_callback(lambda done: self._finished(full, done))
        else:
            self.metrics.cache_hits.labels(route).inc()
        try:
            return await asyncio.shield(task)
        except ApiError as error:
            previous = self._answers.get(full)
            if error.status < 500 or previous is None:
                raise
            if self.clock() - previous.read_at > self.keep_seconds:
                raise
            return Answer(previous.value, previous.read_at, error)

    async def _compute(self, key: Key, compute: Callable[[], Awaitable[Rows]]) -> Answer:
        read_at = self.clock()  # the data is at least as fresh as the query's start
        answer = Answer(await compute(), read_at)
        self._store(key, answer)
        return answer

    def __len__(self) -> int:
        return len(self._answers)

    def _store(self, key: Key, answer: Answer) -> None:
        previous = self._answers.pop(key, None)
        if previous is not None:
            self._rows -= _cost(previous)
        self._answers[key] = answer
        self._rows += _cost(answer)
        expired = self.clock() - self.keep_seconds  # stored in order: the oldest come first
        while len(self._answers) > 1 and (
            self._rows > self.max_rows
            or len(self._answers) > self.max_entries
            or next(iter(self._answers.values())).read_at < expired
        ):
            _, evicted = self._answers.popitem(last=False)
            self._rows -= _cost(evicted)

    def _finished(self, key: Key, task: asyncio.Task[Answer]) -> None:
        self._computing.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: a failure nobody awaited any more is not logged twice


def _cost(answer: Answer) -> int:
    return len(answer.value) + 1


CACHE = web.AppKey("cache", AnswerCache)
