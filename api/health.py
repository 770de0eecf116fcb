"""``GET /healthz`` (the process answers) and ``GET /readyz`` (it can give useful answers).

Ready means ClickHouse answers a trivial query in time and the lag source is fresh: without
either, answers would lack data or freshness. Both are open: probes carry no key.
"""

from __future__ import annotations

from aiohttp import web

from api.auth import public
from api.lag import LAG
from api.reader import READER

routes = web.RouteTableDef()

READY_TIMEOUT_SECONDS = 2.0


@routes.get("/healthz")
@public
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
@public
async def readyz(request: web.Request) -> web.Response:
    clickhouse = await request.app[READER].check(READY_TIMEOUT_SECONDS)
    lag = request.app[LAG].view().detail
    checks = {
        "clickhouse": {"ok": clickhouse is None, "detail": clickhouse},
        "lag_source": {"ok": lag is None, "detail": lag},
    }
    ready = clickhouse is None and lag is None
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )
