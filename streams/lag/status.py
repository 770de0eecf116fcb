"""Consumer status per group and partition, Burrow-style, over a sliding window of refreshes.

Kafka tells us, per refresh, a group's committed offset and its metadata; not when a commit
happened. A commit is *observed* when the (offset, metadata) pair differs from the previous
refresh's: an offset that moved, or the same offset committed again with new metadata (what
streamgauge's workers do when they announce a batch intent). Re-committing the identical pair
is invisible. The rules, first match wins (docs/design/lag.md):

1. REWIND  the committed offset decreased between two refreshes of the window.
2. OK      no lag now.
3. STOP    lag, and no commit observed, for ``stop_after`` seconds (counted from the later of
           the last observed commit and the start of the current run of refreshes with lag).
4. OK      the window is not full yet, or some refresh in it saw no lag.
5. STALL   the offset did not move across the window, but commits were observed at it
           (same offset, new metadata) since it was first seen.
6. WARN    lag never shrank from one refresh to the next across the window.
7. OK      otherwise.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    UNKNOWN = "UNKNOWN"  # Kafka could not give the partition's offsets (offline: no leader)
    REWIND = "REWIND"
    STALL = "STALL"
    STOP = "STOP"


SEVERITY = {
    Status.OK: 0,
    Status.WARN: 1,
    Status.UNKNOWN: 2,
    Status.REWIND: 3,
    Status.STALL: 4,
    Status.STOP: 5,
}


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe status (a group's status is its worst partition's); OK for none."""
    return max(statuses, key=SEVERITY.__getitem__, default=Status.OK)


@dataclass(frozen=True)
class Observation:
    """One refresh's view of one group's partition."""

    at: float  # Unix time of the refresh
    committed: int | None  # None: the group has no committed offset here
    metadata: str
    lag: int  # messages


@dataclass(frozen=True)
class Rules:
    window: int  # refreshes the trend rules (WARN, STALL) look at
    stop_after: float  # seconds of lag without an observed commit before STOP


class PartitionHistory:
    """The last ``window`` observations of one partition, and when its commit last changed."""

    def __init__(self, window: int) -> None:
        self.observations: deque[Observation] = deque(maxlen=window)
        self.commit_seen_at = 0.0  # first refresh that saw the current (offset, metadata)
        self.offset_seen_at = 0.0  # first refresh that saw the current offset
        self.lagging_since: float | None = None  # first refresh of the current run with lag

    def record(self, observation: Observation) -> None:
        last = self.observations[-1] if self.observations else None
        if last is None or last.committed != observation.committed:
            self.offset_seen_at = self.commit_seen_at = observation.at
        elif last.metadata != observation.metadata:
            self.commit_seen_at = observation.at
        if observation.lag == 0:
            self.lagging_since = None
        elif self.lagging_since is None:
            self.lagging_since = observation.at
        self.observations.append(observation)

    def evaluate(self, rules: Rules) -> Status:
        window = list(self.observations)
        current = window[-1]
        if self._rewound(window):
            return Status.REWIND
        if current.lag == 0 or self.lagging_since is None:
            return Status.OK
        if current.at - max(self.commit_seen_at, self.lagging_since) >= rules.stop_after:
            return Status.STOP
        if len(window) < rules.window or any(o.lag == 0 for o in window):
            return Status.OK
        pinned = all(o.committed == current.committed for o in window)
        if pinned and self.commit_seen_at > self.offset_seen_at:
            return Status.STALL
        if all(b.lag >= a.lag for a, b in itertools.pairwise(window)):
            return Status.WARN
        return Status.OK

    @staticmethod
    def _rewound(window: list[Observation]) -> bool:
        return any(
            a.committed is not None and b.committed is not None and b.committed < a.committed
            for a, b in itertools.pairwise(window)
        )


K = TypeVar("K", bound=Hashable)


class StatusBook(Generic[K]):
    """Histories of every (group, partition) seen in the last refresh; vanished ones forgotten."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.histories: dict[K, PartitionHistory] = {}

    def observe(
        self, observations: Mapping[K, Observation], keep: Iterable[K] = ()
    ) -> dict[K, Status]:
        """Statuses of the observed; the histories of ``keep`` (not observable this time:
        their partition is offline) are kept for when they are observed again."""
        kept = {key: self.histories[key] for key in keep if key in self.histories}
        self.histories = {
            key: self.histories.get(key) or PartitionHistory(self.rules.window)
            for key in observations
        }
        self.histories.update(kept)
        statuses = {}
        for key, observation in observations.items():
            history = self.histories[key]
            history.record(observation)
            statuses[key] = history.evaluate(self.rules)
        return statuses
