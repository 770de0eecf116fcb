"""The metric catalogue: every metric streamgauge exports, its type, labels and meaning.

Alert rules, dashboards and autoscalers depend on these names; change them only with them.
Components create their collectors from this table (``counter``, ``gauge`` and ``histogram``
below, or ``spec(name)``), never from literals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

Kind = Literal["counter", "gauge", "histogram"]

MetricName = Literal[
    # -- lag exporter (streamgauge lag-exporter), per group/topic/partition ------------------
    "streamgauge_consumer_lag_messages",  # log end offset minus committed offset, never < 0
    "streamgauge_consumer_lag_seconds",  # age of the message at the committed offset; 0 caught up
    "streamgauge_consumer_status",  # 1 for the current status (OK/WARN/STALL/STOP/REWIND)
    "streamgauge_consumer_group_status",  # 1 for the group's worst partition status
    "streamgauge_partition_end_offset",  # log end offset (next offset to be written)
    "streamgauge_partition_start_offset",  # earliest retained offset
    "streamgauge_consumer_committed_offset",  # committed offset (-1 when never committed)
    "streamgauge_consumer_group_members",  # members of the consumer group
    "streamgauge_lag_exporter_last_refresh_timestamp_seconds",  # Unix time of the last refresh
    "streamgauge_lag_exporter_refresh_duration_seconds",  # how long a refresh took
    "streamgauge_lag_exporter_refresh_errors_total",  # refreshes that failed
    "streamgauge_lag_exporter_kafka_requests_total",  # Kafka requests made by refreshes
    # -- workers (streamgauge worker), per process -------------------------------------------
    "streamgauge_messages_consumed_total",  # messages taken from Kafka
    "streamgauge_readings_stored_total",  # readings acknowledged by ClickHouse
    "streamgauge_messages_dead_lettered_total",  # messages sent to the dead-letter topic, by reason
    "streamgauge_batch_rows",  # readings per insert
    "streamgauge_batch_bytes",  # message bytes per insert
    "streamgauge_insert_partitions",  # partitions whose batches one insert carried
    "streamgauge_insert_duration_seconds",  # one insert attempt, request to acknowledgement
    "streamgauge_end_to_end_delay_seconds",  # event time of a batch's oldest reading to stored
    "streamgauge_send_to_stored_seconds",  # Kafka timestamp of a batch's first message to stored
    "streamgauge_batches_in_flight",  # batches between intent commit and final commit
    "streamgauge_clickhouse_errors_total",  # failed insert attempts, by kind
    "streamgauge_rebalances_total",  # partition assignments and revocations, by kind
    "streamgauge_consumer_paused_seconds_total",  # time partitions were paused (back-pressure)
    "streamgauge_worker_up",  # 1 while the worker process runs
    "streamgauge_partition_halts_total",  # partitions stopped at an offset, by cause
    "streamgauge_batch_refusals_total",  # batches ClickHouse refused for their data, split
    "streamgauge_flush_failures_total",  # failed attempts to store a batch, retried, by kind
    "streamgauge_dead_letter_failures_total",  # dead-letter deliveries that failed, retried
    "streamgauge_resends_total",  # messages dropped as resends of a stored message
    # -- read API (streamgauge api) -----------------------------------------------------------
    "streamgauge_api_requests_total",  # requests by route and status
    "streamgauge_api_request_duration_seconds",  # request latency by route
    "streamgauge_api_cache_hits_total",  # responses served from the short-TTL cache, by route
    "streamgauge_api_cache_misses_total",  # responses computed, by route
]


@dataclass(frozen=True)
class Spec:
    name: MetricName
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()


_PARTITION = ("group", "topic", "partition")

CATALOGUE: dict[MetricName, Spec] = {
    s.name: s
    for s in [
        Spec(
            "streamgauge_consumer_lag_messages",
            "gauge",
            "Log end offset minus committed offset (from the earliest retained offset when "
            "the group never committed).",
            _PARTITION,
        ),
        Spec(
            "streamgauge_consumer_lag_seconds",
            "gauge",
            "Age of the oldest unconsumed message: now minus the timestamp of the message at "
            "the committed offset; 0 when caught up.",
            _PARTITION,
        ),
        Spec(
            "streamgauge_consumer_status",
            "gauge",
            "1 for the partition's current consumer status, 0 for the others.",
            (*_PARTITION, "status"),
        ),
        Spec(
            "streamgauge_consumer_group_status",
            "gauge",
            "1 for the group's current status (its worst partition's), 0 for the others.",
            ("group", "status"),
        ),
        Spec(
            "streamgauge_partition_end_offset",
            "gauge",
            "Log end offset of the partition.",
            ("topic", "partition"),
        ),
        Spec(
            "streamgauge_partition_start_offset",
            "gauge",
            "Earliest offset still retained in the partition.",
            ("topic", "partition"),
        ),
        Spec(
            "streamgauge_consumer_committed_offset",
            "gauge",
            "Committed offset of the group (-1 when it never committed).",
            _PARTITION,
        ),
        Spec(
            "streamgauge_consumer_group_members",
            "gauge",
            "Members of the consumer group.",
            ("group",),
        ),
        Spec(
            "streamgauge_lag_exporter_last_refresh_timestamp_seconds",
            "gauge",
            "Unix time of the lag exporter's last successful refresh.",
        ),
        Spec(
            "streamgauge_lag_exporter_refresh_duration_seconds",
            "gauge",
            "Duration of the lag exporter's last refresh.",
        ),
        Spec(
            "streamgauge_lag_exporter_refresh_errors_total",
            "counter",
            "Lag refreshes that failed.",
        ),
        Spec(
            "streamgauge_lag_exporter_kafka_requests_total",
            "counter",
            "Kafka requests made by lag refreshes, by kind.",
            ("request",),
        ),
        Spec(
            "streamgauge_messages_consumed_total",
            "counter",
            "Messages taken from Kafka.",
            ("topic",),
        ),
        Spec(
            "streamgauge_readings_stored_total",
            "counter",
            "Readings acknowledged by ClickHouse.",
            ("topic",),
        ),
        Spec(
            "streamgauge_messages_dead_lettered_total",
            "counter",
            "Messages sent to the dead-letter topic.",
            ("topic", "reason"),
        ),
        Spec(
            "streamgauge_batch_rows",
            "histogram",
            "Readings per insert (one partition's batch, or several partitions' together).",
        ),
        Spec("streamgauge_batch_bytes", "histogram", "Message bytes per insert."),
        Spec(
            "streamgauge_insert_partitions",
            "histogram",
            "Partitions whose batches one insert carried.",
        ),
        Spec(
            "streamgauge_insert_duration_seconds",
            "histogram",
            "Duration of one insert attempt, from request to acknowledgement.",
        ),
        Spec(
            "streamgauge_end_to_end_delay_seconds",
            "histogram",
            "Delay from the event time of a batch's oldest reading to its acknowledgement.",
        ),
        Spec(
            "streamgauge_send_to_stored_seconds",
            "histogram",
            "Delay from the Kafka timestamp (the producer's send) of a batch's first message to "
            "ClickHouse's acknowledgement of the batch: how long sent data takes to be queryable.",
        ),
        Spec(
            "streamgauge_batches_in_flight",
            "gauge",
            "Batches between their intent commit and their final commit.",
        ),
        Spec(
            "streamgauge_clickhouse_errors_total",
            "counter",
            "Failed insert attempts, by kind (timeout, connection, server code).",
            ("kind",),
        ),
        Spec(
            "streamgauge_rebalances_total",
            "counter",
            "Partition assignments and revocations.",
            ("kind",),
        ),
        Spec(
            "streamgauge_consumer_paused_seconds_total",
            "counter",
            "Seconds partitions spent paused by back-pressure.",
        ),
        Spec("streamgauge_worker_up", "gauge", "1 while the worker process runs.", ("worker",)),
        Spec(
            "streamgauge_partition_halts_total",
            "counter",
            "Times a partition stopped at an offset and was fetched again from it later: "
            "full (back-pressure), registry (unreachable), error (unexpected; see the logs).",
            ("topic", "cause"),
        ),
        Spec(
            "streamgauge_batch_refusals_total",
            "counter",
            "Batches ClickHouse refused for their data, split to find the messages it refuses.",
            ("topic", "kind"),
        ),
        Spec(
            "streamgauge_flush_failures_total",
            "counter",
            "Failed attempts to store a batch (retried, never skipped), by kind.",
            ("topic", "kind"),
        ),
        Spec(
            "streamgauge_dead_letter_failures_total",
            "counter",
            "Dead-letter deliveries that failed and are retried (the partition waits), by kind.",
            ("topic", "kind"),
        ),
        Spec(
            "streamgauge_resends_total",
            "counter",
            "Messages dropped because the same message (device, event time, seq) was stored.",
            ("topic",),
        ),
        Spec(
            "streamgauge_api_requests_total",
            "counter",
            "API requests by route and status.",
            ("route", "method", "status"),
        ),
        Spec(
            "streamgauge_api_request_duration_seconds",
            "histogram",
            "API request latency by route.",
            ("route",),
        ),
        Spec(
            "streamgauge_api_cache_hits_total",
            "counter",
            "Responses served from the short-TTL cache.",
            ("route",),
        ),
        Spec(
            "streamgauge_api_cache_misses_total",
            "counter",
            "Responses computed because the cache had none.",
            ("route",),
        ),
    ]
}


def spec(name: MetricName) -> Spec:
    return CATALOGUE[name]


def counter(registry: CollectorRegistry, name: MetricName) -> Counter:
    """The catalogue's counter ``name``, registered in ``registry``."""
    s = _of_kind(name, "counter")
    return Counter(s.name.removesuffix("_total"), s.help, s.labels, registry=registry)


def gauge(registry: CollectorRegistry, name: MetricName) -> Gauge:
    s = _of_kind(name, "gauge")
    return Gauge(s.name, s.help, s.labels, registry=registry)


def histogram(registry: CollectorRegistry, name: MetricName, buckets: Sequence[float]) -> Histogram:
    s = _of_kind(name, "histogram")
    return Histogram(s.name, s.help, s.labels, registry=registry, buckets=buckets)


def _of_kind(name: MetricName, kind: Kind) -> Spec:
    s = spec(name)
    if s.kind != kind:
        raise TypeError(f"{name} is a {s.kind} in the catalogue, not a {kind}")
    return s
