"""The result of one lag refresh, and its JSON form: the ``/status`` contract.

The read API depends on the document's shape (docs/design/lag.md); fields may be added,
never renamed or removed. Lag in seconds is the age of the oldest unconsumed message when it
is read (``seconds_at``), from the timestamp the refresh fetched, not as of the refresh.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from streams.lag.status import Status, worst


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    start_offset: int | None  # None (with end_offset, lag_messages): status UNKNOWN
    end_offset: int | None
    committed_offset: int | None  # None: never committed (lag counts from start_offset)
    lag_messages: int | None
    lag_seconds: float | None  # at the refresh; None: its oldest unconsumed message not read
    status: Status
    commit_metadata: str
    owner: str | None  # "client-id@host" of the member the partition is assigned to
    last_commit_seen_at: float  # Unix time of the refresh that first saw the current commit
    oldest_timestamp: float | None = None  # Unix time of the oldest unconsumed message, if any

    def seconds_at(self, now: float) -> float | None:
        """Age at ``now`` of the oldest unconsumed message; 0 caught up; None when unknown."""
        if self.lag_seconds is None or self.oldest_timestamp is None:
            return self.lag_seconds
        return max(self.lag_seconds, now - self.oldest_timestamp)


@dataclass(frozen=True)
class TopicLag:
    topic: str
    partitions: tuple[PartitionLag, ...]

    @property
    def lag_messages(self) -> int | None:
        return _total(p.lag_messages for p in self.partitions)

    def seconds_at(self, now: float) -> float | None:
        return _oldest(p.seconds_at(now) for p in self.partitions)

    @property
    def status(self) -> Status:
        return worst(p.status for p in self.partitions)


@dataclass(frozen=True)
class GroupLag:
    group: str
    state: str
    members: int
    topics: tuple[TopicLag, ...]

    @property
    def lag_messages(self) -> int | None:
        return _total(t.lag_messages for t in self.topics)

    def seconds_at(self, now: float) -> float | None:
        return _oldest(t.seconds_at(now) for t in self.topics)

    @property
    def status(self) -> Status:
        return worst(t.status for t in self.topics)


@dataclass(frozen=True)
class Snapshot:
    refreshed_at: float  # Unix time the offsets were read
    duration: float  # seconds the refresh took
    groups: tuple[GroupLag, ...]


def _total(counts: Iterable[int | None]) -> int | None:
    """The sum; None if one is unknown (a partial sum would understate the lag)."""
    values = list(counts)
    return None if None in values else sum(v for v in values if v is not None)


def _oldest(ages: Iterable[float | None]) -> float | None:
    """The age of the oldest unconsumed message among several; None if one is unknown."""
    values = list(ages)
    known = [age for age in values if age is not None]
    return max(known, default=0.0) if len(known) == len(values) else None


def status_document(
    snapshot: Snapshot | None, error: str | None, interval: float, now: float | None = None
) -> dict[str, Any]:
    """The ``/status`` JSON: the last successful refresh, and whether the latest one failed.

    Lag in seconds is as of ``now`` (default: the refresh time).
    """
    at = now if now is not None else snapshot.refreshed_at if snapshot else 0.0
    return {
        "refreshed_at": _iso(snapshot.refreshed_at) if snapshot else None,
        "refreshed_at_unix": round(snapshot.refreshed_at, 3) if snapshot else None,
        "refresh_seconds": round(snapshot.duration, 4) if snapshot else None,
        "refresh_interval_seconds": interval,
        "lag_at_unix": round(at, 3) if snapshot else None,
        "healthy": error is None,
        "error": error,
        "groups": [_group(g, at) for g in snapshot.groups] if snapshot else [],
    }


def _group(group: GroupLag, now: float) -> dict[str, Any]:
    return {
        "group": group.group,
        "state": group.state,
        "members": group.members,
        "status": group.status.value,
        "lag_messages": group.lag_messages,
        "lag_seconds": _seconds(group.seconds_at(now)),
        "topics": [_topic(t, now) for t in group.topics],
    }


def _topic(topic: TopicLag, now: float) -> dict[str, Any]:
    return {
        "topic": topic.topic,
        "lag_messages": topic.lag_messages,
        "lag_seconds": _seconds(topic.seconds_at(now)),
        "status": topic.status.value,
        "partitions": [_partition(p, now) for p in topic.partitions],
    }


def _partition(p: PartitionLag, now: float) -> dict[str, Any]:
    return {
        "partition": p.partition,
        "start_offset": p.start_offset,
        "end_offset": p.end_offset,
        "committed_offset": p.committed_offset,
        "lag_messages": p.lag_messages,
        "lag_seconds": _seconds(p.seconds_at(now)),
        "oldest_unconsumed_at_unix": _seconds(p.oldest_timestamp),
        "status": p.status.value,
        "commit_metadata": p.commit_metadata,
        "owner": p.owner,
        "last_commit_seen_at_unix": round(p.last_commit_seen_at, 3),
    }


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _iso(unix: float) -> str:
    moment = datetime.datetime.fromtimestamp(unix, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
