"""``streamgauge bench torture``: is every message accounted for, whatever happens?

Each trial gets a pipeline of its own (topics, group, database) and draws, from (seed, trial
index) alone, a workload and a fault schedule:

  - valid measurements from 6 to 16 devices on both shipped schema versions, resends (the
    exact bytes of an earlier message at a new offset), messages with thousands of readings,
    sometimes a device uploading ten years of monthly history in one burst;
  - every kind of hostile message: not Avro, truncated, trailing bytes, unknown fingerprint,
    Confluent framing with an unknown id, NaN/inf, far future/past, negative seq, invalid
    device id, no readings, invalid metric, oversized just above the worker's limit and near
    Kafka's (900 KB to 1 MB);
  - 3 to 7 faults: kill -9 or SIGTERM of a worker process, a second supervisor for a while,
    ClickHouse down, slow, or cutting connections before or after it stored an insert (the
    fault proxy), the dead-letter topic unavailable (writes refused, deleted, created again).

With ``--profile groups`` a trial's stream is nearly clean (each hostile kind once) and its
faults are kills, handovers and cut connections: most inserts then carry several partitions'
batches, and the faults strike them between their intents and their end (the row's "shared"
counts those inserts, "replay" the group members' intents replayed / all intents replayed).

The workload is produced on 3 partitions (``--partitions``) while the faults run; then the
faults end, the runner waits until the group's committed offsets reach the end offsets, stops
the workers, and checks the accounting identity from Kafka and ClickHouse alone: every offset
below the committed one is stored (each reading exactly once, resends included, without FINAL)
or dead-lettered with its source and reason, valid messages never dead-lettered, invalid ones
never stored; readings_1m and latest agree with readings. Prints a row per trial and a
summary, writes bench/results/torture.json, exits 1 if any trial found a violation.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import Counter
from pathlib import Path

from bench._results import RESULTS, write
from bench._torture_check import MEANING
from bench._torture_trial import PROFILES, Options, Trial, run_trial
from streams.settings import Settings

SHOWN_PER_KIND = 8

SHORT = {
    "not_caught_up": "behind",
    "lost": "lost",
    "valid_dead_lettered": "valid->dlq",
    "invalid_stored": "bad-stored",
    "stored_and_dead_lettered": "both",
    "duplicated": "dup",
    "partial": "partial",
    "stray_row": "stray",
    "wrong_value": "value",
    "wrong_source": "source",
    "rollup_count": "rollup",
    "latest": "latest",
    "bad_dead_letter": "bad-dlq",
    "unknown_offset": "unknown",
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="streamgauge bench torture",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--trials", type=int, default=10, help="trials to run (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the whole run (default 1)")
    parser.add_argument("--only-trial", type=int, metavar="I", help="run trial I of the seed only")
    parser.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--messages", type=int, default=3000, help="messages per trial, about (default 3000)"
    )
    parser.add_argument("--rate", type=float, default=250.0, help="msg/s produced (default 250)")
    parser.add_argument(
        "--partitions", type=int, default=3, help="partitions of the trial's topic (default 3)"
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="mixed",
        help="mixed (default): every kind of hostile message and fault; groups: nearly clean "
        "streams under kills, handovers and cut connections, so inserts of several partitions "
        "are struck between their intents and their end",
    )
    parser.add_argument(
        "--catch-up-seconds",
        type=float,
        default=120.0,
        help="how long the workers get to commit everything once the faults end (default 120)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep a failed trial's topics and database for inspection (logs are always kept)",
    )
    parser.add_argument(
        "--code",
        type=Path,
        metavar="DIR",
        help="run the worker, topics create and migrations from this checkout (its PYTHONPATH, "
        "schemas and migrations); default: the code running this benchmark",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    options = Options(
        seed=args.seed,
        processes=args.processes,
        messages=args.messages,
        rate=args.rate,
        partitions=args.partitions,
        profile=args.profile,
        catch_up_seconds=args.catch_up_seconds,
        keep=args.keep,
        code=args.code.resolve() if args.code else None,
        log_dir=RESULTS / "torture",
    )
    base = Settings.from_env()
    indexes = [args.only_trial] if args.only_trial is not None else range(args.trials)
    print(header())
    trials: list[Trial] = []
    for index in indexes:
        trial = run_trial(base, options, index)
        trials.append(trial)
        print(row(trial), flush=True)
        if trial.failed:
            print(details(trial), flush=True)
    print()
    print("\n".join(summary(trials)))
    write(
        "torture",
        {
            "command": "streamgauge bench torture " + " ".join(argv or sys.argv[1:]),
            "options": {k: str(v) for k, v in dataclasses.asdict(options).items()},
            "trials": [t.summary() for t in trials],
            "totals": totals(trials),
        },
    )
    return 1 if any(t.failed for t in trials) else 0


def header() -> str:
    return (
        f"{'trial':>5} {'seed':>6} {'msgs':>5} {'valid':>5} {'resnd':>5} {'either':>6} "
        f"{'bad':>4} {'faults':>6} {'stored':>6} {'dlq':>4} {'shared':>6} {'replay':>6} "
        f"{'secs':>5}  violations"
    )


def row(trial: Trial) -> str:
    counts = trial.counts()
    kinds = Counter(v.kind for v in trial.violations)
    found = " ".join(f"{SHORT[k]}:{n}" for k, n in sorted(kinds.items())) or "none"
    if trial.error:
        found += " ERROR"
    return (
        f"{trial.index:>5} {trial.seed:>6} {len(trial.messages):>5} "
        f"{counts['stored'] - counts['resend']:>5} {counts['resend']:>5} {counts['either']:>6} "
        f"{counts['dead_letter']:>4} {sum(trial.faults_by_kind().values()):>6} "
        f"{trial.verdict.stored:>6} {trial.verdict.dead_lettered:>4} "
        f"{trial.verdict.shared_inserts:>6} {f'{trial.group_replays}/{trial.replays}':>6} "
        f"{trial.seconds:>5.0f}  {found}"
    )


def details(trial: Trial) -> str:
    """What went wrong, with the offsets, and how to run the trial alone."""
    lines = [
        f"  seed {trial.seed} trial {trial.index}: rerun alone with "
        f"`streamgauge bench torture {trial.rerun}`; {trial.kept}"
    ]
    lines += [
        f"  fault {a.fault.describe()}: started {a.started:.1f}s {a.note}" for a in trial.faults
    ]
    by_kind: dict[str, list[str]] = {}
    for violation in trial.violations:
        where = " ".join(f"p{p}@{o}" for p, o in violation.offsets[:6])
        more = f" (+{len(violation.offsets) - 6})" if len(violation.offsets) > 6 else ""
        by_kind.setdefault(violation.kind, []).append(f"{where}{more} {violation.detail}".strip())
    for kind, found in by_kind.items():
        lines.append(f"  {kind} x{len(found)}: {MEANING[kind]}")  # type: ignore[index]
        lines += [f"    {line}" for line in found[:SHOWN_PER_KIND]]
        if len(found) > SHOWN_PER_KIND:
            lines.append(
                f"    ... {len(found) - SHOWN_PER_KIND} more in bench/results/torture.json"
            )
    if trial.error:
        lines.append("  the trial itself failed:\n" + trial.error)
    return "\n".join(lines)


def totals(trials: list[Trial]) -> dict[str, object]:
    faults: Counter[str] = Counter()
    violations: Counter[str] = Counter()
    for trial in trials:
        faults.update(trial.faults_by_kind())
        violations.update(v.kind for v in trial.violations)
    return {
        "trials": len(trials),
        "failed_trials": sum(1 for t in trials if t.failed),
        "errors": sum(1 for t in trials if t.error),
        "messages": sum(len(t.messages) for t in trials),
        "dead_lettered": sum(t.verdict.dead_lettered for t in trials),
        "dead_letter_repeats": sum(t.verdict.dead_letter_repeats for t in trials),
        "shared_inserts": sum(t.verdict.shared_inserts for t in trials),
        "trials_with_shared_inserts": sum(1 for t in trials if t.verdict.shared_inserts),
        "replays": sum(t.replays for t in trials),
        "group_replays": sum(t.group_replays for t in trials),
        "faults": dict(faults),
        "violations": dict(violations),
        "seconds": round(sum(t.seconds for t in trials), 1),
    }


def summary(trials: list[Trial]) -> list[str]:
    figures = totals(trials)
    faults = figures["faults"]
    violations = figures["violations"]
    assert isinstance(faults, dict)
    assert isinstance(violations, dict)
    return [
        f"trials: {figures['trials']}, failed: {figures['failed_trials']} "
        f"(errors: {figures['errors']}), messages: {figures['messages']}, "
        f"{figures['seconds']} s",
        "faults injected: " + (", ".join(f"{k} {n}" for k, n in sorted(faults.items())) or "none"),
        f"dead letters: {figures['dead_lettered']} messages, "
        f"{figures['dead_letter_repeats']} delivered more than once (allowed, counted)",
        f"inserts carrying several partitions: {figures['shared_inserts']}, in "
        f"{figures['trials_with_shared_inserts']} trials",
        f"intents replayed at assignments: {figures['replays']}, "
        f"{figures['group_replays']} of them a group member's",
        f"violations: {sum(violations.values())}"
        + "".join(f"\n  {k}: {n} ({MEANING[k]})" for k, n in sorted(violations.items())),
    ]


if __name__ == "__main__":
    sys.exit(main())
