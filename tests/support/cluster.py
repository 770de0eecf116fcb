"""The 3-broker cluster scenarios: a mixed workload produced steadily while worker processes
ingest and something happens to the brokers or the workers; then the accounting identity.

The workload and the checker are bench torture's (bench/_torture_workload.py, _torture_check.py):
valid, invalid, resent and oversized messages, each knowing its fate; the checker reads only
Kafka and ClickHouse. A scenario's ``action`` runs in a thread while the producer sends.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from confluent_kafka import KafkaException
from confluent_kafka.admin import ConsumerGroupDescription

from bench._torture_check import Verdict, check
from bench._torture_faults import Supervisor, free_port_range, streamgauge, worker_env
from bench._torture_observe import (
    DeadLetterLog,
    clickhouse,
    offsets,
    stop_merges,
    wait_caught_up,
)
from bench._torture_workload import Mix, Planned, Workload, WorkloadProducer
from devstack.kafka_broker import KafkaBroker
from devstack.kafka_broker import cluster as kafka_cluster
from devstack.stack import cluster_settings
from streams import migrations
from streams.codec import load_versions
from streams.settings import Settings
from streams.worker.source import MOVING
from tests.support.kafka import admin, delete_topics

BASE_PORT = 19092  # beside the single broker of the test session (9092)
LOG_TAIL = 80  # lines of each workers' log in a failed scenario's report
BROKER_DOWN = ("Connection refused", "Disconnected", "_TRANSPORT")


@dataclass
class LocalCluster:
    """Three brokers of the local stack's Kafka, on ports of their own, for one test session."""

    brokers: list[KafkaBroker]
    settings: Settings  # bootstrap over all three, topics replicated 3 times

    @classmethod
    def start(cls, base: Settings, home: Path) -> LocalCluster:
        shutil.rmtree(home, ignore_errors=True)
        brokers = kafka_cluster(home, base.cache_dir, "127.0.0.1", BASE_PORT, 3)
        for broker in brokers:
            broker.start()
        for broker in brokers:
            broker.daemon.wait_ready(broker.ready, 90)
        first = dataclasses.replace(base, kafka_bootstrap_servers=f"127.0.0.1:{BASE_PORT}")
        return cls(brokers, cluster_settings(first, 3))

    def stop(self) -> None:
        """All three at once (one by one, the last would wait for a quorum that is gone)."""
        for broker in self.brokers:
            broker.daemon.terminate()
        for broker in self.brokers:
            broker.daemon.stop()

    def broker(self, node_id: int) -> KafkaBroker:
        return self.brokers[node_id - 1]

    def kill(self, node_id: int) -> None:
        """SIGKILL the broker: no controlled shutdown, no leadership handed over."""
        pid = self.broker(node_id).daemon.pid()
        assert pid is not None, f"broker {node_id} is not running"
        os.killpg(pid, signal.SIGKILL)
        while self.broker(node_id).daemon.pid() is not None:
            time.sleep(0.05)

    def restart(self, node_id: int, stop: bool = False) -> float:
        """Start the broker again (after a clean stop when ``stop``); seconds until it is ready."""
        broker = self.broker(node_id)
        if stop:
            broker.daemon.stop()
        broker.start()
        return broker.daemon.wait_ready(broker.ready, 90)

    def leader(self, topic: str, partition: int) -> int:
        with admin(self.settings) as client:
            listed = client.list_topics(topic, timeout=10)
        return int(listed.topics[topic].partitions[partition].leader)

    def led_by(self, topic: str, node_id: int) -> list[int]:
        """The partitions of ``topic`` whose leader is broker ``node_id``."""
        with admin(self.settings) as client:
            partitions = client.list_topics(topic, timeout=10).topics[topic].partitions.values()
        return sorted(p.id for p in partitions if p.leader == node_id)

    def coordinator(self, group: str) -> int:
        """The broker that is ``group``'s coordinator (its commits go there)."""
        return int(self.describe_group(group).coordinator.id)

    def assigned(self, group: str, topic: str) -> set[int]:
        """The partitions of ``topic`` that members of ``group`` hold now."""
        return {
            tp.partition
            for member in self.describe_group(group).members
            for tp in member.assignment.topic_partitions
            if tp.topic == topic
        }

    def describe_group(self, group: str, timeout: float = 60) -> ConsumerGroupDescription:
        """``group`` as its coordinator describes it; asked again while the brokers answer
        that it is moving or loading (NOT_COORDINATOR, load in progress) or are too busy to
        answer in time."""
        deadline = time.monotonic() + timeout
        with admin(self.settings) as client:
            while True:
                future = client.describe_consumer_groups([group], request_timeout=10)[group]
                try:
                    return cast(ConsumerGroupDescription, future.result())
                except KafkaException as error:
                    if error.args[0].code() not in MOVING or time.monotonic() > deadline:
                        raise
                time.sleep(0.5)

    def under_replicated(self, topic: str) -> int:
        """Partitions of ``topic`` whose in-sync replicas are fewer than their replicas."""
        with admin(self.settings) as client:
            partitions = client.list_topics(topic, timeout=10).topics[topic].partitions.values()
        return sum(1 for p in partitions if len(p.isrs) < len(p.replicas))

    def active_controller(self) -> int:
        with admin(self.settings) as client:
            controller = client.describe_cluster(request_timeout=10).result().controller
        assert controller is not None
        return int(controller.id)


class ScenarioFailed(Exception):
    """A scenario could not run to its verdict: what went wrong, and the run's report."""


@dataclass
class Run:
    """One scenario: its settings, what it sent, what it did and what the checker found."""

    settings: Settings
    log_dir: Path
    messages: list[Planned] = field(default_factory=list)
    supervisors: list[Supervisor] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    verdict: Verdict = field(default_factory=Verdict)
    catch_up_seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def note(self, event: str) -> None:
        self.events.append(f"{time.monotonic() - self.started:6.1f}s {event}")

    def add_workers(self, processes: int) -> Supervisor:
        settings = dataclasses.replace(
            self.settings, worker_metrics_port=free_port_range(processes)
        )
        log = self.log_dir / f"workers-{len(self.supervisors)}.log"
        env = {**worker_env(settings, None), "STREAMGAUGE_LOG_LEVEL": settings.log_level}
        supervisor = Supervisor(processes, env, log)
        self.supervisors.append(supervisor)
        self.note(f"supervisor {len(self.supervisors) - 1} started: {processes} processes")
        return supervisor

    def workers(self) -> list[int]:
        return [pid for s in self.supervisors if s.process.poll() is None for pid in s.children()]

    def wait_workers(self, count: int, timeout: float = 30) -> None:
        wait(lambda: len(self.workers()) == count, timeout, f"{count} worker processes")

    def at(self, seconds: float) -> None:
        """Sleep until ``seconds`` after production started."""
        time.sleep(max(0.0, seconds - (time.monotonic() - self.started)))

    def report(self, logs: bool = False) -> str:
        """What happened and what the checker found; when it found something (or ``logs``),
        the workers' own account too (a CI run keeps only what the failure message says)."""
        lines = [*self.events, f"verdict: {self.verdict.by_kind()}", f"logs: {self.log_dir}"]
        if logs or self.verdict.violations:
            for log in sorted(self.log_dir.glob("workers-*.log")):
                lines += [f"--- the last of {log.name}:", *worker_story(log)]
        return "\n".join(lines)


def worker_story(log: Path, lines: int = LOG_TAIL) -> list[str]:
    """The last ``lines`` of a workers' log, without librdkafka's retries of a broker that is
    down (they repeat every second while it is and say nothing else)."""
    told = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if not any(noise in line for noise in BROKER_DOWN)
    ]
    return told[-lines:]


def scenario(
    cluster: LocalCluster,
    name: str,
    action: Callable[[Run], None],
    *,
    processes: int = 2,
    partitions: int = 6,
    messages: int = 2400,
    rate: float = 150.0,
    seed: int = 7,
    catch_up: float = 120.0,
    log_root: Path = Path("bench/results/cluster"),
    producer: dict[str, Any] | None = None,
    after: Callable[[Run], None] = lambda run: None,
    resend: float = 0.03,
    log_level: str = "INFO",
) -> Run:
    """Provision, start ``processes`` workers, produce at ``rate`` while ``action`` runs,
    wait until the group caught up, check, then ``after`` (the workers still running, the
    logs still there); the topics, database and logs are dropped when nothing failed."""
    settings = cluster.settings.isolated(
        name, topic_partitions=partitions, worker_processes=processes, log_level=log_level
    )
    log_dir = log_root / name
    log_dir.mkdir(parents=True, exist_ok=True)
    env = worker_env(settings, None)
    streamgauge(env, "topics", "create")
    streamgauge(env, "migrate", "up")
    stop_merges(settings)
    run = Run(settings, log_dir)
    run.messages = draw(seed, messages, settings, resend)
    errors: list[BaseException] = []
    try:
        run.add_workers(processes)
        run.wait_workers(processes)
        # The clock starts once the group consumes every partition: a worker process takes
        # seconds to start on a busy machine, and what a scenario does at 4 s is meant to hit
        # workers at work.
        every = set(range(partitions))
        wait(
            lambda: cluster.assigned(settings.consumer_group, settings.topic) == every,
            90,
            "every partition assigned",
        )
        run.started = time.monotonic()
        run.note(f"every partition assigned; sending at {rate:.0f} msg/s")

        def act() -> None:
            try:
                action(run)
            except BaseException as error:  # surfaced after production
                errors.append(error)

        thread = threading.Thread(target=act, daemon=True)
        thread.start()
        WorkloadProducer(settings, **(producer or {})).send_all(run.messages, rate)
        run.note(f"{len(run.messages)} messages sent")
        thread.join(180)
        if errors:
            raise errors[0]
        began = time.monotonic()
        caught_up = wait_caught_up(settings, catch_up)
        run.catch_up_seconds = time.monotonic() - began
        run.note(f"caught up: {caught_up} after {run.catch_up_seconds:.1f} s")
        committed, end = offsets(settings)
        letters = DeadLetterLog(settings).read()
        run.verdict = check(run.messages, clickhouse(settings, committed, end, letters))
        if not run.verdict.violations:
            after(run)
    except Exception as error:
        raise ScenarioFailed(f"{error!r}\n{run.report(logs=True)}") from error
    finally:
        for supervisor in run.supervisors:
            supervisor.stop()
    if not run.verdict.violations:
        drop(settings)
        shutil.rmtree(log_dir, ignore_errors=True)
    return run


def draw(seed: int, count: int, settings: Settings, resend: float) -> list[Planned]:
    """A steady mixed workload: mostly valid, some invalid, resent and oversized messages."""
    rng = random.Random(f"cluster:{seed}")
    workload = Workload(rng, load_versions(settings.schemas_dir), settings.max_message_bytes)
    mix = Mix(
        invalid=0.05,
        resend=resend,
        many_readings=1,
        over_worker_limit=1,
        near_kafka_limit=0,
        backfill=False,
    )
    return workload.draw(count, int(time.time() * 1000), mix)


def partition_count(settings: Settings) -> int:
    with admin(settings) as client:
        listed = client.list_topics(settings.topic, timeout=10)
    return len(listed.topics[settings.topic].partitions)


def drop(settings: Settings) -> None:
    migrations.drop(settings)
    delete_topics(settings, settings.topic, settings.dlq_topic)


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Until ``condition()`` holds; a Kafka error while asking (a broker just went) is a no."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except KafkaException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"not {what} after {timeout:.0f} s")
        time.sleep(0.2)
