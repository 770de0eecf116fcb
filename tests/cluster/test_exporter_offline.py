"""The lag exporter on a cluster: a broker down, a partition offline, then back.

With its brokers' replicas gone a partition has no leader and Kafka gives no offsets for it:
the exporter reports it UNKNOWN with a null lag (NaN in /metrics), never a made-up 0, keeps
reporting the other partitions with their real figures, and knows it again once it is back.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from streams import topics
from tests.support.cluster import LocalCluster, wait
from tests.support.exporter import ExporterProcess, partitions
from tests.support.kafka import delete_topics

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def test_an_offline_partition_is_unknown_while_the_others_keep_their_figures(
    kafka_cluster: LocalCluster, unique: str, tmp_path: Path
) -> None:
    # Replication 1: one broker down takes its partitions offline.
    settings = dataclasses.replace(
        kafka_cluster.settings.isolated(f"offline-{unique}", topic_partitions=3),
        topic_replication=1,
    )
    topics.create(settings)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for i in range(300):
        producer.produce(settings.topic, b"m", partition=i % 3)
    assert producer.flush(30) == 0
    commit(settings.kafka_bootstrap_servers, settings.consumer_group, settings.topic)

    exporter = ExporterProcess(settings, [settings.consumer_group], tmp_path / "exporter.log")
    group, topic = settings.consumer_group, settings.topic
    victim = kafka_cluster.leader(topic, 0)
    offline = {p for p in range(3) if kafka_cluster.leader(topic, p) == victim}
    try:
        assert exporter.wait_healthy(), exporter.output()

        def reported() -> dict[int, dict[str, Any]]:
            return partitions(exporter.status(), group, topic)

        wait(lambda: {p["lag_messages"] for p in reported().values()} == {60}, 30, "lag 60")
        kafka_cluster.kill(victim)
        wait(lambda: reported()[0]["status"] == "UNKNOWN", 60, "partition 0 unknown")
        now = reported()
        assert (now[0]["lag_messages"], now[0]["lag_seconds"], now[0]["end_offset"]) == (
            None,
            None,
            None,
        )
        assert all(now[p]["status"] == "UNKNOWN" for p in offline), now
        assert all(now[p]["lag_messages"] == 60 for p in set(now) - offline), now
        assert math.isnan(lag_metric(exporter, group, topic, 0))

        kafka_cluster.restart(victim)
        wait(lambda: reported()[0]["lag_messages"] == 60, 60, "partition 0 known again")
        assert reported()[0]["status"] != "UNKNOWN"
    finally:
        exporter.stop()
        if kafka_cluster.broker(victim).daemon.pid() is None:
            kafka_cluster.restart(victim)
        delete_topics(settings, settings.topic, settings.dlq_topic)


def commit(bootstrap: str, group: str, topic: str) -> None:
    """The group commits 40 of each partition's 100 messages: a lag of 60 each."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        offsets = [TopicPartition(topic, p, 40) for p in range(3)]
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


def lag_metric(exporter: ExporterProcess, group: str, topic: str, partition: int) -> float:
    _, body = exporter.get("/metrics")
    wanted = {"group": group, "topic": topic, "partition": str(partition)}
    (value,) = [
        sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == "streamgauge_consumer_lag_messages" and sample.labels == wanted
    ]
    return float(value)
