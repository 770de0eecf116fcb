"""A worker process's metrics, served on its own port (``STREAMGAUGE_WORKER_METRICS_PORT`` + i).

One port per process rather than prometheus-client's multiprocess mode: processes share
nothing (not even a metrics directory), a restarted process starts clean instead of leaving
stale files, and in Kubernetes a pod runs one process anyway. Counters are updated once per
poll or per batch, never per message, so the hot path stays cheap.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
)

from streams.metrics import MetricName, counter, gauge, histogram
from streams.reasons import REASONS

log = logging.getLogger(__name__)

_BUCKETS: dict[MetricName, tuple[float, ...]] = {
    "streamgauge_batch_rows": (
        100,
        1_000,
        5_000,
        10_000,
        25_000,
        50_000,
        100_000,
        250_000,
        500_000,
    ),
    "streamgauge_batch_bytes": tuple(2.0**p for p in range(14, 28, 2)),
    "streamgauge_insert_partitions": (1, 2, 4, 8, 16, 32, 64, 150),
    "streamgauge_insert_duration_seconds": (
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1,
        2.5,
        5,
        10,
        30,
        60,
    ),
    "streamgauge_send_to_stored_seconds": (
        0.05,
        0.1,
        0.25,
        0.5,
        0.75,
        1,
        1.5,
        2,
        5,
        10,
        30,
        60,
        300,
    ),
    "streamgauge_end_to_end_delay_seconds": (
        0.25,
        0.5,
        1,
        2,
        5,
        10,
        30,
        60,
        120,
        300,
        900,
        3600,
    ),
}


class WorkerMetrics:
    """Every metric one worker process exports."""

    def __init__(self, topic: str, worker: int) -> None:
        self.registry = registry = CollectorRegistry()
        self.consumed = counter(registry, "streamgauge_messages_consumed_total").labels(topic)
        self.stored = counter(registry, "streamgauge_readings_stored_total").labels(topic)
        self._dead_lettered = counter(registry, "streamgauge_messages_dead_lettered_total")
        for reason in REASONS:  # present from the start, so increase() sees the first one
            self._dead_lettered.labels(topic, reason)
        self.topic = topic
        self.batch_rows = histogram(
            registry, "streamgauge_batch_rows", _BUCKETS["streamgauge_batch_rows"]
        )
        self.batch_bytes = histogram(
            registry, "streamgauge_batch_bytes", _BUCKETS["streamgauge_batch_bytes"]
        )
        self.insert_partitions = histogram(
            registry, "streamgauge_insert_partitions", _BUCKETS["streamgauge_insert_partitions"]
        )
        self.insert_duration = histogram(
            registry,
            "streamgauge_insert_duration_seconds",
            _BUCKETS["streamgauge_insert_duration_seconds"],
        )
        self.delay = histogram(
            registry,
            "streamgauge_end_to_end_delay_seconds",
            _BUCKETS["streamgauge_end_to_end_delay_seconds"],
        )
        self.send_to_stored = histogram(
            registry,
            "streamgauge_send_to_stored_seconds",
            _BUCKETS["streamgauge_send_to_stored_seconds"],
        )
        self.in_flight = gauge(registry, "streamgauge_batches_in_flight")
        self._errors = counter(registry, "streamgauge_clickhouse_errors_total")
        self._rebalances = counter(registry, "streamgauge_rebalances_total")
        self.paused = counter(registry, "streamgauge_consumer_paused_seconds_total")
        self._halts = counter(registry, "streamgauge_partition_halts_total")
        for cause in ("full", "registry", "error"):  # present from the start, for increase()
            self._halts.labels(topic, cause)
        self._refusals = counter(registry, "streamgauge_batch_refusals_total")
        self._flush_failures = counter(registry, "streamgauge_flush_failures_total")
        self._dead_letter_failures = counter(registry, "streamgauge_dead_letter_failures_total")
        self.resends = counter(registry, "streamgauge_resends_total").labels(topic)
        gauge(registry, "streamgauge_worker_up").labels(str(worker)).set(1)

    def dead_lettered(self, reason: str) -> None:
        self._dead_lettered.labels(self.topic, reason).inc()

    def halted(self, cause: str) -> None:
        self._halts.labels(self.topic, cause).inc()

    def batch_refused(self, kind: str) -> None:
        self._refusals.labels(self.topic, kind).inc()

    def flush_failed(self, kind: str) -> None:
        self._flush_failures.labels(self.topic, kind).inc()

    def dead_letter_failure(self, kind: str) -> None:
        self._dead_letter_failures.labels(self.topic, kind).inc()

    def clickhouse_error(self, kind: str) -> None:
        self._errors.labels(kind).inc()

    def rebalance(self, kind: str) -> None:
        self._rebalances.labels(kind).inc()

    def batch_stored(
        self,
        rows: int,
        size_bytes: int,
        oldest_event_ms: int | None,
        sent_ms: int | None = None,
        partitions: int = 1,
    ) -> None:
        """An insert acknowledged: its readings, size, oldest event time, first message's
        Kafka timestamp (None where unknown) and the partitions whose batches it carried."""
        now = time.time()
        self.stored.inc(rows)
        self.batch_rows.observe(rows)
        self.batch_bytes.observe(size_bytes)
        self.insert_partitions.observe(partitions)
        if oldest_event_ms is not None:
            self.delay.observe(max(0.0, now - oldest_event_ms / 1000))
        if sent_ms is not None:
            self.send_to_stored.observe(max(0.0, now - sent_ms / 1000))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


async def serve(metrics: WorkerMetrics, host: str, port: int) -> web.AppRunner | None:
    """Serve /metrics; a taken port is logged, not fatal (ingestion matters more)."""

    async def handle(_request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        log.error(
            "worker metrics: cannot listen on %s:%d (%s); metrics are not served", host, port, error
        )
        await runner.cleanup()
        return None
    log.info("worker metrics on http://%s:%d/metrics", host, port)
    return runner
