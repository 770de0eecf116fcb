"""The compiled fast accept path agrees with the Python path on every message it accepts, and
accepts the plain valid ones: randomized messages, valid and broken in every way we know."""

from __future__ import annotations

import json
import math
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError

from streams.codec import DecodeError, Decoder, Encoder, Record, load_versions
from streams.fastcheck import FastCheck
from streams.reasons import Rejection
from streams.validate import Validator

pytestmark = pytest.mark.skipif(
    not FastCheck.available(), reason="streams/_fastcheck.c is not built here"
)

VERSIONS = load_versions(Path(__file__).resolve().parents[2] / "schemas" / "avro")
NOW_MS = 1_795_670_400_000
MAX_FUTURE_MS = 3_600_000


class Registry:
    """Serves the newest version under id 7."""

    def get_schema(self, schema_id: int) -> Any:
        if schema_id != 7:
            raise SchemaRegistryError(404, 40403, "Schema not found")
        return type("Schema", (), {"schema_str": json.dumps(VERSIONS[-1].source)})()


def python_path(decoder: Decoder, payload: bytes) -> tuple[Any, ...] | Rejection:
    """What the worker's Python path makes of ``payload`` (streams/worker/ingest.py)."""
    try:
        record, body = decoder.decode_stored(payload)
    except DecodeError as error:
        return Rejection(error.reason, error.detail)
    rejection = Validator(MAX_FUTURE_MS, 1000).check(record, NOW_MS)
    if rejection is not None:
        return rejection
    identity = (record["device_id"], record["event_time"], record["seq"])
    return (*identity, len(record["readings"]), body)


def record(rng: random.Random) -> Record:
    metrics = rng.choice([["t"], ["temperature_c", "rh", "battery_v", "rssi_dbm"], ["a.b", "c_1"]])
    site = rng.choice([None, "plant-north", "Zürich 🏭", ""])
    return {
        "device_id": rng.choice(["dev-000001", "a", "A.b_c:d-e", "x" * 128]),
        "event_time": rng.choice([NOW_MS, NOW_MS - 86_400_000, 978_307_200_000]),
        "seq": rng.choice([0, 1, 2**31, 2**62]),
        "readings": {m: rng.choice([0.0, -1.5, 1e300, 21.25]) for m in metrics},
        "firmware": rng.choice(["", "fw-1.2.0", "é" * 128]),
        "site": site,
    }


BROKEN_RECORDS: list[dict[str, Any]] = [
    {"device_id": ""},
    {"device_id": "x" * 129},
    {"device_id": "has space"},
    {"device_id": "dévice"},
    {"event_time": 978_307_199_999},
    {"event_time": NOW_MS + MAX_FUTURE_MS + 1},
    {"event_time": -5},
    {"seq": -1},
    {"readings": {}},
    {"readings": {"T": 1.0}},
    {"readings": {"9a": 1.0}},
    {"readings": {"a" * 65: 1.0}},
    {"readings": {"ok": math.nan}},
    {"readings": {"ok": -math.inf}},
    {"readings": {f"m{i}": 1.0 for i in range(129)}},  # past the compiled path's map size
    {"firmware": "f" * 129},
    {"firmware": "é" * 129},
    {"site": "s" * 129},
]


def payloads(rng: random.Random) -> list[bytes]:
    out = []
    for _ in range(400):
        base = record(rng)
        version = rng.choice(VERSIONS)
        if version.version == 1:
            base["site"] = None
        out.append(Encoder(version).encode(base))
        out.append(Encoder(VERSIONS[-1], schema_id=7).encode(base))
        broken = {**base, **rng.choice(BROKEN_RECORDS)}
        out.append(Encoder(version).encode(broken))
    for payload in list(out[:300]):
        cut = rng.randrange(len(payload))
        out.append(payload[:cut])  # truncated
        out.append(payload + bytes([rng.randrange(256)]))  # a trailing byte
        flipped = bytearray(payload)
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        out.append(bytes(flipped))
    repeated = Encoder(VERSIONS[-1]).encode({**record(rng), "readings": {"ta": 1.0, "tb": 2.0}})
    out.append(repeated.replace(b"\x04tb", b"\x04ta"))  # a repeated map key
    negative_block = Encoder(VERSIONS[-1]).encode({**record(rng), "readings": {"t": 2.0}})
    start = negative_block.index(b"\x02\x02t")  # block count 1, then key "t"
    size = struct.pack("<d", 2.0)
    out.append(negative_block[:start] + b"\x01\x16" + negative_block[start + 1 :])  # -1, 11 B
    assert size in negative_block
    return out


def test_whatever_the_compiled_path_accepts_the_python_path_accepts_the_same_way() -> None:
    decoder = Decoder(VERSIONS, Registry())
    fast = FastCheck(decoder, Validator(MAX_FUTURE_MS, 1000))
    rng = random.Random(20261129)
    accepted = declined_valid = 0
    cases = payloads(rng)
    for payload in cases:
        expected = python_path(decoder, payload)
        got = fast.check(payload, NOW_MS)
        if got is None:
            if not isinstance(expected, Rejection):
                declined_valid += 1
                fast.learn(payload)  # what the worker does after the Python path took it
            continue
        accepted += 1
        assert got == expected, payload.hex()
    assert accepted > len(cases) // 4, "the fast path takes the plain valid messages"
    # Declined valid messages: registry ids before they are learned, repeated keys, big maps.
    assert declined_valid < accepted // 5


def test_plain_messages_of_every_shipped_version_are_accepted_fast() -> None:
    decoder = Decoder(VERSIONS)
    fast = FastCheck(decoder, Validator(MAX_FUTURE_MS, 1000))
    for version in VERSIONS:
        rec = record(random.Random(version.version))
        if version.version == 1:
            rec["site"] = None
        payload = Encoder(version).encode(rec)
        assert fast.check(payload, NOW_MS) == python_path(decoder, payload), version.version
