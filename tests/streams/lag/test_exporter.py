"""``streamgauge lag-exporter`` as its own process: it reports whatever the consumers do."""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from devstack.daemon import free_port
from devstack.kafka_broker import KafkaBroker
from streams import simulator
from streams.codec import load_versions
from streams.lag.exporter import LagExporter
from streams.lag.isolation import ReadFailed
from streams.lag.offsets import Offsets
from streams.lag.reader import Reading
from streams.lag.refresh import Refresher
from streams.lag.state import ExporterState
from streams.lag.status import Rules
from streams.producer import MeasurementProducer
from streams.settings import Settings
from tests.support.exporter import ExporterProcess, partitions
from tests.support.fleet import committed, end_offsets, produce
from tests.support.kafka import commit, create_topic, delete_topics, watermarks
from tests.support.kafka import produce as produce_plain
from tests.support.workers import Workers, wait_until


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: scripts/ensure-tools.sh installs it (Debian's prometheus)"
    return path


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "streams.cli", "lag-exporter", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


@pytest.fixture
def lonely(local_stack: Settings, unique: str) -> Iterator[Settings]:
    """A 3-partition topic and a group that committed on it; no consumer of it is alive."""
    settings = dataclasses.replace(
        local_stack, topic=f"lag-exp-{unique}", consumer_group=f"lag-exp-{unique}"
    )
    create_topic(settings, settings.topic, 3)
    produce_plain(settings, settings.topic, {0: 10, 1: 10, 2: 10})
    commit(settings, settings.consumer_group, {(settings.topic, p): 10 for p in range(3)})
    yield settings
    delete_topics(settings, settings.topic)


@pytest.mark.integration
def test_the_process_reports_a_group_without_live_consumers_and_sees_it_drain(
    lonely: Settings, tmp_path: Path
) -> None:
    topic, group = lonely.topic, lonely.consumer_group
    stamp = int((time.time() - 30) * 1000)
    produce_plain(lonely, topic, {0: 100, 1: 200, 2: 300}, timestamp_ms=stamp)
    exporter = ExporterProcess(lonely, [group], tmp_path / "exporter.log", refresh_seconds=0.5)
    try:
        assert exporter.wait_healthy(), exporter.output()
        first = exporter.status()
        time.sleep(1.2)
        status = exporter.status()
        assert status["refreshed_at_unix"] > first["refreshed_at_unix"]  # it keeps reporting
        (entry,) = status["groups"]
        assert (entry["group"], entry["members"], entry["state"]) == (group, 0, "Empty")
        lags = partitions(status, group, topic)
        assert [lags[p]["lag_messages"] for p in range(3)] == [100, 200, 300]
        for lag in lags.values():
            expected = status["lag_at_unix"] - stamp / 1000
            assert lag["lag_seconds"] == pytest.approx(expected, abs=0.01)

        code, metrics = exporter.get("/metrics")
        assert code == 200
        check = subprocess.run(
            [promtool(), "check", "metrics"], input=metrics, capture_output=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr

        ends = watermarks(lonely, topic, 3)
        commit(lonely, group, {(topic, p): end for p, (_, end) in ends.items()})
        drained_at = time.monotonic()
        assert wait_until(lambda: exporter.status()["groups"][0]["lag_messages"] == 0, 5, 0.02)
        # within one refresh interval, plus the time one refresh takes
        assert time.monotonic() - drained_at < 0.5 + 0.5
        assert exporter.status()["groups"][0]["topics"][0]["lag_seconds"] == 0
    finally:
        assert exporter.stop() == 0, exporter.output()


@pytest.mark.integration
def test_lag_seconds_is_the_age_when_read_not_at_the_last_refresh(
    lonely: Settings, tmp_path: Path
) -> None:
    topic, group = lonely.topic, lonely.consumer_group
    stamp = int((time.time() - 30) * 1000)
    produce_plain(lonely, topic, {0: 5}, timestamp_ms=stamp)
    exporter = ExporterProcess(lonely, [group], tmp_path / "exporter.log", refresh_seconds=5.0)
    try:
        assert exporter.wait_healthy(), exporter.output()
        for _ in range(3):  # reads between two refreshes, seconds after the last one
            time.sleep(1.5)
            before = time.time()
            status = exporter.status()
            _, metrics = exporter.get("/metrics")
            after = time.time()
            lag = partitions(status, group, topic)[0]["lag_seconds"]
            assert before - stamp / 1000 - 0.01 <= lag <= after - stamp / 1000 + 0.01
            scraped = metric_value(metrics, "streamgauge_consumer_lag_seconds", "0")
            assert before - stamp / 1000 - 0.01 <= scraped <= after - stamp / 1000 + 0.01
            print(f"read {before - status['refreshed_at_unix']:.1f} s after a refresh: {lag} s")
    finally:
        assert exporter.stop() == 0, exporter.output()


def metric_value(text: bytes, name: str, partition: str) -> float:
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("partition") == partition:
                return float(sample.value)
    raise AssertionError(f"no {name} for partition {partition}")


class Script:
    """A reader that answers from a list: a Reading, or an exception to raise."""

    def __init__(self, *answers: Reading | Exception) -> None:
        self.answers = list(answers)

    def read(self) -> Reading:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def interrupt(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_failed_refresh_is_published_as_a_sentence_over_the_last_good_data() -> None:
    good = Reading(time.time(), Offsets([], {}, {}), {}, 0, {})
    reader = Script(
        good, ReadFailed("Kafka did not answer within 60 s."), RuntimeError("bug"), good
    )
    state = ExporterState(5.0)
    exporter = LagExporter(Refresher(reader, Rules(4, 30.0)), 5.0, state)
    exporter.refresh_once()
    assert state.error() is None
    first = state.snapshot
    exporter.refresh_once()
    assert (state.error(), state.snapshot) == ("Kafka did not answer within 60 s.", first)
    exporter.refresh_once()
    assert state.error() == "The lag refresh failed unexpectedly: RuntimeError('bug')."
    assert state.failures == 2
    exporter.refresh_once()
    assert state.error() is None


def test_kafka_unreachable_at_start_is_one_sentence() -> None:
    env = {"STREAMGAUGE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}", "PATH": ""}
    began = time.monotonic()
    result = run_cli("--port", str(free_port()), env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "is unreachable" in lines[0]
    assert "streamgauge dev up" in lines[0]
    assert time.monotonic() - began < 15


# The check's own client, left waiting for its request when no broker answered, kept alive by
# a reference cycle (an error saved by its catcher: frame -> error -> traceback -> frame) and
# collected by a garbage collection that the request's late answer starts on the client's own
# thread: librdkafka aborts the process ("calling rd_kafka_destroy() from librdkafka owned
# thread is prohibited").
KEPT_ERROR = """
import dataclasses, gc, time
from streams.errors import UserError
from streams.lag.reader import check_reachable
from streams.settings import Settings

settings = dataclasses.replace(Settings.from_env(), kafka_bootstrap_servers="127.0.0.1:{port}")

def keep_error():
    try:
        check_reachable(settings, timeout=2)
    except UserError as error:
        kept = error
        return kept.args

gc.disable()
keep_error()
gc.set_threshold(1, 1, 1)
gc.enable()
time.sleep(4)  # allocates nothing: the next collection starts on whichever thread runs Python
print("alive")
"""


def test_an_unreachable_check_left_to_the_garbage_collector_does_not_abort_the_process() -> None:
    result = subprocess.run(
        [sys.executable, "-c", KEPT_ERROR.format(port=free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (0, "alive\n"), result.stderr[-2000:]


def test_a_port_in_use_is_one_sentence() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--port", str(port), env={"PATH": ""})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"streamgauge lag-exporter: The lag exporter cannot listen on 127.0.0.1:{port} "
        "(address already in use); another exporter may be running there: stop it or choose "
        "another --port."
    ]


@pytest.mark.integration
@pytest.mark.slow
def test_kafka_going_away_is_reported_and_the_exporter_keeps_serving(
    local_stack: Settings, tmp_path: Path, unique: str
) -> None:
    """A private broker (the shared one must stay up for everyone else) is stopped under it."""
    port = free_port()
    broker = KafkaBroker(tmp_path, local_stack.cache_dir, "127.0.0.1", port, free_port(), "256m")
    broker.start()
    exporter = None
    try:
        broker.daemon.wait_ready(broker.ready, 90)
        settings = dataclasses.replace(
            local_stack,
            kafka_bootstrap_servers=f"127.0.0.1:{port}",
            topic=f"private-{unique}",
            consumer_group=f"private-{unique}",
        )
        create_topic(settings, settings.topic, 2)
        produce_plain(settings, settings.topic, {0: 5, 1: 5})
        exporter = ExporterProcess(settings, [settings.consumer_group], tmp_path / "exp.log")
        assert exporter.wait_healthy(), exporter.output()
        assert exporter.status()["groups"][0]["lag_messages"] == 10

        broker.daemon.stop()
        assert wait_until(lambda: not exporter.status()["healthy"], 30), exporter.output()
        status = exporter.status()
        # librdkafka either times out, or crashes (its NOT_COORDINATOR bug) in the child
        assert status["error"].startswith(
            ("Reading lag from Kafka failed: ", "The Kafka client process died")
        ), status["error"]
        assert status["error"].endswith(".")
        # The last reading's data stays: the one before the failures, or one taken while the
        # broker shut down that found its partitions without a leader (unknown, as on a cluster
        # with a partition offline: tests/cluster/test_exporter_offline.py).
        assert status["groups"][0]["lag_messages"] in (10, None), status["groups"]
        assert exporter.get("/healthz")[0] == 503
        assert exporter.get("/metrics")[0] == 200
        assert exporter.process.poll() is None
    finally:
        broker.daemon.stop()
        if exporter is not None:
            assert exporter.stop() == 0, exporter.output()


def produce_aged(settings: Settings, messages: int, age: float) -> int:
    """Valid measurements whose Kafka timestamp (and event time) is ``age`` seconds ago."""
    versions = [v.version for v in load_versions(settings.schemas_dir)]
    fleet = simulator.Fleet(50, versions, prefix="aged")
    encoders = MeasurementProducer(settings).encoders
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "linger.ms": 5})
    stamp = int((time.time() - age) * 1000)
    for i in range(messages):
        device = fleet.devices[i % len(fleet.devices)]
        record = fleet.reading(device, stamp)
        payload = encoders[device.version].encode(record)
        producer.produce(settings.topic, payload, device.device_id.encode(), timestamp=stamp)
        producer.poll(0)
    assert producer.flush(30) == 0
    return stamp


@pytest.mark.integration
@pytest.mark.slow
def test_real_workers_stopped_then_draining(pipeline: Settings, tmp_path: Path) -> None:
    group, topic = pipeline.consumer_group, pipeline.topic

    def drained() -> bool:
        return committed(pipeline) == end_offsets(pipeline)

    workers = Workers(pipeline, 1, tmp_path / "workers.log")
    try:
        produce(pipeline, devices=60, messages_per_device=10)
        assert wait_until(drained, 90), workers.output()[-3000:]
    finally:
        assert workers.stop() == 0
    exporter = ExporterProcess(pipeline, [group], tmp_path / "exporter.log", refresh_seconds=1.0)
    try:
        assert exporter.wait_healthy(), exporter.output()
        stamp = produce_aged(pipeline, 5000, age=30)
        assert wait_until(lambda: exporter.status()["groups"][0]["lag_messages"] == 5000, 10)
        status = exporter.status()
        assert status["groups"][0]["members"] == 0
        for lag in partitions(status, group, topic).values():
            assert lag["lag_seconds"] == pytest.approx(
                status["lag_at_unix"] - stamp / 1000, abs=0.01
            )
            assert abs(lag["lag_seconds"] - 30) < 2

        workers = Workers(pipeline, 1, tmp_path / "workers.log")
        try:
            assert wait_until(drained, 90, 0.05), workers.output()[-3000:]
            drained_at = time.monotonic()
            assert wait_until(lambda: exporter.status()["groups"][0]["lag_messages"] == 0, 5)
            assert time.monotonic() - drained_at < 1.0 + 1.0  # one interval + one refresh
            assert exporter.status()["groups"][0]["lag_seconds"] == 0
        finally:
            assert workers.stop() == 0
    finally:
        assert exporter.stop() == 0, exporter.output()
