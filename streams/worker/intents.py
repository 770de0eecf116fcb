"""Batch intents carried in Kafka's committed-offset metadata.

Before a batch of partition p covering offsets first..last is inserted, the worker commits
offset ``first`` (unchanged) with the metadata ``sg1:first-last``. After ClickHouse
acknowledged, it commits ``last + 1``. A worker that takes p over after a crash or a
rebalance reads the intent and re-forms exactly that range, so the repeat insert carries the
same deduplication token and ClickHouse drops it (docs/delivery.md).

A batch with dead letters delivers them before its intent, which then says so
(``sg1:first-last:dl``): the replay of such a batch sends none of them again.

One insert may carry the batches of several partitions (a *group*, streams/worker/ingest.py).
Each member's intent then names every part of it, ``sg2:p:first-last,q:first-last,...`` in
partition order, so that whoever replays any one member can re-form the whole insert and its
token. A group's dead letters all go before its intents: an ``sg2`` intent's letters went.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_INTENT = re.compile(r"^sg1:(\d+)-(\d+)(:dl)?$")
_GROUP = re.compile(r"^sg2:(\d+:\d+-\d+(?:,\d+:\d+-\d+)+)$")
_PART = re.compile(r"(\d+):(\d+)-(\d+)")

Part = tuple[int, int, int]  # partition, first offset, last offset
# Kafka keeps up to 4 KiB of metadata per committed offset (offset.metadata.max.bytes): a
# part takes at most 27 characters below 10,000 partitions and 10^10 offsets.
MAX_GROUP_PARTS = 150


@dataclass(frozen=True)
class Intent:
    """A batch that may have been inserted but whose end was not committed.

    ``group`` holds every part of the insert it was in, this one's included, when that insert
    carried more than one partition; empty otherwise.
    """

    first: int
    last: int
    letters_sent: bool = False  # the range's dead letters are in the dead-letter topic
    group: tuple[Part, ...] = ()

    def metadata(self) -> str:
        if self.group:
            return "sg2:" + ",".join(f"{p}:{first}-{last}" for p, first, last in self.group)
        return f"sg1:{self.first}-{self.last}{':dl' if self.letters_sent else ''}"


def group_intents(parts: list[Part]) -> dict[int, Intent]:
    """The intent of each member of one insert carrying these parts (letters already sent)."""
    group = tuple(sorted(parts))
    return {p: Intent(first, last, True, group) for p, first, last in group}


def parse_intent(partition: int, committed_offset: int, metadata: str | None) -> Intent | None:
    """The intent recorded with ``committed_offset`` of ``partition``, if the metadata holds
    one for it."""
    text = metadata or ""
    match = _GROUP.match(text)
    if match is not None:
        parts = tuple(
            sorted((int(p), int(first), int(last)) for p, first, last in _PART.findall(text))
        )
        numbers = [p for p, _, _ in parts]
        mine = [(first, last) for p, first, last in parts if p == partition]
        if len(set(numbers)) != len(numbers) or any(last < first for _, first, last in parts):
            return None
        if len(mine) != 1 or mine[0][0] != committed_offset:
            return None
        return Intent(mine[0][0], mine[0][1], True, parts)
    match = _INTENT.match(text)
    if match is None:
        return None
    intent = Intent(int(match.group(1)), int(match.group(2)), match.group(3) is not None)
    if intent.first != committed_offset or intent.last < intent.first:
        return None
    return intent
