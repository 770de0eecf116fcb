"""Resends: a message sent again (same device, event time and seq) is stored once.

A device or gateway that did not hear back sends a message again; Kafka then holds it at two
offsets. Rows of both would collapse under ``readings FINAL``, but rollups and series would
count them twice, so the worker drops a resend before the insert (docs/delivery.md).

Deciding it is cheap for nearly every message: a device's seq grows, so a message whose seq is
above the highest seq ever stored for its device (``device_partitions.max_seq``, looked up once
per device and then followed in memory) is new. Only the others — resends, late messages,
devices whose seq went back (a reboot) — are looked up in ``readings`` by their identity,
once per batch, right before its insert (after the partition's previous batch was stored).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from streams.worker.batch import Batch, Identity

LOOKUP_CHUNK = 1000  # identities per query


class Store(Protocol):
    """What deciding needs of ClickHouse (streams/worker/sink.py: ClickHouseSink)."""

    async def highest_seqs(self, devices: Sequence[str]) -> dict[str, int]: ...

    async def stored_identities(self, wanted: Sequence[Identity]) -> set[Identity]: ...


@dataclass
class Known:
    """What this process knows of one device's seqs."""

    taken: int  # the highest seq in a batch of this process (stored, in flight or open)
    settled: int  # the highest seq stored, or in a batch whose resends were already dropped
    learned: bool = False  # ``settled`` includes what ClickHouse had when first asked


class Resends:
    """The highest seqs known per device, for the devices this process saw recently."""

    def __init__(self, store: Store, max_devices: int = 200_000) -> None:
        self._store = store
        self._max_devices = max_devices
        self._known: collections.OrderedDict[str, Known] = collections.OrderedDict()

    def is_new(self, identity: Identity) -> bool:
        """True when this message is new for sure; False when it must be looked up."""
        device, _, seq = identity
        known = self._known.get(device)
        if known is None:
            self._remember(device, Known(seq, -1))
            return False
        self._known.move_to_end(device)  # least recently seen devices are forgotten first
        if not known.learned or seq <= known.taken:
            known.taken = max(known.taken, seq)
            return False
        known.taken = seq
        return True

    async def settle(self, batch: Batch) -> None:
        """Drop from ``batch`` the messages that are resends: of a stored message, or of an
        earlier message of the same batch."""
        if batch.unsure:
            unsure = {index: batch.identity(index) for index in batch.unsure}
            await self._learn([identity[0] for identity in unsure.values()])
            stored = await self._stored(list(unsure.values()))
            first_index: dict[Identity, int] = {}
            for index, identity in enumerate(batch.identities):
                first_index.setdefault(identity, index)
            batch.drop(
                {
                    index
                    for index, identity in unsure.items()
                    if identity in stored or first_index[identity] != index
                }
            )
        for device, seq in zip(batch.devices, batch.seqs, strict=True):
            known = self._known.get(device)
            if known is not None:
                known.settled = max(known.settled, seq)
                known.taken = max(known.taken, seq)

    def forget(self) -> None:
        """After a rebalance another process may have stored for our devices: ask ClickHouse
        again before calling any of their messages new.

        What this process took itself stays known: a batch of its own not stored yet (one in
        flight, or the pieces of a refused one) is in no answer of ClickHouse, and a copy of
        one of its messages arriving meanwhile must still be looked up before its insert.
        """
        for known in self._known.values():
            known.learned = False

    async def _learn(self, devices: Sequence[str]) -> None:
        unlearned = sorted({d for d in devices if not self._get(d).learned})
        for start in range(0, len(unlearned), LOOKUP_CHUNK):
            chunk = unlearned[start : start + LOOKUP_CHUNK]
            highest = await self._store.highest_seqs(chunk)
            for device in chunk:
                known = self._get(device)
                stored = highest.get(device, -1)
                known.settled = max(known.settled, stored)
                known.taken = max(known.taken, stored)
                known.learned = True

    async def _stored(self, wanted: list[Identity]) -> set[Identity]:
        """Those of ``wanted`` already stored: only a seq not above the device's settled
        highest can be."""
        candidates = sorted({i for i in wanted if i[2] <= self._get(i[0]).settled})
        found: set[Identity] = set()
        for start in range(0, len(candidates), LOOKUP_CHUNK):
            found |= await self._store.stored_identities(candidates[start : start + LOOKUP_CHUNK])
        return found

    def _get(self, device: str) -> Known:
        known = self._known.get(device)
        if known is None:
            known = self._remember(device, Known(-1, -1))
        return known

    def _remember(self, device: str, known: Known) -> Known:
        self._known[device] = known
        self._known.move_to_end(device)
        while len(self._known) > self._max_devices:
            self._known.popitem(last=False)
        return known
