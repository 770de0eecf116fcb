"""The API's Prometheus metrics (names from the catalogue), their middleware and ``/metrics``."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.exposition import generate_latest

from api.auth import scope
from streams.metrics import counter, histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    """One process's API collectors, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = counter(registry, "streamgauge_api_requests_total")
        self.duration = histogram(
            registry, "streamgauge_api_request_duration_seconds", LATENCY_BUCKETS
        )
        self.cache_hits = counter(registry, "streamgauge_api_cache_hits_total")
        self.cache_misses = counter(registry, "streamgauge_api_cache_misses_total")


METRICS = web.AppKey("metrics", ApiMetrics)
routes = web.RouteTableDef()


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as http:
        status = http.status
        raise
    finally:
        metrics = request.app[METRICS]
        route = route_name(request)
        metrics.requests.labels(route, request.method, str(status)).inc()
        metrics.duration.labels(route).observe(time.perf_counter() - start)


def route_name(request: web.Request) -> str:
    """The route's template (``/v1/devices/{device_id}/latest``): bounded label values."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@routes.get("/metrics")
@scope("metrics")
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
