"""Where devices' readings arrived, looked up in batches: one query for requests that come together.

Every answer about a device needs its arrivals (api/arrivals.py) besides its data; a query of
its own each would double the queries the API makes. Look-ups that arrive within
``wait`` seconds of each other share one query (``device_id IN [...]``: a few granules of the
table's sort key), up to ``limit`` devices; the partitions' own rows (device ``''``) come with
every batch. A failed query fails every look-up of its batch, with the same error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from api.reader import Reader
from streams.queries import ARRIVALS_SQL

Rows = list[tuple[Any, ...]]
Batch = dict[str, list[asyncio.Future[Rows]]]

BATCH_WAIT_SECONDS = 0.002
MAX_DEVICES = 256


class ArrivalsLookup:
    """Batches the API process's arrival look-ups onto its ClickHouse reader."""

    def __init__(
        self, reader: Reader, wait: float = BATCH_WAIT_SECONDS, limit: int = MAX_DEVICES
    ) -> None:
        self.reader = reader
        self.wait = wait
        self.limit = limit
        self._open: Batch | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def rows(self, device_id: str) -> Rows:
        """ARRIVALS_SQL's rows about ``device_id`` and about the partitions (device ``''``)."""
        if self._open is None:
            self._open = {}
            task = asyncio.create_task(self._query(self._open))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        future: asyncio.Future[Rows] = asyncio.get_running_loop().create_future()
        self._open.setdefault(device_id, []).append(future)
        if len(self._open) >= self.limit:
            self._open = None  # full: the next look-up starts another batch
        return await future

    async def close(self) -> None:
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _query(self, batch: Batch) -> None:
        try:
            await asyncio.sleep(self.wait)  # the batch fills meanwhile
            self._close(batch)
            rows = await self.reader.rows(ARRIVALS_SQL, {"devices": ["", *batch]})
        except asyncio.CancelledError:
            self._close(batch)
            _fail(batch, None)
            raise
        except Exception as error:  # ApiError: every look-up of the batch fails with it
            _fail(batch, error)
            return
        by_device: dict[str, Rows] = {}
        for row in rows:
            by_device.setdefault(row[0], []).append(row)
        shared = by_device.get("", [])
        for device_id, futures in batch.items():
            for future in _waiting(futures):
                future.set_result(shared + by_device.get(device_id, []))

    def _close(self, batch: Batch) -> None:
        if self._open is batch:
            self._open = None


def _fail(batch: Batch, error: Exception | None) -> None:
    """Every look-up of ``batch`` fails with ``error``, or is cancelled (None)."""
    for futures in batch.values():
        for future in _waiting(futures):
            if error is None:
                future.cancel()
            else:
                future.set_exception(error)


def _waiting(futures: list[asyncio.Future[Rows]]) -> list[asyncio.Future[Rows]]:
    """Those not done: a request may have been cancelled meanwhile."""
    return [future for future in futures if not future.done()]


ARRIVALS = web.AppKey("arrivals", ArrivalsLookup)
