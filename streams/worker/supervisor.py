"""``streamgauge worker --processes N``: N independent worker processes, restarted when they die.

Each child is a fresh interpreter (not a fork), so its Kafka consumer and ClickHouse client are
created inside it and nothing is shared. SIGTERM or Ctrl-C stops every child cleanly.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from streams.settings import Settings

log = logging.getLogger(__name__)

RESTART_MIN = 1.0
RESTART_MAX = 30.0
STABLE_AFTER = 60.0  # a child that ran this long restarts without delay


@dataclass
class Child:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    delay: float = RESTART_MIN
    restart_at: float = 0.0
    restarts: int = field(default=0)


class Supervisor:
    def __init__(self, settings: Settings, processes: int) -> None:
        self.settings = settings
        self.children = [Child(i) for i in range(processes)]
        self.stopping = False

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._request_stop)
        for child in self.children:
            self._start(child)
        while not self.stopping:
            self._reap()
            time.sleep(0.2)
        return self._stop_all()

    def _request_stop(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            log.info(
                "supervisor: %s received, stopping %d workers",
                signal.Signals(signum).name,
                len(self.children),
            )
        self.stopping = True

    def _start(self, child: Child) -> None:
        env = {**os.environ, **self.settings.to_env(), "STREAMGAUGE_WORKER_INDEX": str(child.index)}
        child.process = subprocess.Popen([sys.executable, "-m", "streams.worker"], env=env)
        child.started = time.monotonic()
        log.info("supervisor: worker %d started (pid %d)", child.index, child.process.pid)

    def _reap(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.process is None:
                if now >= child.restart_at:
                    child.restarts += 1
                    self._start(child)
                continue
            code = child.process.poll()
            if code is None:
                continue
            ran = now - child.started
            child.delay = RESTART_MIN if ran >= STABLE_AFTER else min(child.delay * 2, RESTART_MAX)
            child.restart_at = now + child.delay
            log.warning(
                "supervisor: worker %d (pid %d) exited with code %d after %.0f s; "
                "restarting in %.0f s",
                child.index,
                child.process.pid,
                code,
                ran,
                child.delay,
            )
            child.process = None

    def _stop_all(self, timeout: float = 30.0) -> int:
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
                log.info(
                    "supervisor: worker %d stopped (code %d)", child.index, child.process.returncode
                )
            except subprocess.TimeoutExpired:
                log.warning(
                    "supervisor: worker %d did not stop in %.0f s; killing it", child.index, timeout
                )
                child.process.kill()
                child.process.wait()
        return 0
