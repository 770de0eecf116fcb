"""What ``streamgauge worker`` checks before it consumes, against the real engines."""

from __future__ import annotations

import dataclasses

import pytest

from streams.clickhouse import sync_client
from streams.errors import UserError
from streams.settings import Settings
from streams.worker import preflight

pytestmark = pytest.mark.integration


def test_a_migrated_database_passes_and_the_token_names_the_topics_identity(
    pipeline: Settings,
) -> None:
    topic = preflight.describe_topic(pipeline)
    assert topic.partitions == pipeline.topic_partitions
    name, topic_id = topic.token_prefix.split("/", 1)  # a topic id is base64: it may hold a /
    assert name == pipeline.topic
    assert len(topic_id) >= 16, "a recreated topic gets new tokens"
    assert preflight.check(pipeline, sync_client(pipeline), topic) == []


def test_a_window_too_short_for_the_horizon_is_a_warning(pipeline: Settings) -> None:
    topic = preflight.describe_topic(pipeline)
    longer = dataclasses.replace(pipeline, dedup_horizon_seconds=10 * 86_400)
    (warning,) = preflight.check(longer, sync_client(pipeline), topic)[:1]
    assert "deduplication tokens, fewer than the" in warning


def test_deduplication_turned_off_is_refused_in_one_sentence(pipeline: Settings) -> None:
    client = sync_client(pipeline)
    client.command("ALTER TABLE readings_1m MODIFY SETTING non_replicated_deduplication_window = 0")
    with pytest.raises(UserError, match="Insert deduplication is off for table readings_1m"):
        preflight.check(pipeline, client, preflight.describe_topic(pipeline))


def test_a_database_without_the_migrations_is_refused(pipeline: Settings) -> None:
    client = sync_client(pipeline)
    client.command("DROP TABLE device_partitions_mv")
    client.command("DROP TABLE device_partitions")
    with pytest.raises(UserError, match="run `streamgauge migrate up`"):
        preflight.check(pipeline, client, preflight.describe_topic(pipeline))
