"""Lag arithmetic of one partition: messages, the oldest unconsumed offset, its age."""

from __future__ import annotations

import pytest

from streams.lag.backlog import Backlog


def test_lag_is_end_minus_committed_and_the_oldest_is_at_the_committed_offset() -> None:
    backlog = Backlog(start=0, end=100, committed=90)
    assert (backlog.messages, backlog.oldest) == (10, 90)


def test_a_caught_up_group_has_no_oldest_message_and_zero_seconds() -> None:
    backlog = Backlog(start=0, end=100, committed=100)
    assert (backlog.messages, backlog.oldest) == (0, None)
    assert backlog.seconds(now=2000.0, oldest_timestamp_ms=1_000_000) == 0.0


def test_a_never_committed_partition_counts_the_whole_retained_backlog() -> None:
    backlog = Backlog(start=40, end=100, committed=None)
    assert (backlog.messages, backlog.oldest) == (60, 40)


def test_a_committed_offset_lost_to_retention_counts_from_it_but_ages_from_the_earliest() -> None:
    backlog = Backlog(start=40, end=100, committed=10)
    assert backlog.messages == 90  # as kafka-consumer-groups prints it
    assert backlog.oldest == 40  # where auto.offset.reset=earliest resumes


def test_lag_is_never_negative() -> None:
    backlog = Backlog(start=0, end=100, committed=150)  # e.g. a topic recreated
    assert (backlog.messages, backlog.oldest) == (0, None)


def test_everything_deleted_leaves_lag_in_messages_but_nothing_to_wait_for() -> None:
    backlog = Backlog(start=100, end=100, committed=10)
    assert (backlog.messages, backlog.oldest) == (90, None)
    assert backlog.seconds(now=2000.0, oldest_timestamp_ms=None) == 0.0


def test_seconds_is_the_age_of_the_oldest_message_at_the_refresh() -> None:
    backlog = Backlog(start=0, end=100, committed=90)
    assert backlog.seconds(now=1030.5, oldest_timestamp_ms=1_000_000) == pytest.approx(30.5)
    assert backlog.seconds(now=999.0, oldest_timestamp_ms=1_000_000) == 0.0  # producer clock ahead
    assert backlog.seconds(now=1030.0, oldest_timestamp_ms=None) == 0.0  # only markers follow
