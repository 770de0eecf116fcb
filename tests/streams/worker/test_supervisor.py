"""The supervisor at its seam: fake child processes in place of subprocess.Popen."""

from __future__ import annotations

from typing import Any

import pytest

from streams.settings import Settings
from streams.worker.supervisor import RESTART_MAX, RESTART_MIN, Supervisor


class FakeChild:
    """A child process whose exit code the test sets."""

    started: list[FakeChild] = []

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.command, self.env = command, env
        self.code: int | None = None
        self.pid = 1000 + len(FakeChild.started)
        self.signals: list[int] = []
        FakeChild.started.append(self)

    def poll(self) -> int | None:
        return self.code

    def send_signal(self, signal: int) -> None:
        self.signals.append(signal)
        self.code = 0

    def wait(self, timeout: float | None = None) -> int:
        return self.code or 0

    @property
    def returncode(self) -> int | None:
        return self.code


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    FakeChild.started = []
    monkeypatch.setattr("streams.worker.supervisor.subprocess.Popen", FakeChild)
    monkeypatch.setattr("streams.worker.supervisor.time.monotonic", lambda: now[0])
    return now


def start(processes: int) -> Supervisor:
    supervisor = Supervisor(Settings(), processes)
    for child in supervisor.children:
        supervisor._start(child)
    return supervisor


def test_each_child_is_its_own_interpreter_with_its_index(clock: list[float]) -> None:
    start(2)
    assert [c.command[-2:] for c in FakeChild.started] == [["-m", "streams.worker"]] * 2
    assert [c.env["STREAMGAUGE_WORKER_INDEX"] for c in FakeChild.started] == ["0", "1"]


def test_a_child_that_dies_is_restarted_with_a_growing_delay(clock: list[float]) -> Any:
    supervisor = start(1)
    delays = []
    for _ in range(7):
        FakeChild.started[-1].code = 70  # dies at once, again and again
        supervisor._reap()
        delays.append(supervisor.children[0].delay)
        clock[0] += supervisor.children[0].delay
        supervisor._reap()
    assert delays[0] == RESTART_MIN * 2
    assert delays == sorted(delays)
    assert delays[-1] == RESTART_MAX
    assert len(FakeChild.started) == 8


def test_stopping_signals_every_child(clock: list[float]) -> None:
    supervisor = start(3)
    assert supervisor._stop_all() == 0
    assert all(c.signals for c in FakeChild.started)
