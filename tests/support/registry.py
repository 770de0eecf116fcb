"""A schema registry stub in a thread: the one route the workers use, and an outage switch."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web

from devstack.daemon import free_port


class RegistryStub:
    """``GET /schemas/ids/{id}`` from ``schemas``; 404 for others; 503 while ``down``."""

    def __init__(self, schemas: dict[int, Any]) -> None:
        self.schemas = schemas
        self.down = False
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _schema(self, request: web.Request) -> web.Response:
        if self.down:
            return web.json_response({"error_code": 50001, "message": "down"}, status=503)
        schema_id = int(request.match_info["id"])
        if schema_id not in self.schemas:
            return web.json_response({"error_code": 40403, "message": "not found"}, status=404)
        return web.json_response({"schema": json.dumps(self.schemas[schema_id])})

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/schemas/ids/{id}", self._schema)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
