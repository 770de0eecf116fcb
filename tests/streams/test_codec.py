"""The wire format: single-object and Confluent framing, every shipped version, bad input."""

from __future__ import annotations

import io
import itertools
import json
import re
import struct
from pathlib import Path

import fastavro
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from streams.codec import (
    DecodeError,
    Decoder,
    Encoder,
    RegistryUnavailable,
    fingerprint64,
    load_versions,
)
from streams.registry import schema_id as register

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "avro"
VERSIONS = load_versions(SCHEMAS)
RECORD = {
    "device_id": "pump-0042",
    "event_time": 1_795_670_400_123,
    "seq": 17,
    "readings": {"pressure_bar": 3.25, "temperature_c": -4.5},
    "firmware": "2.1.0",
    "site": "plant-north",
}


def test_fingerprint_matches_the_avro_specification() -> None:
    # The Avro spec's test vector: CRC-64-AVRO of the schema "null" is 7195948357588979594.
    assert int.from_bytes(fingerprint64('"null"'), "little") == 7195948357588979594


def test_every_version_round_trips_into_the_newest_shape() -> None:
    versions = load_versions(SCHEMAS)
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))
    decoder = Decoder(versions)
    for version in versions:
        payload = Encoder(version).encode(RECORD)
        assert payload[:2] == b"\xc3\x01"
        assert payload[2:10] == version.fingerprint
        decoded = decoder.decode(payload)
        expected_site = RECORD["site"] if "site" in json.dumps(version.source) else None
        assert decoded == {**RECORD, "site": expected_site}


def test_new_versions_only_add_fields_with_defaults() -> None:
    versions = load_versions(SCHEMAS)
    for older, newer in itertools.pairwise(versions):
        old_fields = [f["name"] for f in older.source["fields"]]
        new_fields = newer.source["fields"]
        assert [f["name"] for f in new_fields[: len(old_fields)]] == old_fields
        assert all("default" in f for f in new_fields[len(old_fields) :])


def test_documented_fingerprints_are_the_real_ones() -> None:
    doc = (SCHEMAS.parents[1] / "docs" / "wire-format.md").read_text()
    documented = dict(re.findall(r"(measurement\.v\d+\.avsc)\s+([0-9a-f]{16})", doc))
    actual = {f"measurement.v{v.version}.avsc": v.fingerprint.hex() for v in load_versions(SCHEMAS)}
    assert documented == actual


def test_confluent_framing_with_a_registry() -> None:
    registry = SchemaRegistryClient.new_client({"url": "mock://codec-test"})
    versions = load_versions(SCHEMAS)
    schema_id = register(registry, "measurements", versions[0])
    payload = Encoder(versions[0], schema_id).encode(RECORD)
    assert payload[0] == 0
    assert int.from_bytes(payload[1:5], "big") == schema_id
    assert Decoder(versions, registry).decode(payload)["readings"] == RECORD["readings"]
    with pytest.raises(DecodeError) as error:
        Decoder(versions, registry).decode(b"\x00\x00\x00\x03\xe7" + payload[5:])
    assert error.value.reason == "unknown_schema"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "not_avro"),
        (b'{"device_id": "json"}', "not_avro"),
        (b"\xc3\x01" + b"\x00" * 8 + b"\x02", "unknown_schema"),
        (b"\x00\x00\x00\x00\x01abc", "not_avro"),  # Confluent framing without a registry
    ],
)
def test_undecodable_payloads_name_their_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as error:
        Decoder(load_versions(SCHEMAS)).decode(payload)
    assert error.value.reason == reason


def test_truncated_and_padded_bodies_are_rejected() -> None:
    versions = load_versions(SCHEMAS)
    payload = Encoder(versions[-1]).encode(RECORD)
    decoder = Decoder(versions)
    for broken in (payload[:-3], payload + b"\x00\x00"):
        with pytest.raises(DecodeError) as error:
            decoder.decode(broken)
        assert error.value.reason == "not_avro"


class Registry:
    """A registry answering from a dict; an exception as an answer is raised."""

    def __init__(self, answers: dict[int, object]) -> None:
        self.answers = answers
        self.asked = 0

    def get_schema(self, schema_id: int) -> object:
        self.asked += 1
        answer = self.answers[schema_id]
        if isinstance(answer, BaseException):
            raise answer
        return type("Schema", (), {"schema_str": json.dumps(answer)})()


def _framed(schema_id: int) -> bytes:
    record = {
        "device_id": "d",
        "event_time": 1,
        "seq": 1,
        "readings": {"t": 1.0},
        "firmware": "",
        "site": None,
    }
    return struct.pack(">bI", 0, schema_id) + Encoder(VERSIONS[-1]).encode(record)[10:]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (SchemaRegistryError(404, 40403, "Schema not found"), "unknown_schema"),
        ("string", "incompatible_schema"),
        ({"type": "record", "name": "X", "fields": [{"name": "x", "type": "int"}]}, None),
    ],
)
def test_registry_schemas_that_are_not_measurements_are_rejected(
    answer: object, reason: str | None
) -> None:
    decoder = Decoder(VERSIONS, Registry({7: answer}))
    with pytest.raises(DecodeError) as rejected:
        decoder.decode(_framed(7))
    assert rejected.value.reason == (reason or "incompatible_schema")


@pytest.mark.parametrize(
    "failure",
    [ConnectionError("refused"), SchemaRegistryError(503, 50001, "down"), TimeoutError()],
)
def test_an_unreachable_registry_is_not_a_verdict_on_the_message(failure: Exception) -> None:
    registry = Registry({7: failure})
    decoder = Decoder(VERSIONS, registry)
    with pytest.raises(RegistryUnavailable):
        decoder.decode(_framed(7))
    registry.answers[7] = VERSIONS[-1].source
    assert decoder.decode(_framed(7))["device_id"] == "d", "asked again once it is back"


def test_an_unknown_id_is_asked_again_only_after_a_while() -> None:
    registry = Registry({7: SchemaRegistryError(404, 40403, "Schema not found")})
    decoder = Decoder(VERSIONS, registry)
    for _ in range(3):
        with pytest.raises(DecodeError):
            decoder.decode(_framed(7))
    assert registry.asked == 1


def _newest(body: bytes) -> dict[str, object]:
    schema = fastavro.parse_schema(VERSIONS[-1].source)
    record = fastavro.schemaless_reader(io.BytesIO(body), schema, None)
    assert isinstance(record, dict)
    return {**record, "event_time": int(record["event_time"].timestamp() * 1000)}


def test_stored_bodies_are_bodies_of_the_newest_version_for_every_writer() -> None:
    """The Avro insert path sends these bytes to ClickHouse as newest-version records."""
    decoder = Decoder(VERSIONS)
    for version in VERSIONS:
        payload = Encoder(version).encode(RECORD)
        record, body = decoder.decode_stored(payload)
        assert record == decoder.decode(payload)
        assert _newest(body) == record
        if version is VERSIONS[-1]:
            assert body == payload[10:], "the newest version's own bytes, not re-encoded"
        else:
            assert body.startswith(payload[10:]), "older bodies only get their defaults appended"


def test_a_registry_schema_that_needs_resolution_is_encoded_again() -> None:
    # Same fields as the newest version, in another order: readable, but not as written.
    source = VERSIONS[-1].source
    shuffled = {**source, "fields": [*source["fields"][1:], source["fields"][0]]}
    writer = fastavro.parse_schema(shuffled)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, writer, RECORD)
    decoder = Decoder(VERSIONS, Registry({9: shuffled}))
    record, body = decoder.decode_stored(struct.pack(">bI", 0, 9) + buffer.getvalue())
    assert record == RECORD
    assert _newest(body) == RECORD
