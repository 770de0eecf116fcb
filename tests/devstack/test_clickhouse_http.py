"""The local ClickHouse answers clickhouse-connect and curl the way a ClickHouse server does."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from devstack.clickhouse_local import LocalClickHouse
from devstack.daemon import free_port

pytestmark = pytest.mark.integration

PASSWORD = "test-secret"
Client = Any  # clickhouse_connect's clients carry no type information


def start(devstack_dir: Path, port: int) -> LocalClickHouse:
    server = LocalClickHouse(devstack_dir, port=port, password=PASSWORD)
    server.start()
    try:
        server.daemon.wait_ready(server.ready, timeout=60)
    except BaseException:
        server.daemon.stop()
        raise
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalClickHouse]:
    running = start(tmp_path_factory.mktemp("devstack"), free_port())
    yield running
    running.daemon.stop()


def connect(server: LocalClickHouse, **options: Any) -> Client:
    options.setdefault("password", PASSWORD)
    return clickhouse_connect.get_client(host=server.host, port=server.port, **options)


@pytest.fixture
def client(server: LocalClickHouse) -> Iterator[Client]:
    opened = connect(server)
    yield opened
    opened.close()


def http(
    server: LocalClickHouse,
    body: bytes = b"",
    method: str = "POST",
    password: str = PASSWORD,
    **params: str,
) -> tuple[int, dict[str, str], bytes]:
    """One raw request: status, headers, body."""
    url = f"http://{server.daemon.address}/?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method)
    request.add_header("X-ClickHouse-User", "default")
    request.add_header("X-ClickHouse-Key", password)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_hundred_thousand_rows_through_the_default_client(client: Client, unique: str) -> None:
    table = f"readings_{unique}"
    client.command(
        f"CREATE TABLE {table} (id UInt64, device String, value Float64) "
        "ENGINE = MergeTree ORDER BY id"
    )
    rows = [[i, f"device-{i % 977}", i / 4] for i in range(100_000)]
    summary = client.insert(table, rows, column_names=["id", "device", "value"])
    assert summary.written_rows == 100_000
    assert int(summary.summary["elapsed_ns"]) < 1_000_000_000, "server time for 100k rows"
    count, total, devices, value_sum = client.query(
        f"SELECT count(), sum(id), uniqExact(device), sum(value) FROM {table}"
    ).result_rows[0]
    assert (count, total, devices) == (100_000, sum(range(100_000)), 977)
    assert value_sum == sum(range(100_000)) / 4


def test_syntax_error_raises_database_error_with_clickhouse_code(client: Client) -> None:
    with pytest.raises(DatabaseError) as raised:
        client.query("SELEC 1")
    assert raised.value.code == 62
    assert "Code: 62" in str(raised.value)
    assert "(SYNTAX_ERROR)" in str(raised.value)


def test_curl_select_json(server: LocalClickHouse) -> None:
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--fail",
            "-u",
            f"default:{PASSWORD}",
            "--data-binary",
            "SELECT 1 AS one, 'x' AS s FORMAT JSON",
            f"http://{server.daemon.address}/",
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    answer = json.loads(result.stdout)
    assert answer["data"] == [{"one": 1, "s": "x"}]
    assert answer["meta"] == [{"name": "one", "type": "UInt8"}, {"name": "s", "type": "String"}]


def test_curl_get_with_query_parameter_and_compressed_answer(server: LocalClickHouse) -> None:
    query = urllib.parse.quote("SELECT number FROM numbers(3) FORMAT CSV")
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--fail",
            "--compressed",
            "-D",
            "-",
            f"http://default:{PASSWORD}@{server.daemon.address}/?query={query}",
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert result.stdout.endswith(b"\r\n\r\n0\n1\n2\n")
    assert b"content-encoding: zstd" in result.stdout.lower()


def test_wrong_password_is_refused_and_the_right_one_accepted(server: LocalClickHouse) -> None:
    with pytest.raises(DatabaseError) as raised:
        connect(server, password="wrong")
    assert raised.value.code == 516
    status, headers, body = http(server, b"SELECT 1", password="")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (403, "516")
    assert b"Authentication failed" in body
    assert http(server, b"SELECT 1")[::2] == (200, b"1\n")
    assert http(server, method="GET", password="")[::2] == (200, b"Ok.\n")


def test_ping_needs_no_password(server: LocalClickHouse) -> None:
    assert server.ready()


def test_data_survives_a_restart(tmp_path: Path) -> None:
    server = start(tmp_path, free_port())
    try:
        client = connect(server)
        client.command("CREATE TABLE kept (id UInt32) ENGINE = MergeTree ORDER BY id")
        client.insert("kept", [[i] for i in range(1000)], column_names=["id"])
        client.close()
        server.daemon.stop()
        server = start(tmp_path, server.port)
        assert connect(server).command("SELECT sum(id) FROM kept") == sum(range(1000))
    finally:
        server.daemon.stop()


@pytest.mark.parametrize("method", ["zstd", "lz4", "gzip"])
def test_insert_with_compressed_body(server: LocalClickHouse, unique: str, method: str) -> None:
    client = connect(server, compress=method)
    table = f"compressed_{method}_{unique}"
    client.command(f"CREATE TABLE {table} (id UInt32, s String) ENGINE = MergeTree ORDER BY id")
    client.insert(table, [[i, str(i)] for i in range(5000)], column_names=["id", "s"])
    assert client.query(f"SELECT count(), sum(toUInt32(s)) FROM {table}").result_rows == [
        (5000, sum(range(5000)))
    ]


def test_insert_of_a_column_subset_fills_defaults(client: Client, unique: str) -> None:
    table = f"defaults_{unique}"
    client.command(
        f"CREATE TABLE {table} (id UInt32, label String DEFAULT concat('n', toString(id)), "
        "doubled UInt64 MATERIALIZED id * 2, seen DateTime DEFAULT now()) "
        "ENGINE = MergeTree ORDER BY id"
    )
    client.insert(table, [[1], [2]], column_names=["id"])
    rows = client.query(f"SELECT id, label, doubled, seen > 0 FROM {table} ORDER BY id")
    assert rows.result_rows == [(1, "n1", 2, True), (2, "n2", 4, True)]


def test_text_formats_from_the_body(server: LocalClickHouse, client: Client, unique: str) -> None:
    table = f"text_{unique}"
    client.command(f"CREATE TABLE {table} (id UInt32, s String) ENGINE = Memory")
    bodies = {
        "CSV": b'1,"a"\n',
        "TabSeparated": b"2\tb\n",
        "JSONEachRow": b'{"id": 3, "s": "c"}\n',
    }
    for fmt, data in bodies.items():
        status, headers, _ = http(server, data, query=f"INSERT INTO {table} FORMAT {fmt}")
        assert status == 200, fmt
        assert json.loads(headers["X-ClickHouse-Summary"])["written_rows"] == "1"
        assert "X-ClickHouse-Format" not in headers
    assert http(server, f"INSERT INTO {table} FORMAT CSV\n4,d\n".encode())[0] == 200
    assert client.query(f"SELECT id, s FROM {table} ORDER BY id").result_rows == [
        (1, "a"),
        (2, "b"),
        (3, "c"),
        (4, "d"),
    ]


def test_raw_row_binary_insert(client: Client, unique: str) -> None:
    table = f"rowbinary_{unique}"
    client.command(f"CREATE TABLE {table} (id UInt32, s String) ENGINE = Memory")
    data = b"".join(i.to_bytes(4, "little") + b"\x01" + bytes([65 + i]) for i in range(3))
    client.raw_insert(table, ["id", "s"], data, fmt="RowBinary")
    assert client.query(f"SELECT s FROM {table} ORDER BY id").result_rows == [
        ("A",),
        ("B",),
        ("C",),
    ]


def test_query_parameters_are_bound_by_the_server(client: Client) -> None:
    assert client.query("SELECT {x:UInt32} + 1", parameters={"x": 41}).result_rows == [(42,)]
    long_text = "it's " * 2000  # long parameters travel in a multipart form
    result = client.query(
        "SELECT length({s:String}), {a:Array(UInt8)}", parameters={"s": long_text, "a": [1, 2]}
    )
    assert result.result_rows == [(len(long_text), [1, 2])]


def test_url_settings_apply_to_their_query_only(client: Client) -> None:
    limited = {"max_result_rows": 3, "result_overflow_mode": "throw"}
    with pytest.raises(DatabaseError) as raised:
        client.query("SELECT number FROM numbers(10)", settings=limited)
    assert raised.value.code == 396  # TOO_MANY_ROWS_OR_BYTES
    assert len(client.query("SELECT number FROM numbers(10)").result_rows) == 10


def test_unknown_setting_is_an_error(client: Client) -> None:
    with pytest.raises(DatabaseError) as raised:
        client.query("SELECT 1", settings={"no_such_setting": 1})
    assert raised.value.code == 115


def test_session_keeps_set_and_temporary_tables(client: Client) -> None:
    client.command("CREATE TEMPORARY TABLE scratch (x UInt8)")
    client.command("INSERT INTO scratch VALUES (1), (2)")
    client.command("SET max_result_rows = 7")
    assert client.command("SELECT count() FROM scratch") == 2
    assert client.command("SELECT getSetting('max_result_rows')") == 7


def test_get_may_only_read(server: LocalClickHouse) -> None:
    status, headers, _ = http(server, method="GET", query="CREATE DATABASE not_by_get")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (500, "164")


def test_headers_of_a_select(server: LocalClickHouse) -> None:
    status, headers, body = http(server, b"SELECT 'a' FORMAT JSONEachRow", query_id="q-headers")
    assert (status, body) == (200, b'{"\'a\'":"a"}\n')
    assert headers["X-ClickHouse-Query-Id"] == "q-headers"
    assert headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert headers["X-ClickHouse-Timezone"]
    assert headers["X-ClickHouse-Server-Display-Name"]
    assert json.loads(headers["X-ClickHouse-Summary"])["result_rows"] == "1"


def test_unknown_table_is_a_404_with_the_code_header(server: LocalClickHouse) -> None:
    status, headers, body = http(server, b"SELECT * FROM no_such_table")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (404, "60")
    assert body.startswith(b"Code: 60. DB::Exception: ")
    assert b"(UNKNOWN_TABLE) (version " in body


async def test_async_client(server: LocalClickHouse, unique: str) -> None:
    client = await clickhouse_connect.get_async_client(
        host=server.host, port=server.port, password=PASSWORD
    )
    table = f"async_{unique}"
    await client.command(f"CREATE TABLE {table} (id UInt32) ENGINE = MergeTree ORDER BY id")
    await client.insert(table, [[i] for i in range(10_000)], column_names=["id"])
    result = await client.query(f"SELECT count(), sum(id) FROM {table}")
    assert result.result_rows == [(10_000, sum(range(10_000)))]
    await client.close()


def test_kill_query_cancels_a_running_query_while_ping_answers(server: LocalClickHouse) -> None:
    outcome: list[BaseException] = []

    def slow() -> None:
        try:
            connect(server).query(
                "SELECT sleepEachRow(1) FROM numbers(60) SETTINGS max_block_size = 1",
                settings={"query_id": "slow-query"},
            )
        except BaseException as error:  # handed to the test's thread
            outcome.append(error)

    runner = threading.Thread(target=slow)
    runner.start()
    time.sleep(1.5)
    started = time.monotonic()
    assert server.ready()
    assert time.monotonic() - started < 0.5, "/ping answers while a query runs"
    status, _, body = http(server, b"KILL QUERY WHERE query_id = 'slow-query' SYNC")
    assert status == 200
    assert b"sleepEachRow" in body, "the KILL found the query by its HTTP query id"
    runner.join(30)
    assert not runner.is_alive()
    assert isinstance(outcome[0], DatabaseError)
    assert outcome[0].code == 394  # QUERY_WAS_CANCELLED


def test_constraint_violation_in_a_native_insert_is_an_error(client: Client, unique: str) -> None:
    table = f"checked_{unique}"
    client.command(
        f"CREATE TABLE {table} (x Int32, CONSTRAINT c CHECK x > 0) ENGINE = MergeTree ORDER BY x"
    )
    with pytest.raises(DatabaseError) as raised:
        client.insert(table, [[-1]], column_names=["x"])  # Native, as clickhouse-connect sends
    assert raised.value.code == 469  # VIOLATED_CONSTRAINT
    assert "Constraint `c`" in str(raised.value)
    assert client.command(f"SELECT count() FROM {table}") == 0
    assert client.insert(table, [[1]], column_names=["x"]).written_rows == 1
    assert client.command(f"SELECT count() FROM {table}") == 1


def test_a_throwing_materialized_view_fails_the_insert(client: Client, unique: str) -> None:
    source, target = f"source_{unique}", f"target_{unique}"
    for table in (source, target):
        client.command(f"CREATE TABLE {table} (x Int32) ENGINE = MergeTree ORDER BY x")
    client.command(
        f"CREATE MATERIALIZED VIEW view_{unique} TO {target} "
        f"AS SELECT throwIf(x = 42) + x AS x FROM {source}"
    )
    with pytest.raises(DatabaseError) as raised:
        client.insert(source, [[42]], column_names=["x"])
    assert raised.value.code == 395  # FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
    assert client.command(f"SELECT count() FROM {target}") == 0


@pytest.mark.parametrize(
    ("fmt", "data", "code", "status"),
    [
        ("RowBinary", b"\x01\x00\x00\x00\x05ab", 33, 500),  # CANNOT_READ_ALL_DATA
        ("TabSeparated", b"1\ta\nabc\tb\n", 27, 400),  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        ("JSONEachRow", b'{"x": "abc", "s": "a"}\n', 27, 400),
        ("TabSeparated", b"-1\ta\n", 469, 500),  # VIOLATED_CONSTRAINT
    ],
)
def test_a_bad_body_fails_with_clickhouse_code(
    server: LocalClickHouse,
    client: Client,
    unique: str,
    fmt: str,
    data: bytes,
    code: int,
    status: int,
) -> None:
    table = f"bad_{unique}"
    client.command(
        f"CREATE TABLE {table} (x Int32, s String, CONSTRAINT c CHECK x > 0) "
        "ENGINE = MergeTree ORDER BY x"
    )
    answer, headers, body = http(server, data, query=f"INSERT INTO {table} FORMAT {fmt}")
    assert (answer, headers["X-ClickHouse-Exception-Code"]) == (status, str(code))
    assert body.startswith(f"Code: {code}. DB::Exception: ".encode())
    assert body.count(b"DB::Exception") == 1
    assert b"INFILE" not in body, "no trace of how the server inserts"
    assert b"parsed from file" not in body
    assert client.command(f"SELECT count() FROM {table}") == 0


def test_too_many_parts_fails_the_insert(client: Client, unique: str) -> None:
    table = f"parts_{unique}"
    client.command(
        f"CREATE TABLE {table} (x Int32) ENGINE = MergeTree ORDER BY x "
        "SETTINGS parts_to_throw_insert = 1, parts_to_delay_insert = 1"
    )
    client.command(f"SYSTEM STOP MERGES {table}")
    client.insert(table, [[1]], column_names=["x"])
    with pytest.raises(DatabaseError) as raised:
        client.insert(table, [[2]], column_names=["x"])
    assert raised.value.code == 252  # TOO_MANY_PARTS
    assert client.command(f"SELECT count() FROM {table}") == 1


def test_insert_deduplication_by_token(client: Client, unique: str) -> None:
    source, target = f"dedup_{unique}", f"dedup_target_{unique}"
    for table in (source, target):
        client.command(
            f"CREATE TABLE {table} (x Int32) ENGINE = MergeTree ORDER BY x "
            "SETTINGS non_replicated_deduplication_window = 100"
        )
    client.command(
        f"CREATE MATERIALIZED VIEW dedup_view_{unique} TO {target} "
        f"AS SELECT x * 10 AS x FROM {source}"
    )
    settings = {
        "insert_deduplication_token": f"batch-{unique}",
        "deduplicate_blocks_in_dependent_materialized_views": 1,
    }
    for _ in range(2):
        client.insert(source, [[1], [2]], column_names=["x"], settings=settings)
    assert client.query(f"SELECT x FROM {source} ORDER BY x").result_rows == [(1,), (2,)]
    assert client.query(f"SELECT x FROM {target} ORDER BY x").result_rows == [(10,), (20,)]


def test_settings_clause_and_column_list_of_an_insert(
    server: LocalClickHouse, client: Client, unique: str
) -> None:
    table = f"clause_{unique}"
    client.command(
        f"CREATE TABLE {table} (id UInt32, label String DEFAULT 'none') "
        "ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 10"
    )
    query = (
        f"INSERT INTO {table} (id) SETTINGS insert_deduplication_token = 'FORMAT x' "
        "FORMAT TabSeparated"
    )
    for _ in range(2):
        assert http(server, b"1\n2\n", query=query)[0] == 200
    assert client.query(f"SELECT id, label FROM {table} ORDER BY id").result_rows == [
        (1, "none"),
        (2, "none"),
    ]


def test_insert_select_with_data_is_not_supported(server: LocalClickHouse, unique: str) -> None:
    query = f"INSERT INTO nowhere_{unique} SELECT x FROM input('x Int32') FORMAT CSV"
    status, headers, body = http(server, b"1\n", query=query)
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (501, "48")
    assert b"input()" in body


def test_data_with_blank_lines_is_inserted_whole(
    server: LocalClickHouse, client: Client, unique: str
) -> None:
    table = f"blank_lines_{unique}"
    client.command(f"CREATE TABLE {table} (id UInt8, s String) ENGINE = MergeTree ORDER BY id")
    client.insert(table, [[10, "\n\n"], [10, ";\n\nSELECT 1"]], column_names=["id", "s"])
    body = b'{"id": 1, "s": "a"}\n\n{"id": 2, "s": "b"}\n'
    assert http(server, body, query=f"INSERT INTO {table} FORMAT JSONEachRow")[0] == 200
    assert http(server, b"", query=f"INSERT INTO {table} FORMAT Native")[0] == 200
    assert client.query(f"SELECT id, s FROM {table} ORDER BY id, s").result_rows == [
        (1, "a"),
        (2, "b"),
        (10, "\n\n"),
        (10, ";\n\nSELECT 1"),
    ]
