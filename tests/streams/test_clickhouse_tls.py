"""ClickHouse over HTTPS with a certificate from a private CA: trusted through
STREAMGAUGE_CLICKHOUSE_CA_FILE, refused in one sentence with another CA."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.clickhouse_local import LocalClickHouse
from devstack.daemon import free_port
from streams import migrations
from streams.clickhouse import async_client, sync_client
from streams.errors import UserError
from streams.settings import Settings
from tests.support.certs import authority, signed

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "tls-9d2f"


@pytest.fixture(scope="module")
def https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Path]]:
    """Settings for a private local ClickHouse serving HTTPS, and a CA that did not sign it."""
    home = tmp_path_factory.mktemp("clickhouse-tls")
    certs = home / "certs"
    certs.mkdir()
    ca = authority(certs, "ca")
    other, _ = authority(certs, "other-ca")
    cert, key = signed(certs, "clickhouse", ca, "subjectAltName=IP:127.0.0.1,DNS:localhost")
    server = LocalClickHouse(
        home, port=free_port(), password=PASSWORD, tls_certificate=cert, tls_key=key
    )
    server.start()
    try:
        server.daemon.wait_ready(server.ready, 60)
        yield (
            Settings(
                clickhouse_port=server.port,
                clickhouse_secure=True,
                clickhouse_ca_file=str(ca[0]),
                clickhouse_password=PASSWORD,
                clickhouse_database="tls_test",
            ),
            other,
        )
    finally:
        server.daemon.stop()


def test_clients_and_migrations_trust_clickhouse_through_the_ca_file(
    https: tuple[Settings, Path],
) -> None:
    settings, _ = https
    assert sync_client(settings, database="default").query("SELECT 1").result_rows == [(1,)]
    migrations.up(settings, say=lambda _line: None)
    tables = sync_client(settings).query("SHOW TABLES").result_rows
    assert ("readings",) in tables

    async def ask() -> object:
        client = await async_client(settings)
        try:
            return (await client.query("SELECT count() FROM readings")).result_rows[0][0]
        finally:
            await client.close()

    assert asyncio.run(ask()) == 0


def test_another_ca_gets_one_sentence(https: tuple[Settings, Path]) -> None:
    settings, other = https
    wrong = dataclasses.replace(settings, clickhouse_ca_file=str(other))
    with pytest.raises(UserError) as refused:
        sync_client(wrong, database="default")
    assert str(refused.value) == (
        f"ClickHouse at 127.0.0.1:{settings.clickhouse_port}: its TLS certificate is not "
        f"trusted; it must be signed by a CA in STREAMGAUGE_CLICKHOUSE_CA_FILE (now {other})."
    )
    no_ca = dataclasses.replace(settings, clickhouse_ca_file="")
    with pytest.raises(UserError, match="now the system's CAs"):
        sync_client(no_ca, database="default")
