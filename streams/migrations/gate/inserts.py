"""The insert workload: the workers' own sink (``ClickHouseSink`` with ``Batch``es and their
deduplication tokens) inserting the same batches into both staging databases, alternating.

With merges stopped, the parts and rows each round adds are exact: parts per insert, rows and
bytes written per row inserted (the base table and every view's target).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from clickhouse_connect.driver.asyncclient import AsyncClient
from clickhouse_connect.driver.client import Client

from streams.clickhouse import async_client
from streams.errors import UserError
from streams.migrations.gate.layout import parts
from streams.settings import Settings
from streams.worker.batch import Batch, Group
from streams.worker.sink import ClickHouseSink, Unstorable
from streams.worker.telemetry import WorkerMetrics

FAILED_ATTEMPTS = 3  # the sink retries forever; the gate gives up on a batch after this many


@dataclass
class InsertRound:
    """One round of the insert workload on one database."""

    rows: int = 0
    seconds: float = 0.0
    parts: int = 0  # active parts created (merges are stopped during the inserts)
    batch_seconds: list[float] = field(default_factory=list)
    rows_written: int = 0  # rows added to every table: the base table and the views' targets
    bytes_written: int = 0
    max_partition_parts: int = 0  # the most active parts in one partition afterwards
    batches: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


class Inserter:
    """The workers' sink, one per staging database, in one event loop."""

    def __init__(self, sides: dict[str, Settings]) -> None:
        self._sides = sides
        self._sinks: dict[str, ClickHouseSink] = {}
        self._clients: list[AsyncClient] = []
        self._errors = _SinkErrors()
        self._level = logging.NOTSET

    async def __aenter__(self) -> Inserter:
        # The sink logs each failed attempt as a warning, then retries: count them, whatever
        # the log level.
        sink_log = logging.getLogger("streams.worker.sink")
        self._level = sink_log.level
        sink_log.setLevel(logging.WARNING)
        sink_log.addHandler(self._errors)
        for side, settings in self._sides.items():
            client = await async_client(settings)
            self._clients.append(client)
            metrics = WorkerMetrics(f"migrate-check-{side}", 0)
            self._sinks[side] = ClickHouseSink(
                client, settings.insert_timeout_seconds, metrics, max_backoff=1.0
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        sink_log = logging.getLogger("streams.worker.sink")
        sink_log.removeHandler(self._errors)
        sink_log.setLevel(self._level)
        for client in self._clients:
            await client.close()

    async def insert(self, side: str, batch: Batch) -> float:
        """Insert through the sink; seconds it took. Gives up after a few failed attempts."""
        self._errors.messages.clear()
        started = time.perf_counter()
        task = asyncio.create_task(self._sinks[side].insert(Group([batch])))
        while not task.done():
            await asyncio.wait({task}, timeout=0.05)
            if len(self._errors.messages) >= FAILED_ATTEMPTS:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                raise UserError(
                    f"inserts into readings of the {side} database fail: "
                    f"{self._errors.messages[-1]}"
                )
        try:
            task.result()
        except Unstorable as refusal:  # the data is refused: the sink gives up by itself
            raise UserError(
                f"inserts into readings of the {side} database fail: {refusal}"
            ) from None
        return time.perf_counter() - started

    async def load(self, batches: Iterable[Batch]) -> int:
        """Insert every batch into every database; the readings inserted into each."""
        rows = 0
        for batch in batches:
            for side in self._sides:
                await self.insert(side, batch)
            rows += batch.rows
        return rows

    async def insert_round(
        self, batches: list[Batch], clients: dict[str, Client]
    ) -> dict[str, InsertRound]:
        rounds = {side: InsertRound() for side in self._sides}
        before = {side: parts(clients[side]) for side in self._sides}
        for number, batch in enumerate(batches):
            order = list(self._sides) if number % 2 == 0 else list(self._sides)[::-1]
            for side in order:
                seconds = await self.insert(side, batch)
                rounds[side].seconds += seconds
                rounds[side].batch_seconds.append(seconds)
                rounds[side].rows += batch.rows
                rounds[side].batches += 1
        for side, result in rounds.items():
            after = parts(clients[side])
            result.parts = after.count - before[side].count
            result.rows_written = after.rows - before[side].rows
            result.bytes_written = after.bytes - before[side].bytes
            result.max_partition_parts = after.max_in_partition
        return rounds


class _SinkErrors(logging.Handler):
    """Collects the sink's warnings about failed attempts (it logs, then retries)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
