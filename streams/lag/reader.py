"""What one refresh asks Kafka: offsets, then the timestamps of the oldest unconsumed messages."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from streams.kafka_reach import unreachable
from streams.lag.backlog import backlogs
from streams.lag.offsets import OffsetReader, Offsets
from streams.lag.requests import RequestStats
from streams.lag.timestamps import CONSUMER_CONFIG, Position, TimestampReader
from streams.settings import Settings

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10.0  # seconds one Kafka call may take before the refresh fails


@dataclass(frozen=True)
class Reading:
    """What Kafka said in one refresh."""

    at: float  # Unix time just before the offsets were read
    offsets: Offsets
    timestamps: dict[Position, int | None]  # see TimestampReader.read
    fetched: int  # positions whose timestamp was read from Kafka (the others were cached)
    requests: dict[str, int]  # Kafka requests counted since the previous reading, by API


class KafkaReader:
    """Owns the exporter's Kafka clients: an admin client and a consumer outside any group.

    Not thread-safe (the consumer is not): one thread calls ``read`` and ``close``.
    """

    def __init__(
        self, settings: Settings, groups: Sequence[str], stats_interval_ms: int = 1000
    ) -> None:
        self.groups = list(groups)
        self.requests = RequestStats()
        config: dict[str, Any] = {
            **settings.kafka_config(),
            "client.id": "streamgauge-lag-exporter",
            "statistics.interval.ms": stats_interval_ms,
            "stats_cb": self.requests.on_stats,
            # librdkafka logs errors itself; a refresh they break is reported once, as such
            "error_cb": lambda error: log.debug("kafka: %s", error.str()),
        }
        self._clients = contextlib.ExitStack()
        self._admin = self._clients.enter_context(AdminClient(config))
        self._consumer = Consumer({**config, **CONSUMER_CONFIG})
        self._offsets = OffsetReader(self._admin, REQUEST_TIMEOUT)
        self._timestamps = TimestampReader(self._consumer, REQUEST_TIMEOUT, time.monotonic)
        self._required = {settings.consumer_group: [settings.topic]}

    def read(self) -> Reading:
        at = time.time()
        offsets = self._offsets.read(self.groups, self._required)
        positions = {
            Position(p.topic, p.partition, b.oldest)
            for (_, p), b in backlogs(offsets).items()
            if b.oldest is not None
        }
        timestamps = self._timestamps.read(positions, offsets.topic_ids)
        self.serve_callbacks()
        return Reading(at, offsets, timestamps, self._timestamps.fetched, self.requests.drain())

    def serve_callbacks(self, timeout: float = 0.0) -> None:
        """Deliver the clients' statistics (request counts) and error callbacks."""
        self._admin.poll(timeout)
        self._consumer.poll(0)

    def interrupt(self) -> None:
        """Reads in this process end by their own timeouts."""

    def close(self) -> None:
        self._consumer.close()
        # Destroyed here, not by a garbage collection: one run by a callback on the client's
        # own thread (an answer to a request it still waited for) aborts the process.
        self._clients.close()


def check_reachable(settings: Settings, timeout: float = REQUEST_TIMEOUT) -> None:
    """Raise a UserError unless Kafka answers within ``timeout``; fails fast when refused."""
    refused = threading.Event()

    def on_error(error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            refused.set()

    # A client of its own, silent: the user gets one sentence, not librdkafka's retries.
    config: dict[str, Any] = {**settings.kafka_config(), "log_level": 0, "error_cb": on_error}
    with AdminClient(config) as admin:  # destroyed here, whatever it still waits for
        future = admin.describe_cluster(request_timeout=timeout)
        deadline = time.monotonic() + timeout
        while not future.done() and not refused.is_set() and time.monotonic() < deadline:
            admin.poll(0.1)
        if future.done() and future.exception() is None:
            return
        if refused.is_set() or not future.done():
            reason = "no broker answered" if refused.is_set() else "timed out"
        else:
            error = future.exception()
            reason = describe(error) if isinstance(error, KafkaException) else str(error)
    raise unreachable(settings, reason)


def describe(error: KafkaException) -> str:
    """A KafkaException as a short phrase, e.g. 'ConsumerGroupDescribe: NOT_COORDINATOR'."""
    reason = error.args[0] if error.args else error
    if not isinstance(reason, KafkaError):
        return str(reason)
    text = reason.str().strip()
    if not text or text.endswith(":"):
        text = f"{text} {reason.name()}".strip()
    return text.rstrip(".")
