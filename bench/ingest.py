"""``streamgauge bench ingest``: the pipeline's throughput next to its two ceilings, in one run.

With N pre-produced messages (default 1,000,000) it measures:
  (a) consume ceiling: a plain confluent-kafka consumer + the Avro decode, no database;
  (b) insert ceiling: pre-built batches inserted straight into ClickHouse;
  (c) the pipeline: 1 worker process draining the backlog into ClickHouse;
  (d) the pipeline with 2 worker processes.
It prints messages/s for each and the ratios c/a and d/c, and writes bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from bench._results import write
from streams import migrations, simulator, topics
from streams.clickhouse import sync_client
from streams.codec import Decoder, load_versions
from streams.producer import MeasurementProducer
from streams.settings import Settings
from streams.worker.batch import COLUMNS, Batch
from streams.worker.sink import COLUMN_TYPES, TABLE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streamgauge bench ingest", description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--partitions", type=int, default=6)
    args = parser.parse_args(argv)
    run_id = uuid.uuid4().hex[:8]
    base = dataclasses.replace(
        Settings.from_env(),
        topic=f"bench-ingest-{run_id}",
        dlq_topic=f"bench-ingest-{run_id}.dlq",
        topic_partitions=args.partitions,
        log_level="WARNING",
    )
    topics.create(base)
    print(f"producing {args.messages:,} messages from {args.devices:,} devices to {base.topic} ...")
    produced = produce(base, args.messages, args.devices)
    print(f"  produced in {produced:.1f} s ({args.messages / produced:,.0f} msg/s)")

    figures: dict[str, Any] = {"messages": args.messages, "partitions": args.partitions}
    figures["a_consume_decode"] = consume_ceiling(base, args.messages)
    report("(a) consume + decode ceiling", figures["a_consume_decode"])
    figures["b_insert"] = insert_ceiling(base, run_id, min(args.messages, 300_000))
    report("(b) insert ceiling", figures["b_insert"])
    for label, processes in (("c_pipeline_1", 1), ("d_pipeline_2", 2)):
        figures[label] = pipeline(base, run_id, processes, args.messages)
        report(f"({label[0]}) pipeline, {processes} process(es)", figures[label])

    a = figures["a_consume_decode"]["messages_per_second"]
    c = figures["c_pipeline_1"]["messages_per_second"]
    d = figures["d_pipeline_2"]["messages_per_second"]
    figures["ratio_c_over_a"] = round(c / a, 3)
    figures["ratio_d_over_c"] = round(d / c, 3)
    print(f"c/a = {c / a:.2f}   d/c = {d / c:.2f}")
    write("ingest", figures)
    return 0


def report(label: str, figure: dict[str, float]) -> None:
    print(f"{label:40} {figure['messages_per_second']:>12,.0f} msg/s  ({figure['seconds']:.1f} s)")


def produce(settings: Settings, messages: int, devices: int) -> float:
    versions = [v.version for v in load_versions(settings.schemas_dir)]
    fleet = simulator.Fleet(devices, versions)
    producer = MeasurementProducer(settings)
    start = time.monotonic()
    simulator.run(producer, fleet, rate=0, duration=3600, count=messages)
    return time.monotonic() - start


def consume_ceiling(settings: Settings, messages: int) -> dict[str, float]:
    decoder = Decoder(load_versions(settings.schemas_dir))
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"bench-ceiling-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.max.bytes": 52_428_800,
        }
    )
    consumer.subscribe([settings.topic])
    seen = 0
    start: float | None = None
    while seen < messages:
        batch = consumer.consume(5000, 1.0)
        if batch and start is None:
            start = time.monotonic()
        for message in batch:
            decoder.decode(message.value() or b"")
        seen += len(batch)
    assert start is not None
    seconds = time.monotonic() - start
    consumer.close()
    return {"messages_per_second": seen / seconds, "seconds": seconds}


def insert_ceiling(settings: Settings, run_id: str, messages: int) -> dict[str, float]:
    """Batches built from the topic's own messages, inserted one after another."""
    database = f"bench_insert_{run_id}"
    target = _database(settings, database)
    decoder = Decoder(load_versions(settings.schemas_dir))
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"bench-build-{run_id}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([settings.topic])
    batches: list[Batch] = []
    batch = Batch(settings.topic, 0, 0)
    seen = 0
    while seen < messages:
        for message in consumer.consume(5000, 1.0):
            batch.add(seen, len(message.value() or b""), decoder.decode(message.value() or b""))
            seen += 1
            if batch.rows >= target.batch_max_rows:
                batches.append(batch)
                batch = Batch(settings.topic, 0, seen)
    consumer.close()
    if batch.rows:
        batches.append(batch)
    client = sync_client(target)
    start = time.monotonic()
    for built in batches:
        client.insert(
            TABLE,
            built.columns(),
            column_names=COLUMNS,
            column_type_names=COLUMN_TYPES,
            column_oriented=True,
        )
    seconds = time.monotonic() - start
    rows = sum(b.rows for b in batches)
    return {
        "messages_per_second": seen / seconds,
        "rows_per_second": rows / seconds,
        "seconds": seconds,
    }


def pipeline(settings: Settings, run_id: str, processes: int, messages: int) -> dict[str, float]:
    target = dataclasses.replace(
        _database(settings, f"bench_pipeline_{processes}_{run_id}"),
        consumer_group=f"bench-pipeline-{processes}-{run_id}",
    )
    env = {**os.environ, **target.to_env()}
    worker = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker", "--processes", str(processes)], env=env
    )
    try:
        probe = Consumer({**settings.kafka_config(), "group.id": target.consumer_group})
        partitions = [TopicPartition(settings.topic, p) for p in range(settings.topic_partitions)]
        start, done = None, 0
        while done < messages:
            time.sleep(0.2)
            done = sum(max(tp.offset, 0) for tp in probe.committed(partitions, timeout=10))
            if start is None and done > 0:
                start, first = time.monotonic(), done
        seconds = time.monotonic() - start if start else float("nan")
        probe.close()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    stored = sync_client(target).query("SELECT count() FROM readings").result_rows[0][0]
    return {
        "messages_per_second": (messages - first) / seconds,
        "seconds": seconds,
        "readings_stored": int(stored),
        "processes": processes,
    }


def _database(settings: Settings, database: str) -> Settings:
    target = dataclasses.replace(settings, clickhouse_database=database)
    migrations.up(target, say=lambda _line: None)
    return target


if __name__ == "__main__":
    sys.exit(main())
