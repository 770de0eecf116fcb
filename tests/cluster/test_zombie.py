"""A worker paused past the session timeout (SIGSTOP) and then continued: a zombie.

While it is stopped the group gives its partitions to the other process; once continued it
must not commit over its successor — its commits carry a stale member epoch and are refused,
and its batches in flight are inserted under the same tokens, so ClickHouse drops them.
"""

from __future__ import annotations

import os
import re
import signal

import pytest

from tests.support.cluster import LocalCluster, Run, scenario

pytestmark = [
    pytest.mark.integration,
    pytest.mark.cluster,
    pytest.mark.slow,
    pytest.mark.extended,
]

SESSION_TIMEOUT = 45  # group.consumer.session.timeout.ms, the broker's default


def test_a_worker_stopped_past_its_session_timeout_then_continued(
    kafka_cluster: LocalCluster, unique: str
) -> None:
    def freeze(run: Run) -> None:
        run.at(4)
        victim = run.workers()[0]
        os.kill(victim, signal.SIGSTOP)
        run.note(f"worker {victim} stopped (SIGSTOP)")
        run.at(4 + SESSION_TIMEOUT + 8)
        os.kill(victim, signal.SIGCONT)
        run.note(f"worker {victim} continued (SIGCONT)")

    def fenced(run: Run) -> None:
        log = "".join(p.read_text(errors="replace") for p in run.log_dir.glob("workers-*.log"))
        # Continued, the zombie learns it lost its partitions; a commit it had started is
        # refused (its member epoch is stale)...
        fenced = re.findall(r"commit for partition \d+ refused|rebalance: lost partitions", log)
        assert fenced, log[-3000:]
        run.note(f"the zombie was fenced: {sorted(set(fenced))}")

    run = scenario(
        kafka_cluster,
        f"cluster-zombie-{unique}",
        freeze,
        messages=4200,
        rate=60,
        catch_up=180,
        after=fenced,
    )
    # ... and nothing it did afterwards lost or duplicated a reading.
    assert not run.verdict.violations, run.report()
    print(run.report())
