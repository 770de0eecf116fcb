"""bench torture's faults: a schedule drawn per trial, applied while the workers run.

Worker processes are killed (SIGKILL) or stopped (SIGTERM) and the supervisor restarts them;
a second supervisor joins the group for a while; ClickHouse, reached through the fault proxy
(devstack/fault_proxy.py), goes down, gets slow, or has connections cut before or after it
stored an insert; the dead-letter topic becomes unavailable (writes refused, then deleted,
then created again by ``streamgauge topics create``).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from bench._torture_observe import DeadLetterLog
from bench.catchup import metric_sum, scrape
from devstack.daemon import child_pids
from devstack.fault_proxy import FaultProxyProcess
from streams.settings import Settings

FaultKind = Literal[
    "kill_9",
    "sigterm",
    "extra_supervisor",
    "clickhouse_down",
    "clickhouse_slow",
    "reset_before_stored",
    "reset_after_stored",
    "dlq_unavailable",
]
KINDS: tuple[FaultKind, ...] = FaultKind.__args__  # type: ignore[attr-defined]
WEIGHTS = (3, 2, 1, 2, 2, 2, 2, 1)  # kills and database trouble are the common case
# The groups profile: faults that strike a group between its intents and its insert's end
# (kills, handovers, connections cut before or after the insert was stored); no long outage,
# which would leave every partition backlogged and its batches inserted alone.
GROUP_WEIGHTS = (4, 2, 2, 0, 1, 2, 3, 0)


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    at: float  # seconds after production started
    seconds: float = 0.0  # how long it lasts (0: an instant)
    amount: float = 0.0  # latency ms, connections to cut, processes to add, 1: a kill in flight
    pick: float = 0.0  # which worker process, as a fraction of those running

    def describe(self) -> str:
        if self.kind in ("kill_9", "sigterm"):
            amount = " in flight" if self.amount else ""
        else:
            amount = f" x{self.amount:g}" if self.amount else ""
        lasting = f" for {self.seconds:.1f}s" if self.seconds else ""
        return f"{self.kind}{amount} at {self.at:.1f}s{lasting}"


def draw_schedule(
    rng: random.Random, seconds: float, weights: tuple[int, ...] = WEIGHTS, in_flight: float = 0.0
) -> list[Fault]:
    """3 to 7 faults within the production's ``seconds``, of kinds drawn by ``weights``; a
    share ``in_flight`` of the kills waits for an insert in flight in the process it strikes."""
    faults = []
    for _ in range(rng.randint(3, 7)):
        kind = rng.choices(KINDS, weights)[0]
        at = round(rng.uniform(0, seconds * 0.9), 1)
        fault = _draw(rng, kind, at)
        if in_flight and kind == "kill_9" and rng.random() < in_flight:
            fault = replace(fault, amount=1)
        faults.append(fault)
    return sorted(faults, key=lambda f: f.at)


def _draw(rng: random.Random, kind: FaultKind, at: float) -> Fault:
    if kind in ("kill_9", "sigterm"):
        return Fault(kind, at, pick=rng.random())
    if kind == "extra_supervisor":
        return Fault(kind, at, rng.uniform(4, 15), amount=rng.randint(1, 2))
    if kind == "clickhouse_slow":
        return Fault(kind, at, rng.uniform(3, 10), amount=rng.choice([300, 1000, 3000]))
    if kind in ("reset_before_stored", "reset_after_stored"):
        return Fault(kind, at, 5.0, amount=rng.randint(1, 4))
    return Fault(kind, at, rng.uniform(2, 8))  # clickhouse_down, dlq_unavailable


class Supervisor:
    """``streamgauge worker --processes N`` in a subprocess, as deployed."""

    def __init__(self, processes: int, env: dict[str, str], log: Path) -> None:
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker", "--processes", str(processes)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def children(self) -> list[int]:
        """Pids of the worker processes it runs now."""
        return child_pids(self.process.pid)

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM and wait; a supervisor that hangs is killed with its children."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            for pid in self.children():
                _signal(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait(10)


def worker_env(settings: Settings, code: Path | None) -> dict[str, str]:
    """The environment of a process running the code under test with ``settings``."""
    env = {**os.environ, **settings.to_env(), "STREAMGAUGE_LOG_LEVEL": "INFO"}  # replays
    if code is not None:
        env["PYTHONPATH"] = str(code)
    return env


def streamgauge(env: dict[str, str], *args: str) -> None:
    """Run a ``streamgauge`` command of the code under test; raise with its output if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"streamgauge {' '.join(args)} failed: {done.stdout}{done.stderr}")


def free_port_range(count: int) -> int:
    """The first of ``count`` consecutive free ports (worker i listens on first + i)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        if first + count < 65536 and all(_free(first + i) for i in range(count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


IN_FLIGHT_WAIT = 5.0


def _until_in_flight(pid: int, timeout: float) -> float | None:
    """Seconds until worker ``pid`` has an insert in flight (its metrics say so), or None."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    env = dict(item.decode().partition("=")[::2] for item in environ if b"=" in item)
    port = int(env["STREAMGAUGE_WORKER_METRICS_PORT"]) + int(env["STREAMGAUGE_WORKER_INDEX"])
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if metric_sum(scrape(port), "streamgauge_batches_in_flight") > 0:
            return time.monotonic() - started
        time.sleep(0.01)  # each scrape is a new connection: a new ephemeral port
    return None


def _signal(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Applied:
    """A fault as it happened: when, and whether it could be applied at all."""

    fault: Fault
    started: float = -1.0
    note: str = ""

    @property
    def applied(self) -> bool:
        return self.started >= 0


@dataclass
class Harness:
    """What faults act on: the trial's supervisors, the proxy, the dead-letter topic."""

    settings: Settings  # the workers' settings (ClickHouse through the proxy)
    provision_env: dict[str, str]  # for `streamgauge topics create` of the code under test
    processes: int
    log_dir: Path
    proxy: FaultProxyProcess
    dead_letters: DeadLetterLog
    supervisors: list[Supervisor] = field(default_factory=list)
    code: Path | None = None

    def start_supervisor(self, processes: int, metrics_port: int) -> Supervisor:
        settings = replace(self.settings, worker_metrics_port=metrics_port)
        log = self.log_dir / f"workers-{len(self.supervisors)}.log"
        supervisor = Supervisor(processes, worker_env(settings, self.code), log)
        self.supervisors.append(supervisor)
        return supervisor

    def stop_supervisors(self) -> None:
        for supervisor in self.supervisors:
            supervisor.stop()

    def workers(self) -> list[int]:
        return [pid for s in self.supervisors if s.process.poll() is None for pid in s.children()]


class FaultRunner(threading.Thread):
    """Applies a schedule, each fault's start and end at its time; ``heal()`` ends them all."""

    def __init__(self, harness: Harness, schedule: list[Fault]) -> None:
        super().__init__(daemon=True)
        self.harness = harness
        self.applied = [Applied(f) for f in schedule]
        self.error: BaseException | None = None
        self._events = sorted(
            [(a.fault.at, 0, a, True) for a in self.applied]
            + [
                (a.fault.at + a.fault.seconds, 1, a, False) for a in self.applied if a.fault.seconds
            ],
            key=lambda e: (e[0], e[1]),
        )
        self._proxy_owner: Applied | None = None
        self._dlq_down: Applied | None = None
        self._extras: dict[int, Supervisor] = {}
        self._t0 = time.monotonic()
        self._halt = threading.Event()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def run(self) -> None:
        self._t0 = time.monotonic()
        try:
            for at, _, applied, starting in self._events:
                if self._halt.wait(max(0.0, at - self.now())):
                    return
                (self._start if starting else self._end)(applied)
        except BaseException as error:  # surfaced by the trial as an error
            self.error = error

    def heal(self) -> None:
        """End every fault still active (after the schedule ran, or on an error)."""
        self._halt.set()
        if self.is_alive():
            self.join(60)
        self.harness.proxy.set()
        for supervisor in self._extras.values():
            supervisor.stop()
        self._extras.clear()
        if self._dlq_down is not None:
            self._end(self._dlq_down)

    def _start(self, applied: Applied) -> None:
        fault = applied.fault
        action: dict[FaultKind, Callable[[Fault], str]] = {
            "kill_9": lambda f: self._signal_worker(f, signal.SIGKILL),
            "sigterm": lambda f: self._signal_worker(f, signal.SIGTERM),
            "extra_supervisor": lambda f: self._add_supervisor(applied),
            "clickhouse_down": lambda f: self._proxy(applied, down=True),
            "clickhouse_slow": lambda f: self._proxy(applied, latency_ms=f.amount),
            "reset_before_stored": lambda f: self._proxy(applied, reset_requests=int(f.amount)),
            "reset_after_stored": lambda f: self._proxy(
                applied, reset_after_response=int(f.amount)
            ),
            "dlq_unavailable": lambda f: self._dlq_unavailable(applied),
        }
        started = self.now()
        applied.note = action[fault.kind](fault)
        if not applied.note.startswith("skipped"):
            applied.started = started

    def _end(self, applied: Applied) -> None:
        kind = applied.fault.kind
        if kind == "extra_supervisor" and id(applied) in self._extras:
            self._extras.pop(id(applied)).stop()
        elif kind == "dlq_unavailable" and self._dlq_down is applied:
            self._dlq_down = None
            self._dlq_recreate()
        elif self._proxy_owner is applied:
            self._proxy_owner = None
            self.harness.proxy.set()

    def _signal_worker(self, fault: Fault, sig: signal.Signals) -> str:
        pids = self.harness.workers()
        if not pids:
            return "skipped: no worker process running"
        victim = pids[min(len(pids) - 1, int(fault.pick * len(pids)))]
        waited = ""
        if fault.amount:  # an instant within an insert: its intents, the insert or its commit
            seconds = _until_in_flight(victim, IN_FLIGHT_WAIT)
            if seconds is None:
                waited = f", no insert in flight within {IN_FLIGHT_WAIT:g} s"
            else:
                delay = random.uniform(0.0, 0.04)  # not part of the schedule's draw
                time.sleep(delay)
                waited = f", {1000 * (seconds + delay):.0f} ms later, inserting"
        _signal(victim, sig)
        return f"pid {victim}{waited}"

    def _add_supervisor(self, applied: Applied) -> str:
        processes = int(applied.fault.amount)
        port = free_port_range(processes)
        self._extras[id(applied)] = self.harness.start_supervisor(processes, port)
        return f"{processes} processes, metrics from port {port}"

    def _proxy(self, applied: Applied, **faults: float | bool | int) -> str:
        self._proxy_owner = applied  # the proxy holds one fault at a time: the latest wins
        self.harness.proxy.set(**faults)
        return ""

    def _dlq_unavailable(self, applied: Applied) -> str:
        """Refuse writes, keep what the topic holds, delete it; created again at the end."""
        if self._dlq_down is not None:
            return "skipped: already unavailable"
        settings = self.harness.settings
        with AdminClient(settings.kafka_config()) as admin:
            # Writes are refused first, so nothing lands between reading the topic and
            # deleting it: what was delivered is kept (archived), what was not is the
            # workers' to retry.
            _alter(admin, settings.dlq_topic, "max.message.bytes", "16")
            _wait_still(self.harness.dead_letters)
            kept = self.harness.dead_letters.archive()
            admin.delete_topics([settings.dlq_topic])[settings.dlq_topic].result(30)
        self._dlq_down = applied
        return f"{kept} dead letters kept before deleting"

    def _dlq_recreate(self) -> None:
        deadline = time.monotonic() + 30
        while True:  # the deletion completes asynchronously
            try:
                streamgauge(self.harness.provision_env, "topics", "create")
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def _alter(admin: AdminClient, topic: str, name: str, value: str) -> None:
    entry = ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def _wait_still(log: DeadLetterLog, quiet: float = 1.5, timeout: float = 15) -> None:
    """Wait until the dead-letter topic's end offsets stopped moving for ``quiet`` s."""
    last, since = log.end_offsets(), time.monotonic()
    deadline = since + timeout
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise TimeoutError("the dead-letter topic kept growing with writes refused")
        time.sleep(0.25)
        now = log.end_offsets()
        if now != last:
            last, since = now, time.monotonic()
