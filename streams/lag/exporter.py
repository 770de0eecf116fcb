"""The lag exporter process: refreshes on an interval, on its own thread, and serves the result.

Kafka is queried in the background, never per scrape: by a child process (isolation.py) that
one dedicated thread waits for, so the event loop only schedules refreshes and answers HTTP.
A failed refresh is published as an error sentence and the last good data stays served.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web
from confluent_kafka import KafkaException
from prometheus_client import CollectorRegistry

from streams.errors import UserError
from streams.lag.collector import LagCollector
from streams.lag.isolation import IsolatedReader, ReadFailed
from streams.lag.reader import check_reachable, describe
from streams.lag.refresh import Refresher
from streams.lag.requests import RequestTotals
from streams.lag.server import create_app
from streams.lag.state import ExporterState
from streams.lag.status import Rules
from streams.settings import Settings

log = logging.getLogger(__name__)


class LagExporter:
    """Runs ``refresher`` every ``interval`` seconds and publishes each outcome to ``state``."""

    def __init__(self, refresher: Refresher, interval: float, state: ExporterState) -> None:
        self.refresher = refresher
        self.interval = interval
        self.state = state
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lag-refresh")

    async def call(self, function: Callable[[], None]) -> None:
        """Run ``function()`` on the refresh thread, after whatever runs there now."""
        await asyncio.get_running_loop().run_in_executor(self._thread, function)

    def refresh_once(self) -> None:
        began = time.monotonic()
        try:
            snapshot = self.refresher.refresh()
        except ReadFailed as error:
            self._failed(str(error), began)
        except KafkaException as error:
            self._failed(f"Reading lag from Kafka failed: {describe(error)}.", began)
        except Exception as error:  # the exporter must outlive any one refresh
            log.exception("lag refresh failed")
            self._failed(f"The lag refresh failed unexpectedly: {error!r}.", began)
        else:
            self.state.succeeded(snapshot)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            await self.call(self.refresh_once)
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - began)))

    async def close(self) -> None:
        self.refresher.reader.interrupt()  # a refresh in progress fails at once
        await self.call(self.refresher.close)  # on the refresh thread, after that refresh
        self._thread.shutdown()

    def _failed(self, error: str, began: float) -> None:
        if error != self.state.last_error:
            log.warning("%s", error)
        self.state.failed(error, time.monotonic() - began)


def parse_groups(raw: str) -> list[str]:
    groups = list(dict.fromkeys(g.strip() for g in raw.split(",") if g.strip()))
    if not groups:
        raise UserError("No consumer group to report; set --groups or STREAMGAUGE_LAG_GROUPS.")
    return groups


async def serve(settings: Settings) -> int:
    """The whole process: listen, check Kafka, refresh until SIGTERM or SIGINT."""
    groups = parse_groups(settings.lag_groups)
    if settings.lag_refresh_seconds <= 0:
        raise UserError("--refresh-seconds must be positive.")
    requests = RequestTotals()
    state = ExporterState(settings.lag_refresh_seconds)
    registry = CollectorRegistry()
    registry.register(LagCollector(state, requests))
    runner = web.AppRunner(create_app(state, registry), access_log=None)
    await runner.setup()
    try:
        await _listen(runner, settings.lag_exporter_host, settings.lag_exporter_port)
        await asyncio.to_thread(check_reachable, settings)
        rules = Rules(settings.lag_window_refreshes, settings.lag_stop_after_seconds)
        refresher = Refresher(IsolatedReader(settings, groups), rules, requests)
        exporter = LagExporter(refresher, settings.lag_refresh_seconds, state)
        try:
            log.info(
                "lag exporter on http://%s:%d (/metrics /status /healthz), groups %s, every %g s",
                settings.lag_exporter_host,
                settings.lag_exporter_port,
                ", ".join(groups),
                settings.lag_refresh_seconds,
            )
            await _until_stopped(exporter.run())
        finally:
            await exporter.close()
    finally:
        await runner.cleanup()
    return 0


async def _listen(runner: web.AppRunner, host: str, port: int) -> None:
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        reason = os.strerror(error.errno).lower() if error.errno else str(error)
        raise UserError(
            f"The lag exporter cannot listen on {host}:{port} ({reason}); another "
            "exporter may be running there: stop it or choose another --port."
        ) from None


async def _until_stopped(work: Coroutine[Any, Any, None]) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    task = asyncio.create_task(work)
    await asyncio.wait([task, asyncio.create_task(stopping.wait())], return_when="FIRST_COMPLETED")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    log.info("lag exporter stopped")
