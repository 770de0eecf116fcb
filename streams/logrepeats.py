"""Repeated log lines, once: librdkafka logs the same failure on every retry.

A client that cannot reach a broker (refused, a TLS handshake failing) logs one line per
attempt, every second or so, differing only in numbers (milliseconds, counters). The filter
lets the first through, drops the same line (numbers aside) for ``window`` seconds, and the
next one after that says how many it dropped.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

_NUMBER = re.compile(r"\d+")
_REMEMBERED = 256  # distinct lines kept; the oldest is forgotten first


class RepeatFilter(logging.Filter):
    def __init__(self, window: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self._clock = clock
        self._seen: dict[tuple[int, str], tuple[float, int]] = {}  # -> (shown at, dropped since)

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.levelno, _NUMBER.sub("#", record.getMessage()))
        now = self._clock()
        shown = self._seen.pop(key, None)
        if shown is not None and now - shown[0] < self.window:
            self._seen[key] = (shown[0], shown[1] + 1)
            return False
        if shown is not None and shown[1]:
            record.msg = (
                f"{record.getMessage()} ({shown[1]} more like it in {now - shown[0]:.0f} s)"
            )
            record.args = None
        self._seen[key] = (now, 0)
        while len(self._seen) > _REMEMBERED:
            del self._seen[next(iter(self._seen))]
        return True


def quiet_repeats(logger: logging.Logger, window: float = 30.0) -> logging.Logger:
    """``logger`` with a RepeatFilter (added once)."""
    if not any(isinstance(f, RepeatFilter) for f in logger.filters):
        logger.addFilter(RepeatFilter(window))
    return logger
