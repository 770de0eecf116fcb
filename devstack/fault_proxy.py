"""A TCP proxy that injects faults between the workers and ClickHouse, driven over HTTP.

The workers are run exactly as deployed, pointed at the proxy instead of ClickHouse; tests and
benchmarks change the faults while they run:

    python -m devstack.fault_proxy --listen 127.0.0.1:18124 --upstream 127.0.0.1:8123 \\
        --control 127.0.0.1:18125
    curl -X PUT 127.0.0.1:18125/faults -d '{"latency_ms": 500}'      # each request +500 ms
    curl -X PUT 127.0.0.1:18125/faults -d '{"bandwidth_bps": 200000}' # upload capped
    curl -X PUT 127.0.0.1:18125/faults -d '{"down": true}'           # refuse and cut
    curl -X PUT 127.0.0.1:18125/faults -d '{"reset_requests": 3}'    # cut the next 3 mid-insert
    curl -X PUT 127.0.0.1:18125/faults -d '{}'                       # healthy again
    curl 127.0.0.1:18125/stats

Faults apply to the client → server direction, where inserts travel. A request is the data
the client sends after the server last answered (HTTP/1.1 request/response on one connection).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field

from aiohttp import web

log = logging.getLogger("fault_proxy")

CHUNK = 64 * 1024


@dataclass
class Faults:
    latency_ms: float = 0.0  # added before each request is forwarded
    bandwidth_bps: float = 0.0  # cap on client → server bytes per second (0: none)
    down: bool = False  # refuse new connections and cut open ones
    reset_requests: int = 0  # cut this many of the next requests after half their bytes
    reset_after_response: int = 0  # forward this many requests whole, then cut before answering


@dataclass
class Stats:
    connections: int = 0
    requests: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    resets: int = 0
    refused: int = 0
    started: float = field(default_factory=time.monotonic)


class FaultProxy:
    """Forwards TCP connections to ``upstream``, applying ``faults``."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.faults = Faults()
        self.stats = Stats()
        self._open: set[asyncio.Task[None]] = set()
        self._bucket_time = time.monotonic()
        self._bucket = 0.0
        self._changed = asyncio.Event()

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults
        self._changed.set()
        if faults.down:
            for task in list(self._open):
                task.cancel()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.faults.down:
            self.stats.refused += 1
            _abort(writer)
            return
        task = asyncio.current_task()
        assert task is not None
        self._open.add(task)
        self.stats.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            self._open.discard(task)
            _abort(writer)
            return
        answered = asyncio.Event()
        answered.set()
        try:
            await asyncio.gather(
                self._upload(reader, up_writer, answered),
                self._download(up_reader, writer, answered),
            )
        except (asyncio.CancelledError, ConnectionError, _Cut):
            self.stats.resets += 1
        finally:
            self._open.discard(task)
            _abort(writer)
            _abort(up_writer)

    async def _upload(
        self,
        reader: asyncio.StreamReader,
        up: asyncio.StreamWriter,
        answered: asyncio.Event,
    ) -> None:
        while data := await reader.read(CHUNK):
            cut = False
            if answered.is_set():  # a new request begins
                answered.clear()
                self.stats.requests += 1
                if self.faults.reset_requests > 0:
                    self.faults.reset_requests -= 1
                    cut = True
                await self._delay()
            await self._throttle(len(data))
            if cut:  # the server gets half of the request, then the connection dies
                data = data[: max(1, len(data) // 2)]
            up.write(data)
            await up.drain()
            self.stats.bytes_up += len(data)
            if cut:
                raise _Cut()

    async def _download(
        self, up: asyncio.StreamReader, client: asyncio.StreamWriter, answered: asyncio.Event
    ) -> None:
        while data := await up.read(CHUNK):
            if not answered.is_set() and self.faults.reset_after_response > 0:
                # The server did all the work (an insert is stored); the client never hears.
                self.faults.reset_after_response -= 1
                raise _Cut()
            answered.set()
            client.write(data)
            await client.drain()
            self.stats.bytes_down += len(data)

    async def _delay(self) -> None:
        """Hold a new request for the latency; a database that recovers answers at once."""
        deadline = time.monotonic() + self.faults.latency_ms / 1000
        while self.faults.latency_ms and (remaining := deadline - time.monotonic()) > 0:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def _throttle(self, size: int) -> None:
        """A token bucket on the upload; lifting the cap releases waiting chunks at once."""
        while rate := self.faults.bandwidth_bps:
            now = time.monotonic()
            capacity = max(rate, size)  # one second of burst, at least one chunk
            self._bucket = min(capacity, self._bucket + (now - self._bucket_time) * rate)
            self._bucket_time = now
            if self._bucket >= size:
                self._bucket -= size
                return
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), (size - self._bucket) / rate)


class _Cut(Exception):
    """The proxy cuts this connection on purpose."""


def _abort(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.transport.abort()


def control_app(proxy: FaultProxy) -> web.Application:
    async def put_faults(request: web.Request) -> web.Response:
        try:
            proxy.set_faults(Faults(**(await request.json())))
        except (TypeError, ValueError) as error:
            return web.json_response({"error": str(error)}, status=400)
        log.info("faults: %s", proxy.faults)
        return web.json_response(asdict(proxy.faults))

    async def get_faults(_request: web.Request) -> web.Response:
        return web.json_response(asdict(proxy.faults))

    async def get_stats(_request: web.Request) -> web.Response:
        return web.json_response(asdict(proxy.stats))

    app = web.Application()
    app.router.add_put("/faults", put_faults)
    app.router.add_get("/faults", get_faults)
    app.router.add_get("/stats", get_stats)
    return app


async def serve(
    listen: tuple[str, int], upstream: tuple[str, int], control: tuple[str, int]
) -> None:
    proxy = FaultProxy(*upstream)
    server = await asyncio.start_server(proxy.handle, *listen)
    runner = web.AppRunner(control_app(proxy), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, *control).start()
    log.info("proxying %s:%d -> %s:%d, control on %s:%d", *listen, *upstream, *control)
    async with server:
        await server.serve_forever()


class FaultProxyProcess:
    """The proxy as a subprocess, for tests and benchmarks."""

    def __init__(self, listen_port: int, upstream_port: int, control_port: int, log: str) -> None:
        self.port = listen_port
        self._control = f"http://127.0.0.1:{control_port}"
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "devstack.fault_proxy",
                    "--listen",
                    f"127.0.0.1:{listen_port}",
                    "--upstream",
                    f"127.0.0.1:{upstream_port}",
                    "--control",
                    f"127.0.0.1:{control_port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                self.stats()
                return
            time.sleep(0.05)
        raise RuntimeError(f"the fault proxy did not start; see {log}")

    def set(self, **faults: float | bool | int) -> None:
        request = urllib.request.Request(
            f"{self._control}/faults", data=json.dumps(faults).encode(), method="PUT"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    def stats(self) -> dict[str, float]:
        with urllib.request.urlopen(f"{self._control}/stats", timeout=5) as response:
            return dict(json.loads(response.read()))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.fault_proxy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--listen", type=_address, required=True, help="HOST:PORT to accept on")
    parser.add_argument("--upstream", type=_address, required=True, help="HOST:PORT of ClickHouse")
    parser.add_argument("--control", type=_address, required=True, help="HOST:PORT of /faults")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s fault_proxy: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.listen, args.upstream, args.control))


if __name__ == "__main__":
    main()
