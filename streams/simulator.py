"""A plausible device fleet: each device keeps its own sequence and drifting readings.

Devices alternate between schema versions (even devices run firmware that speaks v1, odd
ones v2), and a fraction of messages can be malformed on purpose, one kind of fault each, to
exercise the dead-letter path.
"""

from __future__ import annotations

import math
import random
import struct
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from streams.codec import SINGLE_OBJECT_MAGIC, Record
from streams.producer import MeasurementProducer

METRICS = {
    # name: (start, step of the random walk, low, high)
    "temperature_c": (21.0, 0.05, -20.0, 60.0),
    "humidity_pct": (45.0, 0.2, 0.0, 100.0),
    "battery_v": (3.9, 0.001, 3.0, 4.2),
    "rssi_dbm": (-67.0, 0.5, -110.0, -30.0),
}
SITES = ("plant-north", "plant-south", "warehouse-1", "office-hq")
BAD_KINDS = (
    "not_avro",
    "unknown_schema",
    "truncated",
    "non_finite_value",
    "future_event_time",
    "invalid_device_id",
)


@dataclass
class Device:
    device_id: str
    version: int
    firmware: str
    site: str | None
    seq: int = 0
    values: dict[str, float] = field(default_factory=dict)


class Fleet:
    """``size`` devices, with readings that drift like real sensors."""

    def __init__(self, size: int, versions: list[int], seed: int = 1, prefix: str = "dev") -> None:
        self.random = random.Random(seed)
        self.devices = [
            Device(
                f"{prefix}-{i:06d}",
                versions[i % len(versions)],
                f"fw-1.{i % 7}.0",
                SITES[i % len(SITES)],
                values={
                    name: spec[0] + self.random.uniform(-1, 1) for name, spec in METRICS.items()
                },
            )
            for i in range(size)
        ]

    def reading(self, device: Device, now_ms: int) -> Record:
        """The device's next message: seq + 1, each metric one random-walk step further."""
        for name, (_, step, low, high) in METRICS.items():
            value = device.values[name] + self.random.gauss(0, step)
            device.values[name] = min(high, max(low, value))
        device.seq += 1
        return {
            "device_id": device.device_id,
            "event_time": now_ms,
            "seq": device.seq,
            "readings": {name: round(v, 4) for name, v in device.values.items()},
            "firmware": device.firmware,
            "site": device.site if device.version >= 2 else None,  # v1 has no site
        }


@dataclass
class Summary:
    sent: int = 0
    by_version: Counter[int] = field(default_factory=Counter)
    bad: Counter[str] = field(default_factory=Counter)
    readings: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        rate = self.sent / self.seconds if self.seconds else 0.0
        versions = ", ".join(f"v{v}: {n}" for v, n in sorted(self.by_version.items()))
        bad = ", ".join(f"{k}: {n}" for k, n in sorted(self.bad.items())) or "none"
        return [
            f"sent {self.sent} messages ({self.readings} readings) in {self.seconds:.1f} s, "
            f"{rate:.0f} msg/s",
            f"valid by schema version: {versions or 'none'}",
            f"malformed on purpose: {bad}",
        ]


def malformed(kind: str, record: Record, producer: MeasurementProducer) -> bytes:
    """A payload broken in one specific way."""
    good = producer.encoders[producer.version].encode(record)
    if kind == "not_avro":
        return b'{"device_id": "json-is-not-our-format"}'
    if kind == "unknown_schema":
        return SINGLE_OBJECT_MAGIC + struct.pack("<Q", 0xDEADBEEF) + good[10:]
    if kind == "truncated":
        return good[: max(11, len(good) // 2)]
    if kind == "non_finite_value":
        return producer.encoders[producer.version].encode(
            {**record, "readings": {**record["readings"], "temperature_c": math.nan}}
        )
    if kind == "future_event_time":
        return producer.encoders[producer.version].encode(
            {**record, "event_time": record["event_time"] + 30 * 24 * 3600 * 1000}
        )
    return producer.encoders[producer.version].encode({**record, "device_id": "bad id/with space"})


def run(
    producer: MeasurementProducer,
    fleet: Fleet,
    rate: float,
    duration: float,
    bad_ratio: float = 0.0,
    count: int | None = None,
    progress: Callable[[Summary], None] | None = None,
    every: float = 5.0,
) -> Summary:
    """Send at ``rate`` messages/s (fleet-wide) for ``duration`` s or ``count`` messages;
    ``progress`` hears how far it got every ``every`` seconds."""
    summary = Summary()
    start = time.monotonic()
    reported = start
    devices = fleet.devices
    chooser = random.Random(7)
    while True:
        elapsed = time.monotonic() - start
        due = int(elapsed * rate) if rate > 0 else (count or 0)
        if count is not None:
            due = min(due, count)
        if elapsed >= duration or (count is not None and summary.sent >= count):
            break
        now_ms = int(time.time() * 1000)
        while summary.sent < due:
            device = devices[summary.sent % len(devices)]
            record = fleet.reading(device, now_ms)
            if bad_ratio and chooser.random() < bad_ratio:
                kind = BAD_KINDS[summary.sent % len(BAD_KINDS)]
                device.seq -= 1  # a broken message does not use up a sequence number
                producer.send_raw(device.device_id.encode(), malformed(kind, record, producer))
                summary.bad[kind] += 1
            else:
                producer.send(record, device.version)
                summary.by_version[device.version] += 1
                summary.readings += len(record["readings"])
            summary.sent += 1
        if progress is not None and time.monotonic() - reported >= every:
            reported = time.monotonic()
            summary.seconds = reported - start
            progress(summary)
        time.sleep(0.005)
    producer.flush()
    summary.seconds = time.monotonic() - start
    return summary
