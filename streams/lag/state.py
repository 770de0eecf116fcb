"""What the exporter publishes: the last successful refresh and whether the latest one failed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from streams.lag.snapshot import Snapshot, status_document

NOT_YET = "The first lag refresh has not completed yet."


class ExporterState:
    """Written by the refresh loop, read by scrapes; each field is replaced, never mutated."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.time) -> None:
        self.interval = interval
        self.stale_after = max(3 * interval, 30.0)  # a slow refresh is not yet a failed one
        self.snapshot: Snapshot | None = None
        self.last_error: str | None = NOT_YET
        self.last_duration = 0.0
        self.failures = 0
        self.clock = clock

    def succeeded(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.last_duration = snapshot.duration
        self.last_error = None

    def failed(self, error: str, duration: float) -> None:
        self.failures += 1
        self.last_duration = duration
        self.last_error = error

    def error(self) -> str | None:
        """Why the published lag is not current, as a sentence; None when it is."""
        if self.last_error is not None or self.snapshot is None:
            return self.last_error or NOT_YET
        age = self.clock() - self.snapshot.refreshed_at
        if age > self.stale_after:
            return f"No lag refresh succeeded in the last {age:.0f} s; the current one is slow."
        return None

    def document(self) -> dict[str, Any]:
        return status_document(self.snapshot, self.error(), self.interval, self.clock())
