"""The worker process's Faust app: a poller service feeding the ``ingest`` agent.

Faust runs the process: its service tree, start-up and shutdown, signal handling and the
agent. Kafka is read by streamgauge's own librdkafka consumer (streams/source.py), not by
Faust's per-event stream: on this hardware Faust's stream path moves ~14k messages/s, a
librdkafka consumer over 1M/s (docs/design/worker.md). The poller hands the agent whole polls,
so Faust's per-event cost is paid once per poll, not once per message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from aiohttp import web
from clickhouse_connect.driver.asyncclient import AsyncClient
from confluent_kafka import Message
from faust.app.base import BootStrategy
from mode import Service

from streams.clickhouse import async_client
from streams.codec import Decoder, load_versions
from streams.dlq import DeadLetters
from streams.ingest import Ingest, Limits
from streams.preflight import describe_topic
from streams.registry import registry_client
from streams.resends import Resends
from streams.settings import Settings
from streams.sink import ClickHouseSink
from streams.source import KafkaSource
from streams.validate import Validator
from streams.worker_metrics import WorkerMetrics, serve

log = logging.getLogger(__name__)

POLL_MAX_MESSAGES = 5000
IDLE_SLEEP = 0.005
MAX_QUEUED_POLLS = 4
EXIT_DATA_PATH_ERROR = 70  # the supervisor restarts the process


class WorkerBoot(BootStrategy):
    """Faust without its own Kafka clients or web server: the worker brings its own."""

    enable_kafka = False
    enable_web = False


@dataclass(frozen=True)
class Polled:
    """One poll's messages, handed from the poller to the agent."""

    messages: Sequence[Message]
    epoch: int  # the source's rebalance epoch when they were polled


class Poller(Service):
    """Builds the process's clients on start, polls Kafka, drains on stop."""

    def __init__(self, app: faust.App, settings: Settings, channel: Any) -> None:
        super().__init__(loop=app.loop, beacon=app.beacon)
        self.app = app
        self.settings = settings
        self.channel = channel
        self.ingest: Ingest | None = None
        self.dead_letters: DeadLetters | None = None
        self.client: AsyncClient | None = None
        self.metrics_server: web.AppRunner | None = None
        self.source: KafkaSource | None = None
        self.queued = 0

    async def on_start(self) -> None:
        settings = self.settings
        topic = describe_topic(settings)
        self.client = client = await async_client(settings, autogenerate_query_id=False)
        versions = load_versions(settings.schemas_dir)
        metrics = WorkerMetrics(settings.topic, settings.worker_index)
        sink = ClickHouseSink(client, settings.insert_timeout_seconds, metrics)
        self.dead_letters = dead_letters = DeadLetters(settings, sink.store_dead_letters, metrics)
        self.metrics_server = await serve(
            metrics,
            settings.worker_metrics_host,
            settings.worker_metrics_port + settings.worker_index,
        )
        self.source = KafkaSource(settings, self._on_rebalance, metrics)
        self.ingest = Ingest(
            topic.token_prefix,
            self.source,
            Decoder(versions, registry_client(settings.schema_registry_url)),
            Validator(int(settings.max_future_seconds * 1000), settings.max_readings_per_message),
            sink,
            dead_letters,
            Resends(sink, settings.resend_devices),
            Limits(
                settings.batch_max_rows,
                settings.batch_max_bytes,
                settings.batch_max_seconds,
                settings.max_message_bytes,
                settings.batch_linger_seconds,
                settings.max_inserts_in_flight,
            ),
            metrics,
        )

    def _on_rebalance(self, event: Any) -> None:
        assert self.ingest is not None
        self.ingest.on_rebalance(event)

    @Service.task
    async def _poll(self) -> None:
        assert self.source is not None
        assert self.ingest is not None
        # Faust's flow control opens when its own consumer gets partitions; ours is not Faust's.
        self.app.flow_control.resume()
        # The agent's stream subscribes to the channel when it starts iterating; Faust gives
        # no event for that, so look.
        while self.channel.subscriber_count == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        self.source.subscribe()
        log.info(
            "worker %d: started, consuming %s as group %s",
            self.settings.worker_index,
            self.settings.topic,
            self.settings.consumer_group,
        )
        while not self.should_stop:
            if self.queued >= MAX_QUEUED_POLLS:  # the agent is behind; it catches up in ms
                await asyncio.sleep(IDLE_SLEEP)
                continue
            messages = self.source.poll(POLL_MAX_MESSAGES)
            if messages:
                self.queued += 1
                await self.channel.send(value=Polled(messages, self.source.epoch))
            else:
                self._guarded(self.ingest.poll)
                await asyncio.sleep(IDLE_SLEEP)

    async def handle(self, polled: Polled) -> None:
        assert self.ingest is not None
        self.queued -= 1
        ingest = self.ingest
        self._guarded(lambda: ingest.submit(polled.messages, polled.epoch))

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run a step of the data path; an error it did not handle ends the process.

        Errors about one message are handled inside (a dead letter, or a halt at its offset);
        one that escapes may have left a batch half-formed, so the only safe way on is the
        one a crash takes: a new process resumes from the committed offsets.
        """
        try:
            step()
        except Exception:
            log.critical(
                "worker %d: unexpected error in the data path; exiting so that a new process "
                "resumes from the committed offsets",
                self.settings.worker_index,
                exc_info=True,
            )
            logging.shutdown()
            os._exit(EXIT_DATA_PATH_ERROR)

    async def on_stop(self) -> None:
        if self.ingest is not None and self.source is not None:
            source = self.source
            source.pause(sorted(source.assigned))  # nothing new; commits still complete

            def serve() -> None:
                source.poll(1)  # paused: serves callbacks; nothing taken is committed

            await self.ingest.drain(grace=10, serve=serve)
            started = time.monotonic()
            self.source.close()
            log.info(
                "worker %d: left the group in %.1f s",
                self.settings.worker_index,
                time.monotonic() - started,
            )
        if self.dead_letters is not None:
            self.dead_letters.close()
        if self.client is not None:
            await self.client.close()
        if self.metrics_server is not None:
            await self.metrics_server.cleanup()
        log.info("worker %d: stopped", self.settings.worker_index)


def create_app(settings: Settings) -> tuple[faust.App, Poller]:
    """The worker's Faust app and its poller; run both with ``faust.Worker(app, poller)``."""
    faust.App.BootStrategy = WorkerBoot
    app = faust.App(
        "streamgauge-worker",
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        autodiscover=False,
        web_enabled=False,
        datadir=tempfile.gettempdir() + "/streamgauge-worker",
        store="memory://",
    )
    polls = app.channel(maxsize=MAX_QUEUED_POLLS * 2)
    poller = Poller(app, settings, polls)

    @app.agent(polls, name="ingest")
    async def ingest(stream: Any) -> None:
        """Decode, validate and batch each poll; batches go to ClickHouse, then offsets commit."""
        async for polled in stream:
            await poller.handle(polled)

    return app, poller
