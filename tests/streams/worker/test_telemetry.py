"""A worker's /metrics: every catalogue metric it owns, valid for Prometheus (promtool)."""

from __future__ import annotations

import shutil
import subprocess
import time

from streams.metrics import CATALOGUE
from streams.worker.telemetry import WorkerMetrics

WORKER_METRICS = [
    "streamgauge_messages_consumed_total",
    "streamgauge_readings_stored_total",
    "streamgauge_messages_dead_lettered_total",
    "streamgauge_batch_rows",
    "streamgauge_batch_bytes",
    "streamgauge_insert_partitions",
    "streamgauge_insert_duration_seconds",
    "streamgauge_end_to_end_delay_seconds",
    "streamgauge_send_to_stored_seconds",
    "streamgauge_batches_in_flight",
    "streamgauge_clickhouse_errors_total",
    "streamgauge_rebalances_total",
    "streamgauge_consumer_paused_seconds_total",
    "streamgauge_worker_up",
]


def test_the_exposition_passes_promtool_and_names_every_worker_metric() -> None:
    metrics = WorkerMetrics("measurements", 0)
    metrics.consumed.inc(10)
    metrics.dead_lettered("not_avro")
    metrics.batch_stored(400, 9000, 1_795_670_400_000, int(time.time() * 1000) - 300, 3)
    metrics.insert_duration.observe(0.12)
    metrics.clickhouse_error("code_252")
    metrics.rebalance("assigned")
    metrics.paused.inc(1.5)
    text = metrics.exposition().decode()

    assert shutil.which("promtool"), "no promtool: run scripts/ensure-tools.sh"
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for name in WORKER_METRICS:
        assert name in CATALOGUE
        assert name.removesuffix("_total") in text, name
    assert (
        'streamgauge_messages_dead_lettered_total{reason="invalid_seq",topic="measurements"} 0.0'
        in text
    )
    # sent 300 ms before its acknowledgement
    assert 'streamgauge_insert_partitions_bucket{le="2.0"} 0.0' in text
    assert 'streamgauge_insert_partitions_bucket{le="4.0"} 1.0' in text
    assert 'streamgauge_send_to_stored_seconds_bucket{le="0.25"} 0.0' in text
    assert 'streamgauge_send_to_stored_seconds_bucket{le="0.5"} 1.0' in text
