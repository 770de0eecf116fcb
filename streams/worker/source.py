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
from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streams.settings import Settings
from streams.worker.intents import Intent, parse_intent
from streams.worker.telemetry import WorkerMetrics

log = logging.getLogger(__name__)

# A commit librdkafka has not answered in this long is taken as failed and sent again. Kafka
# answers in milliseconds, or with an error when the group's coordinator moves; this only
# bounds the wait should an answer never come. A second commit of the same offsets is harmless.
COMMIT_ANSWER_SECONDS = 30.0

CommitKey = tuple[int, int, str]  # partition, offset, metadata: what the answer names

# A range another member's part of a group insert holds is read within this long, or the
# replay waits and tries again (streams/worker/ingest.py).
RANGE_READ_SECONDS = 30.0

# Kafka's answers while a partition's leader or the group's coordinator moves or is still
# loading (a broker killed, restarting or just elected): asked again, not taken as final.
MOVING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,  # a busy cluster still loading its groups
    }
)
# The commits of newly assigned partitions are asked for this long while the coordinator moves
# (a failover takes ~10 s), each ask waiting up to ASSIGN_READ_TIMEOUT; then the process ends
# and its restart asks again. The asking holds the event loop, metrics included: at most ~50 s,
# inside the Helm chart's liveness allowance (6 probes 10 s apart).
ASSIGN_READ_SECONDS = 40.0
ASSIGN_READ_TIMEOUT = 10.0
ASSIGN_READ_PAUSE = 0.5


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
        # Commits awaiting their answer, by what the answer names: answers may come in
        # another order than the commits went (a coordinator change fails some, later ones
        # succeed), so they are matched by partition, offset and metadata, never by turn.
        self._pending_commits: dict[CommitKey, collections.deque[asyncio.Future[None]]] = {}
        self.commit_answer_seconds = COMMIT_ANSWER_SECONDS
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
        # Reads of a range by offset (no group: it joins nothing and commits nothing).
        self._range_config: dict[str, Any] = {
            **settings.kafka_config(),
            "group.id": f"{settings.consumer_group}-ranges",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "client.id": f"streamgauge-worker-{settings.worker_index}-ranges",
        }

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

    @property
    def awaiting_commit(self) -> bool:
        """A commit request has not been answered yet (the polls serve its answer)."""
        return bool(self._pending_commits)

    async def commit(self, offsets: dict[int, tuple[int, str]]) -> None:
        """Commit ``partition -> (offset, metadata)`` and wait until Kafka confirmed it."""
        loop = asyncio.get_running_loop()
        waiting: list[tuple[CommitKey, asyncio.Future[None]]] = []
        for partition, (offset, metadata) in offsets.items():
            key = (partition, offset, metadata or "")
            future: asyncio.Future[None] = loop.create_future()
            self._pending_commits.setdefault(key, collections.deque()).append(future)
            waiting.append((key, future))
        try:
            self._consumer.commit(
                offsets=[
                    TopicPartition(self.topic, partition, offset, metadata=metadata)
                    for partition, (offset, metadata) in offsets.items()
                ],
                asynchronous=True,
            )
            done, unanswered = await asyncio.wait(
                [future for _, future in waiting], timeout=self.commit_answer_seconds
            )
        except KafkaException as error:
            raise CommitFailed(str(error)) from None
        finally:
            for key, future in waiting:
                self._forget(key, future)
        for future in unanswered:
            future.cancel()
        errors = [future.exception() for future in done if future.exception() is not None]
        if errors:
            raise CommitFailed(str(errors[0]))
        if unanswered:
            raise CommitFailed(f"no answer from Kafka in {self.commit_answer_seconds:.0f} s")

    def committed(self, partition: int) -> tuple[int, str] | None:
        """The group's committed offset of ``partition`` and its metadata; None if it has none.
        Asks Kafka and waits for the answer (a rare path: a group insert's announcement that
        failed while one of its partitions moved)."""
        [tp] = self._consumer.committed([TopicPartition(self.topic, partition)], timeout=10)
        if tp.error is not None:
            raise KafkaException(tp.error)
        return (tp.offset, tp.metadata or "") if tp.offset >= 0 else None

    async def read_range(self, partition: int, first: int, last: int) -> list[Message] | None:
        """The messages at offsets ``first..last`` of ``partition``, read by a consumer of its
        own (in a thread: this one's polls stay on the event loop); None when Kafka no longer
        holds ``first``."""
        return await asyncio.to_thread(self._read_range, partition, first, last)

    def _read_range(self, partition: int, first: int, last: int) -> list[Message] | None:
        consumer = Consumer(self._range_config)
        try:
            low, _ = consumer.get_watermark_offsets(
                TopicPartition(self.topic, partition), timeout=10
            )
            if low > first:
                return None
            consumer.assign([TopicPartition(self.topic, partition, first)])
            messages: list[Message] = []
            deadline = time.monotonic() + RANGE_READ_SECONDS
            while time.monotonic() < deadline:
                for message in consumer.consume(10_000, 0.2):
                    error = message.error()
                    if error is not None:
                        raise KafkaException(error)
                    offset = cast(int, message.offset())
                    if offset > last:
                        return messages
                    messages.append(message)
                    if offset == last:
                        return messages
            raise TimeoutError(
                f"partition {partition} offsets {first}-{last} not read in {RANGE_READ_SECONDS} s"
            )
        finally:
            consumer.close()

    def _forget(self, key: CommitKey, future: asyncio.Future[None]) -> None:
        queue = self._pending_commits.get(key)
        if queue is not None and future in queue:
            queue.remove(future)
            if not queue:
                del self._pending_commits[key]

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
        for queue in self._pending_commits.values():
            for future in queue:
                if not future.done():
                    future.set_exception(CommitFailed("consumer closed"))

    def _assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = self._commits_of(consumer, partitions)
        intents = {
            tp.partition: parse_intent(tp.partition, tp.offset, tp.metadata) for tp in committed
        }
        self.assigned.update(intents)
        log.info(
            "rebalance: assigned partitions %s of %s%s",
            sorted(intents),
            self.topic,
            "".join(
                f"; p{p} replays intent {i.first}-{i.last}{' of a group insert' if i.group else ''}"
                for p, i in intents.items()
                if i
            ),
        )
        self.epoch += 1
        self._on_rebalance(Assigned(intents, self.epoch))

    def _commits_of(
        self, consumer: Consumer, partitions: list[TopicPartition]
    ) -> list[TopicPartition]:
        """The group's commits of ``partitions``, asked again while the coordinator moves.

        Their metadata holds the intents to replay, so an answer with an error is never taken
        for "no commit": a replay missed would insert its messages under other tokens.
        """
        deadline = time.monotonic() + ASSIGN_READ_SECONDS
        while True:
            try:
                answer = consumer.committed(partitions, timeout=ASSIGN_READ_TIMEOUT)
                error = answer_error(answer)
            except KafkaException as raised:
                error = raised.args[0]
            if error is None:
                return answer
            if not (error.retriable() or error.code() in MOVING):
                raise KafkaException(error)
            if time.monotonic() >= deadline:
                raise KafkaException(error)
            log.warning(
                "rebalance: reading the commits of partitions %s of %s: %s; asking again",
                sorted(tp.partition for tp in partitions),
                self.topic,
                error.str(),
            )
            time.sleep(ASSIGN_READ_PAUSE)

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
        """Kafka's answer to one commit: each partition it names settles its own commit."""
        if error is not None and not partitions:  # names none: every commit waiting fails
            for waiting in self._pending_commits.values():
                for future in waiting:
                    _settle(future, error)
            return
        for tp in partitions:
            key = (tp.partition, tp.offset, tp.metadata or "")
            queue = self._pending_commits.get(key)
            if queue is None:  # the answer to a commit given up on (and sent again)
                continue
            _settle(queue.popleft(), tp.error or error)
            if not queue:
                del self._pending_commits[key]

    def _on_error(self, error: KafkaError) -> None:
        log.warning("kafka: %s", error)


def answer_error(answer: Sequence[TopicPartition]) -> KafkaError | None:
    """The first partition's error in an answer of Kafka's naming partitions, if any: that
    partition's offset then says nothing (it is not "no commit")."""
    return next((tp.error for tp in answer if tp.error is not None), None)


def _settle(future: asyncio.Future[None], error: KafkaError | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(CommitFailed(str(error)))


def _unsubscribed(event: RebalanceEvent) -> None:
    raise RuntimeError(f"a rebalance before subscribe(): {event}")
