"""ClickHouse clients, made in one place from the settings (each process makes its own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.asyncclient import AsyncClient
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from streams.errors import UserError
from streams.settings import Settings


def _options(settings: Settings, database: str | None) -> dict[str, Any]:
    if settings.clickhouse_ca_file and not Path(settings.clickhouse_ca_file).is_file():
        raise UserError(
            f"STREAMGAUGE_CLICKHOUSE_CA_FILE names {settings.clickhouse_ca_file}, "
            "which is not a file."
        )
    return {
        "host": settings.clickhouse_host,
        "port": settings.clickhouse_port,
        "username": settings.clickhouse_user,
        "password": settings.clickhouse_password,
        "database": database if database is not None else settings.clickhouse_database,
        "secure": settings.clickhouse_secure,
        "ca_cert": settings.clickhouse_ca_file or None,
        "client_name": "streamgauge",
        "connect_timeout": 5,
        "send_receive_timeout": 300,
    }


def sync_client(settings: Settings, database: str | None = None, **extra: Any) -> Client:
    """A blocking client, for commands and tools (migrations, benchmarks, tests); ``extra``
    options override the defaults."""
    try:
        return clickhouse_connect.get_client(**{**_options(settings, database), **extra})
    except OperationalError as error:
        raise unreachable(settings, error) from None
    except DatabaseError as error:
        raise refused(settings, database, error) from None


async def async_client(
    settings: Settings, database: str | None = None, **extra: Any
) -> AsyncClient:
    """An asyncio client, for the workers' inserts and the API's queries; ``extra`` options
    (timeouts, retries) override the defaults."""
    try:
        return await clickhouse_connect.get_async_client(
            **{**_options(settings, database), **extra}
        )
    except OperationalError as error:
        raise unreachable(settings, error) from None
    except DatabaseError as error:
        raise refused(settings, database, error) from None


class Unreachable(UserError):
    """No answer from ClickHouse (refused, reset, timed out): it may come back by itself."""


def unreachable(settings: Settings, error: Exception) -> UserError:
    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    if "CERTIFICATE_VERIFY_FAILED" in str(error):
        trusted = settings.clickhouse_ca_file or "the system's CAs"
        return UserError(
            f"ClickHouse at {settings.clickhouse_host}:{settings.clickhouse_port}: its TLS "
            "certificate is not trusted; it must be signed by a CA in "
            f"STREAMGAUGE_CLICKHOUSE_CA_FILE (now {trusted})."
        )
    return Unreachable(
        f"ClickHouse at {settings.clickhouse_host}:{settings.clickhouse_port} is unreachable "
        f"({first}); start it (`streamgauge dev up` locally) or set STREAMGAUGE_CLICKHOUSE_HOST."
    )


def refused(settings: Settings, database: str | None, error: DatabaseError) -> UserError:
    """One sentence for a server that answers but says no (never echoing the password)."""
    where = f"ClickHouse at {settings.clickhouse_host}:{settings.clickhouse_port}"
    text = str(error)
    if "Code: 516" in text or "Code: 192" in text:
        return UserError(
            f"{where} refused user {settings.clickhouse_user!r} (wrong password, or no such "
            "user); check STREAMGAUGE_CLICKHOUSE_USER and STREAMGAUGE_CLICKHOUSE_PASSWORD."
        )
    if "Code: 81" in text:
        name = database if database is not None else settings.clickhouse_database
        return UserError(
            f"{where} has no database {name!r}; `streamgauge migrate up` creates it, or set "
            "STREAMGAUGE_CLICKHOUSE_DATABASE."
        )
    first = text.replace(settings.clickhouse_password or "\0", "***").strip().splitlines()
    return UserError(f"{where} refused the connection: {(first or ['?'])[0][:200]}")
