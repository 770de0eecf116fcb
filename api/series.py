"""``GET /v1/devices/{device_id}/series``: one metric of one device, downsampled.

Buckets start at multiples of ``step`` since the Unix epoch, from the bucket holding ``from``
to the one holding ``to``; empty buckets are left out. A step that is a whole number of minutes
is served from the one-minute rollups (``readings_1m``), any other from ``readings FINAL``: both
give the same figures, the rollups at a fraction of the cost.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from api import params
from api.auth import scope
from api.cache import CACHE
from api.devices import seen, with_freshness
from api.errors import bad_parameter, not_found
from api.freshness import respond
from api.reader import READER
from api.times import iso
from streams.queries import RAW, RAW_SQL, ROLLUP, ROLLUP_SQL

routes = web.RouteTableDef()

Agg = Literal["avg", "min", "max", "last", "count"]
AGGS: tuple[Agg, ...] = ("avg", "min", "max", "last", "count")
MAX_POINTS = 10_000
DEFAULT_SPAN_SECONDS = 3600
MAX_SPAN_SECONDS = 366 * 86400
MAX_STEP_SECONDS = 86400
AUTO_POINTS = 1000  # without a step, the smallest of NICE_STEPS giving at most this many
NICE_STEPS = (60, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)


@dataclass(frozen=True)
class Window:
    """Whole buckets of ``step`` seconds covering [from, to)."""

    start: int
    end: int
    step: int

    @classmethod
    def covering(cls, start: float, end: float, step: int) -> Window:
        return cls(math.floor(start / step) * step, math.ceil(end / step) * step, step)

    @property
    def points(self) -> int:
        return (self.end - self.start) // self.step

    @property
    def rollups(self) -> bool:
        return self.step % 60 == 0

    def sql(self, agg: Agg) -> str:
        if self.rollups:
            return ROLLUP_SQL.replace("$VALUE", ROLLUP[agg])
        return RAW_SQL.replace("$VALUE", RAW[agg])


def auto_step(span: float) -> int:
    return next((s for s in NICE_STEPS if span / s <= AUTO_POINTS), NICE_STEPS[-1])


@routes.get("/v1/devices/{device_id}/series")
@scope("read")
async def series(request: web.Request) -> web.Response:
    query = params.Query(request, ("metric", "from", "to", "step", "agg"))
    device_id = params.device_id(request)
    metric = query.metric()
    end = query.time("to", time.time())
    start = query.time("from", end - DEFAULT_SPAN_SECONDS)
    if start >= end:
        raise bad_parameter("from", "from must be earlier than to.")
    if end - start > MAX_SPAN_SECONDS:
        raise bad_parameter("from", "from and to may be at most 366 days apart.")
    step = query.duration("step", 1, MAX_STEP_SECONDS) or auto_step(end - start)
    agg = query.choice("agg", AGGS, "avg")
    window = Window.covering(start, end, step)
    if window.points > MAX_POINTS:
        smallest = math.ceil((end - start) / MAX_POINTS)
        raise bad_parameter(
            "step",
            f"{window.points} points asked for, at most {MAX_POINTS}; use a step of at least "
            f"{smallest} s or a shorter range.",
        )
    reader = request.app[READER]
    arguments = {
        "device_id": device_id,
        "metric": metric,
        "start": window.start,
        "end": window.end,
        "step": step,
    }
    answer, freshness = await with_freshness(
        request,
        device_id,
        request.app[CACHE].get(
            "series",
            (device_id, metric, window, agg),
            lambda: reader.rows(window.sql(agg), arguments),
        ),
    )
    if not answer.value and not await seen(request, device_id):
        raise not_found(f"Device {device_id!r} has never been seen.")
    body = {
        "device_id": device_id,
        "metric": metric,
        "agg": agg,
        "step_seconds": step,
        "from": iso(window.start),
        "to": iso(window.end),
        "source": "readings_1m" if window.rollups else "readings",
        "points": [{"time": iso(bucket), "value": value} for bucket, value in answer.value],
    }
    return respond(body, answer.freshness(freshness))
