"""The exporter's Prometheus metrics, built from the last published refresh at each scrape.

A custom collector rather than long-lived gauges: the series are exactly the partitions of
the last successful refresh, so those of deleted topics or vanished groups disappear. Lag in
seconds is the oldest unconsumed message's age at the scrape, not at the refresh.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.lag.requests import RequestTotals
from streams.lag.snapshot import Snapshot
from streams.lag.state import ExporterState
from streams.lag.status import Status
from streams.metrics import MetricName, spec


def gauge(name: MetricName) -> GaugeMetricFamily:
    s = spec(name)
    return GaugeMetricFamily(name, s.help, labels=s.labels)


def counter(name: MetricName) -> CounterMetricFamily:
    s = spec(name)
    return CounterMetricFamily(name, s.help, labels=s.labels)


class LagCollector(Collector):
    """Lag, offsets and statuses per group and partition; the exporter's own health."""

    def __init__(self, state: ExporterState, requests: RequestTotals) -> None:
        self._state = state
        self._requests = requests

    def collect(self) -> Iterator[Metric]:
        snapshot = self._state.snapshot
        if snapshot is not None:
            yield from _partitions(snapshot, self._state.clock())
            yield from _groups(snapshot)
        yield from self._exporter(snapshot)

    def _exporter(self, snapshot: Snapshot | None) -> Iterator[Metric]:
        last = gauge("streamgauge_lag_exporter_last_refresh_timestamp_seconds")
        last.add_metric([], snapshot.refreshed_at if snapshot else 0.0)
        duration = gauge("streamgauge_lag_exporter_refresh_duration_seconds")
        duration.add_metric([], self._state.last_duration)
        errors = counter("streamgauge_lag_exporter_refresh_errors_total")
        errors.add_metric([], self._state.failures)
        requests = counter("streamgauge_lag_exporter_kafka_requests_total")
        for api, count in self._requests.totals().items():
            requests.add_metric([api], count)
        yield from (last, duration, errors, requests)


def _partitions(snapshot: Snapshot, now: float) -> Iterator[Metric]:
    messages = gauge("streamgauge_consumer_lag_messages")
    seconds = gauge("streamgauge_consumer_lag_seconds")
    committed = gauge("streamgauge_consumer_committed_offset")
    status = gauge("streamgauge_consumer_status")
    start = gauge("streamgauge_partition_start_offset")
    end = gauge("streamgauge_partition_end_offset")
    seen: set[tuple[str, str]] = set()
    for group in snapshot.groups:
        for topic in group.topics:
            for p in topic.partitions:
                labels = [group.group, topic.topic, str(p.partition)]
                # Unknown (offline partition): NaN, never a made-up 0.
                messages.add_metric(labels, math.nan if p.lag_messages is None else p.lag_messages)
                age = p.seconds_at(now)
                seconds.add_metric(labels, math.nan if age is None else age)
                offset = p.committed_offset
                committed.add_metric(labels, -1 if offset is None else offset)
                for s in Status:
                    status.add_metric([*labels, s.value], 1.0 if p.status is s else 0.0)
                if (topic.topic, labels[2]) not in seen and p.end_offset is not None:
                    seen.add((topic.topic, labels[2]))
                    start.add_metric(labels[1:], p.start_offset or 0)
                    end.add_metric(labels[1:], p.end_offset)
    yield from (messages, seconds, committed, status, start, end)


def _groups(snapshot: Snapshot) -> Iterator[Metric]:
    members = gauge("streamgauge_consumer_group_members")
    status = gauge("streamgauge_consumer_group_status")
    for group in snapshot.groups:
        members.add_metric([group.group], group.members)
        for s in Status:
            status.add_metric([group.group, s.value], 1.0 if group.status is s else 0.0)
    yield from (members, status)
