"""The 3-broker cluster for one test session: started beside the single broker, on its own
ports and data, and stopped (its data removed) at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streams.settings import Settings
from tests.support.cluster import LocalCluster


@pytest.fixture(scope="session")
def kafka_cluster(local_stack: Settings) -> Iterator[LocalCluster]:
    home = local_stack.devstack_dir / "test-cluster"
    cluster = LocalCluster.start(local_stack, home)
    yield cluster
    cluster.stop()
