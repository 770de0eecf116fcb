"""The lag source: the lag exporter's ``GET /status``, polled in the background.

The contract (``streamgauge lag-exporter``, STREAMGAUGE_API_LAG_URL)::

    {"refreshed_at": "...Z", "refreshed_at_unix": 1795670400.123, "refresh_seconds": 0.05,
     "healthy": true, "error": null,
     "groups": [{"group": "streamgauge-ingest", "state": "Stable", "members": 2, "status": "OK",
                 "topics": [{"topic": "measurements", "lag_messages": 12, "lag_seconds": 0.8,
                             "partitions": [{"partition": 0, "start_offset": 0,
                                             "end_offset": 100, "committed_offset": 90,
                                             "lag_messages": 10, "lag_seconds": 0.5,
                                             "oldest_unconsumed_at_unix": 1795670399.6,
                                             "status": "OK"}]}]}]}

The API keeps the entry of its consumer group and topic. A status that is missing, malformed
or older than a few of the exporter's refresh intervals is *unavailable*: freshness then says
so, never a made-up zero. A partition's lag in seconds is its oldest unconsumed message's age
when an answer is made (``seconds_at``), not when the exporter refreshed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)

HISTORY_SECONDS = 15 * 60  # how far back the dashboard's lag chart reaches
MAX_POLL_SECONDS = 1.0
STALE_AFTER_REFRESHES = 3  # a status older than this many refresh intervals is unavailable


class LagContractError(ValueError):
    """The status document does not follow the contract, or lacks our group or topic."""


class LagNotYet(LagContractError):
    """The exporter answers but has not completed its first refresh (it just started)."""


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    lag_seconds: float | None
    lag_messages: int | None
    status: str
    committed_offset: int | None
    end_offset: int | None
    oldest_at: float | None = None  # Unix time of the oldest unconsumed message, if any

    def seconds_at(self, now: float) -> float | None:
        """The lag at ``now``: the oldest unconsumed message's age then; None when unknown."""
        if self.lag_seconds is None or self.oldest_at is None:
            return self.lag_seconds
        return max(self.lag_seconds, now - self.oldest_at)


@dataclass(frozen=True)
class LagStatus:
    """One refresh of the exporter, reduced to the API's consumer group and topic."""

    refreshed_at: float  # Unix seconds
    partitions: Mapping[int, PartitionLag]


@dataclass(frozen=True)
class LagView:
    """What the API knows now: a status young enough to trust, or why there is none."""

    status: LagStatus | None
    detail: str | None


def parse_status(body: Any, group: str, topic: str) -> LagStatus:
    if isinstance(body, dict) and body.get("refreshed_at_unix", 0) is None and "healthy" in body:
        raise LagNotYet("the lag exporter has not completed its first refresh yet")
    try:
        refreshed_at = float(body["refreshed_at_unix"])
        groups = {g["group"]: g for g in body["groups"]}
    except (KeyError, TypeError, ValueError) as error:
        raise LagContractError(
            f"the status document is not the lag exporter's ({error!r})"
        ) from None
    if group not in groups:
        raise LagContractError(
            f"the lag exporter does not report group {group!r} (its STREAMGAUGE_LAG_GROUPS)"
        )
    topics = {t.get("topic"): t for t in groups[group].get("topics") or []}
    if topic not in topics:
        raise LagContractError(f"the lag exporter reports no topic {topic!r} for group {group!r}")
    try:
        partitions = [_partition(p) for p in topics[topic]["partitions"]]
    except (KeyError, TypeError, ValueError) as error:
        raise LagContractError(f"a partition entry breaks the contract ({error!r})") from None
    return LagStatus(refreshed_at, {p.partition: p for p in partitions})


def _partition(entry: Mapping[str, Any]) -> PartitionLag:
    return PartitionLag(
        partition=int(entry["partition"]),
        lag_seconds=_optional(float, entry.get("lag_seconds")),
        lag_messages=_optional(int, entry.get("lag_messages")),
        status=str(entry.get("status") or "UNKNOWN"),
        committed_offset=_optional(int, entry.get("committed_offset")),
        end_offset=_optional(int, entry.get("end_offset")),
        oldest_at=_optional(float, entry.get("oldest_unconsumed_at_unix")),
    )


def _optional(kind: Callable[[Any], Any], value: Any) -> Any:
    return None if value is None else kind(value)


class LagPoller:
    """Polls the exporter every second (or its refresh interval, if shorter); one per process."""

    def __init__(
        self,
        url: str,
        group: str,
        topic: str,
        refresh_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.group = group
        self.topic = topic
        self.interval = min(MAX_POLL_SECONDS, refresh_seconds)
        self.max_age = STALE_AFTER_REFRESHES * refresh_seconds + self.interval
        self.clock = clock
        self.history: deque[tuple[float, dict[int, float | None]]] = deque()
        self._status: LagStatus | None = None
        self._error: str | None = "not polled yet"  # the last poll's failure; None: it worked
        self._failing = False

    async def run(self, session: aiohttp.ClientSession) -> None:
        while True:
            await self.poll(session)
            await asyncio.sleep(self.interval)

    async def poll(self, session: aiohttp.ClientSession) -> None:
        try:
            async with session.get(self.url) as response:
                if response.status != 200:
                    raise LagContractError(f"it answered HTTP {response.status}")
                body = await response.json(content_type=None)
            status = parse_status(body, self.group, self.topic)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            self._error = _describe(error)
            if not self._failing and not isinstance(error, LagNotYet):  # not yet: no failure
                log.warning("lag source %s failed: %s; retrying", self.url, self._error)
            self._failing = not isinstance(error, LagNotYet)
            return
        if self._failing:
            log.info("lag source %s answers again", self.url)
        self._error = None
        self._failing = False
        self._status = status
        self._remember(status)

    def view(self) -> LagView:
        status = self._status
        if status is None:
            return LagView(None, f"the lag exporter at {self.url} is unavailable: {self._error}")
        age = self.clock() - status.refreshed_at
        if age > self.max_age:
            reason = f"; last poll: {self._error}" if self._error else ""
            return LagView(
                None,
                f"the lag exporter's last refresh is {age:.0f} s old "
                f"(more than {self.max_age:.0f} s){reason}",
            )
        return LagView(status, None)

    def _remember(self, status: LagStatus) -> None:
        if self.history and self.history[-1][0] >= status.refreshed_at:
            return
        lags = {p.partition: p.lag_seconds for p in status.partitions.values()}
        self.history.append((status.refreshed_at, lags))
        while self.history and self.history[0][0] < status.refreshed_at - HISTORY_SECONDS:
            self.history.popleft()


LAG = web.AppKey("lag", LagPoller)


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return str(error) or type(error).__name__
