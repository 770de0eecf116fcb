"""The Prometheus view of the last refresh: series per partition, gone when a partition is."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.lag.collector import LagCollector
from streams.lag.requests import RequestTotals
from streams.lag.state import ExporterState
from streams.lag.status import Status
from streams.metrics import CATALOGUE
from tests.streams.lag.fakes import REFRESHED_AT, partition, snapshot


def scrape(state: ExporterState) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    registry = CollectorRegistry()
    registry.register(LagCollector(state, RequestTotals()))
    text = generate_latest(registry).decode()
    series: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return series


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def test_every_partition_gets_its_lag_offsets_and_one_hot_status() -> None:
    state = ExporterState(5.0)
    state.succeeded(snapshot(partition(0), partition(1, lag=3, status=Status.STALL)))
    series = scrape(state)
    p1 = labels(group="streamgauge-ingest", topic="measurements", partition="1")
    assert series["streamgauge_consumer_lag_messages"][p1] == 3
    assert series["streamgauge_consumer_lag_seconds"][p1] == 0.5
    assert series["streamgauge_consumer_committed_offset"][p1] == 90
    assert series["streamgauge_partition_end_offset"][labels(topic="measurements", partition="1")]
    one_hot = {
        dict(key)["status"]: value
        for key, value in series["streamgauge_consumer_status"].items()
        if dict(key)["partition"] == "1"
    }
    assert one_hot == {"OK": 0, "WARN": 0, "UNKNOWN": 0, "REWIND": 0, "STALL": 1, "STOP": 0}
    group = series["streamgauge_consumer_group_status"]
    assert group[labels(group="streamgauge-ingest", status="STALL")] == 1
    assert series["streamgauge_consumer_group_members"][labels(group="streamgauge-ingest")] == 2
    assert series["streamgauge_lag_exporter_last_refresh_timestamp_seconds"][()] == REFRESHED_AT


def test_series_of_a_vanished_partition_disappear() -> None:
    state = ExporterState(5.0)
    state.succeeded(snapshot(partition(0), partition(1)))
    assert len(scrape(state)["streamgauge_consumer_lag_messages"]) == 2
    state.succeeded(snapshot(partition(0)))
    series = scrape(state)
    assert len(series["streamgauge_consumer_lag_messages"]) == 1
    assert len(series["streamgauge_consumer_status"]) == len(Status)


def test_unknown_seconds_are_nan_and_never_committed_is_minus_one() -> None:
    state = ExporterState(5.0)
    state.succeeded(snapshot(partition(0, seconds=None, committed=None)))
    series = scrape(state)
    p0 = labels(group="streamgauge-ingest", topic="measurements", partition="0")
    assert math.isnan(series["streamgauge_consumer_lag_seconds"][p0])
    assert series["streamgauge_consumer_committed_offset"][p0] == -1


def test_before_the_first_refresh_only_the_exporter_series_exist() -> None:
    series = scrape(ExporterState(5.0))
    assert "streamgauge_consumer_lag_messages" not in series
    assert series["streamgauge_lag_exporter_last_refresh_timestamp_seconds"][()] == 0


def test_a_failed_refresh_is_counted_and_the_last_data_stays() -> None:
    state = ExporterState(5.0)
    state.succeeded(snapshot(partition(0)))
    state.failed("Reading lag from Kafka failed: Local: Timed out.", 10.0)
    series = scrape(state)
    assert series["streamgauge_lag_exporter_refresh_errors_total"][()] == 1
    assert series["streamgauge_lag_exporter_refresh_duration_seconds"][()] == 10.0
    assert len(series["streamgauge_consumer_lag_messages"]) == 1


def test_every_exported_name_is_in_the_catalogue() -> None:
    state = ExporterState(5.0)
    state.succeeded(snapshot(partition(0)))
    names = {name.removesuffix("_total") for name in scrape(state)}
    assert names <= {name.removesuffix("_total") for name in CATALOGUE}


def test_lag_seconds_is_the_oldest_messages_age_at_the_scrape() -> None:
    now = [REFRESHED_AT + 1.0]
    state = ExporterState(5.0, clock=lambda: now[0])
    state.succeeded(snapshot(partition(0, seconds=25.0, oldest=REFRESHED_AT - 25.0)))
    p0 = labels(group="streamgauge-ingest", topic="measurements", partition="0")
    assert scrape(state)["streamgauge_consumer_lag_seconds"][p0] == 26.0
    now[0] += 4.0  # no refresh in between
    assert scrape(state)["streamgauge_consumer_lag_seconds"][p0] == 30.0
