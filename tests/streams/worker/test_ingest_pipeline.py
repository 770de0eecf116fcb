"""The ingestion pipeline as deployed, against the real local Kafka and ClickHouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import Settings
from tests.support.fleet import committed, count, end_offsets, produce, stored
from tests.support.workers import Workers, wait_until

pytestmark = pytest.mark.integration


def drained(settings: Settings) -> bool:
    ends = end_offsets(settings)
    return committed(settings) == ends


def test_every_reading_stored_exactly_once_by_two_processes(
    pipeline: Settings, tmp_path: Path
) -> None:
    workers = Workers(pipeline, 2, tmp_path / "workers.log")
    try:
        sent = produce(pipeline, devices=100, messages_per_device=100)
        assert wait_until(lambda: drained(pipeline), 120), workers.output()[-3000:]
    finally:
        assert workers.stop() == 0

    assert count(pipeline, "SELECT count() FROM readings") == sent.readings == 40_000
    assert count(pipeline, "SELECT count() FROM readings FINAL") == 40_000
    assert count(pipeline, "SELECT uniqExact(device_id, metric, seq) FROM readings") == 40_000
    assert count(pipeline, "SELECT sum(count) FROM readings_1m") == 40_000
    latest = {
        (device, metric): value
        for device, metric, value in stored(
            pipeline, "SELECT device_id, metric, value FROM latest FINAL"
        )
    }
    assert latest == sent.last_values()
    assert count(pipeline, "SELECT count() FROM devices FINAL") == 100
