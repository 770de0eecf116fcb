"""One lag refresh against the real local Kafka: exact lag in messages and seconds, statuses."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from streams.lag.reader import KafkaReader
from streams.lag.refresh import Refresher
from streams.lag.snapshot import PartitionLag, Snapshot
from streams.lag.status import Rules, Status
from streams.settings import Settings
from tests.support.kafka import (
    commit,
    create_topic,
    delete_topics,
    kafka_tool_describe,
    produce,
    watermarks,
)
from tests.support.workers import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def kafka(local_stack: Settings, unique: str) -> Iterator[Settings]:
    """Settings naming a fresh 6-partition topic and an unused consumer group."""
    settings = dataclasses.replace(
        local_stack, topic=f"lag-{unique}", consumer_group=f"lag-group-{unique}"
    )
    create_topic(settings, settings.topic, 6)
    yield settings
    delete_topics(settings, settings.topic)


def in_process(settings: Settings, groups: list[str]) -> Refresher:
    """A refresher reading Kafka on this thread (the exporter reads in a child process)."""
    rules = Rules(settings.lag_window_refreshes, settings.lag_stop_after_seconds)
    return Refresher(KafkaReader(settings, groups), rules)


@pytest.fixture
def refresher(kafka: Settings) -> Iterator[Refresher]:
    refresher = in_process(kafka, [kafka.consumer_group])
    yield refresher
    refresher.close()


def partitions(snapshot: Snapshot, group: str) -> dict[int, PartitionLag]:
    (entry,) = [g for g in snapshot.groups if g.group == group]
    return {p.partition: p for t in entry.topics for p in t.partitions}


def total(snapshot: Snapshot, group: str) -> int:
    return sum(p.lag_messages or 0 for p in partitions(snapshot, group).values())


def test_stopped_workers_5000_messages_30_s_old_then_drained(
    kafka: Settings, refresher: Refresher
) -> None:
    topic, group = kafka.topic, kafka.consumer_group
    produce(kafka, topic, {p: 10 for p in range(6)})
    commit(kafka, group, {(topic, p): 10 for p in range(6)})  # the workers were caught up
    produced_at = time.time()
    stamp = int((produced_at - 30) * 1000)
    produce(kafka, topic, {p: 5000 // 6 + (p < 5000 % 6) for p in range(6)}, timestamp_ms=stamp)

    snapshot = refresher.refresh()
    lags = partitions(snapshot, group)
    assert total(snapshot, group) == 5000
    for lag in lags.values():
        assert lag.lag_seconds is not None
        # exactly the age of the message at the committed offset at the refresh ...
        assert lag.lag_seconds == pytest.approx(snapshot.refreshed_at - stamp / 1000, abs=0.002)
        # ... which is 30 s and the few moments the check took
        assert abs(lag.lag_seconds - 30) < 2
    assert {lag.committed_offset for lag in lags.values()} == {10}

    ends = watermarks(kafka, topic, 6)
    commit(kafka, group, {(topic, p): end for p, (_, end) in ends.items()})  # drained
    snapshot = refresher.refresh()
    assert total(snapshot, group) == 0
    assert {p.lag_seconds for p in partitions(snapshot, group).values()} == {0.0}


def test_lag_in_seconds_follows_the_clock_without_new_messages(
    kafka: Settings, refresher: Refresher
) -> None:
    before = time.time()
    produce(kafka, kafka.topic, {0: 20})  # timestamps: the producer's clock (CreateTime)
    after = time.time()
    time.sleep(2)
    first_snapshot = refresher.refresh()
    first = partitions(first_snapshot, kafka.consumer_group)[0]
    assert first.lag_seconds is not None
    # the timestamp was taken between before and after, truncated to the millisecond
    assert first_snapshot.refreshed_at - after <= first.lag_seconds
    assert first.lag_seconds <= first_snapshot.refreshed_at - before + 0.001
    assert first.lag_seconds >= 2
    time.sleep(1.5)
    second_snapshot = refresher.refresh()
    second = partitions(second_snapshot, kafka.consumer_group)[0]
    assert second.lag_seconds is not None
    waited = second_snapshot.refreshed_at - first_snapshot.refreshed_at
    assert waited >= 1.5
    assert second.lag_seconds - first.lag_seconds == pytest.approx(waited, abs=0.002)
    assert second.lag_messages == first.lag_messages == 20


def test_a_never_committed_group_counts_the_whole_retained_backlog(
    kafka: Settings, refresher: Refresher
) -> None:
    produce(kafka, kafka.topic, {0: 7, 3: 5})
    snapshot = refresher.refresh()
    lags = partitions(snapshot, kafka.consumer_group)
    assert {p: lag.lag_messages for p, lag in lags.items()} == {0: 7, 1: 0, 2: 0, 3: 5, 4: 0, 5: 0}
    assert all(lag.committed_offset is None for lag in lags.values())
    assert lags[1].lag_seconds == 0.0


def test_after_retention_deleted_the_committed_offset(local_stack: Settings, unique: str) -> None:
    """Lag counts from the committed offset; its age from the oldest message still retained."""
    topic, committed_group, new_group = f"lag-ret-{unique}", f"ret-{unique}", f"new-{unique}"
    create_topic(local_stack, topic, 1, {"retention.ms": "120000"})
    try:
        produce(local_stack, topic, {0: 10}, timestamp_ms=int((time.time() - 600) * 1000))
        commit(local_stack, committed_group, {(topic, 0): 5})
        # the broker checks retention every 5 s (devstack/resources/server.properties)
        assert wait_until(lambda: watermarks(local_stack, topic, 1)[0] == (10, 10), 60)
        stamp = int((time.time() - 20) * 1000)
        produce(local_stack, topic, {0: 20}, timestamp_ms=stamp)
        settings = dataclasses.replace(local_stack, topic=topic, consumer_group=new_group)
        refresher = in_process(settings, [committed_group, new_group])
        try:
            snapshot = refresher.refresh()
        finally:
            refresher.close()
        committed = partitions(snapshot, committed_group)[0]
        assert (committed.start_offset, committed.end_offset) == (10, 30)
        assert committed.lag_messages == 25  # end - committed, as Kafka's tool prints it
        expected_age = snapshot.refreshed_at - stamp / 1000
        assert committed.lag_seconds == pytest.approx(expected_age, abs=0.002)
        never = partitions(snapshot, new_group)[0]
        assert never.lag_messages == 20  # the whole retained backlog
        assert never.lag_seconds == pytest.approx(expected_age, abs=0.002)
    finally:
        delete_topics(local_stack, topic)


def test_per_partition_lag_equals_kafkas_consumer_groups_tool(
    kafka: Settings, refresher: Refresher
) -> None:
    topic, group = kafka.topic, kafka.consumer_group
    produce(kafka, topic, {0: 100, 1: 100, 2: 100, 3: 100, 4: 40})
    commit(kafka, group, {(topic, 0): 100, (topic, 1): 40, (topic, 2): 0, (topic, 4): 39})
    tool = kafka_tool_describe(kafka, group)
    lags = partitions(refresher.refresh(), group)
    assert set(tool) == {(topic, p) for p in (0, 1, 2, 4)}  # the tool lists committed ones
    for (_, p), row in tool.items():
        assert int(row["CURRENT-OFFSET"]) == lags[p].committed_offset
        assert int(row["LOG-END-OFFSET"]) == lags[p].end_offset
        assert int(row["LAG"]) == lags[p].lag_messages
    assert [lags[p].lag_messages for p in range(6)] == [0, 60, 100, 100, 1, 0]


def test_timestamps_are_read_only_where_there_is_lag_and_only_when_the_position_moved(
    kafka: Settings, refresher: Refresher
) -> None:
    topic, group = kafka.topic, kafka.consumer_group
    produce(kafka, topic, {p: 10 for p in range(6)})
    commit(kafka, group, {(topic, 0): 3, (topic, 1): 5, **{(topic, p): 10 for p in range(2, 6)}})
    refresher.refresh()
    assert refresher.fetched == 2  # partitions 0 and 1
    refresher.refresh()
    assert refresher.fetched == 0  # same positions: cached
    commit(kafka, group, {(topic, 0): 4})
    lags = partitions(refresher.refresh(), group)
    assert refresher.fetched == 1
    assert (lags[0].lag_messages, lags[1].lag_messages) == (6, 5)


class Committer(threading.Thread):
    """A live member of a group that keeps committing offset 10 on partition 0.

    With ``vary`` each commit carries new metadata (as a streamgauge worker's intent commit
    does when it announces a batch); without it every commit is identical.
    """

    def __init__(self, settings: Settings, group: str, vary: bool) -> None:
        super().__init__(daemon=True)
        self.config: dict[str, Any] = {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": group,
            "group.protocol": "consumer",
            "enable.auto.commit": False,
        }
        self.topic, self.vary = settings.topic, vary
        self.committed = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        consumer = Consumer(self.config)
        assigned = threading.Event()
        consumer.subscribe([self.topic], on_assign=lambda *_: assigned.set())
        commits = 0
        while not self.stopping.is_set():
            consumer.poll(0.1)
            if assigned.is_set():
                metadata = f"sg1:10-{19 + commits}" if self.vary else "sg1:10-19"
                offsets = [TopicPartition(self.topic, 0, 10, metadata=metadata)]
                consumer.commit(offsets=offsets, asynchronous=False)
                commits += 1
                self.committed.set()
        consumer.close()


def test_stop_stall_and_rewind(kafka: Settings, unique: str) -> None:
    topic = kafka.topic
    stopped, stalled, same, rewound, caught_up = (
        f"{name}-{unique}" for name in ("stopped", "stalled", "same", "rewound", "caught-up")
    )
    produce(kafka, topic, {0: 50})
    commit(kafka, stopped, {(topic, 0): 10})
    commit(kafka, caught_up, {(topic, 0): 50})
    committers = [Committer(kafka, stalled, vary=True), Committer(kafka, same, vary=False)]
    for committer in committers:
        committer.start()
    settings = dataclasses.replace(
        kafka, consumer_group=stopped, lag_window_refreshes=4, lag_stop_after_seconds=3.0
    )
    groups = [stopped, stalled, same, rewound, caught_up]
    refresher = in_process(settings, groups)
    history: dict[str, list[Status]] = {group: [] for group in groups}
    try:
        assert all(c.committed.wait(30) for c in committers)
        # Committed now, not before the committers joined (seconds on a busy machine): it
        # must still be short of stop_after when the reset comes.
        commit(kafka, rewound, {(topic, 0): 40})
        began = time.monotonic()
        for i in range(16):  # over 4 s: longer than stop_after, several windows
            if i == 8:
                commit(kafka, rewound, {(topic, 0): 20})  # an operator resets the offset
            snapshot = refresher.refresh()
            for group in groups:
                history[group].append(partitions(snapshot, group)[0].status)
            time.sleep(0.25)
        members = {g.group: g.members for g in snapshot.groups}
        owner = partitions(snapshot, stalled)[0].owner
    finally:
        for committer in committers:
            committer.stopping.set()
            committer.join(30)
        refresher.close()
    assert time.monotonic() - began > 3.0, "the scenario outlasts stop_after"
    assert history[stopped][-1] is Status.STOP
    assert history[stalled][3:] == [Status.STALL] * 13  # from the first full window on
    assert history[same][-1] is Status.STOP  # identical re-commits are invisible (documented)
    # REWIND while the step back is inside the window: the refresh that saw it and 2 more
    assert history[rewound][7:12] == [Status.WARN, *[Status.REWIND] * 3, Status.WARN]
    assert set(history[caught_up]) == {Status.OK}
    assert (members[stalled], members[stopped]) == (1, 0)
    assert owner is not None
