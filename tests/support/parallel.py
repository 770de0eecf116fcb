"""A pytest plugin for ``pytest -n N``: tests handed out a test file at a time, and a worker
that dies (a segfault or an abort in a C extension, a test killed) costs one failed test, not
the run.

A test file's tests run on one worker (they share its fixtures: a server, a broker, file
order), and all of tests/cluster/ on one (their cluster has fixed ports).

pytest-xdist 3.8's file scheduling mishandles a worker that dies: it puts back every file the
worker ever ran, finished ones included, and the test it died on. The replacement worker then
runs that test again, and is handed files with nothing left to run, which no report ever marks
done: the session waits forever (a CI run timed out so). Here only what the worker had not
started goes back, the test it died on is reported failed once (by pytest-xdist), and a worker
always has a test after the one it runs, or is told that none follows.
"""

from __future__ import annotations

import faulthandler
import shutil
from pathlib import Path
from typing import IO, Any

import pytest
from xdist.scheduler import LoadScopeScheduling

_DUMP = pytest.StashKey[IO[str]]()
MAX_DUMP_LINES = 120


def controller(config: pytest.Config) -> bool:
    """The process that hands tests to pytest-xdist's workers (``-n N``), not one of them."""
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> ByFile:
    return ByFile(config, log)


@pytest.hookimpl(trylast=True)  # after pytest's own faulthandler set-up, which this replaces
def pytest_configure(config: pytest.Config) -> None:
    """Where a worker that died was: pytest-xdist names only the test it ran, and the
    interpreter's fatal-error dump (the thread and line it died in) lands in the middle of the
    output, where a CI log's tail never reaches. Each worker writes it to a file of its own,
    and the run's summary prints it."""
    if controller(config):
        shutil.rmtree(_dumps(config), ignore_errors=True)
    elif hasattr(config, "workerinput"):
        _dumps(config).mkdir(parents=True, exist_ok=True)
        out = (_dumps(config) / f"{config.workerinput['workerid']}.log").open("w")
        config.stash[_DUMP] = out
        faulthandler.enable(file=out, all_threads=True)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    if not controller(config):
        return
    for dump in sorted(_dumps(config).glob("*.log")):
        lines = dump.read_text(errors="replace").splitlines()
        if lines:
            terminalreporter.section(f"test worker {dump.stem} died", sep="=")
            for line in lines[:MAX_DUMP_LINES]:
                terminalreporter.line(line)
            if len(lines) > MAX_DUMP_LINES:
                terminalreporter.line(f"... {len(lines) - MAX_DUMP_LINES} more lines in {dump}")


def _dumps(config: pytest.Config) -> Path:
    return config.rootpath / ".cache" / "pytest-crashes"


class ByFile(LoadScopeScheduling):  # type: ignore[misc]  # pytest-xdist has no types
    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return "tests/cluster/" if path.startswith("tests/cluster/") else path

    def remove_node(self, node: Any) -> str | None:
        """Forget a worker that finished or died; return the test it died on, if any."""
        workload: dict[str, dict[str, bool]] = self.assigned_work.pop(node)
        unrun = [n for unit in workload.values() for n, done in unit.items() if not done]
        if not unrun:
            return None
        crashed = unrun[0]  # a worker runs its tests in the order given
        for scope, unit in reversed(workload.items()):
            left = {n: False for n, done in unit.items() if not done and n != crashed}
            if left:
                self.workqueue[scope] = left
                self.workqueue.move_to_end(scope, last=False)
        for other in self.assigned_work:
            self._reschedule(other)
        return crashed

    def _reschedule(self, node: Any) -> None:
        """Give ``node`` another file when it is nearly out of tests, and at least two tests
        (a worker starts a test once it knows the next); tell it when nothing is left."""
        if node.shutting_down:
            return
        if self.workqueue and self._pending_of(self.assigned_work[node]) <= 2:
            self._assign_work_unit(node)
        while self.workqueue and self._pending_of(self.assigned_work[node]) < 2:
            self._assign_work_unit(node)
        if not self.workqueue:
            node.shutdown()
