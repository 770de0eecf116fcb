"""The gate's figures, its verdict on each, the before/after/ratio table and the JSON report.

Two kinds of figure. *Exact* ones (rows read by a query, parts and rows written per insert)
are the same on every run of the same data: one regresses when it is worse by more than the
threshold, with no noise allowance. *Timings* (latency, throughput) are noisy: one regresses
only when all of these hold:

- its median over the rounds is worse by more than the threshold;
- it is worse by more than the threshold in every single round;
- the difference of the medians exceeds the spread (max - min) of the before rounds;
- the paired runs agree: the same query (or batch) ran on *before* and on *after* back to
  back, and the median of those pairs' after/before ratios is beyond the threshold too.

A burst of load on a shared machine slows a few runs or one round, not the median pair of
every round, so it does not fail the gate; a real regression does.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["exact", "timing"]
Better = Literal["lower", "higher"]


@dataclass(frozen=True)
class Figure:
    """One measured quantity, per round, on both databases."""

    name: str
    unit: str
    kind: Kind
    better: Better
    before: tuple[float, ...]
    after: tuple[float, ...]
    paired: tuple[float, ...] = ()  # timings: how many times worse each back-to-back pair was


@dataclass(frozen=True)
class Judgement:
    figure: Figure
    before: float
    after: float
    worse: float  # how many times worse after is (1.0: the same, 2.0: twice as bad)
    spread: float | None  # of the before rounds; None for exact figures
    regressed: bool
    paired: float | None = None  # median of the paired ratios (timings)

    @property
    def ratio(self) -> float:
        """after / before, as printed."""
        return _ratio(self.after, self.before)


def judge(figure: Figure, threshold: float) -> Judgement:
    before = statistics.median(figure.before)
    after = statistics.median(figure.after)
    worse = _worse(figure.better, before, after)
    limit = 1 + threshold
    if figure.kind == "exact":
        return Judgement(figure, before, after, worse, None, worse > limit)
    spread = max(figure.before) - min(figure.before)
    every_round = all(
        _worse(figure.better, b, a) > limit
        for b, a in zip(figure.before, figure.after, strict=True)
    )
    paired = statistics.median(figure.paired) if figure.paired else None
    pairs_agree = paired is None or paired > limit
    regressed = worse > limit and every_round and abs(after - before) > spread and pairs_agree
    return Judgement(figure, before, after, worse, spread, regressed, paired)


def _worse(better: Better, before: float, after: float) -> float:
    return _ratio(after, before) if better == "lower" else _ratio(before, after)


def _ratio(numerator: float, denominator: float) -> float:
    if denominator == 0:
        return 1.0 if numerator == 0 else math.inf
    return numerator / denominator


@dataclass
class Report:
    """Everything ``migrate check`` found, for the terminal and for the JSON file."""

    verdict: Literal["ok", "regressed", "nothing-pending", "no-baseline"] = "ok"
    threshold: float = 0.2
    target: dict[str, Any] = field(default_factory=dict)
    staging: dict[str, Any] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    dataset: dict[str, Any] = field(default_factory=dict)
    migration_seconds: float | None = None
    judgements: list[Judgement] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # what works before and not after
    notes: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds each step took

    def decide(self) -> None:
        if self.verdict in ("ok", "regressed"):
            self.verdict = "regressed" if self.regressions() or self.failures else "ok"

    def regressions(self) -> list[Judgement]:
        return [j for j in self.judgements if j.regressed]

    @property
    def exit_code(self) -> int:
        return 1 if self.verdict == "regressed" else 0

    def table(self) -> str:
        head = f"{'figure':44} {'before':>12} {'after':>12} {'ratio':>8} {'spread':>9}  verdict"
        lines = [head, "-" * len(head)]
        for j in self.judgements:
            spread = "exact" if j.spread is None else _number(j.spread)
            verdict = "REGRESSED" if j.regressed else "ok"
            label = f"{j.figure.name} ({j.figure.unit})"
            lines.append(
                f"{label:44} {_number(j.before):>12} {_number(j.after):>12} "
                f"{_times(j.ratio):>8} {spread:>9}  {verdict}"
            )
        return "\n".join(lines)

    def summary(self) -> str:
        if self.verdict == "nothing-pending":
            return "verdict: ok, no pending migration"
        if self.verdict == "no-baseline":
            return "verdict: ok, the target has no schema yet: nothing to compare with"
        if self.verdict == "ok":
            return f"verdict: ok, no figure worse by more than {self.threshold:.0%}"
        reasons = [
            f"{j.figure.name} {_number(j.before)} -> {_number(j.after)} {j.figure.unit} "
            f"({_times(j.worse)} worse)"
            for j in self.regressions()
        ]
        return "verdict: REGRESSED: " + "; ".join(self.failures + reasons)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "threshold": self.threshold,
            "target": self.target,
            "staging": self.staging,
            "pending": self.pending,
            "dataset": self.dataset,
            "migration_seconds": self.migration_seconds,
            "regressed": [j.figure.name for j in self.regressions()],
            "failures": self.failures,
            "notes": self.notes,
            "phases": self.phases,
            "figures": [_figure_json(j) for j in self.judgements],
        }


def _figure_json(j: Judgement) -> dict[str, Any]:
    return {
        "name": j.figure.name,
        "unit": j.figure.unit,
        "kind": j.figure.kind,
        "better": j.figure.better,
        "before": j.before,
        "after": j.after,
        "ratio": _finite(j.ratio),
        "worse": _finite(j.worse),
        "spread_before": j.spread,
        "paired_median": j.paired,
        "rounds_before": list(j.figure.before),
        "rounds_after": list(j.figure.after),
        "regressed": j.regressed,
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _number(value: float) -> str:
    if value == int(value) and abs(value) >= 10:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def _times(value: float) -> str:
    return f"{value:.2f}x" if math.isfinite(value) else "inf"
