"""The gate's judgement: exact figures without noise allowance, timings only past the noise."""

from __future__ import annotations

import math

from streams.migrations.gate.report import Figure, Report, judge


def exact(before: float, after: float) -> Figure:
    return Figure("rows read", "rows", "exact", "lower", (before,) * 3, (after,) * 3)


def timing(
    before: tuple[float, ...], after: tuple[float, ...], paired: tuple[float, ...] = ()
) -> Figure:
    return Figure("p95", "ms", "timing", "lower", before, after, paired)


def test_an_exact_figure_regresses_past_the_threshold_and_only_then() -> None:
    assert judge(exact(1000, 1200), 0.2).regressed is False
    assert judge(exact(1000, 1201), 0.2).regressed is True
    assert judge(exact(1000, 500), 0.2).regressed is False
    assert judge(exact(0, 0), 0.2).worse == 1.0
    assert math.isinf(judge(exact(0, 5), 0.2).worse)


def test_higher_is_better_figures_regress_when_they_drop() -> None:
    throughput = Figure("rows/s", "rows/s", "exact", "higher", (100.0,), (70.0,))
    judgement = judge(throughput, 0.2)
    assert judgement.regressed
    assert round(judgement.worse, 3) == round(100 / 70, 3)


def test_a_timing_regresses_only_when_every_round_the_spread_and_the_pairs_agree() -> None:
    slower = timing((10.0, 11.0, 10.5), (20.0, 21.0, 19.0), (1.9, 2.0, 2.1))
    assert judge(slower, 0.2).regressed
    # One slow round (a burst of load) is not a regression, even if it moves the median.
    one_round = timing((10.0, 11.0, 10.5), (30.0, 10.5, 11.0))
    assert not judge(one_round, 0.2).regressed
    # Worse in every round, but by less than the before rounds' spread: noise.
    noisy = timing((5.0, 20.0, 10.0), (13.0, 24.0, 14.0))
    assert judge(noisy, 0.2).worse > 1.2
    assert not judge(noisy, 0.2).regressed
    # Rounds agree, but back-to-back pairs do not: a few outliers drove the p95s.
    outliers = timing((10.0, 10.2, 10.1), (13.0, 13.5, 13.2), (1.0, 0.9, 1.1, 1.0, 5.0))
    assert not judge(outliers, 0.2).regressed


def test_the_report_names_what_regressed_and_exits_1() -> None:
    report = Report(threshold=0.2)
    report.judgements = [judge(exact(8192, 81920), 0.2), judge(exact(100, 100), 0.2)]
    report.decide()
    assert report.verdict == "regressed"
    assert report.exit_code == 1
    assert report.summary().startswith("verdict: REGRESSED: rows read 8,192 -> 81,920 rows")
    assert report.to_json()["regressed"] == ["rows read"]
    assert "REGRESSED" in report.table().splitlines()[2]


def test_a_failure_after_the_migrations_is_a_regression() -> None:
    report = Report()
    report.failures.append("read api_latest fails after the migrations: Code: 47")
    report.decide()
    assert report.exit_code == 1
    assert "api_latest fails" in report.summary()
