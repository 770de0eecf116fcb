"""``streamgauge bench lag_refresh``: the cost of one lag refresh over 1,000 partitions.

Creates topics summing to --partitions partitions (default 4 x 250), produces a few messages
into each, and a consumer group with commits on every partition, lagging on a fraction of
them (--lagging). Then it times refreshes and counts the Kafka requests each one makes (by
API, as librdkafka counts them):
  cold   the exporter's first refresh: new connections, every lagging timestamp read;
  warm   the same positions again: timestamps come from the cache (the steady state of a
         stuck group);
  moved  every lagging partition's committed offset moved: their timestamps are read again
         (the steady state of a group making progress);
  all    every partition lagging at a new position: 1,000 timestamps read in one refresh.
It prints the figures and writes bench/results/lag_refresh.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench._results import write
from streams.lag.reader import KafkaReader, check_reachable
from streams.lag.refresh import Refresher
from streams.lag.status import Rules
from streams.settings import Settings

MESSAGES_PER_PARTITION = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streamgauge bench lag_refresh", description=__doc__)
    parser.add_argument("--partitions", type=int, default=1_000)
    parser.add_argument("--topics", type=int, default=4)
    parser.add_argument("--lagging", type=float, default=0.25, help="fraction lagging (0.25)")
    parser.add_argument("--warm-runs", type=int, default=5)
    args = parser.parse_args(argv)
    run_id = uuid.uuid4().hex[:8]
    group = f"bench-lag-{run_id}"
    names = [f"bench-lag-{run_id}-{i}" for i in range(args.topics)]
    settings = dataclasses.replace(
        Settings.from_env(), topic=names[0], consumer_group=group, log_level="WARNING"
    )
    check_reachable(settings)
    with AdminClient(settings.kafka_config()) as admin:
        partitions = _create(admin, names, args.partitions)
        try:
            print(f"{len(partitions):,} partitions in {len(names)} topics; producing ...")
            _produce(settings, partitions)
            lagging = partitions[: round(len(partitions) * args.lagging)]
            _commit(settings, group, {tp: MESSAGES_PER_PARTITION for tp in partitions})
            _commit(settings, group, {tp: MESSAGES_PER_PARTITION // 2 for tp in lagging})
            figures = _measure(settings, group, partitions, lagging, args.warm_runs)
        finally:
            for future in admin.delete_topics(names).values():
                future.result(60)
            admin.delete_consumer_groups([group])[group].result(60)
    write("lag_refresh", figures)
    return 0


def _measure(
    settings: Settings,
    group: str,
    partitions: list[TopicPartition],
    lagging: list[TopicPartition],
    warm_runs: int,
) -> dict[str, Any]:
    reader = KafkaReader(settings, [group], stats_interval_ms=100)
    refresher = Refresher(reader, Rules(settings.lag_window_refreshes, 120.0))
    figures: dict[str, Any] = {
        "partitions": len(partitions),
        "lagging": len(lagging),
        "messages_per_partition": MESSAGES_PER_PARTITION,
    }
    try:
        figures["cold"] = _refresh(refresher, reader)
        report("cold", figures["cold"])
        warm = [_refresh(refresher, reader) for _ in range(warm_runs)]
        figures["warm"] = min(warm, key=lambda run: run["seconds"]) | {
            "seconds_median": statistics.median(run["seconds"] for run in warm)
        }
        report("warm", figures["warm"])
        _commit(settings, group, {tp: MESSAGES_PER_PARTITION // 2 + 1 for tp in lagging})
        figures["moved"] = _refresh(refresher, reader)
        report("moved", figures["moved"])
        _commit(settings, group, {tp: 2 for tp in partitions})
        figures["all"] = _refresh(refresher, reader)
        report("all", figures["all"])
    finally:
        refresher.close()
    return figures


def _refresh(refresher: Refresher, reader: KafkaReader) -> dict[str, Any]:
    """One refresh; its requests are those librdkafka reports until its statistics settle."""
    before = refresher.requests.totals()
    began = time.monotonic()
    snapshot = refresher.refresh()
    seconds = time.monotonic() - began
    settle = time.monotonic() + 0.5  # statistics come every 100 ms here: wait a few
    while time.monotonic() < settle:
        reader.serve_callbacks(0.05)
    refresher.requests.add(reader.requests.drain())
    after = refresher.requests.totals()
    counted = {api: n - before.get(api, 0) for api, n in after.items() if n > before.get(api, 0)}
    lag = sum(p.lag_messages or 0 for g in snapshot.groups for t in g.topics for p in t.partitions)
    return {
        "seconds": round(seconds, 4),
        "timestamps_read": refresher.fetched,
        "lag_messages": lag,
        "kafka_requests": sum(counted.values()),
        "kafka_requests_by_api": counted,
    }


def report(name: str, run: dict[str, Any]) -> None:
    apis = ", ".join(f"{api} {n}" for api, n in run["kafka_requests_by_api"].items())
    print(
        f"  {name:6} {run['seconds'] * 1000:8.1f} ms  {run['timestamps_read']:5} timestamps read  "
        f"{run['kafka_requests']:4} Kafka requests ({apis})"
    )


def _create(admin: AdminClient, names: list[str], partitions: int) -> list[TopicPartition]:
    sizes = [partitions // len(names) + (i < partitions % len(names)) for i in range(len(names))]
    futures = admin.create_topics([NewTopic(n, s, 1) for n, s in zip(names, sizes, strict=True)])
    for future in futures.values():
        future.result(120)
    return [TopicPartition(n, p) for n, s in zip(names, sizes, strict=True) for p in range(s)]


def _produce(settings: Settings, partitions: list[TopicPartition]) -> None:
    producer = Producer({**settings.kafka_config(), "linger.ms": 20})
    for tp in partitions:
        for i in range(MESSAGES_PER_PARTITION):
            producer.produce(tp.topic, f"m{i}".encode(), partition=tp.partition)
        producer.poll(0)
    assert producer.flush(60) == 0


def _commit(settings: Settings, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = Consumer({**settings.kafka_config(), "group.id": group})
    try:
        commits = [TopicPartition(tp.topic, tp.partition, offset) for tp, offset in offsets.items()]
        consumer.commit(offsets=commits, asynchronous=False)
    finally:
        consumer.close()


if __name__ == "__main__":
    raise SystemExit(main())
