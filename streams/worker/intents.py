"""Batch intents carried in Kafka's committed-offset metadata.

Before a batch of partition p covering offsets first..last is inserted, the worker commits
offset ``first`` (unchanged) with the metadata ``sg1:first-last``. After ClickHouse
acknowledged, it commits ``last + 1``. A worker that takes p over after a crash or a
rebalance reads the intent and re-forms exactly that range, so the repeat insert carries the
same deduplication token and ClickHouse drops it (docs/delivery.md).

A batch with dead letters delivers them before its intent, which then says so
(``sg1:first-last:dl``): the replay of such a batch sends none of them again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_INTENT = re.compile(r"^sg1:(\d+)-(\d+)(:dl)?$")


@dataclass(frozen=True)
class Intent:
    """A batch that may have been inserted but whose end was not committed."""

    first: int
    last: int
    letters_sent: bool = False  # the range's dead letters are in the dead-letter topic

    def metadata(self) -> str:
        return f"sg1:{self.first}-{self.last}{':dl' if self.letters_sent else ''}"


def parse_intent(committed_offset: int, metadata: str | None) -> Intent | None:
    """The intent recorded with ``committed_offset``, if the metadata holds one for it."""
    match = _INTENT.match(metadata or "")
    if match is None:
        return None
    intent = Intent(int(match.group(1)), int(match.group(2)), match.group(3) is not None)
    if intent.first != committed_offset or intent.last < intent.first:
        return None
    return intent
