"""A worker process's memory stays bounded under a backlog of maximal messages."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from streams.codec import Encoder, load_versions
from streams.settings import Settings
from tests.support.fleet import committed, count, end_offsets
from tests.support.workers import Workers, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Measured peak: 485 MB (1 process, 6 partitions, defaults); the bound leaves room.
RSS_BOUND_MB = 600
MESSAGES = 1200


def maximal(encoder: Encoder, index: int, limit: int) -> bytes:
    """A message just under the size limit, with the most readings a message may carry."""
    record = {
        "device_id": f"big-{index % 50}",
        "event_time": int(time.time() * 1000) - 60_000,
        "seq": index,
        "readings": {},
        "firmware": "f" * 128,
        "site": "s" * 128,
    }
    room = limit - len(encoder.encode(record)) - 1000 * 10  # a reading: length, name, value
    width = min(64, room // 1000)
    names = [f"m{i:0{width - 1}d}" for i in range(1000)]
    return encoder.encode({**record, "readings": dict.fromkeys(names, 1.5)})


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_a_backlog_of_maximal_messages_stays_under_the_rss_bound(
    pipeline: Settings, tmp_path: Path
) -> None:
    encoder = Encoder(load_versions(pipeline.schemas_dir)[-1])
    producer = Producer({"bootstrap.servers": pipeline.kafka_bootstrap_servers})
    for index in range(MESSAGES):
        payload = maximal(encoder, index, pipeline.max_message_bytes)
        assert len(payload) <= pipeline.max_message_bytes
        producer.produce(pipeline.topic, payload, f"big-{index % 50}".encode())
        producer.poll(0)
    assert producer.flush(60) == 0
    workers = Workers(pipeline, 1, tmp_path / "workers.log")
    peak = 0.0
    try:
        assert wait_until(lambda: len(workers.children()) == 1, 30)
        (pid,) = workers.children()
        deadline = time.monotonic() + 240
        while committed(pipeline) != end_offsets(pipeline) and time.monotonic() < deadline:
            peak = max(peak, rss_mb(pid))
            time.sleep(0.2)
    finally:
        assert workers.stop() == 0
    print(f"peak RSS of the worker process: {peak:.0f} MB")
    assert count(pipeline, "SELECT count() FROM readings") == MESSAGES * 1000
    assert 0 < peak < RSS_BOUND_MB
