"""Resends: a message sent again (same device, event time and seq) is stored once.

A device or gateway that did not hear back sends a message again; Kafka then holds it at two
offsets. Rows of both would collapse under ``readings FINAL``, but rollups and series would
count them twice, so the worker drops a resend before the insert (docs/delivery.md).

Deciding it is cheap for nearly every message: a device's seq grows, so a message whose seq is
above the highest seq ever stored for its device (ClickHouse's ``device_seq``, looked up once
per device and then followed in memory) is new. Only the others — resends, late messages,
devices whose seq went back (a reboot) — are looked up in ``readings`` by their identity,
once per batch, right before its insert (after the partition's previous batch was stored).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Protocol

from streams.worker.batch import Batch, Identity

LOOKUP_CHUNK = 1000  # identities per query


class Store(Protocol):
    """What deciding needs of ClickHouse (streams/worker/sink.py: ClickHouseSink)."""

    async def highest_seqs(self, devices: Sequence[str]) -> dict[str, int]: ...

    async def stored_identities(self, wanted: Sequence[Identity]) -> set[Identity]: ...


class Resends:
    """The highest seq known per device, for the devices this process saw recently."""

    def __init__(self, store: Store, max_devices: int = 200_000) -> None:
        self._store = store
        self._max_devices = max_devices
        self._highest: collections.OrderedDict[str, int] = collections.OrderedDict()

    def is_new(self, identity: Identity) -> bool:
        """True when this message is new for sure; False when it must be looked up."""
        device, _, seq = identity
        highest = self._highest.get(device)
        if highest is None or seq <= highest:
            return False
        self._highest[device] = seq
        return True

    async def settle(self, batch: Batch) -> None:
        """Drop from ``batch`` the messages that are resends: of a stored message, or of an
        earlier message of the same batch."""
        if not batch.unsure:
            return
        unsure = {index: batch.identities[index] for index in batch.unsure}
        await self._learn([identity[0] for identity in unsure.values()])
        stored = await self._stored(list(unsure.values()))
        first_index: dict[Identity, int] = {}
        for index, identity in enumerate(batch.identities):
            first_index.setdefault(identity, index)
        resent = {
            index
            for index, identity in unsure.items()
            if identity in stored or first_index[identity] != index
        }
        for device, _, seq in batch.identities:
            self._raise(device, seq)
        batch.drop(resent)

    def forget(self) -> None:
        """After a rebalance another process may have stored for our devices: ask again."""
        self._highest.clear()

    async def _learn(self, devices: Sequence[str]) -> None:
        unknown = sorted({device for device in devices if device not in self._highest})
        for start in range(0, len(unknown), LOOKUP_CHUNK):
            chunk = unknown[start : start + LOOKUP_CHUNK]
            highest = await self._store.highest_seqs(chunk)
            for device in chunk:
                self._raise(device, highest.get(device, -1))

    async def _stored(self, wanted: list[Identity]) -> set[Identity]:
        """Those of ``wanted`` already stored; a seq above its device's highest is not."""
        candidates = sorted({i for i in wanted if i[2] <= self._highest.get(i[0], -1)})
        found: set[Identity] = set()
        for start in range(0, len(candidates), LOOKUP_CHUNK):
            found |= await self._store.stored_identities(candidates[start : start + LOOKUP_CHUNK])
        return found

    def _raise(self, device: str, seq: int) -> None:
        highest = self._highest.get(device)
        if highest is None or seq > highest:
            self._highest[device] = seq
        self._highest.move_to_end(device)
        while len(self._highest) > self._max_devices:
            self._highest.popitem(last=False)
