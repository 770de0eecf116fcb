"""The ClickHouse sink: one idempotent insert per group of batches, retried until ClickHouse
acknowledged."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from clickhouse_connect.driver.asyncclient import AsyncClient

from streams.worker.batch import COLUMNS, Group, Identity
from streams.worker.dlq import LETTER_COLUMNS, Letter, letter_row
from streams.worker.retry import backoff
from streams.worker.telemetry import WorkerMetrics

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
INPUT_TABLE = "readings_input"  # the Avro path: one row per message, expanded by a view
INSERT_FORMATS = ("avro", "native")
# Every insert's settings beside its token. No merging of equal keys inside the inserted
# block (optimize_on_insert): the views' GROUP BY already made their keys unique, and readings
# gets none twice (resends are dropped before the insert; readers use FINAL); it was 10-20 %
# of an insert's server CPU (docs/design/worker.md, 8.).
INSERT_SETTINGS: dict[str, int] = {
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "optimize_on_insert": 0,
}
DEAD_LETTERS_TABLE = "dead_letters"
_CODE = re.compile(r"Code: (\d+)")
# TOO_MANY_PARTS: the table has more active parts than parts_to_throw_insert.
_PART_PRESSURE = {"code_252"}
_PER_BLOCK = re.compile(r"partitions for (a )?single INSERT block", re.I)
# ClickHouse error codes that name the inserted data: the same rows fail the same way again.
_DATA_CODES = {
    6,  # CANNOT_PARSE_TEXT
    27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    41,  # CANNOT_PARSE_DATETIME
    53,  # TYPE_MISMATCH
    69,  # ARGUMENT_OUT_OF_BOUND
    70,  # CANNOT_CONVERT_TYPE
    72,  # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA
    131,  # TOO_LARGE_STRING_SIZE
    190,  # SIZES_OF_ARRAYS_DONT_MATCH
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    395,  # FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
    469,  # VIOLATED_CONSTRAINT
}
Verdict = Literal["data", "size", "transient"]
# Attempts before a refused batch is split: data errors repeat for sure; memory may recover.
REFUSALS_BEFORE_SPLIT: dict[Verdict, int] = {"data": 2, "size": 5, "transient": 0}


class Unstorable(Exception):
    """ClickHouse refuses this batch's data itself, not because of its own state: split it.

    ``data`` is True when the refusal names the data (a type, a constraint, too many partitions
    in one block): a single message refused so is a dead letter. Otherwise (memory that keeps
    running out) a single message waits, like any outage.
    """

    def __init__(self, kind: str, detail: str, data: bool) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.data = data


class ClickHouseSink:
    """Inserts groups of batches into ``readings`` with a deduplication token derived from
    their offsets.

    Two ways, the same rows. With a container (``avro``) it sends the batches' message bodies,
    already decoded and validated here, as one Avro container into ``readings_input``, where
    ClickHouse parses them and a view expands them into ``readings``. Without (``native``) it
    builds the rows here and inserts them into ``readings`` in ClickHouse's Native format
    (docs/design/worker.md: why both).

    A failed or timed-out insert is retried with the same token after a jittered exponential
    backoff, so a retry of an insert that did land is dropped by ClickHouse instead of stored
    twice. An insert past its timeout is cancelled on the server (KILL QUERY) before retrying.
    An error that names the data is retried a few times, then raised as :class:`Unstorable`;
    every other error (network, overload, a missing table, credentials) is retried until it
    clears: the partition waits.
    """

    def __init__(
        self,
        client: AsyncClient,
        insert_timeout: float,
        metrics: WorkerMetrics,
        max_backoff: float = 5.0,
        container: AvroContainer | None = None,
    ) -> None:
        self._client = client
        self._container = container  # the Avro path; None: the Native path
        self._metrics = metrics
        self._timeout = insert_timeout
        self._max_backoff = max_backoff

    async def insert(self, group: Group) -> None:
        attempt = 0
        refusals = 0
        while True:
            query_id = f"streamgauge-{uuid.uuid4().hex}"
            started = time.monotonic()
            cap = self._max_backoff
            try:
                await asyncio.wait_for(self._insert_once(group, query_id), self._timeout)
                self._metrics.insert_duration.observe(time.monotonic() - started)
                return
            except TimeoutError:
                self._metrics.clickhouse_error("timeout")
                log.warning("insert %s exceeded %.0f s; cancelling it", group.token, self._timeout)
                await self._kill(query_id)
            except Exception as error:
                kind = error_kind(error)
                self._metrics.clickhouse_error(kind)
                verdict = classify(error)
                if verdict != "transient":
                    refusals += 1
                    if refusals >= REFUSALS_BEFORE_SPLIT[verdict]:
                        raise Unstorable(kind, _short(error), verdict == "data") from None
                log.warning(
                    "insert %s failed (attempt %d): %s", group.token, attempt + 1, _short(error)
                )
                if kind in _PART_PRESSURE and verdict == "transient":
                    cap = self._max_backoff * 6  # give merges time; the next batch grows
            self._metrics.insert_duration.observe(time.monotonic() - started)
            attempt += 1
            await asyncio.sleep(backoff(attempt, cap))

    async def store_dead_letters(self, letters: Sequence[Letter]) -> None:
        """Keep dead letters too large for Kafka in ``dead_letters``, retrying until stored."""
        attempt = 0
        while True:
            try:
                await self._client.insert(
                    DEAD_LETTERS_TABLE,
                    [letter_row(letter) for letter in letters],
                    column_names=LETTER_COLUMNS,
                )
                return
            except Exception as error:
                attempt += 1
                self._metrics.clickhouse_error(error_kind(error))
                log.warning("storing %d dead letters failed: %s", len(letters), _short(error))
                await asyncio.sleep(backoff(attempt, self._max_backoff))

    async def stored_identities(self, wanted: Sequence[Identity]) -> set[Identity]:
        """Which of these message identities already have rows in ``readings``."""
        devices = sorted({device for device, _, _ in wanted})
        times = [event_time for _, event_time, _ in wanted]
        result = await self._client.query(
            "SELECT DISTINCT device_id, toUnixTimestamp64Milli(event_time), seq FROM readings "
            "WHERE device_id IN {devices:Array(String)} "
            "AND event_time BETWEEN fromUnixTimestamp64Milli({first:Int64}, 'UTC') "
            "AND fromUnixTimestamp64Milli({last:Int64}, 'UTC') "
            "AND (device_id, toUnixTimestamp64Milli(event_time), seq) "
            "IN {wanted:Array(Tuple(String, Int64, UInt64))}",
            parameters={
                "devices": devices,
                "first": min(times),
                "last": max(times),
                "wanted": list(wanted),
            },
        )
        return {(str(d), int(t), int(s)) for d, t, s in result.result_rows}

    async def highest_seqs(self, devices: Sequence[str]) -> dict[str, int]:
        """The highest seq stored per device (devices with nothing stored are absent)."""
        result = await self._client.query(
            "SELECT device_id, max(max_seq) FROM device_partitions "
            "WHERE device_id IN {devices:Array(String)} GROUP BY device_id",
            parameters={"devices": list(devices)},
        )
        return {str(d): int(s) for d, s in result.result_rows}

    async def _insert_once(self, group: Group, query_id: str) -> None:
        settings: dict[str, Any] = {
            **INSERT_SETTINGS,
            "insert_deduplication_token": group.token,
            "query_id": query_id,
        }
        if self._container is not None:
            await self._client.raw_insert(
                INPUT_TABLE, None, self._container.of(group), settings=settings, fmt="Avro"
            )
            return
        await self._client.insert(
            TABLE,
            group.columns(),
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


class AvroContainer:
    """A group's batches as an Avro object container file of one block: each row is the
    message's source (partition and offset, little-endian, a ``fixed`` of 10 bytes) followed by
    its body in the newest measurement schema — the bytes the worker decoded and validated, not
    re-encoded."""

    def __init__(self, measurement: dict[str, Any]) -> None:
        schema = {
            "type": "record",
            "name": "StoredMeasurement",
            "namespace": "io.streamgauge.worker",
            "fields": [
                {"name": "source", "type": {"type": "fixed", "name": "Source", "size": 10}},
                *measurement["fields"],
            ],
        }
        self._sync = os.urandom(16)
        meta = {b"avro.schema": json.dumps(schema).encode(), b"avro.codec": b"null"}
        header = [b"Obj\x01", _long(len(meta))]
        for key, value in meta.items():
            header += [_long(len(key)), key, _long(len(value)), value]
        self._header = b"".join([*header, _long(0), self._sync])

    def of(self, group: Group) -> bytes:
        rows = []
        for batch in group.parts:
            partition = batch.partition.to_bytes(2, "little")
            rows += [
                partition + offset.to_bytes(8, "little") + body
                for offset, body in zip(batch.offsets, batch.bodies, strict=True)
            ]
        count = len(rows)
        block = b"".join(rows)
        return b"".join([self._header, _long(count), _long(len(block)), block, self._sync])


def _long(value: int) -> bytes:
    """Avro's encoding of a long: zig-zag, then a little-endian base-128 varint."""
    value = (value << 1) ^ (value >> 63)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def classify(error: BaseException) -> Verdict:
    """Whether an insert error names the data, keeps recurring for its size, or will clear."""
    code = _code(error)
    if code is None:
        return "transient"  # no answer from ClickHouse: network, timeout, a reset
    if code in _DATA_CODES:
        return "data"
    if code == 252 and _PER_BLOCK.search(str(error)):
        return "data"  # too many partitions for one INSERT block; TOO_MANY_PARTS otherwise
    if code == 241:
        return "size"
    return "transient"


def error_kind(error: BaseException) -> str:
    """A low-cardinality label: the ClickHouse error code, or the kind of failure."""
    code = _code(error)
    if code is not None:
        return f"code_{code}"
    text = str(error)
    if isinstance(error, OSError) or "connect" in text.lower():
        return "connection"
    return type(error).__name__.lower()


def _code(error: BaseException) -> int | None:
    code = getattr(error, "code", None)
    if isinstance(code, int) and code > 0:
        return code
    match = _CODE.search(str(error))
    return int(match.group(1)) if match else None


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]
