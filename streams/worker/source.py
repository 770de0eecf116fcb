"""The worker process's own Kafka consumer, driven from the event loop's thread only.

librdkafka's consumer is not thread-safe, so nothing else touches it: polls are non-blocking
(``consume(timeout=0)``), commits are asynchronous and awaited through their ``on_commit``
callbacks, and rebalance callbacks run inside ``consume`` on this same thread.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streams.settings import Settings
from streams.worker.intents import Intent, parse_intent
from streams.worker.telemetry import WorkerMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Assigned:
    """Partitions this process now owns, with the batch intents found in their commits.

    ``epoch`` numbers the rebalances this process saw; messages polled before it belong to an
    earlier ownership of these partitions and must not enter their batches.
    """

    partitions: dict[int, Intent | None]
    epoch: int = 0


@dataclass(frozen=True)
class Revoked:
    """Partitions this process no longer owns (``lost``: without a chance to commit)."""

    partitions: frozenset[int]
    lost: bool = False


RebalanceEvent = Assigned | Revoked


class CommitFailed(Exception):
    """Kafka refused a commit (e.g. the partition moved to another member)."""


class KafkaSource:
    """Owns one consumer: poll, pause/resume, commit; reports rebalances as events."""

    def __init__(self, settings: Settings, metrics: WorkerMetrics) -> None:
        self.topic = settings.topic
        self._on_rebalance: Callable[[RebalanceEvent], None] = _unsubscribed
        self._pending_commits: collections.deque[asyncio.Future[None]] = collections.deque()
        self._paused: set[int] = set()
        self._paused_since = 0.0
        self._metrics = metrics
        self.assigned: set[int] = set()
        self.epoch = 0  # +1 on every assignment or revocation
        config: dict[str, Any] = {
            **settings.kafka_config(),
            "group.id": settings.consumer_group,
            "group.protocol": settings.kafka_group_protocol,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "max.poll.interval.ms": 300_000,
            "fetch.max.bytes": 52_428_800,
            # Prefetched messages of the whole consumer; with the batch caps, the memory bound.
            "queued.max.messages.kbytes": 65_536,
            "on_commit": self._on_commit,
            "error_cb": self._on_error,
            "client.id": f"streamgauge-worker-{settings.worker_index}",
        }
        if settings.kafka_group_protocol == "classic":
            config["partition.assignment.strategy"] = "cooperative-sticky"
        self._consumer = Consumer(config)

    def subscribe(self, on_rebalance: Callable[[RebalanceEvent], None]) -> None:
        """Join the group; ``on_rebalance`` hears of every assignment and revocation."""
        self._on_rebalance = on_rebalance
        self._consumer.subscribe(
            [self.topic], on_assign=self._assign, on_revoke=self._revoke, on_lost=self._lost
        )

    def poll(self, max_messages: int) -> list[Message]:
        """Messages already fetched, without blocking; also serves callbacks."""
        messages = self._consumer.consume(max_messages, 0)
        for message in messages:
            error = message.error()
            if error is not None:
                raise KafkaException(error)
        return messages

    async def commit(self, offsets: dict[int, tuple[int, str]]) -> None:
        """Commit ``partition -> (offset, metadata)`` and wait until Kafka confirmed it."""
        partitions = [
            TopicPartition(self.topic, partition, offset, metadata=metadata)
            for partition, (offset, metadata) in offsets.items()
        ]
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending_commits.append(future)
        try:
            self._consumer.commit(offsets=partitions, asynchronous=True)
        except KafkaException as error:
            self._pending_commits.remove(future)
            raise CommitFailed(str(error)) from None
        await future

    def rewind(self, partition: int, offset: int) -> int:
        """Fetch ``partition`` again from ``offset``; returns the epoch that polls after it carry.

        Messages polled before (in this poll or queued) belong to an older epoch and are
        dropped by the data path, so nothing after ``offset`` is taken twice or skipped.
        """
        self._consumer.seek(TopicPartition(self.topic, partition, offset))
        self.epoch += 1
        return self.epoch

    def pause(self, partitions: Sequence[int]) -> None:
        todo = [p for p in partitions if p in self.assigned and p not in self._paused]
        if todo:
            self._consumer.pause([TopicPartition(self.topic, p) for p in todo])
            if not self._paused:
                self._paused_since = time.monotonic()
            self._paused.update(todo)

    def resume(self, partitions: Sequence[int]) -> None:
        todo = [p for p in partitions if p in self._paused]
        if todo:
            self._consumer.resume([TopicPartition(self.topic, p) for p in todo])
            self._paused.difference_update(todo)
            if not self._paused:
                self._metrics.paused.inc(time.monotonic() - self._paused_since)

    def high_watermark(self, partition: int) -> int | None:
        """The partition's end offset as of the last fetch (no request is made)."""
        tp = TopicPartition(self.topic, partition)
        try:
            _, high = self._consumer.get_watermark_offsets(tp, cached=True) or (0, -1)
        except KafkaException:
            return None
        return high if high >= 0 else None

    @property
    def paused(self) -> frozenset[int]:
        return frozenset(self._paused)

    def close(self) -> None:
        self._consumer.close()
        while self._pending_commits:
            future = self._pending_commits.popleft()
            if not future.done():
                future.set_exception(CommitFailed("consumer closed"))

    def _assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = consumer.committed(partitions, timeout=30)
        intents = {tp.partition: parse_intent(tp.offset, tp.metadata) for tp in committed}
        self.assigned.update(intents)
        log.info(
            "rebalance: assigned partitions %s of %s%s",
            sorted(intents),
            self.topic,
            "".join(f"; p{p} replays intent {i.first}-{i.last}" for p, i in intents.items() if i),
        )
        self.epoch += 1
        self._on_rebalance(Assigned(intents, self.epoch))

    def _revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._lose(partitions, lost=False)

    def _lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._lose(partitions, lost=True)

    def _lose(self, partitions: list[TopicPartition], lost: bool) -> None:
        numbers = frozenset(tp.partition for tp in partitions)
        self.assigned.difference_update(numbers)
        if self._paused:
            self._paused.difference_update(numbers)
            if not self._paused:
                self._metrics.paused.inc(time.monotonic() - self._paused_since)
        log.info(
            "rebalance: %s partitions %s of %s",
            "lost" if lost else "revoked",
            sorted(numbers),
            self.topic,
        )
        self.epoch += 1
        self._on_rebalance(Revoked(numbers, lost))

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if not self._pending_commits:
            return
        future = self._pending_commits.popleft()
        if future.done():
            return
        failed = [tp for tp in partitions if tp.error is not None]
        if error is not None or failed:
            reason = error or failed[0].error
            future.set_exception(CommitFailed(str(reason)))
        else:
            future.set_result(None)

    def _on_error(self, error: KafkaError) -> None:
        log.warning("kafka: %s", error)


def _unsubscribed(event: RebalanceEvent) -> None:
    raise RuntimeError(f"a rebalance before subscribe(): {event}")
