"""HTTP compression as ClickHouse does it: request bodies by Content-Encoding, responses by
Accept-Encoding (when ``enable_http_compression`` is on).

clickhouse-connect compresses INSERT bodies with lz4 when the ``lz4`` package is installed, else
zstd, and sends one compressed frame per block, so a body is a sequence of frames.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

from devstack.clickhouse_http.errors import CANNOT_DECOMPRESS, NOT_IMPLEMENTED, ClickHouseError

try:
    import lz4.frame as lz4_frame  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - clickhouse-connect then does not offer lz4 either
    lz4_frame = None

try:
    from backports import zstd
except ImportError:  # pragma: no cover - Python 3.14 has it in the standard library
    from compression import zstd  # type: ignore[import-not-found,no-redef]


def _lz4_decompress(body: bytes) -> bytes:
    if lz4_frame is None:
        raise ClickHouseError(NOT_IMPLEMENTED, "lz4 needs the lz4 Python package")
    parts = []
    while body:
        decompressor = lz4_frame.LZ4FrameDecompressor()
        parts.append(decompressor.decompress(body))
        if not decompressor.eof:
            raise ClickHouseError(CANNOT_DECOMPRESS, "lz4 data ends in the middle of a frame")
        body = decompressor.unused_data
    return b"".join(parts)


def _lz4_compress(body: bytes, _level: int) -> bytes:
    if lz4_frame is None:
        raise ClickHouseError(NOT_IMPLEMENTED, "lz4 needs the lz4 Python package")
    return bytes(lz4_frame.compress(body))


_DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "zstd": zstd.decompress,
    "lz4": _lz4_decompress,
}
_COMPRESS: dict[str, Callable[[bytes, int], bytes]] = {
    "zstd": lambda body, level: zstd.compress(body, level),
    "lz4": _lz4_compress,
    "gzip": lambda body, level: gzip.compress(body, min(level, 9)),
    "deflate": lambda body, level: zlib.compress(body, min(level, 9)),
}
# ClickHouse's chooseHTTPCompressionMethod preference (br, snappy, xz, bz2 are not offered here).
_PREFERENCE = ("zstd", "lz4", "gzip", "deflate")


def decompress(body: bytes, encoding: str) -> bytes:
    """Decode a request body sent with ``Content-Encoding: encoding``."""
    if not body or encoding in ("", "identity", "none"):
        return body
    method = _DECOMPRESS.get(encoding)
    if method is None:
        raise ClickHouseError(
            NOT_IMPLEMENTED,
            f"Content-Encoding '{encoding}' is not supported; use one of {', '.join(_DECOMPRESS)}",
        )
    try:
        return method(body)
    except ClickHouseError:
        raise
    except Exception as error:
        raise ClickHouseError(
            CANNOT_DECOMPRESS, f"Cannot decompress the {encoding} request body: {error}"
        ) from error


def choose(accept_encoding: str) -> str | None:
    """The response encoding ClickHouse picks from an Accept-Encoding header, if any."""
    offered = accept_encoding.lower()
    return next((method for method in _PREFERENCE if method in offered), None)


def compress(body: bytes, method: str, level: int) -> bytes:
    """Encode a whole response body as one frame (one gzip member, one zstd or lz4 frame)."""
    return _COMPRESS[method](body, level)
