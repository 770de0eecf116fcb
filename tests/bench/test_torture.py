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
