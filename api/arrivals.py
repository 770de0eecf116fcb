"""Where a device's messages may be waiting: the partitions its readings really arrived on.

Nothing is assumed about the producers' partitioner. The workers store each reading's Kafka
partition; ``device_partitions`` (migration 0006) keeps, per device and partition, the first
and last event time and the last time one was stored, and per partition (device ``''``) when
its first reading was stored. A device's *candidate* partitions are:

1. every partition its readings arrived on within ``window`` seconds (event time) of its
   newest reading — one partition for a keyed producer; two for a while after the partitioner
   or the partition count changed;
2. every partition added to the topic since: partitions numbered past those that stored a
   reading in the topic's first ``window`` seconds, that stored none yet or whose first stored
   reading is later than ``window`` before the device's newest stored one (producers learn of
   new partitions at their next metadata refresh, up to 5 minutes apart by default);
3. every partition, when no reading of the device is stored yet, when ClickHouse cannot say,
   or when its readings arrive on several partitions at once (their event-time ranges
   overlap: an unkeyed or random partitioner).

Freshness is the worst candidate's lag.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Basis = Literal["readings", "spread", "not-stored-yet", "unknown", "topic"]


@dataclass(frozen=True)
class Arrival:
    """One device's readings from one partition: event-time range and last storage time."""

    partition: int
    first_event: float  # Unix seconds
    last_event: float
    last_stored: float


@dataclass(frozen=True)
class Arrivals:
    """What ClickHouse says of a device's partitions, or why it could not say."""

    device: Sequence[Arrival] = ()
    first_stored: Mapping[int, float] = field(default_factory=dict)  # partition: Unix seconds
    failure: str | None = None

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any]]) -> Arrivals:
        """From ARRIVALS_SQL's rows about one device and the partitions (device ``''``):
        (device, partition, first event, last event, first stored, last stored), in Unix ms."""
        device, first_stored = [], {}
        for device_id, partition, first_ms, last_ms, stored_first_ms, stored_last_ms in rows:
            if device_id == "":
                first_stored[int(partition)] = stored_first_ms / 1000
            else:
                device.append(
                    Arrival(int(partition), first_ms / 1000, last_ms / 1000, stored_last_ms / 1000)
                )
        return cls(tuple(device), first_stored)


@dataclass(frozen=True)
class Candidates:
    """The partitions whose lag is the device's freshness, and why those."""

    partitions: frozenset[int]
    basis: Basis
    reason: str | None = None


def candidates(arrivals: Arrivals, current: Collection[int], window: float) -> Candidates:
    """The device's candidate partitions among the topic's ``current`` ones (module docstring)."""
    every = frozenset(current)
    if arrivals.failure is not None:
        return Candidates(
            every,
            "unknown",
            f"the partitions this device writes to are unknown ({arrivals.failure}): "
            "the worst partition's lag",
        )
    if not arrivals.device:
        return Candidates(
            every,
            "not-stored-yet",
            "no reading of this device is stored yet, so the partitions it writes to are "
            "unknown: the worst partition's lag",
        )
    newest = max(a.last_event for a in arrivals.device)
    recent = [a for a in arrivals.device if a.last_event >= newest - window]
    if _overlap(recent):
        return Candidates(
            every,
            "spread",
            "this device's readings arrive on several partitions at once (an unkeyed or random "
            "partitioner): the worst partition's lag",
        )
    last_stored = max(a.last_stored for a in arrivals.device)
    added = added_partitions(arrivals.first_stored, current, last_stored - window, window)
    return Candidates(frozenset(a.partition for a in recent) | added, "readings")


def added_partitions(
    first_stored: Mapping[int, float], current: Collection[int], since: float, window: float
) -> frozenset[int]:
    """Partitions added to the topic after its first ``window`` seconds whose first reading
    (if any yet) was stored after ``since``."""
    start = min(first_stored.values(), default=0.0)
    initial = 1 + max((p for p, at in first_stored.items() if at <= start + window), default=-1)
    return frozenset(
        p for p in current if p >= initial and (p not in first_stored or first_stored[p] > since)
    )


def _overlap(arrivals: Sequence[Arrival]) -> bool:
    """Whether two partitions' event-time ranges overlap: messages sent to both at once."""
    ordered = sorted(arrivals, key=lambda a: (a.first_event, a.last_event))
    return any(b.first_event < a.last_event for a, b in itertools.pairwise(ordered))
