"""What a worker checks before it consumes: the topic's identity, the tables it writes, and that
ClickHouse's insert deduplication covers the time within which a batch may be inserted again.

A problem the worker cannot work around is a :class:`UserError` (one sentence, what to do);
one it can live with is a warning.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client
from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from streams.errors import UserError
from streams.kafka_reach import check_tls
from streams.settings import Settings
from streams.worker.dlq import HEADER_ROOM

# Tables an insert into readings writes (directly or through materialized views).
DEDUPLICATED = ("readings", "latest", "readings_1m", "devices")
# Tables of later migrations the worker reads or writes (resend checks, dead letters, the Avro
# insert path).
REQUIRED = ("device_partitions", "dead_letters", "readings_input")
_WINDOW = re.compile(r"\b(?:non_)?replicated_deduplication_window\s*=\s*(\d+)")


@dataclass(frozen=True)
class Topic:
    """The measurements topic as the workers see it."""

    token_prefix: str  # name and id: a recreated topic's offsets get new tokens
    partitions: int


def describe_topic(settings: Settings) -> Topic:
    with AdminClient({**settings.kafka_config(), "socket.timeout.ms": 10_000}) as admin:
        future = admin.describe_topics(TopicCollection([settings.topic]), request_timeout=15)
        try:
            description = future[settings.topic].result()
        except KafkaException as error:
            check_tls(settings)  # a TLS fault is the reason: say that one
            raise UserError(
                f"Cannot describe topic {settings.topic} at {settings.kafka_bootstrap_servers} "
                f"({error.args[0].str()}); start Kafka and run `streamgauge topics create`."
            ) from None
    return Topic(f"{settings.topic}/{description.topic_id}", len(description.partitions))


def check(settings: Settings, client: Client, topic: Topic) -> list[str]:
    """Refuse to run without the tables or without deduplication; warnings for the rest."""
    columns = {row[0] for row in client.query("DESCRIBE TABLE readings").result_rows}
    tables: dict[str, str] = dict(
        (str(name), str(engine))
        for name, engine in client.query(
            "SELECT name, engine_full FROM system.tables "
            "WHERE database = currentDatabase() AND name IN {names:Array(String)}",
            parameters={"names": [*DEDUPLICATED, *REQUIRED]},
        ).result_rows
    )
    if "source_offset" not in columns or {*DEDUPLICATED, *REQUIRED} - set(tables):
        raise UserError(
            f"Database {settings.clickhouse_database} is missing migrations the worker needs; "
            "run `streamgauge migrate up`."
        )
    needed = deduplication_needed(settings, topic.partitions)
    warnings = []
    for name in DEDUPLICATED:
        match = _WINDOW.search(str(tables[name]))
        window = int(match.group(1)) if match else 0
        if window == 0:
            raise UserError(
                f"Insert deduplication is off for table {name} (no deduplication window), so a "
                "replayed batch would be stored twice; run `streamgauge migrate up`."
            )
        if window < needed:
            warnings.append(
                f"table {name} keeps {window} deduplication tokens, fewer than the {needed} "
                f"inserted by {topic.partitions} partitions in "
                f"STREAMGAUGE_DEDUP_HORIZON_SECONDS={settings.dedup_horizon_seconds:.0f}: "
                "raise its window (ALTER TABLE ... MODIFY SETTING)."
            )
    return warnings + _dead_letter_limit(settings)


def deduplication_needed(settings: Settings, partitions: int) -> int:
    """Inserts within the horizon: a caught-up partition inserts every linger period."""
    per_second = 1.0 / max(settings.batch_linger_seconds, 0.01)
    return math.ceil(partitions * per_second * settings.dedup_horizon_seconds)


def _dead_letter_limit(settings: Settings) -> list[str]:
    resources = [
        ConfigResource(ResourceType.TOPIC, t) for t in (settings.topic, settings.dlq_topic)
    ]
    try:
        with AdminClient({**settings.kafka_config(), "socket.timeout.ms": 10_000}) as admin:
            source, dlq = (
                int(admin.describe_configs([r])[r].result(15)["max.message.bytes"].value)
                for r in resources
            )
    except (KafkaException, KeyError, ValueError) as error:
        return [f"could not read the topics' max.message.bytes ({error})"]
    if dlq < source + HEADER_ROOM or settings.dlq_max_message_bytes < source + HEADER_ROOM:
        return [
            f"{settings.dlq_topic} takes {dlq} bytes per message, the workers produce up to "
            f"{settings.dlq_max_message_bytes}, {settings.topic} holds up to {source}: larger "
            "dead letters go to ClickHouse's dead_letters table; raise the dead-letter topic's "
            "max.message.bytes (and STREAMGAUGE_DLQ_MAX_MESSAGE_BYTES) to keep them in Kafka."
        ]
    return []
