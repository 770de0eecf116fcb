"""The read API's application factory: state, middlewares, routes and the clients' lifetimes.

Each API process owns its ClickHouse client and its lag poller, made when the app starts and
closed when it stops. Middlewares run outermost first: metrics see every answer's final status,
errors turn every failure into a JSON body, auth runs before any handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from api import dashboard, devices, fleet, health, openapi, series
from api import metrics as metrics_routes
from api.arrivals_lookup import ARRIVALS, ArrivalsLookup
from api.auth import KEYRING, KeyRing, auth_middleware, configured_keys
from api.cache import CACHE, AnswerCache
from api.errors import errors_middleware
from api.freshness import FRESHNESS, FreshnessSource
from api.lag import LAG, LagPoller
from api.metrics import METRICS, ApiMetrics, metrics_middleware
from api.reader import READER, Reader
from streams.errors import UserError
from streams.settings import Settings

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
LAG_REQUEST_TIMEOUT_SECONDS = 2.0
RESOURCES = (devices, series, fleet, health, metrics_routes, openapi, dashboard)


def create_app(settings: Settings) -> web.Application:
    keyring = KeyRing(configured_keys(settings) if settings.api_auth else [])
    app = web.Application(middlewares=[metrics_middleware, errors_middleware, auth_middleware])
    app[SETTINGS] = settings
    app[KEYRING] = keyring
    app[METRICS] = ApiMetrics()
    app[CACHE] = AnswerCache(settings.api_cache_seconds, app[METRICS])
    app[LAG] = LagPoller(
        settings.api_lag_url,
        settings.consumer_group,
        settings.topic,
        settings.lag_refresh_seconds,
    )
    app[FRESHNESS] = FreshnessSource(
        app[LAG], settings.lag_slo_seconds, settings.api_partition_window_seconds
    )
    for resource in RESOURCES:
        app.router.add_routes(resource.routes)
    app.cleanup_ctx.append(clickhouse_client)
    app.cleanup_ctx.append(lag_polling)
    if not keyring.enabled:
        log.warning(
            "AUTH IS DISABLED (--no-auth, or no keys): anyone who can reach this API reads "
            "every device. Fine on a laptop; anywhere else set STREAMGAUGE_API_KEYS "
            "(`streamgauge api hash-key`)."
        )
    else:
        log.info("auth on: %d API keys", len(keyring.keys))
    return app


async def clickhouse_client(app: web.Application) -> AsyncIterator[None]:
    """The process's ClickHouse client; it connects on first use, so the API starts (and
    /readyz says why it is not ready) while ClickHouse is down."""
    app[READER] = reader = Reader(app[SETTINGS])
    app[ARRIVALS] = arrivals = ArrivalsLookup(reader)
    yield
    await arrivals.close()
    await reader.close()


async def lag_polling(app: web.Application) -> AsyncIterator[None]:
    """The process's lag poller, with its own HTTP session."""
    timeout = aiohttp.ClientTimeout(total=LAG_REQUEST_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        task = asyncio.create_task(app[LAG].run(session))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def run(settings: Settings, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM."""
    app = create_app(settings)
    log.info("read API on http://%s:%d/ (dashboard at /, reference at /openapi.json)", host, port)
    try:
        web.run_app(app, host=host, port=port, access_log=None, print=None)
    except OSError as error:
        raise UserError(
            f"cannot listen on {host}:{port} ({error.strerror or error}); pick another address "
            "with --host/--port or STREAMGAUGE_API_HOST/STREAMGAUGE_API_PORT."
        ) from None
