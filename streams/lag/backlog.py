"""How far behind a group is on one partition: messages, and where its oldest unconsumed one is."""

from __future__ import annotations

from dataclasses import dataclass

from streams.lag.offsets import Offsets, PartitionId


@dataclass(frozen=True)
class Backlog:
    """The unconsumed part of one partition for one group."""

    start: int  # earliest offset still retained
    end: int  # log end offset: the offset the next message will get
    committed: int | None  # None when the group never committed on this partition

    @property
    def messages(self) -> int:
        """End minus committed; from ``start`` when never committed; never negative.

        A committed offset below ``start`` (retention deleted messages the group never read)
        still counts from the committed offset, as Kafka's own consumer-groups tool does.
        """
        return max(0, self.end - (self.start if self.committed is None else self.committed))

    @property
    def oldest(self) -> int | None:
        """Offset where the oldest unconsumed message still retained is; None when there is none.

        That is the committed offset, or the earliest retained offset when the group never
        committed or retention deleted the committed one (where ``auto.offset.reset=earliest``
        puts the group).
        """
        if self.messages == 0:
            return None
        position = self.start if self.committed is None else max(self.committed, self.start)
        return position if position < self.end else None

    def seconds(self, now: float, oldest_timestamp_ms: int | None) -> float:
        """Age of the oldest unconsumed message at ``now``; 0 when caught up.

        ``oldest_timestamp_ms`` None means no message is left at or after ``oldest`` (only
        transaction markers fill the offsets up to the end): nothing waits, so 0 too.
        """
        if self.oldest is None or oldest_timestamp_ms is None:
            return 0.0
        return max(0.0, now - oldest_timestamp_ms / 1000)


Key = tuple[str, PartitionId]  # (group, partition)


def backlogs(offsets: Offsets) -> dict[Key, Backlog]:
    """Every partition of every group's topics whose offsets are known, ordered by group,
    topic and partition."""
    found = {}
    for group in offsets.groups:
        for p in sorted(p for p in offsets.partitions if p.topic in group.topics):
            watermarks = offsets.partitions[p]
            commit = group.commits.get(p)
            found[(group.name, p)] = Backlog(
                watermarks.start, watermarks.end, None if commit is None else commit.offset
            )
    return found
