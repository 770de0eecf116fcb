"""Freshness: how late the data in an answer may be, carried by every answer.

A device's freshness is the current lag, in seconds, of the partition its messages go to (the
murmur2 partitioner the producers use) as the lag exporter reports it. ``stale`` is true when
that lag plus the age of the answer exceeds the SLO; when the lag is unknown both are null and
``detail`` says why. The same figures travel in the X-Streamgauge-Lag-Seconds and
X-Streamgauge-Stale headers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from api.lag import LagPoller, LagStatus, PartitionLag
from api.times import iso
from streams.partitioner import partition_for

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
    partition: int | None = None
    partition_status: str | None = None
    lag_refreshed_at: float | None = None
    read_at: float | None = None  # when the answer's data was read from ClickHouse
    age_seconds: float = 0.0  # now minus read_at
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
            age_seconds=max(0.0, now - read_at),
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
            "age_seconds": round(self.age_seconds, 3),
            "partition": self.partition,
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
    """Freshness of a device (its partition) or of the whole topic (its worst partition)."""

    def __init__(self, lag: LagPoller, slo_seconds: float) -> None:
        self.lag = lag
        self.slo_seconds = slo_seconds

    def for_device(self, device_id: str) -> Freshness:
        view = self.lag.view()
        if view.status is None:
            return self._unavailable(view.detail)
        status = view.status
        partition = partition_for(device_id, status.partition_count)
        lag = status.partitions.get(partition)
        if lag is None:
            return self._unavailable(f"the lag exporter reports no partition {partition}")
        return self._from(status, lag, partition)

    def for_topic(self) -> Freshness:
        view = self.lag.view()
        if view.status is None:
            return self._unavailable(view.detail)
        status = view.status
        known = [p for p in status.partitions.values() if p.lag_seconds is not None]
        if not known or len(known) < len(status.partitions):
            return self._unavailable("the lag exporter knows no lag for some partitions")
        worst = max(known, key=lambda p: p.lag_seconds or 0.0)
        return dataclasses.replace(
            self._from(status, worst, None),
            lag_messages=sum(p.lag_messages or 0 for p in status.partitions.values()),
            partition_status=None,
        )

    def _from(self, status: LagStatus, lag: PartitionLag, partition: int | None) -> Freshness:
        return Freshness(
            slo_seconds=self.slo_seconds,
            source="lag-exporter",
            lag_seconds=lag.lag_seconds,
            lag_messages=lag.lag_messages,
            partition=partition,
            partition_status=lag.status,
            lag_refreshed_at=status.refreshed_at,
            detail=None if lag.lag_seconds is not None else "the exporter reports no lag here",
        )

    def _unavailable(self, detail: str | None) -> Freshness:
        return Freshness(self.slo_seconds, "unavailable", detail=detail)


FRESHNESS = web.AppKey("freshness", FreshnessSource)


def respond(body: dict[str, Any], freshness: Freshness) -> web.Response:
    """A JSON answer with its freshness in the body and the headers."""
    return web.json_response(
        {**body, "freshness": freshness.as_json()},
        headers={**freshness.headers(), "Cache-Control": "no-store"},
    )
