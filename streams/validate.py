"""Validation of decoded measurements: what a reading must satisfy before it is stored."""

from __future__ import annotations

import math
import re

from streams.codec import Record
from streams.reasons import Rejection

DEVICE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
METRIC = re.compile(r"[a-z][a-z0-9_.]{0,63}")
EARLIEST_EVENT_MS = 978_307_200_000  # 2001-01-01T00:00:00Z
_MAX_REMEMBERED_METRICS = 10_000
# firmware and site label every reading: ClickHouse's views copy them per row.
MAX_LABEL_LENGTH = 128


class Validator:
    """Checks one record; remembers metric names already accepted (they repeat endlessly)."""

    def __init__(self, max_future_ms: int, max_readings: int = 1000) -> None:
        self.max_future_ms = max_future_ms
        self.max_readings = max_readings
        self._metrics: set[str] = set()

    def check(self, record: Record, now_ms: int) -> Rejection | None:
        device_id = record["device_id"]
        if DEVICE_ID.fullmatch(device_id) is None:
            return Rejection("invalid_device_id", f"device_id {device_id[:140]!r}")
        for label in ("firmware", "site"):
            text = record[label]
            if text is not None and len(text) > MAX_LABEL_LENGTH:
                return Rejection("invalid_label", f"{label} of {len(text)} characters")
        event_time = record["event_time"]
        if event_time < EARLIEST_EVENT_MS or event_time > now_ms + self.max_future_ms:
            return Rejection("invalid_event_time", f"event_time {event_time} ms, now {now_ms} ms")
        if record["seq"] < 0:
            return Rejection("invalid_seq", f"seq {record['seq']}")
        readings = record["readings"]
        if not readings:
            return Rejection("no_readings", "the readings map is empty")
        if len(readings) > self.max_readings:
            return Rejection("too_many_readings", f"{len(readings)} > {self.max_readings}")
        for metric, value in readings.items():
            if metric not in self._metrics:
                if METRIC.fullmatch(metric) is None:
                    return Rejection("invalid_metric", f"metric {metric[:80]!r}")
                if len(self._metrics) >= _MAX_REMEMBERED_METRICS:
                    self._metrics.clear()
                self._metrics.add(metric)
            if not math.isfinite(value):
                return Rejection("non_finite_value", f"{metric} = {value}")
        return None
