"""Removing what a benchmark run made for itself: its topics and its database."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from streams import migrations
from streams.settings import Settings


def delete_topics(settings: Settings) -> None:
    """Delete ``settings``' topic and dead-letter topic; one already gone is fine."""
    with AdminClient(settings.kafka_config()) as admin:
        for future in admin.delete_topics([settings.topic, settings.dlq_topic]).values():
            try:
                future.result(60)
            except KafkaException as error:
                if error.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise


def discard(settings: Settings) -> None:
    """Drop ``settings``' database and delete its topics: data left behind keeps merging in
    the background and slows down whatever runs next."""
    migrations.drop(settings)
    delete_topics(settings)
