"""Partitions grown from 6 to 12 while devices produce and two worker processes ingest.

The workers take the new partitions up (KIP-848: the group coordinator assigns them), the lag
exporter reports all twelve, the producers' partitioner maps devices to the new count once
their metadata is refreshed, and a device's candidate partitions for the API's freshness
include the new one its messages now wait on. Nothing is lost on the way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import NewPartitions

from api.arrivals import Arrivals, candidates
from streams.clickhouse import sync_client
from streams.partitioner import partition_for
from streams.queries import ARRIVALS_SQL
from tests.support.cluster import LocalCluster, Run, partition_count, scenario, wait
from tests.support.exporter import ExporterProcess, partitions
from tests.support.kafka import admin

pytestmark = [
    pytest.mark.integration,
    pytest.mark.cluster,
    pytest.mark.slow,
    pytest.mark.extended,
]


def test_partitions_grown_from_6_to_12_while_running(
    kafka_cluster: LocalCluster, unique: str, tmp_path: Path
) -> None:
    exporters: list[ExporterProcess] = []

    def grow(run: Run) -> None:
        group, topic = run.settings.consumer_group, run.settings.topic
        exporter = ExporterProcess(run.settings, [group], tmp_path / "exporter.log", 0.5)
        exporters.append(exporter)
        assert exporter.wait_healthy(), exporter.output()
        run.at(6)
        with admin(run.settings) as client:
            client.create_partitions([NewPartitions(topic, 12)])[topic].result(30)
        run.note("grown to 12 partitions")
        wait(lambda: len(partitions(exporter.status(), group, topic)) == 12, 30, "reported")
        run.note("the exporter reports 12 partitions")

    def check_growth(run: Run) -> None:
        assert partition_count(run.settings) == 12
        group, topic = run.settings.consumer_group, run.settings.topic

        def all_caught_up() -> bool:
            reported = partitions(exporters[0].status(), group, topic)
            return len(reported) == 12 and all(p["lag_messages"] == 0 for p in reported.values())

        wait(all_caught_up, 30, "caught up in the exporter's report")

        # Every keyed message on a new partition is where the Java partitioner puts it.
        moved = [m for m in run.messages if m.partition >= 6 and m.key is not None]
        assert moved, "no message reached a new partition"
        assert all(partition_for(m.key.decode(), 12) == m.partition for m in moved if m.key)

        # A device now writing to a new partition has it among its freshness candidates.
        device = moved[-1].key.decode() if moved[-1].key else ""
        client = sync_client(run.settings)
        rows = client.query(ARRIVALS_SQL, parameters={"devices": ["", device]}).result_rows
        window = run.settings.api_partition_window_seconds
        chosen = candidates(Arrivals.from_rows(rows), range(12), window)
        assert partition_for(device, 12) in chosen.partitions, (device, chosen)
        run.note(f"{device}: candidates {sorted(chosen.partitions)} ({chosen.basis})")

    try:
        run = scenario(
            kafka_cluster,
            f"cluster-grow-{unique}",
            grow,
            messages=3000,
            rate=150,
            # Devices learn of new partitions at their next metadata refresh (5 min by default).
            producer={"topic.metadata.refresh.interval.ms": 2000},
            after=check_growth,
            # A resend whose original went to the device's old partition may reach another
            # process before the original is stored, and be stored too (docs/deploy-cluster.md:
            # a device's partition during growth); resends are proven elsewhere.
            resend=0.0,
        )
    finally:
        for exporter in exporters:
            exporter.stop()
    assert not run.verdict.violations, run.report()
    print(run.report())
