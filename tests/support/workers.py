"""The workers as deployed: ``streamgauge worker --processes N`` in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from devstack.daemon import child_pids
from streams.settings import Settings


class Workers:
    """A running supervisor and its worker processes, logging to ``log``."""

    def __init__(self, settings: Settings, processes: int, log: Path) -> None:
        self.log = log
        env = {**os.environ, **settings.to_env()}
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker", "--processes", str(processes)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def children(self) -> list[int]:
        """Pids of the worker processes the supervisor runs now."""
        return child_pids(self.process.pid)

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def consuming(self, processes: int) -> bool:
        """Every one of ``processes`` worker processes is past its start-up checks and polling
        (starting an interpreter and its checks took seconds on a busy machine)."""
        return self.output().count("started, consuming") >= processes


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
