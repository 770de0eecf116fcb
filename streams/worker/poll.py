"""The consume step: polls the process's consumer and hands whole polls to the agent.

Polls are non-blocking; between them the step lets the data path start due flushes. The
channel to the agent is the one queue between consume and ingest, bounded at
``MAX_QUEUED_POLLS``: when the agent falls behind, ``send`` waits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from confluent_kafka import Message
from mode import Service

from streams.settings import Settings
from streams.worker.pipeline import Pipeline

log = logging.getLogger(__name__)

POLL_MAX_MESSAGES = 5000
IDLE_SLEEP = 0.005
# After empty polls while the data path is quiet (nothing open, halted or in flight), the
# wait doubles up to this: an idle worker wakes 20 times a second instead of 200 (0.059 ->
# 0.009 of a core, docs/design/worker.md, "Idle polls") and hears the first message after a
# quiet spell up to 50 ms later. Anything open keeps the 5 ms: flushes and commits are on time.
IDLE_MAX_SLEEP = 0.05
MAX_QUEUED_POLLS = 4
EXIT_DATA_PATH_ERROR = 70  # the supervisor restarts the process
DRAIN_SECONDS = 10.0
# After a poll that was not full, the next waits this long: a caught-up worker otherwise polls
# a few hundred times a second, each poll a Faust event and a pass through the batches for a
# handful of messages. At 20,000 msg/s it took the worker from 0.33-0.35 to 0.26-0.28 of a core
# at the same or a lower p99 (docs/design/worker.md, "Polls"); in a backlog polls are full and
# never wait, and while a commit awaits its answer (served by the polls) the wait is 5 ms.
POLL_GATHER_SECONDS = 0.02


@dataclass(frozen=True)
class Polled:
    """One poll's messages, handed from the poller to the agent."""

    messages: Sequence[Message]
    epoch: int  # the source's epoch when they were polled (rebalances and rewinds move it)


class Poller(Service):
    """Polls Kafka into the channel while the app runs; drains the pipeline on stop."""

    def __init__(
        self, app: faust.App, settings: Settings, pipeline: Pipeline, channel: Any
    ) -> None:
        super().__init__(loop=app.loop, beacon=app.beacon)
        self.app = app
        self.settings = settings
        self.pipeline = pipeline
        self.channel = channel

    @Service.task
    async def _poll(self) -> None:
        source, ingest = self.pipeline.source, self.pipeline.ingest
        # Faust's flow control opens when its own consumer gets partitions; ours is not Faust's.
        self.app.flow_control.resume()
        # The agent's stream subscribes to the channel when it starts iterating; Faust gives
        # no event for that, so look.
        while self.channel.subscriber_count == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        self.pipeline.start()
        log.info(
            "worker %d: started, consuming %s as group %s",
            self.settings.worker_index,
            self.settings.topic,
            self.settings.consumer_group,
        )
        idle = IDLE_SLEEP
        while not self.should_stop:
            messages = source.poll(POLL_MAX_MESSAGES)
            if messages:
                idle = IDLE_SLEEP
                await self.channel.send(value=Polled(messages, source.epoch))
                if len(messages) < POLL_MAX_MESSAGES:  # caught up: let the next poll fill
                    # ... unless a flush waits for a commit's answer, which the polls serve.
                    wait = IDLE_SLEEP if source.awaiting_commit else POLL_GATHER_SECONDS
                    await asyncio.sleep(wait)
            else:
                self.guarded(ingest.poll)
                await asyncio.sleep(idle)
                idle = min(2 * idle, IDLE_MAX_SLEEP) if ingest.quiet else IDLE_SLEEP

    def handle(self, polled: Polled) -> None:
        """The agent's step: one poll through decode, validate and batch."""
        ingest = self.pipeline.ingest
        self.guarded(lambda: ingest.submit(polled.messages, polled.epoch))

    def guarded(self, step: Callable[[], None]) -> None:
        guarded(step, self.settings.worker_index)

    async def on_stop(self) -> None:
        source = self.pipeline.source
        source.pause(sorted(source.assigned))  # nothing new; commits still complete

        def serve() -> None:
            source.poll(1)  # paused: serves callbacks; nothing taken is committed

        await self.pipeline.ingest.drain(grace=DRAIN_SECONDS, serve=serve)
        started = time.monotonic()
        source.close()
        log.info(
            "worker %d: left the group in %.1f s",
            self.settings.worker_index,
            time.monotonic() - started,
        )
        await self.pipeline.close()
        log.info("worker %d: stopped", self.settings.worker_index)


def guarded(step: Callable[[], None], worker: int) -> None:
    """Run a step of the data path; an error it did not handle ends the process.

    Errors about one message are handled inside (a dead letter, or a halt at its offset); one
    that escapes may have left a batch half-formed, so the only safe way on is the one a crash
    takes: a new process resumes from the committed offsets.
    """
    try:
        step()
    except Exception:
        log.critical(
            "worker %d: unexpected error in the data path; exiting so that a new process "
            "resumes from the committed offsets",
            worker,
            exc_info=True,
        )
        logging.shutdown()
        os._exit(EXIT_DATA_PATH_ERROR)
