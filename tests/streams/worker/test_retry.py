"""The one backoff of the worker's retry loops."""

from __future__ import annotations

from streams.worker.retry import backoff


def test_backoff_grows_with_the_attempt_up_to_its_cap_and_is_jittered() -> None:
    waits = [backoff(attempt, cap=5.0) for attempt in range(1, 12) for _ in range(50)]
    assert all(0 <= wait <= 5.0 for wait in waits)
    first = [backoff(1, cap=5.0) for _ in range(200)]
    assert max(first) <= 0.4
    assert len(set(first)) > 100, "jittered: processes retrying together spread out"
