"""How bench catchup turns sampled commit totals into a drain rate."""

from __future__ import annotations

import pytest

from bench.catchup import Sample, drain_rate


def stepped(rate: float, step: int, phase: float, seconds: float) -> list[Sample]:
    """Commits of ``step`` messages at a time at ``rate`` msg/s, sampled every 0.1 s."""
    period = step / rate
    samples = []
    for tick in range(int(seconds * 10) + 1):
        t = tick / 10
        steps = int((t + phase * period) / period)
        samples.append(Sample(t, produced=10**7, committed=steps * step))
    return samples


@pytest.mark.parametrize("phase", [0.0, 0.3, 0.7, 0.99])
def test_the_drain_rate_does_not_depend_on_where_the_batch_steps_fall(phase: float) -> None:
    # Six seconds of 150k-message steps at 70k msg/s: between the two end samples alone the
    # rate would read anywhere from 50k to 75k depending on the steps' phase.
    samples = stepped(70_000, 150_000, phase, 8.0)
    assert drain_rate(samples, 1.0, 7.0) == pytest.approx(70_000, rel=0.1)


def test_a_window_without_two_samples_has_no_rate() -> None:
    assert drain_rate([Sample(1.0, 10, 5)], 0.0, 2.0) == 0.0
