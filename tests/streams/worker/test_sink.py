"""ClickHouseSink at its seam: a fake clickhouse-connect AsyncClient."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import fastavro
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from streams.codec import Decoder, Encoder, load_versions
from streams.settings import REPO_ROOT
from streams.worker.batch import Batch, Group
from streams.worker.sink import AvroContainer, ClickHouseSink, Unstorable, classify, error_kind
from streams.worker.telemetry import WorkerMetrics

RECORD = {
    "device_id": "d",
    "event_time": 1_795_670_400_000,
    "seq": 1,
    "readings": {"t": 1.0},
    "firmware": "",
    "site": None,
}


class FakeClient:
    """Answers inserts from a script: an exception is raised, anything else succeeds."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.inserts: list[dict[str, Any]] = []
        self.commands: list[str] = []

    async def insert(self, table: str, data: Any, **options: Any) -> None:
        self.inserts.append({"table": table, "data": data, **options})
        answer = self.script.pop(0) if self.script else None
        if isinstance(answer, BaseException):
            raise answer
        if answer == "hang":
            await asyncio.sleep(10)

    async def raw_insert(
        self, table: str, column_names: Any, insert_block: bytes, **options: Any
    ) -> None:
        await self.insert(table, insert_block, **options)

    async def command(self, sql: str, parameters: dict[str, Any]) -> None:
        self.commands.append(sql)


def batch() -> Group:
    made = Batch("m/id", 0, 10)
    versions = load_versions(REPO_ROOT / "schemas" / "avro")
    record, body = Decoder(versions).decode_stored(Encoder(versions[-1]).encode(RECORD))
    made.add_body(10, 50, (record["device_id"], record["event_time"], record["seq"]), 1, body)
    return Group([made])


def sink(client: FakeClient, timeout: float = 5.0) -> ClickHouseSink:
    container = AvroContainer(load_versions(REPO_ROOT / "schemas" / "avro")[-1].source)
    return ClickHouseSink(
        client,  # type: ignore[arg-type]
        timeout,
        WorkerMetrics("m", 0),
        max_backoff=0.001,
        container=container,
    )


def server_error(code: int, text: str = "") -> DatabaseError:
    return DatabaseError(
        f"Received ClickHouse exception, code: {code}, server response: "
        f"Code: {code}. DB::Exception: {text}"
    )


async def test_a_transient_failure_is_retried_with_the_same_token() -> None:
    client = FakeClient(OperationalError("connection refused"), server_error(252, "Too many parts"))
    await sink(client).insert(batch())
    tokens = {i["settings"]["insert_deduplication_token"] for i in client.inserts}
    assert len(client.inserts) == 3
    assert tokens == {"m/id/0/10-10"}


async def test_data_the_server_refuses_is_unstorable_after_two_attempts() -> None:
    client = FakeClient(*[server_error(53, "Type mismatch")] * 5)
    with pytest.raises(Unstorable) as refused:
        await sink(client).insert(batch())
    assert refused.value.data
    assert len(client.inserts) == 2


async def test_too_many_partitions_in_one_block_is_data_too_many_parts_is_not() -> None:
    per_block = server_error(252, "Too many partitions for single INSERT block (more than 100)")
    assert classify(per_block) == "data"
    assert classify(server_error(252, "Too many parts (3001)")) == "transient"


async def test_memory_that_keeps_running_out_splits_after_five_attempts() -> None:
    client = FakeClient(*[server_error(241, "Memory limit exceeded")] * 6)
    with pytest.raises(Unstorable) as refused:
        await sink(client).insert(batch())
    assert not refused.value.data, "a single message is not dead-lettered for memory"
    assert len(client.inserts) == 5


async def test_an_insert_past_its_timeout_is_killed_on_the_server_and_retried() -> None:
    client = FakeClient("hang")
    await sink(client, timeout=0.05).insert(batch())
    assert len(client.inserts) == 2
    assert client.commands == ["KILL QUERY WHERE query_id = {id:String} ASYNC"]


def test_error_kinds_are_low_cardinality_labels() -> None:
    assert error_kind(server_error(241)) == "code_241"
    assert error_kind(OperationalError("Connection refused")) == "connection"
    assert error_kind(ValueError("x")) == "valueerror"
    assert classify(OperationalError("reset")) == "transient"
    assert classify(server_error(516, "Authentication failed")) == "transient"


def test_the_avro_container_holds_each_message_with_its_partition_and_offset() -> None:
    versions = load_versions(REPO_ROOT / "schemas" / "avro")
    decoder = Decoder(versions)
    made = Batch("m/id", 7, 300)
    other = Batch("m/id", 2, 40)
    for part, offset, version in (
        (made, 300, versions[0]),
        (made, 302, versions[-1]),
        (other, 40, versions[0]),
    ):
        record, body = decoder.decode_stored(Encoder(version).encode({**RECORD, "seq": offset}))
        part.add_body(offset, 50, (record["device_id"], record["event_time"], offset), 1, body)
    group = Group([made, other])
    assert group.token == "m/id/2:40-40,7:300-302", "every part, in partition order"
    blob = AvroContainer(versions[-1].source).of(group)
    rows: list[Any] = list(fastavro.reader(io.BytesIO(blob)))
    assert [row["source"] for row in rows] == [
        (2).to_bytes(2, "little") + (40).to_bytes(8, "little"),
        (7).to_bytes(2, "little") + (300).to_bytes(8, "little"),
        (7).to_bytes(2, "little") + (302).to_bytes(8, "little"),
    ]
    assert [(row["device_id"], row["seq"], row["readings"], row["site"]) for row in rows] == [
        ("d", 40, {"t": 1.0}, None),
        ("d", 300, {"t": 1.0}, None),
        ("d", 302, {"t": 1.0}, None),
    ]
