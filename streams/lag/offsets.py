"""Batched offset look-ups: the groups' commits and members, the partitions' watermarks.

A refresh costs the same few requests whatever the number of partitions: one group describe
and one OffsetFetch per group (the describes go out together), one Metadata request for every
topic involved, and two ListOffsets requests (earliest, latest) per partition leader — all
partitions of a leader ride in the same request.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConsumerGroupDescription, OffsetSpec

_STATES: dict[object, str] = {
    ConsumerGroupState.STABLE: "Stable",
    ConsumerGroupState.EMPTY: "Empty",
    ConsumerGroupState.DEAD: "Dead",
    ConsumerGroupState.PREPARING_REBALANCING: "PreparingRebalance",
    ConsumerGroupState.COMPLETING_REBALANCING: "CompletingRebalance",
}

# The stubs leave these two factories untyped.
_EARLIEST: OffsetSpec = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
_LATEST: OffsetSpec = OffsetSpec.latest()  # type: ignore[no-untyped-call]


class PartitionId(NamedTuple):
    topic: str
    partition: int


@dataclass(frozen=True)
class Commit:
    offset: int
    metadata: str


@dataclass(frozen=True)
class Group:
    """What Kafka says about one consumer group."""

    name: str
    state: str  # Kafka's name: Stable, Empty, Dead (no such group), PreparingRebalance, ...
    members: int
    commits: dict[PartitionId, Commit]
    owners: dict[PartitionId, str]  # assigned partitions -> "client-id@host" of the member
    topics: frozenset[str]  # committed on, assigned, or required for this group


@dataclass(frozen=True)
class Watermarks:
    start: int  # earliest retained offset
    end: int  # log end offset (high watermark)


@dataclass(frozen=True)
class Offsets:
    """One consistent read of every configured group and the partitions of their topics."""

    groups: list[Group]
    partitions: dict[PartitionId, Watermarks]
    topic_ids: dict[str, str]  # a recreated topic gets a new id
    # Partitions whose offsets Kafka could not give (no leader: offline), and why.
    unknown: dict[PartitionId, str] = field(default_factory=dict)


class OffsetReader:
    """Reads offsets for many groups and partitions with a bounded number of requests."""

    def __init__(self, admin: AdminClient, timeout: float) -> None:
        self._admin = admin
        self._timeout = timeout

    def read(self, groups: Sequence[str], required: Mapping[str, Collection[str]]) -> Offsets:
        """``required``: topics reported for a group even before it committed on them."""
        described = self._admin.describe_consumer_groups(
            list(groups), request_timeout=self._timeout
        )
        fetched = {
            group: self._admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group)], request_timeout=self._timeout
            )[group]
            for group in groups
        }
        found = [
            _group(
                self._result(described[group]),
                self._result(fetched[group]),
                required.get(group, ()),
            )
            for group in groups
        ]
        partitions, topic_ids = self._partitions({t for g in found for t in g.topics})
        watermarks, unknown = self._watermarks(partitions)
        return Offsets(found, watermarks, topic_ids, unknown)

    def _partitions(self, topics: set[str]) -> tuple[list[PartitionId], dict[str, str]]:
        if not topics:
            return [], {}
        futures = self._admin.describe_topics(
            TopicCollection(sorted(topics)), request_timeout=self._timeout
        )
        partitions, topic_ids = [], {}
        for topic, future in futures.items():
            try:
                description = self._result(future)
            except KafkaException as error:
                if _code(error) == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    continue  # deleted since the group committed on it
                raise
            topic_ids[topic] = str(description.topic_id)
            partitions += [PartitionId(topic, p.id) for p in description.partitions]
        return partitions, topic_ids

    def _watermarks(
        self, partitions: list[PartitionId]
    ) -> tuple[dict[PartitionId, Watermarks], dict[PartitionId, str]]:
        """Each partition's watermarks; or, for one without a leader, why they are unknown.

        An offline partition's ListOffsets fails, or answers a negative offset (-1001,
        "invalid"): neither is a watermark, and a lag computed from one would be made up.
        """
        if not partitions:
            return {}, {}
        starts, ends = (
            self._admin.list_offsets(
                {TopicPartition(*p): spec for p in partitions},
                isolation_level=IsolationLevel.READ_UNCOMMITTED,
                request_timeout=self._timeout,
            )
            for spec in (_EARLIEST, _LATEST)
        )
        start = {PartitionId(tp.topic, tp.partition): f for tp, f in starts.items()}
        end = {PartitionId(tp.topic, tp.partition): f for tp, f in ends.items()}
        known, unknown = {}, {}
        for p in partitions:
            try:
                first, last = self._result(start[p]).offset, self._result(end[p]).offset
            except KafkaException as error:
                unknown[p] = f"offsets unavailable: {error.args[0]}"
                continue
            if first < 0 or last < 0:
                unknown[p] = "offsets unavailable: the partition has no leader"
                continue
            known[p] = Watermarks(first, last)
        return known, unknown

    def _result(self, future: concurrent.futures.Future[Any]) -> Any:
        # The request timeout bounds each call; this one only guards against a lost callback.
        return future.result(timeout=self._timeout + 5)


def _group(
    description: ConsumerGroupDescription,
    offsets: ConsumerGroupTopicPartitions,
    required: Iterable[str],
) -> Group:
    commits = {
        PartitionId(tp.topic, tp.partition): Commit(tp.offset, tp.metadata or "")
        for tp in offsets.topic_partitions or []
        if tp.offset >= 0 and tp.error is None
    }
    owners = {
        PartitionId(tp.topic, tp.partition): f"{m.client_id}@{m.host.lstrip('/')}"
        for m in description.members
        if m.assignment is not None
        for tp in m.assignment.topic_partitions
    }
    topics = frozenset({p.topic for p in commits} | {p.topic for p in owners} | set(required))
    return Group(
        name=description.group_id,
        state=_STATES.get(description.state, "Unknown"),
        members=len(description.members),
        commits=commits,
        owners=owners,
        topics=topics,
    )


def _code(error: KafkaException) -> int | None:
    reason = error.args[0] if error.args else None
    return reason.code() if isinstance(reason, KafkaError) else None
