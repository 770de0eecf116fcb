"""The read API as deployed: ``streamgauge api`` in a subprocess, for browsers and fuzzers."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from devstack.daemon import free_port
from streams.settings import Settings
from tests.support.workers import wait_until


class ApiProcess:
    """``streamgauge api`` on a free loopback port, logging to ``log``."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        if not settings.api_keys:  # a test without keys serves without auth, explicitly
            settings = dataclasses.replace(settings, api_auth=False)
        env = {**os.environ, **settings.to_env()}
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "api", "--port", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if not wait_until(self._healthy, 30):
            self.stop()
            raise RuntimeError(f"the API did not start: {self.output()[-2000:]}")

    def _healthy(self) -> bool:
        assert self.process.poll() is None, self.output()[-2000:]
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")
