"""The lag exporter as deployed: ``streamgauge lag-exporter`` in a subprocess on a free port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devstack.daemon import free_port
from streams.settings import Settings
from tests.support.workers import wait_until


class ExporterProcess:
    """A running exporter for ``groups``, refreshing every ``refresh_seconds``."""

    def __init__(
        self,
        settings: Settings,
        groups: Sequence[str],
        log: Path,
        refresh_seconds: float = 0.5,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [sys.executable, "-m", "streams.cli", "lag-exporter", "--port", str(self.port)]
        command += ["--groups", ",".join(groups), "--refresh-seconds", str(refresh_seconds)]
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                env={**os.environ, **settings.to_env()},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def status(self) -> dict[str, Any]:
        code, body = self.get("/status")
        assert code == 200, body
        document: dict[str, Any] = json.loads(body)
        return document

    def wait_healthy(self, timeout: float = 30) -> bool:
        def healthy() -> bool:
            assert self.process.poll() is None, self.output()
            try:
                return self.get("/healthz")[0] == 200
            except OSError:
                return False

        return wait_until(healthy, timeout)

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def partitions(status: dict[str, Any], group: str, topic: str) -> dict[int, dict[str, Any]]:
    """The /status entries of one group's topic, by partition number."""
    (entry,) = [g for g in status["groups"] if g["group"] == group]
    (topic_entry,) = [t for t in entry["topics"] if t["topic"] == topic]
    return {p["partition"]: p for p in topic_entry["partitions"]}
