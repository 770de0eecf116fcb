"""Resends across a rebalance: what the process took itself is not forgotten."""

from __future__ import annotations

from collections.abc import Sequence

from streams.worker.batch import Batch, Identity
from streams.worker.resends import Resends


class Stored:
    """What ClickHouse holds: identities, and the highest seq per device among them."""

    def __init__(self) -> None:
        self.identities: set[Identity] = set()

    async def highest_seqs(self, devices: Sequence[str]) -> dict[str, int]:
        highest: dict[str, int] = {}
        for device, _, seq in self.identities:
            if device in devices:
                highest[device] = max(seq, highest.get(device, -1))
        return highest

    async def stored_identities(self, wanted: Sequence[Identity]) -> set[Identity]:
        return self.identities & set(wanted)


def batch(resends: Resends, first: int, *seqs: int) -> Batch:
    made = Batch("t", 0, first)
    for offset, seq in enumerate(seqs, first):
        identity = ("dev-3", 1_000 * seq, seq)
        made.add_body(offset, 10, identity, 4, b"", unsure=not resends.is_new(identity))
    return made


async def test_a_copy_of_a_message_still_in_flight_at_a_rebalance_is_looked_up() -> None:
    # The sequence of a randomized trial that stored a reading twice: a batch refused and
    # split, a rebalance while its pieces wait for ClickHouse, a copy in the next batch.
    store = Stored()
    resends = Resends(store)
    refused = batch(resends, 0, 1, 2, 3)  # seq 3 is the message the device sends again
    await resends.settle(refused)
    left, right = refused.split()  # ClickHouse refused it: stored in halves, left first
    for half in (left, right):
        half.unsure = list(range(len(half.offsets)))
    resends.forget()  # a rebalance (another partition revoked) while the halves wait
    await resends.settle(left)
    store.identities |= set(left.identities)
    copy = batch(resends, 3, 3)  # the resend arrives while the right half still waits
    await resends.settle(right)
    store.identities |= set(right.identities)
    await resends.settle(copy)
    assert copy.identities == [], "the copy is dropped: its original is stored"
    assert copy.resent == [3]
