"""Workers scaled live on the 3-broker cluster (KIP-848 group protocol): nothing is lost."""

from __future__ import annotations

import pytest

from tests.support.cluster import LocalCluster, Run, scenario

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def test_workers_scaled_from_one_to_three_processes_and_back(
    kafka_cluster: LocalCluster, unique: str
) -> None:
    def scale(run: Run) -> None:
        run.at(4)
        extra = run.add_workers(2)
        run.wait_workers(3)
        run.note("3 worker processes")
        run.at(11)
        extra.stop()
        run.note("back to 1 worker process")

    run = scenario(kafka_cluster, f"cluster-scale-{unique}", scale, processes=1)
    assert not run.verdict.violations, run.report()
    print(run.report())
    assert run.verdict.stored > 0
