"""``GET /v1/devices`` (every device, paginated) and ``GET /v1/devices/{device_id}/latest``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from aiohttp import web

from api import cursor, params
from api.arrivals import Arrivals
from api.arrivals_lookup import ARRIVALS
from api.auth import scope
from api.cache import CACHE
from api.errors import ApiError, not_found
from api.freshness import FRESHNESS, REQUEST_FRESHNESS, Freshness, respond
from api.reader import READER
from api.times import iso_ms
from streams.queries import DEVICES_SQL, LATEST_SQL

routes = web.RouteTableDef()
T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


SEEN_SQL = "SELECT count() FROM devices WHERE device_id = {device_id:String}"


@routes.get("/v1/devices/{device_id}/latest")
@scope("read")
async def latest(request: web.Request) -> web.Response:
    params.Query(request, ())
    device_id = params.device_id(request)
    reader = request.app[READER]
    answer, freshness = await with_freshness(
        request,
        device_id,
        request.app[CACHE].get(
            "latest", device_id, lambda: reader.rows(LATEST_SQL, {"device_id": device_id})
        ),
    )
    if not answer.value:
        raise not_found(f"Device {device_id!r} has never been seen.")
    metrics = [
        {
            "metric": metric,
            "value": value,
            "seq": seq,
            "event_time": iso_ms(event_ms),
            "stored_at": iso_ms(stored_ms),
        }
        for metric, value, seq, event_ms, stored_ms in answer.value
    ]
    return respond({"device_id": device_id, "metrics": metrics}, answer.freshness(freshness))


@routes.get("/v1/devices")
@scope("read")
async def listing(request: web.Request) -> web.Response:
    query = params.Query(request, ("prefix", "limit", "cursor"))
    prefix = query.prefix()
    limit = query.integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    token = query.get("cursor")
    after = cursor.decode(token) if token is not None else ""
    freshness = request[REQUEST_FRESHNESS] = request.app[FRESHNESS].for_topic()
    reader = request.app[READER]
    answer = await request.app[CACHE].get(
        "devices",
        (prefix, after, limit),
        lambda: reader.rows(
            DEVICES_SQL,
            {"after": after, "prefix": prefix, "limit": limit + 1},  # one more: is there a next?
            {"optimize_aggregation_in_order": 1},
        ),
    )
    page = answer.value[:limit]
    more = len(answer.value) > limit
    body = {
        "devices": [_device(row) for row in page],
        "next_cursor": cursor.encode(page[-1][0]) if more else None,
    }
    return respond(body, answer.freshness(freshness))


async def with_freshness(
    request: web.Request, device_id: str, answer: Awaitable[T]
) -> tuple[T, Freshness]:
    """``answer`` and the device's freshness, looked up side by side (each query is bounded by
    the query timeout: together they take one). The freshness is on the request even when
    ``answer`` fails, so the error answer carries it."""
    lookup = asyncio.create_task(device_freshness(request, device_id))
    try:
        value = await answer
    finally:
        freshness = await lookup
    return value, freshness


async def device_freshness(request: web.Request, device_id: str) -> Freshness:
    """The device's freshness, kept on the request so that error answers carry it too."""
    lookup = request.app[ARRIVALS]
    try:
        answer = await request.app[CACHE].get("arrivals", device_id, lambda: lookup.rows(device_id))
        arrivals = Arrivals.from_rows(answer.value)
    except ApiError as error:
        if error.status < 500:
            raise
        arrivals = Arrivals(failure=error.message)
    freshness = request[REQUEST_FRESHNESS] = request.app[FRESHNESS].for_device(arrivals)
    return freshness


async def seen(request: web.Request, device_id: str) -> bool:
    """Whether ClickHouse has ever stored a reading of ``device_id``."""
    reader = request.app[READER]
    answer = await request.app[CACHE].get(
        "seen", device_id, lambda: reader.rows(SEEN_SQL, {"device_id": device_id})
    )
    return bool(answer.value[0][0])


def _device(row: tuple[Any, ...]) -> dict[str, Any]:
    device_id, first_ms, last_ms, firmware, site, metrics = row
    return {
        "device_id": device_id,
        "first_seen": iso_ms(first_ms),
        "last_seen": iso_ms(last_ms),
        "firmware": firmware or None,
        "site": site or None,
        "metrics": list(metrics),
    }
