"""One lag refresh: a reading of Kafka turned into lag per partition and consumer statuses."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Protocol

from streams.lag.backlog import Backlog, Key, backlogs
from streams.lag.offsets import Commit, Group
from streams.lag.reader import Reading
from streams.lag.requests import RequestTotals
from streams.lag.snapshot import GroupLag, PartitionLag, Snapshot, TopicLag
from streams.lag.status import Observation, Rules, Status, StatusBook
from streams.lag.timestamps import Position


class Reader(Protocol):
    """Where readings come from: KafkaReader in process, or IsolatedReader in a child."""

    def read(self) -> Reading: ...

    def interrupt(self) -> None: ...

    def close(self) -> None: ...


class Refresher:
    """Reads Kafka and evaluates statuses; keeps the status history from one refresh to the next."""

    def __init__(self, reader: Reader, rules: Rules, requests: RequestTotals | None = None) -> None:
        self.reader = reader
        self.requests = requests or RequestTotals()
        self.fetched = 0  # timestamps read from Kafka by the last refresh
        self._book: StatusBook[Key] = StatusBook(rules)

    def refresh(self) -> Snapshot:
        began = time.monotonic()
        reading = self.reader.read()
        self.requests.add(reading.requests)
        self.fetched = reading.fetched
        found = backlogs(reading.offsets)
        unknown = [
            (g.name, p)
            for g in reading.offsets.groups
            for p in sorted(reading.offsets.unknown)
            if p.topic in g.topics
        ]
        commits = {(g.name, p): c for g in reading.offsets.groups for p, c in g.commits.items()}
        statuses = self._book.observe(
            {
                key: Observation(reading.at, b.committed, _metadata(commits.get(key)), b.messages)
                for key, b in found.items()
            },
            keep=unknown,
        )

        def offline(group: Group, key: Key) -> tuple[str, PartitionLag]:
            commit = commits.get(key)
            history = self._book.histories.get(key)
            return key[1].topic, PartitionLag(
                partition=key[1].partition,
                start_offset=None,
                end_offset=None,
                committed_offset=None if commit is None else commit.offset,
                lag_messages=None,
                lag_seconds=None,
                status=Status.UNKNOWN,
                commit_metadata=_metadata(commit),
                owner=group.owners.get(key[1]),
                last_commit_seen_at=0.0 if history is None else history.commit_seen_at,
            )

        def partition(group: Group, key: Key, backlog: Backlog) -> tuple[str, PartitionLag]:
            return key[1].topic, PartitionLag(
                partition=key[1].partition,
                start_offset=backlog.start,
                end_offset=backlog.end,
                committed_offset=backlog.committed,
                lag_messages=backlog.messages,
                lag_seconds=_seconds(reading, key, backlog),
                oldest_timestamp=_oldest_timestamp(reading, key, backlog),
                status=statuses[key],
                commit_metadata=_metadata(commits.get(key)),
                owner=group.owners.get(key[1]),
                last_commit_seen_at=self._book.histories[key].commit_seen_at,
            )

        groups = tuple(
            GroupLag(
                g.name,
                g.state,
                g.members,
                _topics(
                    [
                        *(partition(g, k, b) for k, b in found.items() if k[0] == g.name),
                        *(offline(g, k) for k in unknown if k[0] == g.name),
                    ]
                ),
            )
            for g in reading.offsets.groups
        )
        return Snapshot(reading.at, time.monotonic() - began, groups)

    def close(self) -> None:
        self.reader.close()


def _seconds(reading: Reading, key: Key, backlog: Backlog) -> float | None:
    """Lag in seconds; None when the oldest unconsumed message could not be read."""
    if backlog.oldest is None:
        return 0.0
    position = Position(key[1].topic, key[1].partition, backlog.oldest)
    if position not in reading.timestamps:
        return None
    return backlog.seconds(reading.at, reading.timestamps[position])


def _oldest_timestamp(reading: Reading, key: Key, backlog: Backlog) -> float | None:
    """Unix time of the oldest unconsumed message; None when none waits or it was not read."""
    if backlog.oldest is None:
        return None
    timestamp = reading.timestamps.get(Position(key[1].topic, key[1].partition, backlog.oldest))
    return None if timestamp is None else timestamp / 1000


def _topics(partitions: Iterable[tuple[str, PartitionLag]]) -> tuple[TopicLag, ...]:
    by_topic: dict[str, list[PartitionLag]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    return tuple(
        TopicLag(topic, tuple(sorted(ps, key=lambda p: p.partition)))
        for topic, ps in sorted(by_topic.items())
    )


def _metadata(commit: Commit | None) -> str:
    return "" if commit is None else commit.metadata
