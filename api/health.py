"""``GET /healthz`` (the process answers) and ``GET /readyz`` (it can give useful answers).

Ready means ClickHouse answers a trivial query in time. The lag source is reported but does
not decide: without it answers still carry data, with ``freshness.source: "unavailable"``, and
one exporter restart must not take every API replica out of its Service. Both are open
(probes carry no key); why a check fails — error text, internal addresses — is shown only to a
key with the ``metrics`` scope (or to everyone when auth is off).
"""

from __future__ import annotations

from aiohttp import hdrs, web

from api.auth import KEYRING, public
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
    details = request.app[KEYRING].allows(request.headers.get(hdrs.AUTHORIZATION), "metrics")
    checks: dict[str, dict[str, bool | str | None]] = {
        "clickhouse": {"ok": clickhouse is None, "required": True},
        "lag_source": {"ok": lag is None, "required": False},
    }
    if details:
        checks["clickhouse"]["detail"] = clickhouse
        checks["lag_source"]["detail"] = lag
    ready = clickhouse is None
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )
