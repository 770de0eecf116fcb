"""bench torture, short: fixed seeds of hostile input and faults, every message accounted for."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench._torture_trial import Options, run_trial
from bench.torture import details
from streams.settings import Settings


class Violations(AssertionError):
    """The pipeline broke the accounting identity (the trial itself ran fine)."""


pytestmark = pytest.mark.integration

# Seeds whose short schedules cover every fault between them: 11 kills, stops, adds a
# supervisor, takes ClickHouse down, cuts inserts and deletes the dead-letter topic, and
# has a device upload ten years of history; 19 slows ClickHouse and cuts connections
# before and after it stored an insert.
SEEDS = [11, 19]


@pytest.mark.parametrize("seed", SEEDS)
def test_a_short_trial_accounts_for_every_message(
    local_stack: Settings, seed: int, tmp_path: Path
) -> None:
    options = Options(seed=seed, messages=600, rate=150, catch_up_seconds=45, log_dir=tmp_path)
    trial = run_trial(local_stack, options, 0, say=lambda _line: None)
    assert not trial.error, trial.error
    assert trial.faults_by_kind(), "the schedule injected no fault"
    if trial.violations:
        raise Violations(details(trial))


def test_a_short_groups_trial_accounts_for_every_message(
    local_stack: Settings, tmp_path: Path
) -> None:
    """Inserts of several partitions' batches, a kill while one is in flight (seed 77: at 5.2 s,
    then connections cut after ClickHouse stored an insert, then a SIGTERM)."""
    options = Options(
        seed=77,
        processes=1,
        messages=1200,
        rate=100,
        partitions=6,
        profile="groups",
        catch_up_seconds=90,  # the killed member's partitions wait for its session to time out
        log_dir=tmp_path,
    )
    trial = run_trial(local_stack, options, 0, say=lambda _line: None)
    assert not trial.error, trial.error
    assert trial.faults_by_kind()["kill_9"] == 1
    assert trial.verdict.shared_inserts > 0, "no insert carried several partitions"
    if trial.violations:
        raise Violations(details(trial))
