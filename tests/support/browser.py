"""Headless Chromium driven over the DevTools protocol: open a page, wait, look, screenshot.

Debian's ``chromium`` (scripts/ensure-chromium.sh), started with a fresh profile and nothing
that reaches beyond loopback; the protocol over a WebSocket with aiohttp.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
]


def executable() -> str | None:
    return shutil.which("chromium")


class Browser:
    """One Chromium with one page; ``errors`` collects the page's exceptions and console errors."""

    def __init__(self, profile: Path, width: int = 1280, height: int = 1100) -> None:
        chromium = executable()
        assert chromium is not None, "no chromium: run scripts/ensure-chromium.sh"
        self.profile = profile
        self.size = (width, height)
        self.errors: list[str] = []
        self.process = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Browser:
        port = await self._devtools_port()
        self._session = aiohttp.ClientSession()
        async with self._session.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        page = next(t for t in targets if t["type"] == "page")
        self._socket = await self._session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        await self.call("Runtime.enable")
        await self.call("Log.enable")
        await self.call("Page.enable")
        width, height = self.size
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._socket is not None:
            await self._socket.close()
        if self._session is not None:
            await self._session.close()
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, 10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self._socket is not None
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self._socket.send_json({"id": ident, "method": method, "params": params or {}})
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def open(self, url: str) -> None:
        await self.call("Page.navigate", {"url": url})

    async def evaluate(self, expression: str) -> Any:
        reply = await self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}
        )
        return reply["result"].get("value")

    async def wait_for(self, expression: str, within: float = 30.0) -> Any:
        """The value of ``expression`` once it is truthy."""
        deadline = time.monotonic() + within
        while not (value := await self.evaluate(expression)):
            assert time.monotonic() < deadline, f"never true: {expression}; errors {self.errors}"
            await asyncio.sleep(0.2)
        return value

    async def screenshot(self, path: Path) -> None:
        reply = await self.call("Page.captureScreenshot", {"format": "png"})
        await asyncio.to_thread(path.write_bytes, base64.b64decode(reply["data"]))

    async def _devtools_port(self) -> int:
        """Chromium writes the port it picked to DevToolsActivePort in the profile."""
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not active.exists() or not active.read_text().strip():
            assert self.process.poll() is None, "chromium exited at start"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            await asyncio.sleep(0.1)
        return int(active.read_text().split()[0])

    async def _read(self) -> None:
        assert self._socket is not None
        async for message in self._socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            event = json.loads(message.data)
            if "id" in event:
                with contextlib.suppress(KeyError):
                    self._pending.pop(event["id"]).set_result(event)
            elif event.get("method") == "Runtime.exceptionThrown":
                self.errors.append(event["params"]["exceptionDetails"].get("text", "exception"))
            elif event.get("method") == "Log.entryAdded":
                entry = event["params"]["entry"]
                if entry.get("level") == "error":
                    self.errors.append(f"{entry.get('source')}: {entry.get('text')}")
