"""The worker process's Faust app: the poll step feeding the ``ingest`` agent.

Faust runs the process: its service tree, start-up and shutdown, signal handling and the
agent. Kafka is read by streamgauge's own librdkafka consumer (streams/worker/source.py), not
by Faust's per-event stream: on this hardware Faust's stream path moves ~14k messages/s, a
librdkafka consumer over 1M/s (docs/design/worker.md). The poller hands the agent whole polls,
so Faust's per-event cost is paid once per poll, not once per message.
"""

from __future__ import annotations

import tempfile
from typing import Any

import faust
from faust.app.base import BootStrategy

from streams.settings import Settings
from streams.worker.pipeline import Pipeline
from streams.worker.poll import MAX_QUEUED_POLLS, Polled, Poller


class WorkerBoot(BootStrategy):
    """Faust without its own Kafka clients or web server: the worker brings its own."""

    enable_kafka = False
    enable_web = False


def create_app(settings: Settings, pipeline: Pipeline) -> tuple[faust.App, Poller]:
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
    polls = app.channel(maxsize=MAX_QUEUED_POLLS)
    poller = Poller(app, settings, pipeline, polls)

    @app.agent(polls, name="ingest")
    async def ingest(stream: Any) -> None:
        """Decode, validate and batch each poll; batches go to ClickHouse, then offsets commit."""
        polled: Polled
        async for polled in stream:
            poller.handle(polled)

    return app, poller
