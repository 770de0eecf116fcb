"""Counting Kafka requests from librdkafka's cumulative statistics."""

from __future__ import annotations

import json

from streams.lag.requests import RequestStats, RequestTotals


def stats(client: str, brokers: dict[str, dict[str, int]], unnamed: int = 0) -> str:
    """Statistics where each broker sent the requests ``req`` names, plus ``unnamed``."""
    sent = {b: {"req": req, "tx": sum(req.values()) + unnamed} for b, req in brokers.items()}
    return json.dumps({"name": client, "brokers": sent})


def test_increments_add_up_over_every_client_and_broker() -> None:
    requests = RequestStats()
    requests.on_stats(stats("admin", {"b1": {"ListOffsets": 2, "Metadata": 1, "Fetch": 0}}))
    requests.on_stats(stats("consumer", {"b1": {"Fetch": 3}, "b2": {"Fetch": 1}}))
    requests.on_stats(stats("admin", {"b1": {"ListOffsets": 4, "Metadata": 1}}))
    assert requests.drain() == {"Fetch": 4, "ListOffsets": 4, "Metadata": 1}
    requests.on_stats(stats("admin", {"b1": {"ListOffsets": 6, "Metadata": 1}}))
    assert requests.drain() == {"ListOffsets": 2}


def test_a_counter_that_starts_over_counts_from_zero() -> None:
    requests = RequestStats()
    requests.on_stats(stats("admin", {"b1": {"Metadata": 5}}))
    requests.on_stats(stats("admin", {"b1": {"Metadata": 2}}))
    assert requests.drain() == {"Metadata": 7}


def test_totals_accumulate_drained_increments() -> None:
    totals = RequestTotals()
    totals.add({"Fetch": 2})
    totals.add({"Fetch": 1, "Metadata": 1})
    assert totals.totals() == {"Fetch": 3, "Metadata": 1}


def test_requests_the_breakdown_does_not_name_are_counted_as_other() -> None:
    requests = RequestStats()
    requests.on_stats(stats("admin", {"b1": {"Metadata": 1}}, unnamed=1))
    requests.on_stats(stats("admin", {"b1": {"Metadata": 1}}, unnamed=3))
    assert requests.drain() == {"Metadata": 1, "Other": 3}
