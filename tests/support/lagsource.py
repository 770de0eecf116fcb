"""A small fake of the lag exporter's ``GET /status``, for tests that need exact lag figures.

A thread-hosted standard-library HTTP server, so both sync and async tests (and API processes)
can read it. Tests that need real lag run the real exporter instead (tests/support/exporter.py).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def status(
    group: str,
    topic: str,
    lags: dict[int, float | None],
    refreshed_at: float | None = None,
    lag_messages: int = 10,
    oldest: dict[int, float] | None = None,
) -> dict[str, Any]:
    """A status document in the exporter's contract, with ``lags`` seconds by partition (and,
    where ``oldest`` gives it, the Unix time of the partition's oldest unconsumed message)."""
    refreshed_at = time.time() if refreshed_at is None else refreshed_at
    partitions = [
        {
            "partition": p,
            "start_offset": 0,
            "end_offset": 100,
            "committed_offset": 100 - lag_messages,
            "lag_messages": lag_messages,
            "lag_seconds": lag,
            "oldest_unconsumed_at_unix": (oldest or {}).get(p),
            "status": "OK",
        }
        for p, lag in sorted(lags.items())
    ]
    return {
        "refreshed_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(refreshed_at)) + "Z",
        "refreshed_at_unix": refreshed_at,
        "refresh_seconds": 0.01,
        "healthy": True,
        "error": None,
        "groups": [
            {
                "group": group,
                "state": "Stable",
                "members": 1,
                "status": "OK",
                "topics": [
                    {
                        "topic": topic,
                        "lag_messages": lag_messages * len(lags),
                        "lag_seconds": max((v or 0.0) for v in lags.values()) if lags else 0.0,
                        "partitions": partitions,
                    }
                ],
            }
        ],
    }


class FakeLagSource:
    """Serves a status refreshed at each request (or at ``frozen_at``), as ``http_status``."""

    def __init__(self, group: str, topic: str, lags: dict[int, float | None]) -> None:
        self.group = group
        self.topic = topic
        self.lags = lags
        self.frozen_at: float | None = None
        self.oldest: dict[int, float] = {}
        self.http_status = 200
        self.document: dict[str, Any] | None = None  # served as is instead, when set
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(
                    fake.document
                    or status(fake.group, fake.topic, fake.lags, fake.frozen_at, oldest=fake.oldest)
                )
                self.send_response(fake.http_status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/status"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
