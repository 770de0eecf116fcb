"""``topics create``: idempotent, and a mismatch is explained rather than failing obscurely."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import pytest

from streams import topics
from streams.errors import UserError
from streams.settings import Settings
from tests.support.kafka import delete_topics

pytestmark = pytest.mark.integration


def test_create_is_idempotent_and_explains_a_mismatch(local_stack: Settings, unique: str) -> None:
    settings = dataclasses.replace(
        local_stack, topic=f"topics-{unique}", dlq_topic=f"topics-{unique}.dlq", topic_partitions=3
    )
    try:
        first = topics.create(settings)
        assert first[0].startswith(f"topics-{unique}: created with 3 partitions")
        again = topics.create(dataclasses.replace(settings, topic_retention_hours=1))
        assert again[0].startswith(f"topics-{unique}: exists with 3 partitions")
        assert "retention.ms=604800000 (configured 3600000)" in again[0]
        with pytest.raises(UserError) as error:
            topics.create(dataclasses.replace(settings, topic_partitions=6))
        assert "exists with 3 partitions, fewer than the 6 configured" in str(error.value)
    finally:
        delete_topics(settings, settings.topic, settings.dlq_topic)


def test_two_creates_at_once_both_succeed_and_agree(local_stack: Settings, unique: str) -> None:
    # Two deployments starting together (or a broker's metadata behind its controller's): the
    # one whose create finds the topic made meanwhile reports it as existing, not as a failure.
    settings = dataclasses.replace(
        local_stack, topic=f"race-{unique}", dlq_topic=f"race-{unique}.dlq", topic_partitions=3
    )
    try:
        with ThreadPoolExecutor(4) as pool:
            reports = list(pool.map(lambda _: topics.create(settings), range(4)))
        for name in (settings.topic, settings.dlq_topic):
            lines = [line for report in reports for line in report if line.startswith(f"{name}:")]
            assert len(lines) == 4, reports
            created = [line for line in lines if "created with" in line]
            assert len(created) == 1, reports
            partitions = 3 if name == settings.topic else 1
            assert sum(f"exists with {partitions} partitions" in line for line in lines) == 3
    finally:
        delete_topics(settings, settings.topic, settings.dlq_topic)
