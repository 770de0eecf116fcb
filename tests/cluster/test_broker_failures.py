"""Brokers fail under a steady load while two worker processes ingest: nothing is lost.

Each scenario ends with the accounting identity (tests/support/cluster.py): every message
below the committed offsets stored exactly once or dead-lettered with its reason, raw counts
without FINAL, rollups and ``latest`` agreeing — and the group caught up, so lag is back to 0.
"""

from __future__ import annotations

import time

import pytest

from tests.support.cluster import LocalCluster, Run, scenario, wait

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


@pytest.mark.slow
def test_the_leader_of_a_partition_killed_mid_stream_and_brought_back(
    kafka_cluster: LocalCluster, unique: str
) -> None:
    # The broker killed leads a partition and is the group's coordinator: commits in flight
    # fail and the ones after wait for a new coordinator, while the partition's leadership
    # moves (answers out of order once settled a commit with another's answer: a stall).
    def kill_the_leader(run: Run) -> None:
        run.at(4)
        victim = kafka_cluster.coordinator(run.settings.consumer_group)
        led = kafka_cluster.led_by(run.settings.topic, victim)
        assert led, f"broker {victim} leads no partition of {run.settings.topic}"
        partition = led[0]
        kafka_cluster.kill(victim)
        run.note(
            f"broker {victim} (the group's coordinator, leader of partitions {led}) killed "
            "with SIGKILL"
        )
        wait(
            lambda: kafka_cluster.leader(run.settings.topic, partition) not in (victim, -1),
            30,
            "a new leader",
        )
        run.note(
            f"partition {partition} led by broker "
            f"{kafka_cluster.leader(run.settings.topic, partition)}"
        )
        run.at(10)
        seconds = kafka_cluster.restart(victim)
        run.note(f"broker {victim} back, ready in {seconds:.1f} s")
        wait(lambda: kafka_cluster.under_replicated(run.settings.topic) == 0, 60, "in sync")
        run.note("no under-replicated partition")

    run = scenario(kafka_cluster, f"cluster-leader-{unique}", kill_the_leader)
    assert not run.verdict.violations, run.report()
    print(run.report())
    assert run.verdict.stored > 0


@pytest.mark.slow
@pytest.mark.extended
def test_a_rolling_restart_of_all_three_brokers(kafka_cluster: LocalCluster, unique: str) -> None:
    def roll(run: Run) -> None:
        run.at(2)
        for node in (1, 2, 3):
            seconds = kafka_cluster.restart(node, stop=True)
            run.note(f"broker {node} restarted, ready in {seconds:.1f} s")
            wait(lambda: kafka_cluster.under_replicated(run.settings.topic) == 0, 60, "in sync")
            run.note("no under-replicated partition")

    run = scenario(kafka_cluster, f"cluster-roll-{unique}", roll, messages=4000)
    assert not run.verdict.violations, run.report()
    print(run.report())


@pytest.mark.slow
@pytest.mark.extended
def test_the_controller_quorum_loses_its_active_controller(
    kafka_cluster: LocalCluster, unique: str
) -> None:
    def kill_the_controller(run: Run) -> None:
        run.at(4)
        victim = kafka_cluster.active_controller()
        kafka_cluster.kill(victim)
        run.note(f"active controller {victim} killed with SIGKILL")
        began = time.monotonic()
        wait(lambda: kafka_cluster.active_controller() != victim, 30, "a new controller")
        run.note(f"a new controller elected in {time.monotonic() - began:.1f} s")
        run.at(10)
        kafka_cluster.restart(victim)
        wait(lambda: kafka_cluster.under_replicated(run.settings.topic) == 0, 60, "in sync")
        run.note(f"broker {victim} back in sync")

    run = scenario(kafka_cluster, f"cluster-controller-{unique}", kill_the_controller)
    assert not run.verdict.violations, run.report()
    print(run.report())
