"""The ClickHouse sink: one idempotent insert per batch, retried until ClickHouse acknowledged."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
import uuid
from typing import Any

from clickhouse_connect.driver.asyncclient import AsyncClient

from streams.batch import COLUMNS, Batch
from streams.worker_metrics import WorkerMetrics

log = logging.getLogger(__name__)

COLUMN_TYPES = (
    "String",
    "LowCardinality(String)",
    "DateTime64(3, 'UTC')",
    "Float64",
    "UInt64",
    "LowCardinality(String)",
    "LowCardinality(String)",
    "UInt16",
    "UInt64",
)
TABLE = "readings"
_CODE = re.compile(r"Code: (\d+)")
# TOO_MANY_PARTS: the table has more active parts than parts_to_throw_insert.
_PART_PRESSURE = {"code_252"}


class ClickHouseSink:
    """Inserts batches into ``readings`` with a deduplication token derived from their offsets.

    A failed or timed-out insert is retried with the same token after a jittered exponential
    backoff, so a retry of an insert that did land is dropped by ClickHouse instead of stored
    twice. An insert past its timeout is cancelled on the server (KILL QUERY) before retrying.
    """

    def __init__(
        self,
        client: AsyncClient,
        insert_timeout: float,
        metrics: WorkerMetrics,
        max_backoff: float = 5.0,
    ) -> None:
        self._client = client
        self._metrics = metrics
        self._timeout = insert_timeout
        self._max_backoff = max_backoff

    async def insert(self, batch: Batch) -> None:
        attempt = 0
        cap = self._max_backoff
        while True:
            query_id = f"streamgauge-{uuid.uuid4().hex}"
            started = time.monotonic()
            try:
                await asyncio.wait_for(self._insert_once(batch, query_id), self._timeout)
                self._metrics.insert_duration.observe(time.monotonic() - started)
                return
            except TimeoutError:
                self._metrics.clickhouse_error("timeout")
                log.warning("insert %s exceeded %.0f s; cancelling it", batch.token, self._timeout)
                await self._kill(query_id)
            except Exception as error:
                kind = error_kind(error)
                self._metrics.clickhouse_error(kind)
                log.warning(
                    "insert %s failed (attempt %d): %s", batch.token, attempt + 1, _short(error)
                )
                if kind in _PART_PRESSURE:  # give merges time; the next batch grows meanwhile
                    cap = self._max_backoff * 6
            self._metrics.insert_duration.observe(time.monotonic() - started)
            attempt += 1
            await asyncio.sleep(backoff(attempt, cap))
            cap = self._max_backoff

    async def _insert_once(self, batch: Batch, query_id: str) -> None:
        settings: dict[str, Any] = {
            "insert_deduplicate": 1,
            "insert_deduplication_token": batch.token,
            "deduplicate_blocks_in_dependent_materialized_views": 1,
            "query_id": query_id,
        }
        await self._client.insert(
            TABLE,
            batch.columns(),
            column_names=COLUMNS,
            column_type_names=COLUMN_TYPES,
            column_oriented=True,
            settings=settings,
        )

    async def _kill(self, query_id: str) -> None:
        try:
            await asyncio.wait_for(
                self._client.command(
                    "KILL QUERY WHERE query_id = {id:String} ASYNC", parameters={"id": query_id}
                ),
                10,
            )
        except Exception as error:
            log.warning("could not cancel query %s: %s", query_id, _short(error))


def error_kind(error: BaseException) -> str:
    """A low-cardinality label: the ClickHouse error code, or the kind of failure."""
    code = getattr(error, "code", None)
    if isinstance(code, int) and code > 0:
        return f"code_{code}"
    text = str(error)
    match = _CODE.search(text)
    if match:
        return f"code_{match.group(1)}"
    if isinstance(error, OSError) or "connect" in text.lower():
        return "connection"
    return type(error).__name__.lower()


def backoff(attempt: int, cap: float, base: float = 0.2) -> float:
    """Full-jitter exponential backoff: processes retrying together spread out."""
    return random.uniform(0, min(cap, base * 2**attempt))


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]
