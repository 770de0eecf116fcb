"""``GET /v1/fleet``: the whole pipeline at a glance, what the dashboard's fleet panel draws.

Readings stored per event-time minute (from the rollups) and the lag of every partition, now
and over the last minutes (the lag poller's history). Lag comes from the lag exporter, not
ClickHouse: when ClickHouse fails, the answer still has the lag and says the rest is missing.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from api import params
from api.auth import scope
from api.cache import CACHE
from api.errors import ApiError
from api.freshness import FRESHNESS, REQUEST_FRESHNESS, respond
from api.lag import HISTORY_SECONDS, LAG, LagPoller
from api.reader import READER
from api.times import iso

routes = web.RouteTableDef()

DEFAULT_MINUTES = 15
MAX_MINUTES = HISTORY_SECONDS // 60

INGEST_SQL = """
SELECT toUnixTimestamp(minute) AS at, sum(count)
FROM readings_1m
WHERE minute >= toDateTime({since:UInt32}, 'UTC')
GROUP BY at
ORDER BY at
"""


@routes.get("/v1/fleet")
@scope("read")
async def fleet(request: web.Request) -> web.Response:
    query = params.Query(request, ("minutes",))
    minutes = query.integer("minutes", DEFAULT_MINUTES, 1, MAX_MINUTES)
    now = time.time()
    since = (int(now) // 60 - minutes + 1) * 60
    freshness = request[REQUEST_FRESHNESS] = request.app[FRESHNESS].for_topic()
    reader = request.app[READER]
    body: dict[str, Any] = {"minutes": minutes, "from": iso(since)}
    try:
        answer = await request.app[CACHE].get(
            "fleet", since, lambda: reader.rows(INGEST_SQL, {"since": since})
        )
    except ApiError as error:
        if error.status < 500:
            raise
        body["ingest"] = None
        freshness = freshness.failed("timeout" if error.status == 504 else "unavailable")
    else:
        body["ingest"] = [_minute(at, readings, now) for at, readings in answer.value]
        freshness = answer.freshness(freshness, now)
    body.update(_lag(request.app[LAG], now, minutes * 60))
    return respond(body, freshness)


def _minute(at: int, readings: int, now: float) -> dict[str, Any]:
    covered = max(1.0, min(60.0, now - at))  # the current minute is not over yet
    return {
        "minute": iso(at),
        "readings": readings,
        "readings_per_second": round(readings / covered, 3),
    }


def _lag(poller: LagPoller, now: float, seconds: float) -> dict[str, Any]:
    view = poller.view()
    partitions = []
    if view.status is not None:
        partitions = [
            {
                "partition": p.partition,
                "lag_seconds": _round(p.seconds_at(now)),
                "lag_messages": p.lag_messages,
                "status": p.status,
                "committed_offset": p.committed_offset,
                "end_offset": p.end_offset,
            }
            for p in sorted(view.status.partitions.values(), key=lambda p: p.partition)
        ]
    history = [
        {
            "time": iso(at),
            "lag_seconds": [lags.get(p) for p in range(max(lags, default=-1) + 1)],
        }
        for at, lags in poller.history
        if at >= now - seconds
    ]
    return {"partitions": partitions, "lag_history": history}


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)
