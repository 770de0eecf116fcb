"""The measurement wire format: Avro single-object encoding, or Confluent framing with a registry.

Single-object encoding (the default) is ``C3 01`` + the writer schema's CRC-64-AVRO
fingerprint (8 bytes, little-endian) + the Avro binary body; the writer schema is found by
fingerprint among every version in ``schemas/avro/``. Confluent framing is ``00`` + the
registry's schema id (4 bytes, big-endian) + the body. docs/wire-format.md has the details.
"""

from __future__ import annotations

import copy
import io
import json
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import fastavro
from fastavro.read import SchemaResolutionError
from fastavro.schema import fingerprint, to_parsing_canonical_form

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = 0
_VERSION_FILE = re.compile(r"^measurement\.v(\d+)\.avsc$")

Record = dict[str, Any]
DecodeReason = Literal["not_avro", "unknown_schema", "incompatible_schema"]  # streams/reasons.py
UNKNOWN_ID_CACHE_SECONDS = 60.0


class DecodeError(Exception):
    """A payload that cannot be decoded; ``reason`` is the dead-letter reason."""

    def __init__(self, reason: DecodeReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: DecodeReason = reason
        self.detail = detail


@dataclass(frozen=True)
class SchemaVersion:
    """One shipped version of the measurement schema."""

    version: int
    source: dict[str, Any]  # the .avsc document as written
    parsed: dict[str, Any]  # fastavro's parsed schema, logical types kept (for writing)
    fingerprint: bytes  # CRC-64-AVRO of the parsing canonical form, little-endian

    @property
    def canonical(self) -> str:
        return str(to_parsing_canonical_form(self.parsed))


def load_versions(directory: Path) -> list[SchemaVersion]:
    """Every ``measurement.vN.avsc`` in ``directory``, oldest first."""
    versions = []
    for path in directory.iterdir():
        match = _VERSION_FILE.match(path.name)
        if match is None:
            continue
        source = json.loads(path.read_text())
        parsed = cast(dict[str, Any], fastavro.parse_schema(copy.deepcopy(source)))
        versions.append(SchemaVersion(int(match.group(1)), source, parsed, fingerprint64(parsed)))
    if not versions:
        raise FileNotFoundError(f"no measurement.vN.avsc schema in {directory}")
    return sorted(versions, key=lambda v: v.version)


def fingerprint64(parsed: dict[str, Any] | str) -> bytes:
    """CRC-64-AVRO of the schema's parsing canonical form, as the 8 little-endian header bytes."""
    canonical = parsed if isinstance(parsed, str) else to_parsing_canonical_form(parsed)
    # fastavro renders the fingerprint as the little-endian byte sequence, in hex.
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


class RegistryUnavailable(Exception):
    """The schema registry could not answer: the message waits, it is not a dead letter."""


class Registry(Protocol):
    """The part of confluent-kafka's SchemaRegistryClient the codec uses."""

    def get_schema(self, schema_id: int) -> Any: ...


# The writer layouts streams/_fastcheck.c reads: (field, Avro type without logical types).
_FIRST_FIELDS: list[tuple[str, Any]] = [
    ("device_id", "string"),
    ("event_time", "long"),
    ("seq", "long"),
    ("readings", {"type": "map", "values": "double"}),
    ("firmware", "string"),
]
FAST_LAYOUTS: dict[int, list[tuple[str, Any]]] = {
    1: _FIRST_FIELDS,
    2: [*_FIRST_FIELDS, ("site", ["null", "string"])],
}
# A header's fast-path entry: (where the body starts, the layout, the suffix to append).
FastSpec = tuple[int, int, bytes]


@dataclass(frozen=True)
class _Reader:
    """Reads one writer schema's bodies into records of the newest shape."""

    read: Callable[[io.BytesIO], Record]
    # Appended to such a body, it is a body of the newest version; None: encode the record.
    suffix: bytes | None
    layout: int = 0  # its FAST_LAYOUTS number, 0 if none


class Decoder:
    """Decodes any shipped version (or any registry schema) into a record of the newest shape.

    Records come back with plain values: ``event_time`` is an int of epoch milliseconds.
    """

    def __init__(self, versions: list[SchemaVersion], registry: Registry | None = None) -> None:
        self._latest_source = versions[-1].source
        self._latest = _plain(self._latest_source)
        self._by_fingerprint = {v.fingerprint: self._reader_for(v.source) for v in versions}
        self._registry = registry
        self._by_schema_id: dict[int, _Reader] = {}
        self._unknown_ids: dict[int, tuple[float, DecodeError]] = {}

    def decode(self, payload: bytes) -> Record:
        reader, start = self._reader(payload)
        return self._read(reader.read, payload, start)

    def decode_stored(self, payload: bytes) -> tuple[Record, bytes]:
        """The record, and its Avro body in the newest version's schema (what ClickHouse
        parses on the workers' insert path): the payload's own body when it was written with
        the newest version, or with it minus fields with defaults (their encoding appended);
        otherwise the record encoded again."""
        reader, start = self._reader(payload)
        record = self._read(reader.read, payload, start)
        if reader.suffix is None:
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, self._latest, record)
            return record, buffer.getvalue()
        return record, payload[start:] + reader.suffix

    def fast_specs(self) -> dict[bytes, FastSpec]:
        """Fast-path entries of the shipped versions, by their 8 fingerprint bytes."""
        return {
            fingerprint: (10, reader.layout, reader.suffix)
            for fingerprint, reader in self._by_fingerprint.items()
            if reader.layout and reader.suffix is not None
        }

    def fast_spec(self, payload: bytes) -> tuple[bytes, FastSpec] | None:
        """The fast-path entry for a decodable registry-framed payload's 5 header bytes."""
        if payload[:1] != b"\x00" or self._registry is None or len(payload) < 5:
            return None
        try:
            reader, start = self._reader(payload)
        except (DecodeError, RegistryUnavailable):
            return None
        if not reader.layout or reader.suffix is None:
            return None
        return payload[:5], (start, reader.layout, reader.suffix)

    @property
    def stored_schema(self) -> dict[str, Any]:
        """The newest version's schema, as written: the shape of :meth:`decode_stored` bodies."""
        return self._latest_source

    def _reader(self, payload: bytes) -> tuple[_Reader, int]:
        if payload[:2] == SINGLE_OBJECT_MAGIC and len(payload) >= 10:
            reader = self._by_fingerprint.get(payload[2:10])
            if reader is None:
                raise DecodeError("unknown_schema", f"fingerprint {payload[2:10].hex()}")
            return reader, 10
        if self._registry is not None and payload[:1] == b"\x00" and len(payload) >= 5:
            (schema_id,) = struct.unpack(">I", payload[1:5])
            return self._registry_reader(schema_id), 5
        raise DecodeError("not_avro", f"unrecognised header {payload[:10].hex() or 'empty'}")

    def _read(self, read: Callable[[io.BytesIO], Record], payload: bytes, start: int) -> Record:
        buffer = io.BytesIO(payload)
        buffer.seek(start)
        try:
            record = read(buffer)
        except SchemaResolutionError as error:
            detail = f"the writer schema does not resolve to a measurement: {error}"[:300]
            raise DecodeError("incompatible_schema", detail) from None
        except Exception as error:  # fastavro raises many types on corrupt input
            raise DecodeError("not_avro", f"corrupt Avro body: {error!r}"[:300]) from None
        if buffer.tell() != len(payload):
            raise DecodeError("not_avro", f"{len(payload) - buffer.tell()} trailing bytes")
        return record

    def _reader_for(self, writer_source: dict[str, Any]) -> _Reader:
        writer = _plain(writer_source)
        missing = _added_fields(writer_source, self._latest_source)
        if missing is None:
            reader = self._latest

            def resolve(buffer: io.BytesIO) -> Record:
                return cast(Record, fastavro.schemaless_reader(buffer, writer, reader))

            return _Reader(resolve, None)
        shape = [(f["name"], f["type"]) for f in _plain_fields(writer_source)]
        layout = next((n for n, fields in FAST_LAYOUTS.items() if fields == shape), 0)

        # Fast path: the writer is the latest minus fields with defaults; read it as written.
        def read_and_fill(buffer: io.BytesIO) -> Record:
            record = cast(Record, fastavro.schemaless_reader(buffer, writer, None))
            record.update(missing)
            return record

        return _Reader(read_and_fill, self._encoded(missing), layout)

    def _encoded(self, fields: dict[str, Any]) -> bytes:
        """The Avro encoding of these trailing fields of the newest version."""
        if not fields:
            return b""
        schema = fastavro.parse_schema(
            {
                "type": "record",
                "name": "Trailing",
                "fields": [f for f in _plain_fields(self._latest_source) if f["name"] in fields],
            }
        )
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, schema, fields)
        return buffer.getvalue()

    def _registry_reader(self, schema_id: int) -> _Reader:
        read = self._by_schema_id.get(schema_id)
        if read is None:
            known_unknown = self._unknown_ids.get(schema_id)
            if known_unknown is not None and time.monotonic() < known_unknown[0]:
                raise known_unknown[1]
            try:
                read = self._registry_lookup(schema_id)
            except DecodeError as error:
                self._unknown_ids[schema_id] = (time.monotonic() + UNKNOWN_ID_CACHE_SECONDS, error)
                raise
            self._by_schema_id[schema_id] = read
        return read

    def _registry_lookup(self, schema_id: int) -> _Reader:
        """The reader for a registry id; unknown ids and non-measurement schemas are rejected,
        an unreachable or failing registry is :class:`RegistryUnavailable` (transient)."""
        assert self._registry is not None
        try:
            schema = self._registry.get_schema(schema_id)
        except Exception as error:
            status = getattr(error, "http_status_code", None)  # a SchemaRegistryError's
            if status == 404:
                raise DecodeError("unknown_schema", f"schema id {schema_id}: {error}") from None
            detail = str(error) if status is not None else repr(error)
            raise RegistryUnavailable(f"schema id {schema_id}: {detail}") from None
        try:
            source = json.loads(schema.schema_str)
            return self._reader_for(source)
        except Exception as error:
            detail = f"schema id {schema_id} is not a measurement record: {error!r}"[:300]
            raise DecodeError("incompatible_schema", detail) from None


def _plain(source: dict[str, Any]) -> dict[str, Any]:
    """The schema with logical types removed: same binary encoding, no datetime conversion."""
    stripped = {**source, "fields": _plain_fields(source)}
    return cast(dict[str, Any], fastavro.parse_schema(stripped))


def _added_fields(writer: dict[str, Any], latest: dict[str, Any]) -> dict[str, Any] | None:
    """Defaults of the fields ``latest`` adds to ``writer``; None if they differ otherwise."""
    writer_fields = {f["name"]: f["type"] for f in _plain_fields(writer)}
    latest_fields = _plain_fields(latest)
    names = [f["name"] for f in latest_fields]
    if list(writer_fields) != names[: len(writer_fields)]:
        return None
    added = {}
    for field in latest_fields:
        if field["name"] in writer_fields:
            if writer_fields[field["name"]] != field["type"]:
                return None
        elif "default" in field:
            added[field["name"]] = field["default"]
        else:
            return None
    return added


def _plain_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**f, "type": _plain_type(f["type"])} for f in schema["fields"]]


def _plain_type(kind: Any) -> Any:
    if isinstance(kind, dict) and "logicalType" in kind:
        return kind["type"]
    return kind


class Encoder:
    """Encodes records with one schema version, single-object or Confluent-framed."""

    def __init__(self, version: SchemaVersion, schema_id: int | None = None) -> None:
        self._schema = version.parsed
        self._header = (
            SINGLE_OBJECT_MAGIC + version.fingerprint
            if schema_id is None
            else struct.pack(">bI", CONFLUENT_MAGIC, schema_id)
        )

    def encode(self, record: Record) -> bytes:
        buffer = io.BytesIO()
        buffer.write(self._header)
        fastavro.schemaless_writer(buffer, self._schema, record)
        return buffer.getvalue()
