"""The timestamp of the message at an offset, read from Kafka: exact, never interpolated.

One consumer outside any group (it never subscribes or commits; ``group.id`` only satisfies
the client) is assigned every partition to read at its position, fetches with small
per-partition limits so each partition returns about one record batch, and pauses a partition
as soon as its first message at or after the position arrived. A message never changes, so a
timestamp is cached by (topic id, partition, offset) and read again only when the position
moved: a stuck group costs no fetches at all.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, Message, TopicPartition

log = logging.getLogger(__name__)

# Fetch sizes: one record batch per partition is all we need; many partitions per request.
CONSUMER_CONFIG: dict[str, Any] = {
    "group.id": "streamgauge-lag-exporter",  # required by the client; never joined
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",  # a position deleted meanwhile: read the earliest retained
    "enable.partition.eof": True,  # a position with no message after it answers at once
    "isolation.level": "read_uncommitted",  # the same log end the offsets are measured against
    "max.partition.fetch.bytes": 64 * 1024,
    "fetch.max.bytes": 16 * 2**20,
    "receive.message.max.bytes": 17 * 2**20,
    "fetch.wait.max.ms": 10,  # partitions read here have data; never wait for more
    "queued.min.messages": 1,
    "fetch.queue.backoff.ms": 10,
    "check.crcs": False,
}


NOT_AVAILABLE = -1


class Position(NamedTuple):
    topic: str
    partition: int
    offset: int


class TimestampReader:
    """Reads the timestamps (ms) of the first message at or after given positions."""

    def __init__(self, consumer: Consumer, timeout: float, clock: Callable[[], float]) -> None:
        self._consumer = consumer
        self._timeout = timeout
        self._clock = clock
        self._cache: dict[tuple[str, Position], int | None] = {}
        self.fetched = 0  # positions read from Kafka by the last ``read`` (the rest were cached)

    def read(
        self, positions: Collection[Position], topic_ids: Mapping[str, str]
    ) -> dict[Position, int | None]:
        """Timestamp per position; None when no message follows it; absent when not read in time."""

        def key(position: Position) -> tuple[str, Position]:
            return topic_ids.get(position.topic, ""), position

        cache = {key(p): self._cache[key(p)] for p in positions if key(p) in self._cache}
        wanted = [p for p in positions if key(p) not in cache]
        self.fetched = len(wanted)
        deadline = self._clock() + self._timeout
        for round_ in _rounds(wanted):
            for position, timestamp in self._read_round(round_, deadline).items():
                cache[key(position)] = timestamp
        self._cache = cache  # positions no longer asked for are forgotten
        return {position: timestamp for (_, position), timestamp in cache.items()}

    def _read_round(self, positions: list[Position], deadline: float) -> dict[Position, int | None]:
        pending = {(p.topic, p.partition): p for p in positions}
        found: dict[Position, int | None] = {}
        self._consumer.assign([TopicPartition(*p) for p in positions])
        try:
            while pending and (remaining := deadline - self._clock()) > 0:
                answered = []
                for message in self._consumer.consume(10_000, min(remaining, 0.05)):
                    position = pending.get((message.topic() or "", message.partition() or 0))
                    if position is None or not _answers(message, position):
                        continue
                    del pending[(position.topic, position.partition)]
                    answered.append(TopicPartition(position.topic, position.partition))
                    timestamp = _timestamp(message)
                    if timestamp != NOT_AVAILABLE:
                        found[position] = timestamp
                if answered:  # stop fetching what is answered (a pause would outlive the round)
                    self._consumer.incremental_unassign(answered)
        finally:
            self._consumer.unassign()
        if pending:
            log.warning(
                "no message read in time at %d positions (e.g. %s); their lag in seconds is "
                "unknown this refresh",
                len(pending),
                next(iter(pending.values())),
            )
        return found


def _rounds(positions: list[Position]) -> list[list[Position]]:
    """Positions split so that no round reads one partition twice (groups at other offsets)."""
    per_partition: dict[tuple[str, int], list[Position]] = defaultdict(list)
    for position in sorted(positions):
        per_partition[(position.topic, position.partition)].append(position)
    depth = max((len(ps) for ps in per_partition.values()), default=0)
    return [[ps[i] for ps in per_partition.values() if i < len(ps)] for i in range(depth)]


def _answers(message: Message, position: Position) -> bool:
    error = message.error()
    if error is None:
        return (message.offset() or 0) >= position.offset
    if error.code() == KafkaError._PARTITION_EOF:
        return True
    log.debug("reading %s: %s", position, error)
    return False


def _timestamp(message: Message) -> int | None:
    if message.error() is not None:  # end of partition: nothing after the position
        return None
    kind, timestamp = message.timestamp()
    # Only the pre-0.10 message format (gone in Kafka 4) has none: the age stays unknown.
    return NOT_AVAILABLE if kind == TIMESTAMP_NOT_AVAILABLE else timestamp
