"""Request bodies as clickhouse-connect compresses them; responses as ClickHouse compresses them."""

from __future__ import annotations

import gzip
import zlib

import lz4.frame  # type: ignore[import-untyped]
import pytest
from backports import zstd

from devstack.clickhouse_http import compression
from devstack.clickhouse_http.errors import ClickHouseError

BLOCKS = [b"INSERT INTO t FORMAT Native\n", bytes(range(256)) * 100, b"last block"]


@pytest.mark.parametrize(
    ("encoding", "frame"),
    [
        ("lz4", lz4.frame.compress),
        ("zstd", zstd.compress),
        ("gzip", gzip.compress),
    ],
)
def test_a_body_of_one_frame_per_block_decompresses_whole(encoding: str, frame: object) -> None:
    assert callable(frame)
    body = b"".join(frame(block) for block in BLOCKS)
    assert compression.decompress(body, encoding) == b"".join(BLOCKS)


def test_deflate_and_identity() -> None:
    assert compression.decompress(zlib.compress(b"abc"), "deflate") == b"abc"
    assert compression.decompress(b"abc", "") == b"abc"


@pytest.mark.parametrize(
    ("body", "encoding", "code"),
    [
        (lz4.frame.compress(b"abc" * 1000)[:-5], "lz4", 271),
        (b"not zstd", "zstd", 271),
        (b"abc", "xz", 48),
    ],
)
def test_bad_bodies_are_clickhouse_errors(body: bytes, encoding: str, code: int) -> None:
    with pytest.raises(ClickHouseError) as error:
        compression.decompress(body, encoding)
    assert error.value.code == code


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("lz4,zstd,gzip,deflate", "zstd"),  # clickhouse-connect's offer; ClickHouse prefers zstd
        ("deflate, gzip", "gzip"),
        ("lz4", "lz4"),
        ("identity", None),
        ("", None),
    ],
)
def test_response_encoding_follows_clickhouse_preference(accept: str, chosen: str | None) -> None:
    assert compression.choose(accept) == chosen


@pytest.mark.parametrize("method", ["zstd", "lz4", "gzip", "deflate"])
def test_compressed_responses_round_trip(method: str) -> None:
    body = b"1\t2\n" * 1000
    encoded = compression.compress(body, method, 3)
    assert len(encoded) < len(body)
    assert compression.decompress(encoded, method) == body
