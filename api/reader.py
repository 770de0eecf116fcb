"""Every ClickHouse query the API makes, bounded in time, failing as 503 or 504.

One asyncio client per API process, made on first use (so the API starts, and keeps answering
health checks and freshness, while ClickHouse is down); its connection pool reconnects by
itself, so a failed query never tears down the others in flight. Each query carries
``max_execution_time`` for the server and an asyncio timeout a little longer for the client:
a server that accepts and never answers costs a request at most that long.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web
from clickhouse_connect.driver.asyncclient import AsyncClient
from clickhouse_connect.driver.exceptions import Error as ClickHouseError

from api.errors import ApiError
from streams.clickhouse import async_client
from streams.errors import UserError
from streams.settings import Settings

CLIENT_SLACK_SECONDS = 1.0  # the client waits this much longer than the server may run
TIMEOUT_CODES = {159, 160}  # TIMEOUT_EXCEEDED, TOO_SLOW


class Reader:
    """Runs read-only queries on the API process's own ClickHouse client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout = settings.api_query_timeout_seconds
        self._client: AsyncClient | None = None
        self._connecting = asyncio.Lock()

    async def rows(
        self, sql: str, parameters: dict[str, Any], settings: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        query_settings = {"max_execution_time": self.timeout, **(settings or {})}
        try:
            async with asyncio.timeout(self.timeout + CLIENT_SLACK_SECONDS):
                client = await self._connected()
                result = await client.query(sql, parameters=parameters, settings=query_settings)
        except TimeoutError:
            raise self._timed_out() from None
        except ClickHouseError as error:
            if error.code in TIMEOUT_CODES:
                raise self._timed_out() from None
            raise _unavailable(_first_line(error)) from None
        except (UserError, aiohttp.ClientError, OSError) as error:
            raise _unavailable(_first_line(error)) from None
        return [tuple(row) for row in result.result_rows]

    async def check(self, seconds: float) -> str | None:
        """None when ClickHouse answers ``SELECT 1`` within ``seconds``, else why not."""
        try:
            async with asyncio.timeout(seconds):
                client = await self._connected()
                await client.query("SELECT 1", settings={"max_execution_time": seconds})
        except TimeoutError:
            return f"ClickHouse did not answer within {seconds:g} s"
        except (ClickHouseError, UserError, aiohttp.ClientError, OSError) as error:
            return f"ClickHouse failed: {_first_line(error)}"
        return None

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def _connected(self) -> AsyncClient:
        async with self._connecting:
            if self._client is None:
                self._client = await async_client(
                    self.settings,
                    query_retries=0,
                    connect_timeout=self.timeout,
                    send_receive_timeout=self.timeout + CLIENT_SLACK_SECONDS,
                )
            return self._client

    def _timed_out(self) -> ApiError:
        return ApiError(
            504,
            "clickhouse_timeout",
            f"ClickHouse did not answer within {self.timeout:g} s; retry, or ask for less "
            "(a shorter range, a larger step).",
        )


READER = web.AppKey("reader", Reader)


def _unavailable(reason: str) -> ApiError:
    return ApiError(503, "clickhouse_unavailable", f"ClickHouse is unavailable ({reason}).")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
