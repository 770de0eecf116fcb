"""KafkaSource at its seam: a fake librdkafka consumer in place of confluent_kafka's."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.settings import Settings
from streams.worker import source as source_module
from streams.worker.source import Assigned, CommitFailed, KafkaSource, RebalanceEvent, Revoked
from streams.worker.telemetry import WorkerMetrics


class FakeConsumer:
    """Records what the source asks of librdkafka; tests play its callbacks."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.calls: list[tuple[str, Any]] = []
        self.committed_offsets: list[TopicPartition] = []
        self.callbacks: dict[str, Any] = {}

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.callbacks = callbacks
        self.calls.append(("subscribe", topics))

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.calls.append(("commit", [(tp.partition, tp.offset, tp.metadata) for tp in offsets]))

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return self.committed_offsets or partitions

    def seek(self, tp: TopicPartition) -> None:
        self.calls.append(("seek", (tp.partition, tp.offset)))

    def pause(self, tps: list[TopicPartition]) -> None:
        self.calls.append(("pause", [tp.partition for tp in tps]))

    def resume(self, tps: list[TopicPartition]) -> None:
        self.calls.append(("resume", [tp.partition for tp in tps]))

    def consume(self, n: int, timeout: float) -> list[Any]:
        return []


@dataclass
class Answered:
    """A partition in a commit's answer, as librdkafka names it (with its own error)."""

    partition: int
    offset: int
    metadata: str
    error: KafkaError | None


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> tuple[KafkaSource, FakeConsumer, list[RebalanceEvent]]:
    consumers: list[FakeConsumer] = []

    def make(config: dict[str, Any]) -> FakeConsumer:
        consumers.append(FakeConsumer(config))
        return consumers[-1]

    monkeypatch.setattr(source_module, "Consumer", make)
    events: list[RebalanceEvent] = []
    source = KafkaSource(Settings(topic="t"), WorkerMetrics("t", 0))
    source.subscribe(events.append)
    return source, consumers[0], events


def test_the_consumer_commits_only_by_hand_and_stores_no_offset_itself(
    made: tuple[KafkaSource, FakeConsumer, list[RebalanceEvent]],
) -> None:
    _, consumer, _ = made
    assert consumer.config["enable.auto.commit"] is False
    assert consumer.config["enable.auto.offset.store"] is False


async def test_a_commit_returns_once_kafka_confirmed_it(
    made: tuple[KafkaSource, FakeConsumer, list[RebalanceEvent]],
) -> None:
    source, consumer, _ = made
    task = asyncio.ensure_future(source.commit({3: (10, "sg1:10-19")}))
    await asyncio.sleep(0)
    assert consumer.calls[-1] == ("commit", [(3, 10, "sg1:10-19")])
    assert not task.done()
    assert source.awaiting_commit, "the polls must not linger while the answer is due"
    consumer.config["on_commit"](None, [TopicPartition("t", 3, 10, metadata="sg1:10-19")])
    await task
    assert not source.awaiting_commit


async def test_a_refused_commit_raises_commit_failed(
    made: tuple[KafkaSource, FakeConsumer, list[RebalanceEvent]],
) -> None:
    source, consumer, _ = made
    task = asyncio.ensure_future(source.commit({0: (5, "")}))
    await asyncio.sleep(0)
    consumer.config["on_commit"](KafkaError(KafkaError.STALE_MEMBER_EPOCH), [])
    with pytest.raises(CommitFailed):
        await task


async def test_answers_out_of_order_settle_their_own_commits(
    made: tuple[KafkaSource, FakeConsumer, list[RebalanceEvent]],
) -> None:
    # After the group coordinator moved: the later commit is answered first, the earlier one
    # fails. Each commit hears its own answer; a failed commit is never taken as done.
    source, consumer, _ = made
    first = asyncio.ensure_future(source.commit({0: (2, "")}))
    second = asyncio.ensure_future(source.commit({1: (10, "sg1:10-19")}))
    third = asyncio.ensure_future(source.commit({2: (7, "")}))
    await asyncio.sleep(0)
    answer = consumer.config["on_commit"]
    answer(None, [TopicPartition("t", 2, 7, metadata="")])
    refused = KafkaError(KafkaError.NOT_COORDINATOR)
    answer(refused, [Answered(0, 2, "", refused)])
    answer(None, [TopicPartition("t", 1, 10, metadata="sg1:10-19")])
    await third
    await second
    with pytest.raises(CommitFailed, match="NOT_COORDINATOR"):
        await first


async def test_the_answer_to_an_older_commit_does_not_settle_a_newer_one(
    made: tuple[KafkaSource, FakeConsumer, list[RebalanceEvent]],
) -> None:
    # The same partition: a batch's final commit, then the next batch's intent at the same
    # offset. Only the answer naming the intent's metadata settles the intent.
    source, consumer, _ = made
    answer = consumer.config["on_commit"]
    final = asyncio.ensure_future(source.commit({4: (50, "")}))
    await asyncio.sleep(0)
    answer(None, [TopicPartition("t", 4, 50, metadata="")])
    await final
    intent = asyncio.ensure_future(source.commit({4: (50, "sg1:50-59")}))
    await asyncio.sleep(0)
    answer(None, [TopicPartition("t", 4, 50, metadata="")])  # a late duplicate answer
    await asyncio.sleep(0)
    assert not intent.done()
    answer(None, [TopicPartition("t", 4, 50, metadata="sg1:50-59")])
    await intent
    assert source._pending_commits == {}


async def test_a_commit_never_answered_fails_after_the_wait_and_is_forgotten(
    made: tuple[KafkaSource, FakeConsumer, list[RebalanceEvent]],
) -> None:
    source, consumer, _ = made
    source.commit_answer_seconds = 0.05
    with pytest.raises(CommitFailed, match="no answer"):
        await source.commit({5: (9, "")})
    assert not source.awaiting_commit, "a commit given up on lets the polls gather again"
    consumer.config["on_commit"](None, [TopicPartition("t", 5, 9, metadata="")])  # too late
    assert source._pending_commits == {}


def test_an_assignment_carries_the_intents_found_in_the_commits(
    made: tuple[KafkaSource, FakeConsumer, list[RebalanceEvent]],
) -> None:
    source, consumer, events = made
    consumer.committed_offsets = [
        TopicPartition("t", 0, 100, metadata="sg1:100-149"),
        TopicPartition("t", 1, 7, metadata=""),
    ]
    consumer.callbacks["on_assign"](consumer, [TopicPartition("t", 0), TopicPartition("t", 1)])
    (event,) = events
    assert isinstance(event, Assigned)
    assert event.partitions[1] is None
    intent = event.partitions[0]
    assert intent is not None
    assert (intent.first, intent.last) == (100, 149)
    assert source.assigned == {0, 1}
    consumer.callbacks["on_lost"](consumer, [TopicPartition("t", 0)])
    assert events[-1] == Revoked(frozenset({0}), lost=True)
    assert source.epoch == 2


def test_an_assignment_waits_out_a_moving_coordinator_and_misses_no_intent(
    made: tuple[KafkaSource, FakeConsumer, list[RebalanceEvent]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The coordinator was killed as the partitions were assigned: the first read fails, the
    # second names an error on one partition (its offset then says nothing), the third answers.
    _source, consumer, events = made
    monkeypatch.setattr(source_module, "ASSIGN_READ_PAUSE", 0.0)
    moved = KafkaError(KafkaError.NOT_COORDINATOR)
    answers: list[Any] = [
        KafkaException(KafkaError(KafkaError._TIMED_OUT)),
        [Answered(0, -1001, "", moved), Answered(1, 7, "", None)],
        [
            TopicPartition("t", 0, 100, metadata="sg1:100-149"),
            TopicPartition("t", 1, 7, metadata=""),
        ],
    ]

    def committed(partitions: list[TopicPartition], timeout: float) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    consumer.committed = committed  # type: ignore[method-assign]
    consumer.callbacks["on_assign"](consumer, [TopicPartition("t", 0), TopicPartition("t", 1)])
    (event,) = events
    assert isinstance(event, Assigned)
    intent = event.partitions[0]
    assert intent is not None
    assert (intent.first, intent.last) == (100, 149)
    assert answers == []


@pytest.mark.parametrize(
    "code", [KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.NOT_COORDINATOR]
)
def test_an_assignment_whose_commits_cannot_be_read_ends_the_process_and_tells_why(
    made: tuple[KafkaSource, FakeConsumer, list[RebalanceEvent]],
    monkeypatch: pytest.MonkeyPatch,
    code: int,
) -> None:
    # Refused outright, or still moving after the whole wait: the error goes up (the poll
    # raises it, the process ends and its restart reads the commits again); no assignment
    # is taken without its intents.
    source, consumer, events = made
    monkeypatch.setattr(source_module, "ASSIGN_READ_PAUSE", 0.0)
    monkeypatch.setattr(source_module, "ASSIGN_READ_SECONDS", 0.0)
    refused = KafkaError(code)

    def committed(partitions: list[TopicPartition], timeout: float) -> Any:
        return [Answered(0, -1001, "", refused)]

    consumer.committed = committed  # type: ignore[method-assign]
    with pytest.raises(KafkaException) as raised:
        consumer.callbacks["on_assign"](consumer, [TopicPartition("t", 0)])
    assert raised.value.args[0].code() == code
    assert events == []
    assert source.assigned == set()


def test_pause_rewind_and_resume_touch_only_owned_partitions(
    made: tuple[KafkaSource, FakeConsumer, list[RebalanceEvent]],
) -> None:
    source, consumer, _ = made
    consumer.callbacks["on_assign"](consumer, [TopicPartition("t", 2)])
    source.pause([2, 9])  # 9 is not ours
    epoch = source.rewind(2, 40)
    source.resume([2])
    assert consumer.calls[-3:] == [("pause", [2]), ("seek", (2, 40)), ("resume", [2])]
    assert epoch == source.epoch == 2
    assert source.paused == frozenset()


def test_a_message_error_from_librdkafka_is_raised_not_taken_as_data(
    made: tuple[KafkaSource, FakeConsumer, list[RebalanceEvent]],
) -> None:
    source, consumer, _ = made

    class Broken:
        def error(self) -> KafkaError:
            return KafkaError(KafkaError._TRANSPORT)

    consumer.consume = lambda n, timeout: [Broken()]  # type: ignore[method-assign]
    with pytest.raises(KafkaException):
        source.poll(10)
