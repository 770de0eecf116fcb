"""The device-side producer on a real broker: what it says was delivered, and what failed."""

from __future__ import annotations

import dataclasses

import pytest

from streams import simulator, topics
from streams.codec import load_versions
from streams.producer import DeliveryFailed, MeasurementProducer
from streams.settings import Settings
from tests.support.fleet import end_offsets
from tests.support.kafka import delete_topics

pytestmark = pytest.mark.integration


def test_every_acknowledged_message_is_counted_delivered_and_is_in_the_topic(
    local_stack: Settings, unique: str
) -> None:
    settings = dataclasses.replace(
        local_stack, topic=f"producer-{unique}", dlq_topic=f"producer-{unique}.dlq"
    )
    topics.create(settings)
    try:
        producer = MeasurementProducer(settings)
        fleet = simulator.Fleet(20, [v.version for v in load_versions(settings.schemas_dir)])
        for i in range(2500):
            device = fleet.devices[i % len(fleet.devices)]
            producer.send(fleet.reading(device, 1_700_000_000_000 + i), device.version)
        producer.flush()
        assert (producer.sent, producer.delivered, producer.failures) == (2500, 2500, [])
        assert sum(end_offsets(settings).values()) == 2500  # a new topic: offsets from 0
    finally:
        delete_topics(settings, settings.topic, settings.dlq_topic)


def test_messages_kafka_never_acknowledged_are_failures_not_deliveries(
    local_stack: Settings, unique: str
) -> None:
    settings = dataclasses.replace(local_stack, topic=f"producer-missing-{unique}")
    producer = MeasurementProducer(settings, extra_config={"message.timeout.ms": 1500})
    fleet = simulator.Fleet(3, [v.version for v in load_versions(settings.schemas_dir)])
    for device in fleet.devices:
        producer.send(fleet.reading(device, 1_700_000_000_000), device.version)
    with pytest.raises(DeliveryFailed) as failure:
        producer.flush(timeout=30)
    assert "3 failed" in str(failure.value)
    assert (producer.sent, producer.delivered, len(producer.failures)) == (3, 0, 3)
