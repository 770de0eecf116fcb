"""Another language, proven: the Java producer of docs/examples/java (Apache Avro's own
single-object encoder, the Kafka Java client) is built with Maven and run; the workers store
every measurement it sends, and each device lands on the partition streamgauge computes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from streams.partitioner import partition_for
from streams.settings import REPO_ROOT, Settings
from tests.support.fleet import count
from tests.support.workers import Workers, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLE = REPO_ROOT / "docs" / "examples" / "java"
MESSAGES, DEVICES = 500, 10


def build(settings: Settings, work: Path) -> str:
    """Compile the example; its classpath (classes first)."""
    mvn, javac = shutil.which("mvn"), shutil.which("javac")
    assert mvn, "the Java example needs Maven (as the local Kafka does)"
    assert javac, "the Java example needs a JDK"
    classpath, repository = work / "classpath.txt", settings.cache_dir / "m2"
    subprocess.run(
        [mvn, "-B", "-q", "-f", EXAMPLE / "pom.xml", f"-Dmaven.repo.local={repository}",
         "dependency:build-classpath", f"-Dmdep.outputFile={classpath}"],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    libraries = classpath.read_text().strip()
    classes = work / "classes"
    subprocess.run(
        [javac, "-cp", libraries, "-d", classes, EXAMPLE / "MeasurementProducer.java"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return f"{classes}:{libraries}"


def partitions_of_devices(settings: Settings) -> dict[str, set[int]]:
    consumer = Consumer(
        {**settings.kafka_config(), "group.id": "java-probe", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([settings.topic])
    seen: dict[str, set[int]] = {}
    try:
        read = 0
        while read < MESSAGES:
            for message in consumer.consume(500, 5):
                key, partition = message.key(), message.partition()
                assert message.error() is None, message.error()
                assert key is not None
                assert partition is not None
                seen.setdefault(key.decode(), set()).add(partition)
                read += 1
    finally:
        consumer.close()
    return seen


def test_the_java_producer_is_stored_whole(pipeline: Settings, tmp_path: Path) -> None:
    classpath = build(pipeline, tmp_path)
    for version in (1, 2):  # half the messages with each shipped schema version
        schema = pipeline.schemas_dir / f"measurement.v{version}.avsc"
        sent = subprocess.run(
            ["java", "-cp", classpath, "MeasurementProducer", pipeline.kafka_bootstrap_servers,
             pipeline.topic, schema, str(MESSAGES // 2), str(DEVICES), str(version * 1000)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr[-3000:]
        assert f"{MESSAGES // 2} measurements acknowledged" in sent.stdout

    for device, partitions in partitions_of_devices(pipeline).items():
        assert partitions == {partition_for(device, pipeline.topic_partitions)}, device

    workers = Workers(pipeline, 1, tmp_path / "workers.log")
    try:
        assert wait_until(
            lambda: count(pipeline, "SELECT count() FROM readings") >= 2 * MESSAGES, 90
        ), workers.output()[-3000:]
    finally:
        workers.stop()
    assert count(pipeline, "SELECT count() FROM readings FINAL") == 2 * MESSAGES
    assert count(pipeline, "SELECT uniqExact(device_id, seq) FROM readings") == MESSAGES
    # v2 carries the site, v1 does not: both versions were written and read
    assert count(pipeline, "SELECT countIf(site = 'plant-j') FROM readings") == MESSAGES
