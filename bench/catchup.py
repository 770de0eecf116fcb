"""``streamgauge bench catchup``: does the backlog clear itself after the database recovers?

The outage this project answers: a slower database built a backlog, and after it recovered the
backlog did not clear. For 1 and then 2 worker processes, this benchmark

  1. measures the pipeline's maximum throughput: a pre-produced backlog drained while the
     simulator keeps producing (the same load as in the later phases);
  2. lets it catch up, then makes the database 10x slower for a while, through a
     fault-injection proxy, while the simulator produces steadily. ``--slow-mode latency``
     (default) delays each request to ClickHouse by 9x the mean insert duration of phase 1
     (I/O-bound: more processes, more inserts in flight, more drain); ``bandwidth`` caps the
     insert bytes at a tenth of phase 1's rate (a database with a tenth of its throughput);
  3. restores the database and records lag until it is zero.

It prints the arrival rate, the drain rate during the slowdown, the drain rate after recovery
relative to the maximum, and the time to catch up, and writes bench/results/catchup.json and
bench/results/catchup.png (lag over time).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from bench._results import RESULTS, write
from bench._teardown import discard as discard_pipeline
from devstack.daemon import child_pids, free_port
from devstack.fault_proxy import FaultProxyProcess
from streams import migrations, simulator, topics
from streams.codec import load_versions
from streams.producer import MeasurementProducer
from streams.settings import Settings


@dataclass
class Sample:
    t: float
    produced: int
    committed: int

    @property
    def lag(self) -> int:
        return max(0, self.produced - self.committed)


@dataclass
class Outcome:
    """What one scenario run measured."""

    processes: int
    arrival_rate: float = 0.0
    max_throughput: float = 0.0
    baseline_insert_seconds: float = 0.0
    slow_latency_ms: float = 0.0
    slow_bandwidth_bps: float = 0.0
    drain_during_slowdown: float = 0.0
    drain_after_recovery: float = 0.0
    recovery_ratio: float | None = None  # None: the recovery was too short to measure
    catch_up_seconds: float = 0.0
    peak_lag: int = 0
    peak_worker_rss_mb: float = 0.0
    messages: int = 0
    readings_sent: int = 0
    samples: list[Sample] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    database: str = ""
    name: str = ""  # its pipeline's (Settings.isolated): topics, group and database

    @property
    def baseline_insert_ms(self) -> float:
        return self.baseline_insert_seconds * 1000

    def summary(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["samples"] = [[round(s.t, 2), s.lag] for s in self.samples]
        return data


class Fleet(threading.Thread):
    """The simulator, producing at a steady rate in the background."""

    def __init__(self, settings: Settings, devices: int, rate: float) -> None:
        super().__init__(daemon=True)
        versions = [v.version for v in load_versions(settings.schemas_dir)]
        self.fleet = simulator.Fleet(devices, versions, seed=11)
        self.producer = MeasurementProducer(settings)
        self.rate = rate
        self.stopping = threading.Event()
        self.sent = 0
        self.readings = 0

    def burst(self, count: int) -> None:
        """Produce ``count`` messages as fast as possible (a backlog), before ``start``."""
        for _ in range(count):
            self._one()
        self.producer.flush()

    def run(self) -> None:
        start, base = time.monotonic(), self.sent
        while not self.stopping.is_set():
            due = base + int((time.monotonic() - start) * self.rate)
            while self.sent < due:
                self._one()
            time.sleep(0.002)
        self.producer.flush()

    def _one(self) -> None:
        device = self.fleet.devices[self.sent % len(self.fleet.devices)]
        record = self.fleet.reading(device, int(time.time() * 1000))
        self.producer.send(record, device.version)
        self.sent += 1
        self.readings += len(record["readings"])


class Probe:
    """Produced and committed totals of the topic, sampled in the background."""

    def __init__(self, settings: Settings, interval: float = 0.1) -> None:
        self.settings = settings
        self.interval = interval
        self.samples: list[Sample] = []
        self._consumer = Consumer({**settings.kafka_config(), "group.id": settings.consumer_group})
        self._partitions = [
            TopicPartition(settings.topic, p) for p in range(settings.topic_partitions)
        ]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def sample(self) -> Sample:
        produced = sum(
            self._consumer.get_watermark_offsets(tp, timeout=5)[1] for tp in self._partitions
        )
        committed = sum(
            max(0, tp.offset) for tp in self._consumer.committed(self._partitions, timeout=5)
        )
        return Sample(self.now(), produced, committed)

    def wait_for_lag(self, at_most: int, timeout: float) -> Sample:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.samples and self.samples[-1].lag <= at_most:
                return self.samples[-1]
            time.sleep(0.05)
        raise TimeoutError(f"lag stayed above {at_most} for {timeout:.0f} s")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.sample())
            self._stop.wait(self.interval)


MIN_RECOVERY_WINDOW_SECONDS = 3.0


def drain_rate(samples: list[Sample], start: float, end: float) -> float:
    """Committed messages per second between two moments: the least-squares slope.

    Commits arrive a batch at a time (steps of up to a batch per partition), so the rate
    between two single samples depends on where the steps fall; the slope over every sample
    in the window does not. Both the maximum and the recovery are measured this way over the
    same part of a drain (from 90% of the backlog left down to 10%).
    """
    window = [s for s in samples if start <= s.t <= end]
    if len(window) < 2:
        return 0.0
    mean_t = sum(s.t for s in window) / len(window)
    mean_c = sum(s.committed for s in window) / len(window)
    spread = sum((s.t - mean_t) ** 2 for s in window)
    covariance = sum((s.t - mean_t) * (s.committed - mean_c) for s in window)
    return covariance / spread if spread else 0.0


def scrape(port: int) -> str:
    """A worker process's /metrics text ("" while it is not serving yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def metric_sum(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def settled_rebalances(ports: list[int], quiet: float = 8.0, timeout: float = 90) -> list[float]:
    """Rebalance counts once every process owns partitions and none moved for ``quiet`` s."""
    last: list[float] = []
    since = time.monotonic()
    deadline = since + timeout
    while time.monotonic() < deadline:
        texts = [scrape(p) for p in ports]
        counts = [metric_sum(t, "streamgauge_rebalances_total") for t in texts]
        owning = all(metric_sum(t, "streamgauge_rebalances_total", kind="assigned") for t in texts)
        if counts != last or not owning:
            last, since = counts, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return counts
        time.sleep(0.2)
    raise TimeoutError(f"the group did not settle in {timeout:.0f} s: {last}")


def insert_seconds(metrics_ports: list[int]) -> tuple[float, float]:
    """Sum and count of insert durations over the workers' /metrics."""
    texts = [scrape(port) for port in metrics_ports]
    return (
        sum(metric_sum(t, "streamgauge_insert_duration_seconds_sum") for t in texts),
        sum(metric_sum(t, "streamgauge_insert_duration_seconds_count") for t in texts),
    )


def worker_rss_mb(supervisor_pid: int) -> float:
    """Largest resident memory among the supervisor's worker processes, in MiB."""
    largest = 0.0
    for pid in child_pids(supervisor_pid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if "VmRSS" in fields:
            largest = max(largest, int(fields["VmRSS"].split()[0]) / 1024)
    return largest


def prepare(base: Settings, processes: int, tag: str) -> Settings:
    """Fresh topics, group and database for one run (``base.isolated(f"catchup-{tag}")``);
    workers reach ClickHouse via a proxy."""
    settings = base.isolated(
        f"catchup-{tag}", worker_processes=processes, worker_metrics_port=free_port()
    )
    topics.create(settings)
    migrations.up(settings, say=lambda _line: None)
    return settings


def discard(base: Settings, outcome: Outcome) -> None:
    """Drop a run's database and delete its topics."""
    discard_pipeline(base.isolated(outcome.name))


def run_scenario(
    base: Settings,
    processes: int,
    rate: float,
    backlog: int,
    slow_seconds: float,
    slow_mode: str = "latency",
    latency_ms: float | None = None,
    devices: int = 1000,
    log_dir: Path = RESULTS,
    say: Any = print,
) -> Outcome:
    """One full run for ``processes`` worker processes; see the module docstring."""
    tag = f"{processes}p{uuid.uuid4().hex[:6]}"
    settings = prepare(base, processes, tag)
    proxy = FaultProxyProcess(
        free_port(), base.clickhouse_port, free_port(), str(log_dir / f"proxy-{tag}.log")
    )
    worker_settings = dataclasses.replace(settings, clickhouse_port=proxy.port)
    outcome = Outcome(
        processes,
        database=settings.clickhouse_database,
        name=settings.topic,
    )
    fleet = Fleet(settings, devices, rate)
    say(f"[{processes}p] producing a backlog of {backlog:,} messages ...")
    fleet.burst(backlog)
    probe = Probe(settings)
    log = (log_dir / f"workers-{tag}.log").open("ab")
    workers = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker", "--processes", str(processes)],
        env={**os.environ, **worker_settings.to_env(), "STREAMGAUGE_LOG_LEVEL": "WARNING"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    ports = [settings.worker_metrics_port + i for i in range(processes)]
    rss_stop = threading.Event()

    def watch_memory() -> None:
        while not rss_stop.wait(0.5):
            outcome.peak_worker_rss_mb = max(outcome.peak_worker_rss_mb, worker_rss_mb(workers.pid))

    memory = threading.Thread(target=watch_memory, daemon=True)
    try:
        probe.start()
        memory.start()
        fleet.start()
        marks = outcome.marks
        marks["workers_started"] = probe.now()
        # Phase 1: the maximum, draining the backlog under the steady load.
        # The steady middle of the drain: past start-up and the group's first rebalances
        # (a process joining moves partitions), before the tail.
        settled_rebalances(ports, quiet=2.0)
        marks["group_settled"] = probe.now()
        marks["drain_started"] = max(
            marks["group_settled"], probe.wait_for_lag(int(backlog * 0.9), 180).t
        )
        bytes_started = proxy.stats()["bytes_up"]
        marks["drain_tail"] = probe.wait_for_lag(int(backlog * 0.1), 600).t
        upload_rate = (proxy.stats()["bytes_up"] - bytes_started) / max(
            1e-3, marks["drain_tail"] - marks["drain_started"]
        )
        caught_up = probe.wait_for_lag(int(rate * 0.5) + 1, 600)
        marks["caught_up"] = caught_up.t
        time.sleep(5)
        # What "caught up" looks like here: the lag of a steady pipeline (about one batch
        # cycle of arrivals); twice its median counts as caught up again after the slowdown.
        steady = sorted(s.lag for s in probe.samples if s.t >= caught_up.t)
        caught_up_lag = max(2 * steady[len(steady) // 2], int(rate * 0.5))
        outcome.max_throughput = drain_rate(
            probe.samples, marks["drain_started"], marks["drain_tail"]
        )
        total, count = insert_seconds(ports)
        outcome.baseline_insert_seconds = total / count if count else 0.0
        say(
            f"[{processes}p] maximum throughput {outcome.max_throughput:,.0f} msg/s; "
            f"mean insert {outcome.baseline_insert_seconds * 1000:.0f} ms"
        )
        # Phase 2: steady, then a database 10x slower.
        marks["slow_started"] = probe.now()
        if slow_mode == "latency":
            outcome.slow_latency_ms = latency_ms or max(
                200.0, 9 * outcome.baseline_insert_seconds * 1000
            )
            proxy.set(latency_ms=outcome.slow_latency_ms)
            how = f"+{outcome.slow_latency_ms:.0f} ms per request"
        else:
            outcome.slow_bandwidth_bps = upload_rate / 10
            proxy.set(bandwidth_bps=outcome.slow_bandwidth_bps)
            how = f"inserts capped at {outcome.slow_bandwidth_bps / 1e6:.2f} MB/s (a tenth)"
        say(f"[{processes}p] database slowed: {how} for {slow_seconds:.0f} s")
        time.sleep(slow_seconds)
        proxy.set()
        marks["restored"] = probe.now()
        # Phase 3: recovery.
        # The same part of the drain as for the maximum: from 90% of the backlog left at the
        # restore down to 10%.
        left = probe.samples[-1].lag
        marks["recovery_started"] = probe.wait_for_lag(int(left * 0.9), 600).t
        marks["recovery_tail"] = probe.wait_for_lag(int(left * 0.1), 600).t
        recovered = probe.wait_for_lag(caught_up_lag, 600)
        marks["caught_up_again"] = recovered.t
        fleet.stopping.set()
        fleet.join(30)
        probe.wait_for_lag(0, 120)
    finally:
        rss_stop.set()
        workers.send_signal(signal.SIGTERM)
        workers.wait(60)
        probe.stop()
        proxy.stop()
        log.close()
    samples = probe.samples
    outcome.samples = samples
    outcome.messages = fleet.sent
    outcome.readings_sent = fleet.readings
    outcome.arrival_rate = rate
    outcome.drain_during_slowdown = drain_rate(samples, marks["slow_started"], marks["restored"])
    outcome.drain_after_recovery = drain_rate(
        samples, marks["recovery_started"], marks["recovery_tail"]
    )
    # A backlog drained within a few batch cycles (as under added latency, where batches grow
    # and the lag stays small) has no steady part to compare with the maximum.
    if marks["recovery_tail"] - marks["recovery_started"] >= MIN_RECOVERY_WINDOW_SECONDS:
        outcome.recovery_ratio = outcome.drain_after_recovery / outcome.max_throughput
    outcome.catch_up_seconds = marks["caught_up_again"] - marks["restored"]
    outcome.peak_lag = max(s.lag for s in samples if s.t >= marks["slow_started"])
    return outcome


def cell(form: str, value: float | None) -> str:
    return "too short" if value is None else form.format(value)


def chart(outcomes: list[Outcome], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 4.5))
    for outcome in outcomes:
        start = outcome.marks["slow_started"] - 10
        points = [(s.t - start, s.lag) for s in outcome.samples if s.t >= start]
        axes.plot(
            [p[0] for p in points], [p[1] for p in points], label=f"{outcome.processes} process(es)"
        )
    slow = outcomes[0].marks["restored"] - outcomes[0].marks["slow_started"]
    axes.axvspan(10, 10 + slow, color="tab:red", alpha=0.12, label="database 10x slower")
    axes.set_xlabel("seconds")
    axes.set_ylabel("consumer lag (messages)")
    axes.set_title("streamgauge: backlog under a slow database, and after it recovers")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="streamgauge bench catchup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rate", type=float, default=10_000, help="arrival rate, msg/s")
    parser.add_argument("--backlog", type=int, default=300_000, help="messages for phase 1")
    parser.add_argument("--slow-seconds", type=float, default=30.0)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--slow-mode", choices=["latency", "bandwidth"], default="latency")
    parser.add_argument(
        "--latency-ms",
        type=float,
        help="added latency while slow; default: 9x the first run's mean insert, then the "
        "same for every process count, so they are compared under one slowdown",
    )
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    base = dataclasses.replace(Settings.from_env(), log_level="WARNING")
    outcomes: list[Outcome] = []
    latency = args.latency_ms
    for processes in args.processes:
        outcomes.append(
            run_scenario(
                base, processes, args.rate, args.backlog, args.slow_seconds, args.slow_mode, latency
            )
        )
        latency = latency or outcomes[0].slow_latency_ms
        discard(base, outcomes[-1])  # its data would keep merging and slow the next run down
    print()
    print(f"{'':34}" + "".join(f"{o.processes} process(es)".rjust(16) for o in outcomes))
    rows = [
        ("arrival rate (msg/s)", "arrival_rate", "{:,.0f}"),
        ("maximum throughput (msg/s)", "max_throughput", "{:,.0f}"),
        ("mean insert before (ms)", "baseline_insert_ms", "{:,.0f}"),
        ("added latency while slow (ms)", "slow_latency_ms", "{:,.0f}"),
        ("insert bytes/s cap while slow", "slow_bandwidth_bps", "{:,.0f}"),
        ("drain while slow (msg/s)", "drain_during_slowdown", "{:,.0f}"),
        ("drain after recovery (msg/s)", "drain_after_recovery", "{:,.0f}"),
        ("after recovery / maximum", "recovery_ratio", "{:.2f}"),
        ("time to catch up (s)", "catch_up_seconds", "{:.1f}"),
        ("peak lag (messages)", "peak_lag", "{:,}"),
        ("peak worker RSS (MiB)", "peak_worker_rss_mb", "{:.0f}"),
    ]
    for label, key, form in rows:
        print(f"{label:34}" + "".join(cell(form, getattr(o, key)).rjust(16) for o in outcomes))
    if len(outcomes) == 2:
        ratio = outcomes[1].drain_during_slowdown / max(1.0, outcomes[0].drain_during_slowdown)
        print(f"drain while slow, 2 processes / 1: {ratio:.2f}")
    write("catchup", [o.summary() for o in outcomes])
    chart(outcomes, RESULTS / "catchup.png")
    print(f"wrote {RESULTS / 'catchup.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
