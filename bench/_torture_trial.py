"""One bench torture trial: draw, provision, run the workers under faults, check, clean up.

Everything a trial draws comes from its own generator, seeded with (seed, trial index), so
``--seed S --only-trial I`` draws the same workload and schedule again (what the processes
do under it is, of course, not repeatable to the millisecond).
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import shutil
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._teardown import discard
from bench._torture_check import Verdict, Violation, check
from bench._torture_faults import (
    GROUP_WEIGHTS,
    WEIGHTS,
    Applied,
    Fault,
    FaultRunner,
    Harness,
    draw_schedule,
    free_port_range,
    streamgauge,
    worker_env,
)
from bench._torture_observe import (
    DeadLetterLog,
    clickhouse,
    offsets,
    stop_merges,
    wait_caught_up,
)
from bench._torture_workload import (
    Mix,
    Planned,
    Workload,
    WorkloadProducer,
    draw_group_mix,
    draw_mix,
    duration,
)
from bench.catchup import scrape
from devstack.daemon import free_port
from devstack.fault_proxy import FaultProxyProcess
from streams.codec import load_versions
from streams.settings import Settings


@dataclass(frozen=True)
class Profile:
    """What a trial draws: its workload's mix and its faults' weights."""

    mix: Callable[[random.Random], Mix]
    weights: tuple[int, ...]
    in_flight: float = 0.0  # the share of kills that wait for an insert in flight


PROFILES = {
    # Every kind of hostile message and fault, half the trials with many hostile messages.
    "mixed": Profile(draw_mix, WEIGHTS),
    # Nearly clean streams and faults that strike groups (inserts of several partitions'
    # batches) between their intents and their insert's end: kills, handovers, cut connections.
    "groups": Profile(draw_group_mix, GROUP_WEIGHTS, in_flight=0.75),
}


@dataclass(frozen=True)
class Options:
    seed: int
    processes: int = 2
    messages: int = 3000
    rate: float = 250.0
    partitions: int = 3
    profile: str = "mixed"
    catch_up_seconds: float = 120.0
    keep: bool = False  # keep a failed trial's topics and database
    code: Path | None = None  # the worker code under test (PYTHONPATH); None: this one
    log_dir: Path = Path("bench/results/torture")

    def rerun(self, index: int) -> str:
        """`bench torture` options that draw trial ``index`` again, alone."""
        return (
            f"--seed {self.seed} --only-trial {index} --messages {self.messages} "
            f"--rate {self.rate:g} --processes {self.processes} "
            f"--partitions {self.partitions} --profile {self.profile}"
        )


@dataclass
class Trial:
    """What one trial drew, did and found."""

    seed: int
    index: int
    name: str
    rerun: str = ""  # the options that draw this trial again
    messages: list[Planned] = field(default_factory=list)
    faults: list[Applied] = field(default_factory=list)
    verdict: Verdict = field(default_factory=Verdict)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds each step took
    replays: int = 0  # intents the workers found at an assignment and replayed (their logs)
    group_replays: int = 0  # of those, members of a group
    error: str = ""
    kept: str = ""

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = round(time.monotonic() - started, 1)

    @property
    def violations(self) -> list[Violation]:
        return self.verdict.violations

    @property
    def failed(self) -> bool:
        return bool(self.violations or self.error)

    def counts(self) -> Counter[str]:
        kinds: Counter[str] = Counter(m.expect for m in self.messages)
        kinds["resend"] = sum(1 for m in self.messages if m.original is not None)
        return kinds

    def faults_by_kind(self) -> Counter[str]:
        return Counter(a.fault.kind for a in self.faults if a.applied)

    def summary(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "seed": self.seed,
            "trial": self.index,
            "name": self.name,
            "messages": len(self.messages),
            "valid": counts["stored"] - counts["resend"],
            "resends": counts["resend"],
            "either": counts["either"],
            "invalid": counts["dead_letter"],
            "kinds": dict(Counter(m.kind for m in self.messages)),
            "faults": [
                {"fault": a.fault.describe(), "started": round(a.started, 1), "note": a.note}
                for a in self.faults
            ],
            "stored": self.verdict.stored,
            "dead_lettered": self.verdict.dead_lettered,
            "dead_letter_repeats": self.verdict.dead_letter_repeats,
            "shared_inserts": self.verdict.shared_inserts,
            "replays": self.replays,
            "group_replays": self.group_replays,
            "dead_letter_reasons": dict(self.verdict.reasons),
            "violations": [
                {"kind": v.kind, "detail": v.detail, "offsets": [list(o) for o in v.offsets]}
                for v in self.violations
            ],
            "seconds": round(self.seconds, 1),
            "phases": self.phases,
            "error": self.error,
            "kept": self.kept,
        }


def rng_for(seed: int, index: int) -> random.Random:
    return random.Random(f"torture:{seed}:{index}")  # str seeds are stable across runs


def draw(
    seed: int, index: int, options: Options, settings: Settings
) -> tuple[list[Planned], list[Fault]]:
    """The trial's workload and fault schedule, from its own generator alone."""
    rng = rng_for(seed, index)
    profile = PROFILES[options.profile]
    workload = Workload(rng, load_versions(settings.schemas_dir), settings.max_message_bytes)
    messages = workload.draw(options.messages, int(time.time() * 1000), profile.mix(rng))
    seconds = duration(messages, options.rate)
    return messages, draw_schedule(rng, seconds, profile.weights, profile.in_flight)


def run_trial(base: Settings, options: Options, index: int, say: Any = print) -> Trial:
    started = time.monotonic()
    name = f"torture-{options.seed}-{index}-{uuid.uuid4().hex[:6]}"
    trial = Trial(options.seed, index, name, rerun=options.rerun(index))
    settings = trial_settings(base, options, name)
    trial.messages, schedule = draw(options.seed, index, options, settings)
    log_dir = options.log_dir / name
    log_dir.mkdir(parents=True, exist_ok=True)
    dead_letters = DeadLetterLog(settings)
    try:
        try:
            run(settings, options, trial, schedule, dead_letters, log_dir, say)
        finally:
            trial.replays, trial.group_replays = replays(log_dir)
        with trial.phase("check"):
            committed, end = offsets(settings)
            letters = dead_letters.read()
            trial.verdict = check(trial.messages, clickhouse(settings, committed, end, letters))
    except Exception:
        trial.error = traceback.format_exc(limit=6)
    trial.seconds = time.monotonic() - started
    if trial.failed and options.keep:
        trial.kept = (
            f"kept topics {settings.topic} and {settings.dlq_topic}, "
            f"database {settings.clickhouse_database}, logs {log_dir}"
        )
    else:
        with trial.phase("drop"):
            try:
                discard(settings)  # a topic the trial deleted may be gone already
            except Exception:  # reported; the next trial has names of its own
                trial.error += "dropping the trial's topics and database failed:\n"
                trial.error += traceback.format_exc(limit=3)
    if trial.failed:
        trial.kept = trial.kept or f"logs {log_dir}"
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    return trial


def trial_settings(base: Settings, options: Options, name: str) -> Settings:
    settings = base.isolated(
        name,
        topic_partitions=options.partitions,
        worker_processes=options.processes,
        worker_metrics_port=free_port_range(options.processes),
        log_level="INFO",  # the workers' replays of intents, counted from their logs
    )
    if options.code is not None:  # its schemas and migrations, with its worker
        settings = dataclasses.replace(
            settings,
            schemas_dir=options.code / "schemas" / "avro",
            migrations_dir=options.code / "schemas" / "clickhouse",
        )
    return settings


def run(
    settings: Settings,
    options: Options,
    trial: Trial,
    schedule: list[Fault],
    dead_letters: DeadLetterLog,
    log_dir: Path,
    say: Any,
) -> None:
    """Provision, start the workers, produce under the faults, heal, wait, stop."""
    provision = worker_env(settings, options.code)
    with trial.phase("provision"):
        streamgauge(provision, "topics", "create")
        streamgauge(provision, "migrate", "up")
        stop_merges(settings)
        proxy = FaultProxyProcess(
            free_port(), settings.clickhouse_port, free_port(), str(log_dir / "proxy.log")
        )
    harness = Harness(
        dataclasses.replace(settings, clickhouse_port=proxy.port),
        provision,
        options.processes,
        log_dir,
        proxy,
        dead_letters,
        code=options.code,
    )
    runner = FaultRunner(harness, schedule)
    trial.faults = runner.applied
    try:
        with trial.phase("start"):
            supervisor = harness.start_supervisor(options.processes, settings.worker_metrics_port)
            _wait(lambda: len(supervisor.children()) == options.processes, 30)
            # The schedule's clock starts once every process serves (its clients built), not
            # at its interpreter's start: on a busy machine start-up took most of a schedule.
            ports = [settings.worker_metrics_port + i for i in range(options.processes)]
            _wait(lambda: all(scrape(port) for port in ports), 60)
        with trial.phase("produce"):
            runner.start()
            WorkloadProducer(settings).send_all(trial.messages, options.rate)
        with trial.phase("faults_end"):
            runner.join(max(0.0, _last_event(schedule) - runner.now()) + 60)
            runner.heal()
        if runner.error is not None:
            raise runner.error
        with trial.phase("catch_up"):
            caught_up = wait_caught_up(settings, options.catch_up_seconds)
        if not caught_up:
            say(f"  {settings.topic}: did not catch up in {options.catch_up_seconds:.0f} s")
    finally:
        with trial.phase("stop"):
            _shut_down(runner, harness)


def _shut_down(runner: FaultRunner, harness: Harness) -> None:
    """End the faults, stop the workers, stop the proxy: each even if one before fails."""
    with contextlib.ExitStack() as cleanup:  # last in, first out
        cleanup.callback(harness.proxy.stop)
        cleanup.callback(harness.stop_supervisors)
        cleanup.callback(runner.heal)


def replays(log_dir: Path) -> tuple[int, int]:
    """(intents, group members' intents) replayed at assignments, from the workers' logs."""
    found = grouped = 0
    for log in log_dir.glob("workers-*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if "rebalance: assigned" in line:
                found += line.count(" replays intent ")
                grouped += line.count(" of a group insert")
    return found, grouped


def _last_event(schedule: list[Fault]) -> float:
    return max((f.at + f.seconds for f in schedule), default=0.0)


def _wait(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not ready after {timeout:.0f} s")
        time.sleep(0.2)
