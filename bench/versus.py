"""``streamgauge bench versus``: the workers against ClickHouse's own Kafka engine, same backlog.

One topic (default 6 partitions) gets N Confluent-framed measurements (default 1,000,000) as a
backlog, produced once through the schema registry (the local stack's, 127.0.0.1:8081, unless
``STREAMGAUGE_SCHEMA_REGISTRY_URL`` says otherwise). Then, for each parallelism (default 1 and
2), one after another on the same topic with their own consumer groups and databases:

* **engine**: a Kafka engine table (``AvroConfluent``, ``kafka_num_consumers`` = parallelism,
  one thread per consumer) and a materialized view that ``ARRAY JOIN``\\ s the readings into
  ``readings`` — the setup ClickHouse's documentation gives;
* **workers**: ``streamgauge worker --processes N``.

Each side drains the whole backlog. The steady rate is the slope of stored rows between 10 % and
90 % of the backlog; CPU per reading is the CPU time (user + system, from /proc) the side's
processes used in that same window divided by the readings stored in it — the workers' processes
and the ClickHouse server are reported separately. It prints a table with ratios and writes
bench/results/versus.json.

Several worker processes start one after another: the first takes every partition, and each
that joins takes some away, with the batches it had in flight (read again by the new owner). The
workers' window therefore starts no earlier than the group *settled* — every process assigned,
then no rebalance for a second — and the start-up is reported on its own: when it settled, the
rebalances after it (0: the window is steady state), and messages polled per message stored
over the whole run.

``--latency`` adds the half-load figure: the simulator sends at half the workers' measured rate
for ``--latency-seconds`` while the workers run. Per message, from its send (its Kafka
timestamp): to ``stored_at`` (ClickHouse starting the insert), read back from ``readings``; and
to queryable, bounded from above by the moment its partition's committed offset is seen past
it (read every 20 ms: the acknowledgement, then the worker's commit, then up to 20 ms). The
queryable p99 is also given for each 5 s of sending (a p99 set by the start shows there), with
the worker's messages polled per message sent and its halts (a fetch repeated after
back-pressure shows there). ``--fleet-nice 19`` runs the sender at the lowest CPU priority: on a
machine shared by everything, the nearest thing to devices on other hosts.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from bench._results import write
from bench._teardown import delete_topics, discard
from devstack.clickhouse_local import LocalClickHouse
from devstack.daemon import Daemon, child_pids
from streams import migrations, simulator, topics
from streams.clickhouse import sync_client
from streams.codec import load_versions
from streams.producer import MeasurementProducer
from streams.settings import Settings

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
INSERT_SECONDS = "streamgauge_insert_duration_seconds"
CONSUMED = "streamgauge_messages_consumed_total"
REBALANCES = "streamgauge_rebalances_total"
HALTS = "streamgauge_partition_halts_total"
WINDOW_SECONDS = 5
WARMING_UP = 0.05  # cores of a broker's JIT compiling above which it is still warming up


class Commits:
    """The group's committed offsets, read every ``interval`` s in a thread: when each offset
    was first passed. A message is queryable once its batch's insert is acknowledged, and its
    partition's commit passes it a moment after that (the worker's final commit): the time it
    is seen passed bounds its acknowledgement from above, by a commit and an interval."""

    def __init__(self, settings: Settings, partitions: int, interval: float = 0.02) -> None:
        self._consumer = Consumer({**settings.kafka_config(), "group.id": settings.consumer_group})
        self._wanted = [TopicPartition(settings.topic, p) for p in range(partitions)]
        self._interval = interval
        self.seen: dict[int, list[tuple[int, int]]] = {p: [] for p in range(partitions)}
        self._stop = threading.Event()
        self._offsets: dict[int, list[int]] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                committed = self._consumer.committed(self._wanted, timeout=5)
            except KafkaException:
                continue
            now_ms = int(time.time() * 1000)
            for tp in committed:
                marks = self.seen[tp.partition]
                if tp.offset >= 0 and (not marks or tp.offset > marks[-1][1]):
                    marks.append((now_ms, tp.offset))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()
        self._offsets = {p: [offset for _, offset in marks] for p, marks in self.seen.items()}

    def passed(self, partition: int, offset: int) -> int | None:
        """When the commit was first seen past ``offset`` (ms), None if never (after stop)."""
        index = bisect.bisect_right(self._offsets[partition], offset)
        marks = self.seen[partition]
        return marks[index][0] if index < len(marks) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streamgauge bench versus", description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--parallelism", default="1,2", help="comma-separated consumers/processes (default 1,2)"
    )
    parser.add_argument(
        "--sides",
        default="engine,workers",
        help="comma-separated, in order: engine, workers, python (the workers without the "
        "compiled check, STREAMGAUGE_FAST_CHECK=false), native (the workers inserting rows "
        "they built, STREAMGAUGE_INSERT_FORMAT=native); default engine,workers",
    )
    parser.add_argument("--latency", action="store_true", help="also measure at half load")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument(
        "--latency-rate",
        type=float,
        help="msg/s of the half-load run (default: half the best "
        "single-process workers rate measured)",
    )
    parser.add_argument(
        "--fleet-nice",
        type=int,
        default=0,
        help="nice value of the half-load run's sender (the simulated fleet) and its client's "
        "threads: 19 leaves the machine's cores to the pipeline first, as devices on other "
        "hosts would (default 0)",
    )
    args = parser.parse_args(argv)
    run_id = uuid.uuid4().hex[:8]
    env = Settings.from_env()
    base = dataclasses.replace(
        env,
        topic=f"bench-versus-{run_id}",
        dlq_topic=f"bench-versus-{run_id}.dlq",
        topic_partitions=args.partitions,
        schema_registry_url=env.schema_registry_url
        or f"http://127.0.0.1:{env.devstack_registry_port}",
        log_level="WARNING",
    )
    server = clickhouse_pid(base)
    topics.create(base)
    try:
        print(f"producing {args.messages:,} messages from {args.devices:,} devices ...")
        summary = produce(base, args.messages, args.devices)
        print(f"  {summary.readings:,} readings in {summary.seconds:.1f} s")
        figures: dict[str, Any] = {
            "messages": args.messages,
            "readings": summary.readings,
            "partitions": args.partitions,
            "runs": [],
        }
        for index, parallelism in enumerate(int(p) for p in args.parallelism.split(",")):
            for side in args.sides.split(","):
                run = Run(side, parallelism, summary.readings, summary.readings / summary.sent)
                drain(base, run, f"{side}_{parallelism}_{index}_{run_id}", server)
                run.report()
                figures["runs"].append(run.figures())
        print_table(figures["runs"])
        if args.latency:
            figures["latency"] = half_load(
                base,
                run_id,
                figures["runs"],
                args.latency_seconds,
                args.latency_rate,
                args.fleet_nice,
            )
    finally:
        delete_topics(base)
    write("versus", figures)
    return 0


def drain(base: Settings, run: Run, name: str, server: int | None) -> None:
    """Drain the backlog with ``run``'s side into a database of its own, dropped after."""
    target = isolated(base, name)
    side = {"engine": engine, "workers": workers, "python": python, "native": native}[run.side]
    try:
        side(target, run, server)
    finally:
        migrations.drop(target)


def isolated(base: Settings, name: str) -> Settings:
    target = dataclasses.replace(
        base, clickhouse_database=f"bench_versus_{name}", consumer_group=f"bench-versus-{name}"
    )
    migrations.up(target, say=lambda _line: None)
    return target


def produce(settings: Settings, messages: int, devices: int) -> simulator.Summary:
    versions = [v.version for v in load_versions(settings.schemas_dir)]
    producer = MeasurementProducer(settings)
    return simulator.run(producer, simulator.Fleet(devices, versions), 0, 3600, count=messages)


def clickhouse_pid(settings: Settings) -> int | None:
    """The local ClickHouse's pid (its CPU is measured), or None for a remote server."""
    local = LocalClickHouse(
        settings.devstack_dir, settings.clickhouse_host, settings.clickhouse_port
    )
    pid = local.daemon.pid()
    if pid is None:
        print("  (ClickHouse is not the local stack's: its CPU is not measured)")
    return pid


def kafka_pid(settings: Settings) -> int | None:
    """The local single broker's pid (its CPU is measured at half load), or None."""
    host, _, port = settings.kafka_bootstrap_servers.partition(":")
    return Daemon("kafka", host, int(port or 9092), settings.devstack_dir / "kafka").pid()


# (monotonic, rows, CPU s of the side's own processes, of the ClickHouse server, machine idle s)
Sample = tuple[float, int, float, float, float]


def idle_seconds() -> float:
    """Idle (and I/O wait) CPU time of the whole machine so far, all cores together."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / CLOCK_TICKS


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (those that exited count nothing)."""
    return sum(_ticks(Path(f"/proc/{pid}/stat")) for pid in pids) / CLOCK_TICKS


def jit_seconds(pid: int | None) -> float:
    """User + system CPU of a JVM's JIT compiler threads so far. A broker compiles its hot code
    in its first minutes under load: right after ``dev up`` that took ~19 s of CPU, as much as
    its own work in a half-load run, and is no steady-state cost."""
    if pid is None:
        return 0.0
    ticks = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            compiler = (task / "comm").read_text().startswith(("C1 Compiler", "C2 Compiler"))
        except OSError:
            continue
        if compiler:
            ticks += _ticks(task / "stat")
    return ticks / CLOCK_TICKS


def _ticks(stat: Path) -> int:
    """User + system clock ticks of a process or thread (0 once it is gone)."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


@dataclass
class Run:
    """One side draining the backlog: stored rows and CPU sampled over time."""

    side: str
    parallelism: int
    readings: int
    per_message: float  # readings per message in the backlog
    samples: list[Sample] = field(default_factory=list)
    counters: dict[str, float] = field(default_factory=dict)  # the workers' own, at the end
    settling: Settling | None = None  # the workers' group forming

    def window(self) -> tuple[Sample, Sample]:
        settled = self.settling.at if self.settling and self.settling.at else 0.0
        high = next(s for s in self.samples if s[1] >= 0.9 * self.readings)
        low = next(
            (s for s in self.samples if s[1] >= 0.1 * self.readings and s[0] >= settled), high
        )
        if low is high:  # stored in a few big blocks (the engine): first block to the last
            low, high = next(s for s in self.samples if s[1] > 0), self.samples[-1]
        if low is high:  # a backlog stored in one block: from the start
            low = self.samples[0]
        return low, high

    def figures(self) -> dict[str, Any]:
        low, high = self.window()
        seconds, rows = high[0] - low[0], high[1] - low[1]
        messages_per_second = rows / seconds / self.per_message
        own = (high[2] - low[2]) / rows * 1e6
        server = (high[3] - low[3]) / rows * 1e6
        idle = (high[4] - low[4]) / seconds / CORES  # what the machine left unused
        return {
            "side": self.side,
            "parallelism": self.parallelism,
            "readings_per_second": round(rows / seconds),
            "messages_per_second": round(messages_per_second),
            "cpu_us_per_reading_own": round(own, 2),
            "cpu_us_per_reading_clickhouse": round(server, 2),
            "machine_idle_share": round(idle, 3),
            "seconds_10_to_90": round(seconds, 2),
            "stored": self.samples[-1][1],
            **self.counters,
            **self.settled(low),
            "timeline": self.timeline(),
        }

    def settled(self, low: Sample) -> dict[str, Any]:
        """When the workers' group settled, where the window starts, and the rebalances seen
        after it (0: the window is steady state)."""
        settling = self.settling
        if settling is None or settling.at is None:
            return {}
        total = self.counters.get("rebalances")
        return {
            "settled_s": round(settling.at - self.samples[0][0], 2),
            "window_from_stored": round(low[1] / self.readings, 3),
            "rebalances_after_settling": (
                int(total - settling.rebalances) if total is not None else None
            ),
        }

    def timeline(self) -> list[tuple[float, int]]:
        """(seconds since the first sample, rows stored), about once per second."""
        start, points, last = self.samples[0][0], [], -1.0
        for when, rows, *_ in self.samples:
            if when - start >= last + 1 or rows >= self.readings:
                points.append((round(when - start, 1), rows))
                last = when - start
        return points

    def report(self) -> None:
        f = self.figures()
        print(
            f"{self.side:8} x{self.parallelism}: {f['messages_per_second']:>9,} msg/s "
            f"{f['readings_per_second']:>10,} readings/s  CPU µs/reading: "
            f"own {f['cpu_us_per_reading_own']:.2f}, "
            f"ClickHouse {f['cpu_us_per_reading_clickhouse']:.2f}, machine idle "
            f"{f['machine_idle_share']:.0%} of {CORES} cores"
            + (
                f"  polled/message {f['polled_per_message']:.3f}, halts {f['halts']}"
                if "halts" in f
                else ""
            )
            + (
                f"  settled at {f['settled_s']:.1f} s, window from "
                f"{f['window_from_stored']:.0%} stored, rebalances since "
                f"{f['rebalances_after_settling']}"
                if "settled_s" in f
                else ""
            )
        )


@dataclass
class Settling:
    """The workers' group forming: settled once every process was assigned partitions and no
    process saw a rebalance for ``quiet`` seconds (read from each process's /metrics)."""

    settings: Settings
    processes: int
    quiet: float = 1.0
    at: float | None = None  # monotonic: the end of the quiet second
    rebalances: float = 0.0  # the processes' rebalance events by then
    _events: list[float] = field(default_factory=list)
    _since: float = 0.0

    def sample(self, now: float) -> None:
        if self.at is not None:
            return
        try:
            texts = [worker_metrics(self.settings, i) for i in range(self.processes)]
        except OSError:
            return  # a process not serving yet
        events = [_totals(text, [REBALANCES])[REBALANCES] for text in texts]
        if events != self._events:
            self._events, self._since = events, now
        elif min(events) > 0 and now - self._since >= self.quiet:
            self.at, self.rebalances = now, sum(events)


def _totals(text: str, names: list[str]) -> dict[str, float]:
    """The named samples of one /metrics text, each summed over its labels."""
    totals = dict.fromkeys(names, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals


def follow(
    settings: Settings,
    run: Run,
    own: Callable[[], float],
    server: int | None,
    timeout: float = 900.0,
) -> None:
    """Sample stored rows and CPU until the backlog is stored (or stops moving)."""
    client = sync_client(settings)
    start = last_change = time.monotonic()
    rows = -1
    while True:
        now = time.monotonic()
        stored = int(client.query("SELECT count() FROM readings").result_rows[0][0])
        server_cpu = cpu_seconds([server]) if server else 0.0
        run.samples.append((now, stored, own(), server_cpu, idle_seconds()))
        if run.settling is not None:
            run.settling.sample(now)
        if stored != rows:
            rows, last_change = stored, now
        if stored >= run.readings:
            return
        if now - last_change > 60 or now - start > timeout:
            raise SystemExit(f"{run.side} x{run.parallelism} stopped at {stored:,} rows")
        time.sleep(0.25)


ENGINE_TABLE = """
CREATE TABLE kafka_measurements
(
    device_id String, event_time DateTime64(3, 'UTC'), seq UInt64,
    readings Map(String, Float64), firmware String, site Nullable(String)
)
ENGINE = Kafka
SETTINGS kafka_broker_list = {brokers}, kafka_topic_list = {topic}, kafka_group_name = {group},
    kafka_format = 'AvroConfluent', kafka_num_consumers = {consumers},
    kafka_thread_per_consumer = 1, kafka_max_block_size = 100000,
    kafka_flush_interval_ms = 1000, format_avro_schema_registry_url = {registry},
    input_format_avro_allow_missing_fields = 1
"""
ENGINE_VIEW = """
CREATE MATERIALIZED VIEW kafka_measurements_to_readings TO readings AS
SELECT device_id, metric, event_time, value, seq, firmware, ifNull(site, '') AS site
FROM kafka_measurements
ARRAY JOIN mapKeys(readings) AS metric, mapValues(readings) AS value
"""


def engine(settings: Settings, run: Run, server: int | None) -> None:
    client = sync_client(settings)
    quoted = {
        "brokers": settings.kafka_bootstrap_servers,
        "topic": settings.topic,
        "group": settings.consumer_group,
        "registry": settings.schema_registry_url,
    }
    ddl = ENGINE_TABLE.format(
        consumers=run.parallelism,
        **{k: "'" + v.replace("'", "\\'") + "'" for k, v in quoted.items()},
    )
    try:
        client.command(ddl)
    except Exception as error:
        # chDB answers this CREATE with "Shutdown was called (LOGICAL_ERROR)" although the
        # table exists and consumes; anything else is a real failure.
        if "Shutdown was called" not in str(error) or not _exists(client, "kafka_measurements"):
            raise
    client.command(ENGINE_VIEW)
    try:
        # The server's CPU is all the engine's; "own" stays 0 for it.
        follow(settings, run, lambda: 0.0, server)
    finally:
        client.command("DROP TABLE IF EXISTS kafka_measurements_to_readings")
        client.command("DROP TABLE IF EXISTS kafka_measurements")


def _exists(client: Any, table: str) -> bool:
    return bool(client.command(f"EXISTS TABLE {table}"))


def workers(settings: Settings, run: Run, server: int | None) -> None:
    worker = start_workers(settings, run.parallelism)
    run.settling = Settling(settings, run.parallelism)
    try:
        follow(settings, run, lambda: cpu_seconds([worker.pid, *child_pids(worker.pid)]), server)
        run.counters = worker_counters(settings, run)
    finally:
        stop(worker)


def worker_counters(settings: Settings, run: Run) -> dict[str, float]:
    """Messages the workers polled per message stored (1.0: none taken twice) and their
    back-pressure halts and rebalance events, from each process's /metrics."""
    totals = scrape(settings, run.parallelism, [CONSUMED, REBALANCES, HALTS])
    if not totals:
        return {}
    messages = run.readings / run.per_message
    return {
        "polled_per_message": round(totals[CONSUMED] / messages, 3),
        "halts": int(totals[HALTS]),
        "rebalances": totals[REBALANCES],
    }


def worker_metrics(settings: Settings, index: int) -> str:
    """The /metrics text of worker process ``index``."""
    host, port = settings.worker_metrics_host, settings.worker_metrics_port
    with urllib.request.urlopen(f"http://{host}:{port + index}/metrics", timeout=5) as response:
        return str(response.read().decode())


def scrape(settings: Settings, processes: int, names: list[str]) -> dict[str, float]:
    """The named samples summed over the worker processes' /metrics; {} if one is not up."""
    totals = dict.fromkeys(names, 0.0)
    for index in range(processes):
        try:
            text = worker_metrics(settings, index)
        except OSError:
            return {}
        for name, value in _totals(text, names).items():
            totals[name] += value
    return totals


def scrape_buckets(settings: Settings, name: str) -> dict[float, float]:
    """The first worker process's histogram ``name``: upper bound -> cumulative count."""
    return {
        float(sample.labels["le"]): sample.value
        for family in text_string_to_metric_families(worker_metrics(settings, 0))
        for sample in family.samples
        if sample.name == f"{name}_bucket"
    }


def bucket_quantile(q: float, buckets: dict[float, float]) -> float:
    """Prometheus's histogram_quantile: linear within the bucket the rank falls in."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    rank, below, lower = q * total, 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == float("inf"):
                return lower
            inside = buckets[bound] - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 0)
        below, lower = buckets[bound], bound
    return lower


def python(settings: Settings, run: Run, server: int | None) -> None:
    workers(dataclasses.replace(settings, fast_check=False), run, server)


def native(settings: Settings, run: Run, server: int | None) -> None:
    workers(dataclasses.replace(settings, insert_format="native"), run, server)


def start_workers(settings: Settings, processes: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings.to_env()}
    command = [sys.executable, "-m", "streams.cli", "worker", "--processes", str(processes)]
    return subprocess.Popen(command, env=env)


def stop(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)
    worker.wait(60)


def print_table(runs: list[dict[str, Any]]) -> None:
    by = {(r["side"], r["parallelism"]): r for r in runs}
    print()
    print(
        "| parallelism | engine msg/s | workers msg/s | ratio | CPU µs/reading engine "
        "| workers (own + ClickHouse) |"
    )
    print("|---|---|---|---|---|---|")
    for parallelism in sorted({r["parallelism"] for r in runs}):
        e = by.get(("engine", parallelism))
        w = by.get(("workers", parallelism)) or by.get(("native", parallelism))
        ratio = f"{w['messages_per_second'] / e['messages_per_second']:.2f}x" if e and w else "-"
        print(
            f"| {parallelism} | {e['messages_per_second']:,} | "
            if e
            else f"| {parallelism} | - | ",
            end="",
        )
        print(f"{w['messages_per_second']:,} | " if w else "- | ", end="")
        engine_cpu = f"{e['cpu_us_per_reading_clickhouse']:.2f}" if e else "-"
        worker_cpu = (
            f"{w['cpu_us_per_reading_own']:.2f} + {w['cpu_us_per_reading_clickhouse']:.2f}"
            if w
            else "-"
        )
        print(f"{ratio} | {engine_cpu} | {worker_cpu} |")


def half_load(
    base: Settings,
    run_id: str,
    runs: list[dict[str, Any]],
    seconds: float,
    rate: float | None,
    fleet_nice: int = 0,
) -> dict[str, Any]:
    """Send at half the best single-process worker rate; p50/p99 from send to stored.

    The messages are encoded before the clock starts, so that sending them at the rate costs
    the machine little beside the workers. A message's send time is its Kafka timestamp (the
    producer's create time); it is stored when its rows' ``stored_at`` says (the insert).
    ``fleet_nice`` is set on this thread once the workers and the commit reader have started
    (Linux's nice is per thread, and inherited by threads made after): the sender and its
    client's threads get it, nothing else.
    """
    if rate is None:
        rate = half_rate(runs)
    target = isolated(
        dataclasses.replace(base, topic=f"{base.topic}-latency", dlq_topic=f"{base.topic}-l.dlq"),
        f"latency_{run_id}",
    )
    topics.create(target)
    worker = start_workers(target, 1)
    commits = Commits(target, target.topic_partitions)
    try:
        if fleet_nice:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), fleet_nice)
        producer = MeasurementProducer(target)
        payloads = encoded(producer, int(rate * seconds))
        time.sleep(5)  # the group forms
        who: dict[str, Callable[[], list[int]]] = {
            "fleet": lambda: [os.getpid()],
            "workers": lambda: [worker.pid, *child_pids(worker.pid)],
            "clickhouse": lambda: [pid for pid in [clickhouse_pid(target)] if pid],
            "kafka": lambda: [pid for pid in [kafka_pid(target)] if pid],
        }
        before = {name: cpu_seconds(pids()) for name, pids in who.items()}
        jit_before = jit_seconds(kafka_pid(target))
        start = time.monotonic()
        sent = 0
        while sent < len(payloads):
            due = min(len(payloads), int((time.monotonic() - start) * rate) + 1)
            for key, payload in payloads[sent:due]:
                producer.send_raw(key, payload)
            sent = due
            time.sleep(0.002)
        producer.flush()
        took = time.monotonic() - start
        cores = {
            name: round((cpu_seconds(pids()) - before[name]) / took, 2)
            for name, pids in who.items()
        }
        cores["kafka_jit"] = round((jit_seconds(kafka_pid(target)) - jit_before) / took, 2)
        arrivals = send_to_stored(target, len(payloads))
        insert = scrape(
            target,
            1,
            [f"{INSERT_SECONDS}_sum", f"{INSERT_SECONDS}_count", CONSUMED, HALTS],
        )
        acknowledged = scrape_buckets(target, "streamgauge_send_to_stored_seconds")
        time.sleep(1)  # the last final commits
    finally:
        commits.stop()
        stop(worker)
        discard(target)
    latencies = sorted(stored - sent for sent, stored in arrivals.values())
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    passed = {where: commits.passed(*where) for where in arrivals}
    sent_and_queryable = [
        (arrivals[where][0], when - arrivals[where][0])
        for where, when in passed.items()
        if when is not None
    ]
    queryable = sorted(latency for _, latency in sent_and_queryable)
    windows = by_window(sent_and_queryable)
    committed = {
        "messages": len(queryable),
        "p50_ms": percentile(queryable, 0.5),
        "p99_ms": percentile(queryable, 0.99),
        "max_ms": queryable[-1],
        "within_1s": round(bisect.bisect_right(queryable, 1000) / len(queryable), 4),
        "p99_ms_by_window": windows,
    }
    parts = inserts(arrivals)
    if insert.get(f"{INSERT_SECONDS}_count"):
        mean = insert[f"{INSERT_SECONDS}_sum"] / insert[f"{INSERT_SECONDS}_count"]
        parts["insert_mean_ms"] = round(mean * 1000)
    parts["polled_per_message"] = round(insert.get(CONSUMED, 0) / len(payloads), 3)
    parts["halts"] = int(insert.get(HALTS, 0))
    ack = {
        "batches": acknowledged[float("inf")],
        "p50_ms": round(bucket_quantile(0.5, acknowledged) * 1000),
        "p99_ms": round(bucket_quantile(0.99, acknowledged) * 1000),
        "within_1s": round(acknowledged[1.0] / acknowledged[float("inf")], 4),
    }
    figure = {
        "fleet_nice": fleet_nice,
        "rate_messages_per_second": round(rate),
        "sent_messages_per_second": round(len(payloads) / took),
        "seconds": seconds,
        "messages": len(payloads),
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": latencies[-1],
        "inserts": parts,
        "cores_while_sending": cores,
        "acknowledged": ack,
        "committed": committed,
    }
    print(
        f"half load ({rate:,.0f} msg/s for {seconds:.0f} s, sent at {len(payloads) / took:,.0f}"
        f"{f', the fleet at nice {fleet_nice}' if fleet_nice else ''}): "
        f"send → stored p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {latencies[-1]:.0f} ms; "
        f"send → acknowledged, each batch's first message (the workers' histogram): p50 "
        f"~{ack['p50_ms']} ms, p99 ~{ack['p99_ms']} ms, {ack['within_1s']:.1%} within 1 s"
    )
    print(
        f"  send → queryable, every message (its partition's commit seen past it, read every "
        f"20 ms: acknowledgement + a commit + up to 20 ms): p50 {committed['p50_ms']} ms, p99 "
        f"{committed['p99_ms']} ms, max {committed['max_ms']} ms, {committed['within_1s']:.1%} "
        f"within 1 s ({committed['messages']:,} messages); p99 of each {WINDOW_SECONDS} s "
        f"sent: {' '.join(f'{p99}' for p99 in windows)} ms"
    )
    print(
        f"  {parts['count']:,} inserts of {parts['batches']:,} partitions' batches, "
        f"{parts['messages_p50']:,} messages each (p50); a batch "
        f"gathers for p50 {parts['gather_p50_ms']} / p99 {parts['gather_p99_ms']} ms (its "
        f"first to its last message's send), then its last message is stored after p50 "
        f"{parts['after_p50_ms']} / p99 {parts['after_p99_ms']} ms (fetch, queue, insert); "
        f"an insert takes {parts.get('insert_mean_ms', '?')} ms on average, request to "
        "acknowledgement (stored_at is set as ClickHouse starts it); polled/message "
        f"{parts['polled_per_message']:.3f}, halts {parts['halts']}"
    )
    print(
        f"  cores busy while sending, of {os.cpu_count()}: "
        + ", ".join(f"{name} {used:.2f}" for name, used in cores.items() if name != "kafka_jit")
        + f" ({cores['kafka_jit']:.2f} of it compiling its code)"
    )
    if cores["kafka_jit"] > WARMING_UP:
        print(
            "  the broker was still warming up (compiling its code, as in its first minutes under "
            "load): run again for its steady-state figure"
        )
    return figure


def encoded(producer: MeasurementProducer, count: int) -> list[tuple[bytes, bytes]]:
    """``count`` measurements of 1,000 simulated devices, keyed and encoded for ``producer``."""
    versions = sorted(producer.encoders)
    fleet = simulator.Fleet(1000, versions)
    now_ms = int(time.time() * 1000)
    payloads = []
    for i in range(count):
        device = fleet.devices[i % len(fleet.devices)]
        record = fleet.reading(device, now_ms)
        payloads.append(
            (device.device_id.encode(), producer.encoders[device.version].encode(record))
        )
    return payloads


def half_rate(runs: list[dict[str, Any]]) -> float:
    """Half the best rate of the workers in one process (the half-load run has one): a run
    with more processes would set a rate one process was never shown to carry."""
    best = [
        r["messages_per_second"] for r in runs if r["side"] == "workers" and r["parallelism"] == 1
    ]
    return max(best, default=40_000) / 2


def by_window(latencies: list[tuple[int, int]]) -> list[int]:
    """p99 of (send ms, latency ms) pairs per ``WINDOW_SECONDS`` of send time, in order: a
    p99 set by the first seconds (a group forming, devices first looked up) shows here."""
    first = min(sent for sent, _ in latencies)
    windows: dict[int, list[int]] = {}
    for sent, latency in latencies:
        windows.setdefault((sent - first) // (WINDOW_SECONDS * 1000), []).append(latency)
    return [percentile(sorted(windows[index]), 0.99) for index in sorted(windows)]


def percentile(ordered: list[int], q: float) -> int:
    return ordered[int(q * (len(ordered) - 1))]


def inserts(arrivals: dict[tuple[int, int], tuple[int, int]]) -> dict[str, float]:
    """Where the half-load latency goes, per batch (the messages of one partition stored at
    the same instant; an insert carries one or several partitions' batches): how long the
    batch gathered, and how long its newest message waited."""
    batches: dict[tuple[int, int], list[int]] = {}
    for (partition, _offset), (sent, stored) in arrivals.items():
        batches.setdefault((partition, stored), []).append(sent)
    gather = sorted(max(sents) - min(sents) for sents in batches.values())
    after = sorted(stored - max(sents) for (_, stored), sents in batches.items())
    sizes = sorted(len(sents) for sents in batches.values())
    return {
        "count": len({stored for _, stored in batches}),
        "batches": len(batches),
        "messages_p50": percentile(sizes, 0.5),
        "gather_p50_ms": percentile(gather, 0.5),
        "gather_p99_ms": percentile(gather, 0.99),
        "after_p50_ms": percentile(after, 0.5),
        "after_p99_ms": percentile(after, 0.99),
    }


def send_to_stored(
    settings: Settings, messages: int, timeout: float = 120
) -> dict[tuple[int, int], tuple[int, int]]:
    """(partition, offset) -> (Kafka timestamp, its rows' insert), in ms, once all stored."""
    client = sync_client(settings)
    query = (
        "SELECT source_partition, source_offset, toUnixTimestamp64Milli(min(stored_at)) "
        "FROM readings GROUP BY source_partition, source_offset"
    )
    deadline = time.monotonic() + timeout
    while True:
        stored = {(int(p), int(o)): int(t) for p, o, t in client.query(query).result_rows}
        if len(stored) >= messages or time.monotonic() > deadline:
            break
        time.sleep(1)
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"{settings.consumer_group}-timestamps",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([settings.topic])
    arrivals: dict[tuple[int, int], tuple[int, int]] = {}
    seen = 0
    try:
        while seen < messages and time.monotonic() < deadline + 60:
            for message in consumer.consume(5000, 1.0):
                seen += 1
                where = (cast(int, message.partition()), cast(int, message.offset()))
                when = stored.get(where)
                if when is not None:
                    arrivals[where] = (message.timestamp()[1], when)
    finally:
        consumer.close()
    if len(arrivals) < messages:
        raise SystemExit(f"half load: {len(arrivals)} of {messages} messages stored in time")
    return arrivals


if __name__ == "__main__":
    sys.exit(main())
