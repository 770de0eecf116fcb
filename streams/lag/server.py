"""The exporter's HTTP interface: ``/metrics`` (Prometheus), ``/status`` (JSON), ``/healthz``.

Every handler reads what the refresh loop last published; none of them touches Kafka.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streams.lag.state import ExporterState

STATE = web.AppKey("state", ExporterState)
REGISTRY = web.AppKey("registry", CollectorRegistry)

routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/status")
async def status(request: web.Request) -> web.Response:
    """Always 200: ``healthy`` and ``error`` in the document say whether it is current."""
    return web.json_response(request.app[STATE].document())


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 while refreshes succeed, 503 with the reason otherwise (a readiness check)."""
    error = request.app[STATE].error()
    body = {"healthy": error is None, "error": error}
    return web.json_response(body, status=503 if error else 200)


@routes.get("/")
async def index(_request: web.Request) -> web.Response:
    return web.Response(text="streamgauge lag exporter: /metrics /status /healthz\n")


def create_app(state: ExporterState, registry: CollectorRegistry) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app[REGISTRY] = registry
    app.add_routes(routes)
    return app
