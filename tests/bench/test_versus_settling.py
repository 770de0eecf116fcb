"""bench versus: when the workers' group counts as settled (from each process's /metrics), the
half-load rate, its latency by window, and the broker's compiling while it warms up."""

from __future__ import annotations

import os
from typing import cast

import pytest

from bench import versus
from bench.versus import Settling
from streams.settings import Settings


def metrics(assigned: int, revoked: int = 0) -> str:
    return (
        "# TYPE streamgauge_rebalances_total counter\n"
        f'streamgauge_rebalances_total{{kind="assigned"}} {assigned}\n'
        f'streamgauge_rebalances_total{{kind="revoked"}} {revoked}\n'
    )


def point(settling: Settling) -> tuple[float | None, float]:
    return settling.at, settling.rebalances


def test_settled_once_every_process_was_assigned_and_none_rebalanced_for_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = {0: metrics(1), 1: metrics(0)}

    def scrape(_settings: Settings, index: int) -> str:
        if index not in texts:
            raise OSError("connection refused")
        return texts[index]

    monkeypatch.setattr(versus, "worker_metrics", scrape)
    settling = Settling(cast(Settings, None), 2)
    settling.sample(0.0)
    settling.sample(2.0)
    assert settling.at is None, "process 1 has no partitions yet"
    texts[0], texts[1] = metrics(1, revoked=1), metrics(1)
    settling.sample(2.5)
    settling.sample(3.2)
    assert settling.at is None, "not a quiet second yet"
    settling.sample(3.6)
    assert point(settling) == (3.6, 3)
    texts[1] = metrics(2)
    settling.sample(9.0)
    assert point(settling) == (3.6, 3), "settled once; later rebalances are the run's to report"


def test_a_process_not_serving_yet_is_not_settled(monkeypatch: pytest.MonkeyPatch) -> None:
    def scrape(_settings: Settings, index: int) -> str:
        if index == 1:
            raise OSError("connection refused")
        return metrics(1)

    monkeypatch.setattr(versus, "worker_metrics", scrape)
    settling = Settling(cast(Settings, None), 2)
    for now in (0.0, 1.0, 2.0, 3.0):
        settling.sample(now)
    assert settling.at is None


def test_half_load_is_half_of_the_best_single_process_rate_whatever_else_ran() -> None:
    runs = [
        {"side": "engine", "parallelism": 1, "messages_per_second": 300_000.0},
        {"side": "workers", "parallelism": 1, "messages_per_second": 124_188.0},
        {"side": "workers", "parallelism": 2, "messages_per_second": 143_385.0},
        {"side": "workers", "parallelism": 1, "messages_per_second": 120_000.0},
    ]
    assert versus.half_rate(runs) == 62_094.0


def test_the_half_load_p99_is_given_per_window_of_send_time() -> None:
    # 10 s of messages every 10 ms; those sent in the first 5 s waited 3 s, the rest 0.2 s.
    latencies = [(1_000 + sent, 3_000 if sent < 5_000 else 200) for sent in range(0, 10_000, 10)]
    assert versus.by_window(latencies) == [3_000, 200]


def test_a_running_broker_s_jit_compiling_is_measured_and_nothing_else_is(
    local_stack: Settings,
) -> None:
    # The local broker compiled code as it started and served; this Python process has no
    # compiler threads, so its CPU is not taken for the broker's compiling.
    broker = versus.kafka_pid(local_stack)
    assert broker is not None
    compiled = versus.jit_seconds(broker)
    assert 0 < compiled <= versus.cpu_seconds([broker])
    assert versus.jit_seconds(os.getpid()) == 0
    assert versus.jit_seconds(None) == 0
