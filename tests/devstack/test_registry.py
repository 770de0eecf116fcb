"""The local schema registry: what the producers, the workers and ClickHouse ask of it."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from devstack.daemon import free_port
from devstack.registry import LocalRegistry
from streams.codec import Decoder, Encoder, load_versions
from streams.errors import UserError
from streams.producer import MeasurementProducer
from streams.registry import registry_client, schema_id
from streams.settings import Settings
from tests.support.certs import authority, signed

pytestmark = pytest.mark.integration

RECORD = {
    "device_id": "dev-1",
    "event_time": 1_795_000_000_000,
    "seq": 3,
    "readings": {"temperature_c": 21.5},
    "firmware": "fw-1",
    "site": "plant-a",
}


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    local = LocalRegistry(tmp_path, port=free_port())
    local.start()
    local.daemon.wait_ready(local.ready, 30)
    yield local
    local.daemon.stop()


def client(local: LocalRegistry) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": f"http://{local.daemon.address}"})


def test_registered_versions_keep_their_ids_and_decode_across_a_restart(
    registry: LocalRegistry,
) -> None:
    versions = load_versions(Settings().schemas_dir)
    ids = [schema_id(client(registry), "measurements", v) for v in versions]
    assert ids == [1, 2]
    assert schema_id(client(registry), "measurements", versions[0]) == 1, "same schema, same id"
    assert schema_id(client(registry), "other", versions[1]) == 2, "ids are global"

    registry.daemon.stop()
    registry.start()
    registry.daemon.wait_ready(registry.ready, 30)
    fresh = client(registry)  # no cache: every answer comes from the restarted registry
    payload = Encoder(versions[1], schema_id=2).encode(RECORD)
    assert Decoder(versions, fresh).decode(payload) == RECORD
    found = fresh.lookup_schema(
        "measurements-value", Schema(json.dumps(versions[0].source), "AVRO")
    )
    assert (found.schema_id, found.version) == (1, 1)


def test_unknown_ids_and_bad_bodies_get_the_registry_errors(registry: LocalRegistry) -> None:
    with pytest.raises(SchemaRegistryError) as unknown:
        client(registry).get_schema(41)
    assert unknown.value.http_status_code == 404

    request = urllib.request.Request(
        f"http://{registry.daemon.address}/subjects/x-value/versions",
        data=b'{"schema": "not json"}',
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 422


def test_a_producer_without_write_rights_looks_the_ids_up_with_its_credentials(
    tmp_path: Path,
) -> None:
    # The registry as a gateway meets it: HTTPS from a private CA, basic auth, read rights.
    certs = tmp_path / "certs"
    certs.mkdir()
    ca = authority(certs, "ca")
    cert, key = signed(certs, "registry", ca, "subjectAltName=IP:127.0.0.1,DNS:localhost")
    local = LocalRegistry(
        tmp_path,
        port=free_port(),
        basic_auth="gateway:s3cret",
        tls_certificate=cert,
        tls_key=key,
    )
    local.start()
    local.daemon.wait_ready(local.ready, 30)
    try:
        reader = Settings(
            topic="measurements",
            schema_registry_url=f"https://{local.daemon.address}",
            schema_registry_username="gateway",
            schema_registry_password="s3cret",
            schema_registry_ca_file=str(ca[0]),
            schema_registry_register=False,
        )
        with pytest.raises(UserError, match="version 1 is not registered under measurements-value"):
            MeasurementProducer(reader)
        writer = dataclasses.replace(reader, schema_registry_register=True)
        registered = MeasurementProducer(writer).encoders
        looked_up = MeasurementProducer(reader).encoders
        for version in (1, 2):
            payload = looked_up[version].encode(RECORD)
            assert payload == registered[version].encode(RECORD)
            assert int.from_bytes(payload[1:5], "big") == version

        wrong = registry_client(dataclasses.replace(reader, schema_registry_password="guess"))
        assert wrong is not None
        with pytest.raises(SchemaRegistryError) as refused:
            wrong.get_schema(1)
        assert refused.value.http_status_code == 401
        untrusted = registry_client(dataclasses.replace(reader, schema_registry_ca_file=""))
        assert untrusted is not None
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            untrusted.get_schema(1)
    finally:
        local.daemon.stop()
