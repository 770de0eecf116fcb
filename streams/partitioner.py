"""Kafka's Java default keyed partitioner (murmur2), the one streamgauge's producer uses.

The producer library configures librdkafka with ``murmur2_random``, the Java client's
default. Nothing relies on it downstream: fleets may use any partitioner, and the read API
follows the partitions a device's readings really arrived on (api/arrivals.py). Tests and
benchmarks use it to know where streamgauge's producer puts a device.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``: a signed 32-bit hash."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length % 4
    if tail == 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(device_id: str, partitions: int) -> int:
    """The partition of ``device_id`` in a topic with ``partitions`` partitions."""
    return (murmur2(device_id.encode()) & 0x7FFFFFFF) % partitions
