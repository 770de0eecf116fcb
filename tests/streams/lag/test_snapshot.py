"""The /status document: the contract the read API reads (shape, types, aggregation)."""

from __future__ import annotations

import json

from streams.lag.snapshot import status_document
from streams.lag.status import Status
from tests.streams.lag.fakes import REFRESHED_AT, partition, snapshot

CONTRACT_TOP = {
    "refreshed_at",
    "refreshed_at_unix",
    "refresh_seconds",
    "healthy",
    "error",
    "groups",
}
CONTRACT_GROUP = {"group", "state", "members", "status", "topics"}
CONTRACT_TOPIC = {"topic", "lag_messages", "lag_seconds", "partitions"}
CONTRACT_PARTITION = {
    "partition",
    "start_offset",
    "end_offset",
    "committed_offset",
    "lag_messages",
    "lag_seconds",
    "status",
}


def test_the_document_has_every_field_of_the_contract_with_its_type() -> None:
    document = status_document(snapshot(partition(0), partition(1, lag=2)), None, 5.0)
    assert document.keys() >= CONTRACT_TOP
    assert document["refreshed_at"] == "2026-11-26T05:00:00.123Z"
    assert document["refreshed_at_unix"] == 1795669200.123
    assert document["refresh_seconds"] == 0.05
    assert (document["healthy"], document["error"]) == (True, None)
    (group,) = document["groups"]
    assert group.keys() >= CONTRACT_GROUP
    assert (group["group"], group["state"], group["members"], group["status"]) == (
        "streamgauge-ingest",
        "Stable",
        2,
        "OK",
    )
    (topic,) = group["topics"]
    assert topic.keys() >= CONTRACT_TOPIC
    assert (topic["topic"], topic["lag_messages"], topic["lag_seconds"]) == (
        "measurements",
        12,
        0.5,
    )
    first = topic["partitions"][0]
    assert first.keys() >= CONTRACT_PARTITION
    assert first == first | {
        "partition": 0,
        "start_offset": 0,
        "end_offset": 100,
        "committed_offset": 90,
        "lag_messages": 10,
        "lag_seconds": 0.5,
        "status": "OK",
    }
    json.dumps(document, allow_nan=False)


def test_a_failed_refresh_keeps_the_last_good_data_and_says_why() -> None:
    error = "Reading lag from Kafka failed: Local: Timed out."
    document = status_document(snapshot(partition(0)), error, 5.0)
    assert (document["healthy"], document["error"]) == (False, error)
    assert document["refreshed_at_unix"] == 1795669200.123
    assert document["groups"][0]["topics"][0]["lag_messages"] == 10


def test_before_the_first_refresh_there_is_no_data_and_no_health() -> None:
    document = status_document(None, "The first lag refresh has not completed yet.", 5.0)
    assert document["healthy"] is False
    assert (document["refreshed_at"], document["refreshed_at_unix"], document["groups"]) == (
        None,
        None,
        [],
    )


def test_a_group_reports_its_worst_partition_status() -> None:
    document = status_document(
        snapshot(partition(0), partition(1, status=Status.STALL), partition(2, status=Status.WARN)),
        None,
        5.0,
    )
    assert document["groups"][0]["status"] == "STALL"


def test_topic_lag_seconds_is_the_oldest_partition_and_unknown_if_one_is_unknown() -> None:
    known = status_document(
        snapshot(partition(0, seconds=0.5), partition(1, seconds=7.25)), None, 5
    )
    assert known["groups"][0]["topics"][0]["lag_seconds"] == 7.25
    unknown = status_document(snapshot(partition(0), partition(1, seconds=None)), None, 5.0)
    topic = unknown["groups"][0]["topics"][0]
    assert topic["lag_seconds"] is None
    assert topic["partitions"][1]["lag_seconds"] is None


def test_a_never_committed_partition_has_a_null_committed_offset() -> None:
    document = status_document(snapshot(partition(0, lag=100, committed=None)), None, 5.0)
    entry = document["groups"][0]["topics"][0]["partitions"][0]
    assert (entry["committed_offset"], entry["lag_messages"]) == (None, 100)


def test_lag_seconds_is_the_oldest_messages_age_when_the_document_is_made() -> None:
    waiting = partition(0, seconds=30.0, oldest=REFRESHED_AT - 30.0)
    caught_up = partition(1, lag=0, seconds=0.0)
    document = status_document(snapshot(waiting, caught_up), None, 5.0, REFRESHED_AT + 4.0)
    topic = document["groups"][0]["topics"][0]
    assert [p["lag_seconds"] for p in topic["partitions"]] == [34.0, 0.0]
    assert topic["partitions"][0]["oldest_unconsumed_at_unix"] == round(REFRESHED_AT - 30.0, 3)
    assert topic["partitions"][1]["oldest_unconsumed_at_unix"] is None
    assert (topic["lag_seconds"], document["groups"][0]["lag_seconds"]) == (34.0, 34.0)
    assert document["lag_at_unix"] == round(REFRESHED_AT + 4.0, 3)
