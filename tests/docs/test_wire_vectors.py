"""docs/wire-format.md's test vectors: each record encodes to exactly its bytes, the bytes
decode to the record, and the bodies match an Avro writer written here from the spec."""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import Any

import pytest

from streams.codec import Decoder, Encoder, load_versions
from streams.settings import REPO_ROOT

DOC = REPO_ROOT / "docs" / "wire-format.md"
VERSIONS = {
    f"measurement.v{v.version}.avsc": v for v in load_versions(REPO_ROOT / "schemas" / "avro")
}


@dataclass(frozen=True)
class Vector:
    schema: str
    framing: str
    record: dict[str, Any]
    payload: bytes


def vectors() -> list[Vector]:
    found = []
    for block in re.findall(r"```vector\n(.*?)```", DOC.read_text(), flags=re.S):
        fields: dict[str, str] = {}
        name = ""
        for line in block.splitlines():
            key, colon, value = line.partition(":")
            if colon and key.strip() in ("schema", "framing", "record", "bytes"):
                name = key.strip()
                fields[name] = value.strip()
            else:  # the bytes go on over several lines
                fields[name] += " " + line.strip()
        found.append(
            Vector(
                fields["schema"],
                fields["framing"],
                json.loads(fields["record"]),
                bytes.fromhex(fields["bytes"]),
            )
        )
    return found


def test_the_document_has_a_vector_for_every_shipped_version() -> None:
    assert {v.schema for v in vectors()} == set(VERSIONS)


@pytest.mark.parametrize("vector", vectors(), ids=lambda v: f"{v.schema}-{v.framing}")
def test_a_vector_encodes_to_its_bytes_and_back(vector: Vector) -> None:
    version = VERSIONS[vector.schema]
    schema_id = int(vector.framing.split()[1]) if vector.framing.startswith("confluent") else None
    assert Encoder(version, schema_id).encode(vector.record) == vector.payload

    header = 5 if schema_id is not None else 10
    fields = {f["name"] for f in version.source["fields"]}
    assert vector.payload[header:] == body(vector.record, "site" in fields)

    registry = FixedRegistry(version.source) if schema_id is not None else None
    decoded = Decoder(list(VERSIONS.values()), registry).decode(vector.payload)
    assert {k: decoded[k] for k in vector.record} == vector.record


class FixedRegistry:
    """A schema registry that knows one schema, under any id."""

    def __init__(self, source: dict[str, Any]) -> None:
        self.source = source

    def get_schema(self, schema_id: int) -> Any:
        return type("Schema", (), {"schema_str": json.dumps(self.source)})()


def body(record: dict[str, Any], with_site: bool) -> bytes:
    """The Avro binary encoding of a measurement, from the specification alone."""
    out = string(record["device_id"]) + long(record["event_time"]) + long(record["seq"])
    readings = record["readings"]
    out += long(len(readings))
    for name, value in readings.items():
        out += string(name) + struct.pack("<d", value)
    out += long(0) + string(record["firmware"])
    if with_site:
        site = record["site"]
        out += long(0) if site is None else long(1) + string(site)
    return out


def long(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = zigzag & 0x7F
        zigzag >>= 7
        if zigzag:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def string(value: str) -> bytes:
    encoded = value.encode()
    return long(len(encoded)) + encoded
