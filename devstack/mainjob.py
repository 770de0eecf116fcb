"""The main job on the local stack (``make run``): stack, schema, topics, workers, a fleet.

Runs until Ctrl-C or SIGTERM, with one live line: readings/s stored, lag, dead letters.
Everything it started is stopped on the way out.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TextIO

from confluent_kafka import Consumer, KafkaException, TopicPartition

from devstack import stack
from streams import migrations, topics
from streams.clickhouse import sync_client
from streams.settings import Settings


def run(settings: Settings, devices: int, rate: float, processes: int) -> int:
    started = stack.up(settings, print)
    try:
        prepare(settings)
        with children(settings, processes, devices, rate):
            print("Ctrl-C stops everything started here.")
            watch(settings)
    finally:
        print()
        stack.down(settings, print, only=started)
    return 0


def prepare(settings: Settings) -> None:
    migrations.up(settings, say=print)
    for line in topics.create(settings):
        print(line)


def api_key(settings: Settings) -> tuple[str, str]:
    """The key this run's API accepts (``read`` and ``metrics``): new each run unless
    STREAMGAUGE_API_KEYS is set (then the entries are kept and no key is known here)."""
    if settings.api_keys or not settings.api_auth:
        return "", settings.api_keys
    key = secrets.token_urlsafe(32)
    hashed = subprocess.run(
        [sys.executable, "-m", "streams.cli", "api", "hash-key", "--stdin", "--scopes",
         "read+metrics"],
        input=key + "\n", capture_output=True, text=True, check=True,
    )  # fmt: skip
    (entry,) = [line for line in hashed.stdout.splitlines() if line.startswith("entry: ")]
    return key, entry.removeprefix("entry: ")


@contextlib.contextmanager
def children(settings: Settings, processes: int, devices: int, rate: float) -> Iterator[None]:
    key, entries = api_key(settings)
    env = {
        **os.environ,
        **settings.to_env(),
        "STREAMGAUGE_LOG_LEVEL": "WARNING",
        "STREAMGAUGE_API_KEYS": entries,
    }
    command = [sys.executable, "-m", "streams.cli"]
    workers = subprocess.Popen([*command, "worker", "--processes", str(processes)], env=env)
    exporter = subprocess.Popen([*command, "lag-exporter"], env=env)
    api = subprocess.Popen([*command, "api"], env=env)
    simulate = ["simulate", "--devices", str(devices), "--rate", str(rate)]
    fleet = subprocess.Popen(
        [*command, *simulate, "--duration", "31536000", "--bad-ratio", "0.001"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    print(
        f"workers: {processes} processes (pid {workers.pid}); "
        f"simulated fleet: {devices} devices at {rate:.0f} msg/s (pid {fleet.pid})\n"
        f"lag exporter: http://{settings.lag_exporter_host}:{settings.lag_exporter_port}/status "
        f"(pid {exporter.pid}); read API (pid {api.pid}) and its dashboard:\n"
        f"  http://{settings.api_host}:{settings.api_port}/"
        + (f"#key={key}\n  this run's API key (read, metrics): {key}" if key else "")
    )
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        started = (fleet, api, exporter, workers)
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in started:
            process.wait(60)


class LiveLine:
    """The main job's status: one line rewritten in place on a terminal; elsewhere (a log, a
    pipe) a timestamped line every ``every`` seconds, so the output stays readable."""

    def __init__(self, out: TextIO, every: float = 10.0) -> None:
        self.out, self.every = out, every
        self.terminal = out.isatty()
        self._shown = -math.inf

    def show(self, line: str, now: float) -> None:
        if self.terminal:
            print("\r" + line, end="", flush=True, file=self.out)
        elif now - self._shown >= self.every:
            print(time.strftime("%H:%M:%S ") + line, flush=True, file=self.out)
            self._shown = now


def watch(settings: Settings) -> None:
    live = LiveLine(sys.stdout)
    client = sync_client(settings)
    consumer = Consumer({**settings.kafka_config(), "group.id": settings.consumer_group})
    last = (time.monotonic(), _stored(client))
    while True:
        time.sleep(2)
        now, stored = time.monotonic(), _stored(client)
        rate = (stored - last[1]) / (now - last[0])
        last = (now, stored)
        try:
            lag, dead = _lag(consumer, settings)
            kafka = f"lag {lag:>8,} msgs   dlq {dead:,}"
        except KafkaException as error:  # a broker down, a leader moving: say so, go on
            kafka = f"lag unknown ({error.args[0].name() if error.args else error})"
        live.show(f"stored {stored:>12,} readings  {rate:>9,.0f}/s   {kafka}", now)


def _stored(client: object) -> int:
    result = client.query("SELECT count() FROM readings")  # type: ignore[attr-defined]
    return int(result.result_rows[0][0])


def _lag(consumer: Consumer, settings: Settings) -> tuple[int, int]:
    metadata = consumer.list_topics(settings.topic, timeout=5).topics[settings.topic]
    partitions = [TopicPartition(settings.topic, p) for p in metadata.partitions]
    committed = {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=5)}
    lag = 0
    for tp in partitions:
        low, high = consumer.get_watermark_offsets(tp, timeout=5)
        position = committed.get(tp.partition, -1)
        lag += high - (position if position >= 0 else low)
    _, dead = consumer.get_watermark_offsets(TopicPartition(settings.dlq_topic, 0), timeout=5)
    return lag, dead


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
