"""The pipeline under faults: a worker killed mid-stream, ClickHouse gone for 10 s, bad input."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from devstack.clickhouse_local import LocalClickHouse
from devstack.daemon import free_port
from streams.settings import Settings
from tests.support.accounting import assert_stored_exactly_once, drained, positions
from tests.support.fleet import SteadyProducer, count, produce
from tests.support.pipeline import migrate_up
from tests.support.workers import Workers, wait_until

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_kill_9_of_a_worker_loses_and_duplicates_nothing(
    pipeline: Settings, tmp_path: Path
) -> None:
    workers = Workers(pipeline, 2, tmp_path / "workers.log")
    try:
        assert wait_until(lambda: len(workers.children()) == 2, 30)
        fleet = SteadyProducer(pipeline, devices=100, count=30_000, rate=5_000)
        fleet.start()
        time.sleep(2.5)
        victim = workers.children()[0]
        os.kill(victim, signal.SIGKILL)
        fleet.join(60)
        assert fleet.error is None
        assert wait_until(lambda: drained(pipeline), 120), workers.output()[-3000:]
        survivors = workers.children()
        assert len(survivors) == 2, "the supervisor restarted the killed worker"
        assert victim not in survivors
    finally:
        assert workers.stop() == 0
    assert "exited with code -9" in workers.output()
    assert_stored_exactly_once(pipeline, fleet.sent.readings)


@pytest.fixture
def private_clickhouse(
    pipeline: Settings, tmp_path: Path
) -> Iterator[tuple[Settings, LocalClickHouse]]:
    """The pipeline on a ClickHouse of its own, so stopping it disturbs no other test."""
    port = free_port()
    server = LocalClickHouse(tmp_path / "stack", port=port)
    server.start()
    server.daemon.wait_ready(server.ready, 30)
    settings = dataclasses.replace(pipeline, clickhouse_port=port)
    migrate_up(settings)
    yield settings, server
    server.daemon.stop()


@pytest.mark.slow
def test_clickhouse_down_for_10_s_commits_nothing_and_recovers(
    private_clickhouse: tuple[Settings, LocalClickHouse], tmp_path: Path
) -> None:
    settings, server = private_clickhouse
    workers = Workers(settings, 2, tmp_path / "workers.log")
    try:
        # The outage must meet workers that are writing, not ones still checking at start-up.
        assert wait_until(lambda: workers.consuming(2), 60), workers.output()[-3000:]
        pids = workers.children()
        fleet = SteadyProducer(settings, devices=50, count=20_000, rate=1_000)
        fleet.start()
        time.sleep(3)
        server.daemon.stop()
        time.sleep(1.5)  # batches in flight at the moment of the stop settle into retrying
        frozen = positions(settings)
        time.sleep(8)
        assert positions(settings) == frozen, "offsets moved while ClickHouse was down"
        server.start()
        server.daemon.wait_ready(server.ready, 30)
        fleet.join(60)
        assert fleet.error is None
        assert wait_until(lambda: drained(settings), 120), workers.output()[-3000:]
        assert workers.children() == pids, (
            f"a worker process restarted (a crash loop?): {workers.output()[-4000:]}"
        )
    finally:
        assert workers.stop() == 0
    # What failed first while ClickHouse was down was an insert (retried inside the sink) or
    # the resend check's lookup before it (the whole step retried): either way, retried.
    output = workers.output()
    assert "failed (attempt" in output or "failed; retrying it" in output, "writes were retried"
    assert_stored_exactly_once(settings, fleet.sent.readings)


@pytest.mark.slow
def test_a_worker_process_started_while_clickhouse_is_down_waits_for_it(
    private_clickhouse: tuple[Settings, LocalClickHouse], tmp_path: Path
) -> None:
    # What the supervisor does when it restarts a worker during an outage: the process waits
    # for the server (no exit, no crash loop) and stores the backlog once it answers.
    settings, server = private_clickhouse
    server.daemon.stop()
    sent = produce(settings, devices=100, messages_per_device=5)
    log = tmp_path / "worker.log"
    env = {**os.environ, **settings.to_env(), "STREAMGAUGE_WORKER_INDEX": "0"}
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams.worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        assert wait_until(lambda: "Trying again" in log.read_text(), 30), log.read_text()
        time.sleep(3)
        assert worker.poll() is None, log.read_text()[-3000:]
        assert set(positions(settings).values()) == {0}, "nothing committed while it is down"
        server.start()
        server.daemon.wait_ready(server.ready, 30)
        assert wait_until(lambda: drained(settings), 120), log.read_text()[-3000:]
        assert worker.poll() is None, "the same process stored the backlog"
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
    assert "is unreachable" in log.read_text()
    assert_stored_exactly_once(settings, sent.readings)


# What each kind of malformed message the simulator makes is rejected as.
EXPECTED_REASON = {
    "not_avro": "not_avro",
    "truncated": "not_avro",
    "unknown_schema": "unknown_schema",
    "non_finite_value": "non_finite_value",
    "future_event_time": "invalid_event_time",
    "invalid_device_id": "invalid_device_id",
}


def test_mixed_versions_and_malformed_messages(pipeline: Settings, tmp_path: Path) -> None:
    workers = Workers(pipeline, 2, tmp_path / "workers.log")
    try:
        sent = produce(pipeline, devices=100, messages_per_device=40, bad_ratio=0.05)
        assert wait_until(lambda: drained(pipeline), 120), workers.output()[-3000:]
    finally:
        assert workers.stop() == 0
    assert {r["site"] is None for r in sent.records} == {True, False}, "both schema versions"
    assert count(pipeline, "SELECT count() FROM readings") == sent.readings
    v1_readings = sum(len(r["readings"]) for r in sent.records if r["site"] is None)
    assert count(pipeline, "SELECT countIf(site = '') FROM readings") == v1_readings

    # Dead letters are delivered at least once (docs/delivery.md): a batch a rebalance took
    # away after its letters went out is replayed by the next owner, letters and all.
    letters = read_dead_letters(pipeline)
    by_source: dict[tuple[int, int], tuple[str, bytes]] = {}
    for headers, value in letters:
        where = (
            int(headers["streamgauge.source.partition"]),
            int(headers["streamgauge.source.offset"]),
        )
        letter = headers["streamgauge.reason"], value
        assert by_source.setdefault(where, letter) == letter, "a repeat is the same letter"
    reasons = Counter(reason for reason, _ in by_source.values())
    expected: Counter[str] = Counter()
    for kind, n in sent.bad.items():
        expected[EXPECTED_REASON[kind]] += n
    assert reasons == expected
    source = Consumer({"bootstrap.servers": pipeline.kafka_bootstrap_servers, "group.id": "probe"})
    for headers, value in letters[:20]:
        assert headers["streamgauge.source.topic"] == pipeline.topic
        original = TopicPartition(
            pipeline.topic,
            int(headers["streamgauge.source.partition"]),
            int(headers["streamgauge.source.offset"]),
        )
        source.assign([original])
        message = source.consume(1, 10)[0]
        assert message.value() == value, "the dead letter is the original message"
    source.close()


def read_dead_letters(settings: Settings) -> list[tuple[dict[str, str], bytes]]:
    """Every letter in the dead-letter topic, oldest first."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": "dlq-reader"}
    )
    dlq = TopicPartition(settings.dlq_topic, 0)
    _, end = consumer.get_watermark_offsets(dlq, timeout=10)
    consumer.assign([TopicPartition(settings.dlq_topic, 0, 0)])
    letters: list[tuple[dict[str, str], bytes]] = []
    deadline = time.monotonic() + 30
    while len(letters) < end and time.monotonic() < deadline:
        for message in consumer.consume(500, 1):
            headers = {k: _text(v) for k, v in dict(message.headers() or {}).items()}
            letters.append((headers, message.value() or b""))
    consumer.close()
    assert len(letters) == end
    return letters


def _text(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""
