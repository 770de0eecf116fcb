"""Time on the wire: RFC 3339 in UTC with milliseconds, or Unix seconds on the way in."""

from __future__ import annotations

import math
from datetime import UTC, datetime

EARLIEST = datetime(2001, 1, 1, tzinfo=UTC).timestamp()  # as streams.validate: an unset clock
LATEST = datetime(2100, 1, 1, tzinfo=UTC).timestamp()


def iso(seconds: float) -> str:
    """``2026-11-26T05:00:00.123Z``."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_ms(milliseconds: int) -> str:
    return iso(milliseconds / 1000)


def parse(text: str) -> float:
    """Unix seconds from RFC 3339 (no zone: UTC) or a number of Unix seconds; ValueError."""
    try:
        seconds = float(text)
    except ValueError:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
    if not math.isfinite(seconds) or not EARLIEST <= seconds <= LATEST:
        raise ValueError(f"{text!r} is outside 2001-01-01 .. 2100-01-01")
    return seconds
