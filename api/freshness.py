"""Freshness: how late the data in an answer may be, carried by every answer.

A device's freshness is the lag, in seconds, of the partitions its messages may be waiting on
— those its readings really arrived on (api/arrivals.py), whatever partitioner its producer
uses — the worst of them, as the lag exporter reports it and aged to the moment of the answer.
``stale`` is true when that lag plus the age of the answer exceeds the SLO — both figures in
milliseconds as the answer reports them, so a client adding them up reaches the same verdict;
when the lag is unknown both are null and ``detail`` says why. The same figures travel in the
X-Streamgauge-Lag-Seconds and X-Streamgauge-Stale headers.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from api.arrivals import Arrivals, Basis, Candidates, candidates
from api.lag import LagPoller, LagStatus
from api.times import iso

Source = Literal["lag-exporter", "unavailable"]
ClickHouseState = Literal["ok", "timeout", "unavailable"]
LAG_HEADER = "X-Streamgauge-Lag-Seconds"
STALE_HEADER = "X-Streamgauge-Stale"


@dataclass(frozen=True)
class Freshness:
    slo_seconds: float
    source: Source
    lag_seconds: float | None = None
    lag_messages: int | None = None
    partition: int | None = None  # the partition whose lag this is
    partitions: tuple[int, ...] | None = None  # a device's candidate partitions
    partitions_basis: Basis = "topic"
    partition_status: str | None = None
    lag_refreshed_at: float | None = None
    read_at: float | None = None  # when the answer's data was read from ClickHouse
    age_seconds: float = 0.0  # now minus read_at, to the millisecond like the lag
    clickhouse: ClickHouseState = "ok"
    detail: str | None = None

    @property
    def stale(self) -> bool | None:
        if self.lag_seconds is None:
            return None
        return self.lag_seconds + self.age_seconds > self.slo_seconds

    def answered(
        self, read_at: float, now: float, clickhouse: ClickHouseState = "ok", problem: str = ""
    ) -> Freshness:
        """This freshness for data read at ``read_at`` (earlier than now when cached)."""
        detail = "; ".join(d for d in (self.detail, problem) if d) or None
        return dataclasses.replace(
            self,
            read_at=read_at,
            age_seconds=round(max(0.0, now - read_at), 3),
            clickhouse=clickhouse,
            detail=detail,
        )

    def failed(self, clickhouse: ClickHouseState) -> Freshness:
        """This freshness in an answer that has no data: ClickHouse failed to give it."""
        return dataclasses.replace(self, read_at=None, clickhouse=clickhouse)

    def as_json(self) -> dict[str, Any]:
        return {
            "lag_seconds": self.lag_seconds,
            "lag_messages": self.lag_messages,
            "stale": self.stale,
            "slo_seconds": self.slo_seconds,
            "age_seconds": self.age_seconds,
            "partition": self.partition,
            "partitions": None if self.partitions is None else list(self.partitions),
            "partitions_basis": self.partitions_basis,
            "partition_status": self.partition_status,
            "source": self.source,
            "lag_refreshed_at": None
            if self.lag_refreshed_at is None
            else iso(self.lag_refreshed_at),
            "read_at": None if self.read_at is None else iso(self.read_at),
            "clickhouse": self.clickhouse,
            "detail": self.detail,
        }

    def headers(self) -> dict[str, str]:
        stale = self.stale
        return {
            LAG_HEADER: "unknown" if self.lag_seconds is None else f"{self.lag_seconds:.3f}",
            STALE_HEADER: "unknown" if stale is None else str(stale).lower(),
        }


REQUEST_FRESHNESS = web.RequestKey("freshness", Freshness)  # error answers carry it too


class FreshnessSource:
    """Freshness of a device (its candidate partitions) or of the whole topic (every one)."""

    def __init__(
        self,
        lag: LagPoller,
        slo_seconds: float,
        window_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lag = lag
        self.slo_seconds = slo_seconds
        self.window_seconds = window_seconds
        self.clock = clock

    def for_device(self, arrivals: Arrivals) -> Freshness:
        view = self.lag.view()
        if view.status is None:
            return self._unavailable(view.detail)
        chosen = candidates(arrivals, view.status.partitions, self.window_seconds)
        return self._worst(view.status, chosen)

    def for_topic(self) -> Freshness:
        view = self.lag.view()
        if view.status is None:
            return self._unavailable(view.detail)
        everything = Candidates(frozenset(view.status.partitions), "topic")
        return dataclasses.replace(
            self._worst(view.status, everything),
            partition=None,
            partitions=None,
            partition_status=None,
        )

    def _worst(self, status: LagStatus, chosen: Candidates) -> Freshness:
        numbers = tuple(sorted(chosen.partitions))
        known = {p: lag for p, lag in status.partitions.items() if lag.lag_seconds is not None}
        unknown = [str(p) for p in numbers if p not in known]
        if not numbers or unknown:
            which = f"partition {', '.join(unknown)}" if unknown else "any partition"
            return dataclasses.replace(
                self._unavailable(f"the lag exporter reports no lag for {which}"),
                partitions=numbers,
                partitions_basis=chosen.basis,
            )
        now = self.clock()
        lags = [status.partitions[p] for p in numbers]
        worst = max(lags, key=lambda p: (p.seconds_at(now) or 0.0, -p.partition))
        return Freshness(
            slo_seconds=self.slo_seconds,
            source="lag-exporter",
            lag_seconds=_round(worst.seconds_at(now)),
            lag_messages=sum(p.lag_messages or 0 for p in lags),
            partition=worst.partition,
            partitions=numbers,
            partitions_basis=chosen.basis,
            partition_status=worst.status,
            lag_refreshed_at=status.refreshed_at,
            detail=chosen.reason,
        )

    def _unavailable(self, detail: str | None) -> Freshness:
        return Freshness(self.slo_seconds, "unavailable", detail=detail)


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


FRESHNESS = web.AppKey("freshness", FreshnessSource)


def respond(body: dict[str, Any], freshness: Freshness) -> web.Response:
    """A JSON answer with its freshness in the body and the headers."""
    return web.json_response(
        {**body, "freshness": freshness.as_json()},
        headers={**freshness.headers(), "Cache-Control": "no-store"},
    )
