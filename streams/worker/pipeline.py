"""The data path of one worker process, chained in one place.

Reading ``Pipeline.build`` tells the whole flow: the process's own Kafka consumer
(``KafkaSource``) feeds ``Ingest``, which decodes (``Decoder``), validates (``Validator``),
drops resends (``Resends``) and batches per partition; a batch goes to ClickHouse
(``ClickHouseSink``) and its rejected messages to the dead-letter topic (``DeadLetters``),
and only then is its offset committed (``KafkaSource.commit``, with the batch's intent).
Everything here is made inside the process that uses it, and shared with no other.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiohttp import web
from clickhouse_connect.driver.asyncclient import AsyncClient

from streams.clickhouse import Unreachable, async_client
from streams.codec import Decoder, load_versions
from streams.fastcheck import FastCheck
from streams.registry import registry_client
from streams.settings import Settings
from streams.validate import Validator
from streams.worker.dlq import DeadLetters
from streams.worker.ingest import Ingest, Limits
from streams.worker.preflight import describe_topic
from streams.worker.resends import Resends
from streams.worker.retry import backoff
from streams.worker.sink import AvroContainer, ClickHouseSink
from streams.worker.source import KafkaSource
from streams.worker.telemetry import WorkerMetrics, serve

log = logging.getLogger(__name__)


@dataclass
class Pipeline:
    """One process's clients and the data path between them."""

    source: KafkaSource
    ingest: Ingest
    dead_letters: DeadLetters
    client: AsyncClient
    metrics_server: web.AppRunner | None

    @classmethod
    async def build(cls, settings: Settings) -> Pipeline:
        topic = describe_topic(settings)
        client = await connect(settings)
        metrics = WorkerMetrics(settings.topic, settings.worker_index)
        registry = registry_client(settings)
        decoder = Decoder(load_versions(settings.schemas_dir), registry)
        avro = settings.insert_format == "avro"  # else "native" (checked by the CLI)
        sink = ClickHouseSink(
            client,
            settings.insert_timeout_seconds,
            metrics,
            container=AvroContainer(decoder.stored_schema) if avro else None,
        )
        dead_letters = DeadLetters(settings, sink.store_dead_letters, metrics)
        source = KafkaSource(settings, metrics)
        validator = Validator(
            int(settings.max_future_seconds * 1000), settings.max_readings_per_message
        )
        fast = None
        if avro and settings.fast_check:
            if FastCheck.available():
                fast = FastCheck(decoder, validator)
            else:
                log.warning(
                    "the compiled fast check (streams/_fastcheck.c) is not built here: every "
                    "message takes the Python path, same results, slower (install with gcc)"
                )
        ingest = Ingest(
            topic.token_prefix,
            source,
            decoder,
            validator,
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
                settings.max_partitions_per_insert,
                settings.batch_backlog_max_rows,
            ),
            metrics,
            bodies=avro,
            fast=fast,
        )
        port = settings.worker_metrics_port + settings.worker_index
        metrics_server = await serve(metrics, settings.worker_metrics_host, port)
        return cls(source, ingest, dead_letters, client, metrics_server)

    def start(self) -> None:
        """Join the consumer group; rebalances go to the data path from now on."""
        self.source.subscribe(self.ingest.on_rebalance)

    async def close(self) -> None:
        self.dead_letters.close()
        await self.client.close()
        if self.metrics_server is not None:
            await self.metrics_server.cleanup()


async def connect(settings: Settings) -> AsyncClient:
    """The process's ClickHouse client, once the server answers.

    `streamgauge worker` checked that ClickHouse answers before starting its processes; one
    started or restarted while the server is down (a restart, a failover) waits for it, as a
    running worker's inserts do, instead of exiting into a crash loop. A server that answers
    and refuses (a wrong password, no database) is still one error at once.
    """
    attempt = 0
    while True:
        try:
            return await async_client(settings, autogenerate_query_id=False)
        except Unreachable as error:
            delay = max(1.0, backoff(attempt, cap=10.0))
            log.warning(
                "worker %d: %s Trying again in %.1f s.", settings.worker_index, error, delay
            )
            attempt += 1
            await asyncio.sleep(delay)
