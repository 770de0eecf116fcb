"""How ``pytest -n N`` hands out tests: a test file at a time, and a worker's crash ends well.

A test file's tests run on one worker (they share its fixtures: a server, a broker, file
order), and all of tests/cluster/ on one (their cluster has fixed ports).

pytest-xdist 3.8's file scheduling also mishandles a worker that dies (a segfault in a C
extension, a test killed): it puts back every file the worker ever ran, finished ones
included, and the test it died on. The replacement worker then runs that test again, and is
handed files with nothing left to run, which no report ever marks done: the session waits
forever (a CI run timed out so). Here only what the worker had not started goes back, the
test it died on is reported failed once (by pytest-xdist), and a worker always has a test
after the one it runs, or is told that none follows.
"""

from __future__ import annotations

from typing import Any

from xdist.scheduler import LoadScopeScheduling


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
