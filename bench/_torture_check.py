"""bench torture's checker: the accounting identity, from what Kafka and ClickHouse hold.

It knows nothing of the worker's bookkeeping. Its inputs are the generator's messages (each
with its partition, offset and fate), the group's committed offsets, the topic's end offsets,
the rows of ``readings`` counted without FINAL, the dead letters (topic and table), the
rollup total and ``latest FINAL``. Every offset below the committed one must belong to a
message that is stored (each reading exactly once; a resend counts once with its original)
or dead-lettered, as its fate allows; rows, rollups and ``latest`` must agree with that.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from bench._torture_workload import Identity, Planned

Kind = Literal[
    "not_caught_up",
    "lost",
    "valid_dead_lettered",
    "invalid_stored",
    "stored_and_dead_lettered",
    "duplicated",
    "partial",
    "stray_row",
    "wrong_value",
    "wrong_source",
    "rollup_count",
    "latest",
    "bad_dead_letter",
    "unknown_offset",
]

MEANING: dict[Kind, str] = {
    "not_caught_up": "did not catch up: committed offset below the end offset",
    "lost": "below the committed offset, neither stored nor dead-lettered",
    "valid_dead_lettered": "a valid message was dead-lettered (transient trouble as poison?)",
    "invalid_stored": "readings of an invalid message are in `readings`",
    "stored_and_dead_lettered": "both stored and dead-lettered",
    "duplicated": "a reading is in `readings` more than once (without FINAL)",
    "partial": "some readings of a message are stored, others not",
    "stray_row": "a row of `readings` that no message sent",
    "wrong_value": "a stored reading's value differs from the one sent",
    "wrong_source": "a row's source_partition/source_offset is not a message that holds it",
    "rollup_count": "readings_1m's sum(count) differs from the distinct readings stored",
    "latest": "`latest FINAL` differs from the newest stored reading (by event_time, seq)",
    "bad_dead_letter": "a dead letter without source partition/offset or reason",
    "unknown_offset": "an offset that no message of the workload was produced at",
}

Offset = tuple[int, int]  # (partition, offset)
Bucket = tuple[str, str, int]  # a rollup row: (device_id, metric, minute in epoch ms)


@dataclass(frozen=True)
class DeadLetter:
    """A dead letter as found: its source (None when a header is missing) and reason."""

    partition: int | None
    offset: int | None
    reason: str
    where: Literal["topic", "table"] = "topic"


@dataclass(frozen=True)
class Row:
    """One reading identity in ``readings``: how many copies, and their Kafka sources."""

    identity: Identity
    value: float
    copies: int = 1
    sources: tuple[Offset, ...] | None = None  # None: the table has no source columns


@dataclass
class Observed:
    committed: dict[int, int]
    end: dict[int, int]
    rows: list[Row]
    dead_letters: list[DeadLetter]
    rollup: dict[Bucket, int]  # sum(count) of readings_1m by (device, metric, minute ms)
    latest: dict[tuple[str, str], float]
    shared_inserts: int = 0  # inserts that carried several partitions' batches (not checked)


@dataclass(frozen=True)
class Violation:
    kind: Kind
    detail: str
    offsets: tuple[Offset, ...] = ()


@dataclass
class Verdict:
    violations: list[Violation] = field(default_factory=list)
    stored: int = 0  # messages below the committed offset counted as stored
    dead_lettered: int = 0  # distinct source offsets with a dead letter
    dead_letter_repeats: int = 0  # letters beyond the first for their source, topic or table
    reasons: Counter[str] = field(default_factory=Counter)
    shared_inserts: int = 0  # what the trial exercised: inserts of several partitions

    def by_kind(self) -> Counter[str]:
        return Counter(v.kind for v in self.violations)

    def add(self, kind: Kind, detail: str, *offsets: Offset) -> None:
        self.violations.append(Violation(kind, detail, tuple(offsets)))


State = Literal["stored", "absent", "partial", "duplicated"]


def check(messages: list[Planned], observed: Observed) -> Verdict:
    verdict = Verdict(shared_inserts=observed.shared_inserts)
    by_offset = {(m.partition, m.offset): m for m in messages}
    copies = {row.identity: row.copies for row in observed.rows}
    sources = {row.identity: row.sources for row in observed.rows if row.copies > 1}
    dead = _dead_letters(observed.dead_letters, by_offset, verdict)
    states = _group_states(messages, copies, verdict, sources)
    _caught_up(observed, verdict)
    _offsets(by_offset, observed.committed, states, dead, verdict)
    _invalid_rows(messages, copies, verdict)
    _rows(messages, by_offset, observed.rows, verdict)
    _rollup(messages, observed, verdict)
    _latest(observed, verdict)
    return verdict


def root(message: Planned) -> int:
    """The message whose readings a resend repeats (itself for any other message)."""
    return message.original if message.original is not None else message.index


def state(identities: Iterable[Identity], copies: dict[Identity, int]) -> State:
    counts = [copies.get(identity, 0) for identity in identities]
    if any(c > 1 for c in counts):
        return "duplicated"
    if all(c == 1 for c in counts) and counts:
        return "stored"
    return "absent" if not any(counts) else "partial"


def _dead_letters(
    letters: list[DeadLetter], by_offset: dict[Offset, Planned], verdict: Verdict
) -> set[Offset]:
    dead: set[Offset] = set()
    for letter in letters:
        if letter.partition is None or letter.offset is None or not letter.reason:
            verdict.add("bad_dead_letter", f"{letter}")
            continue
        source = (letter.partition, letter.offset)
        if source not in by_offset:
            verdict.add("unknown_offset", f"a dead letter ({letter.where}) points here", source)
        if source not in dead:
            verdict.reasons[letter.reason] += 1
        dead.add(source)
    verdict.dead_lettered = len(dead)
    # A letter too large for the topic is a row in the table and a reference in the topic: one.
    for where in ("topic", "table"):
        found = [(x.partition, x.offset) for x in letters if x.where == where]
        verdict.dead_letter_repeats += len(found) - len(set(found))
    return dead


def _group_states(
    messages: list[Planned],
    copies: dict[Identity, int],
    verdict: Verdict,
    sources: dict[Identity, tuple[Offset, ...] | None] | None = None,
) -> dict[int, State]:
    """Each storable message and its resends, as one group: stored once, or not at all.
    ``sources``: the Kafka sources of each copy of a reading stored more than once."""
    members: dict[int, list[Planned]] = defaultdict(list)
    for message in messages:
        if message.expect != "dead_letter":
            members[root(message)].append(message)
    states: dict[int, State] = {}
    for index, group in members.items():
        states[index] = found = state(messages[index].readings, copies)
        where = [(m.partition, m.offset) for m in group]
        if found == "duplicated":
            stored_from = sorted(  # one entry per copy: the same source twice is a re-insert
                offset
                for identity in list(messages[index].readings)[:1]
                for offset in (sources or {}).get(identity) or ()
            )
            copied = f", copies stored from {stored_from}" if stored_from else ""
            verdict.add("duplicated", f"{messages[index].kind} sent {len(group)}x{copied}", *where)
        elif found == "partial":
            verdict.add("partial", f"{messages[index].kind}", *where)
    return states


def _caught_up(observed: Observed, verdict: Verdict) -> None:
    for partition, end in sorted(observed.end.items()):
        committed = max(0, observed.committed.get(partition, 0))
        if committed < end:
            verdict.add(
                "not_caught_up",
                f"p{partition} committed {committed} of {end}",
                (partition, committed),
            )


def _offsets(
    by_offset: dict[Offset, Planned],
    committed: dict[int, int],
    states: dict[int, State],
    dead: set[Offset],
    verdict: Verdict,
) -> None:
    """Every offset below the committed one: a message, stored or dead-lettered as it must."""
    for partition, upto in sorted(committed.items()):
        for offset in range(max(0, upto)):
            where = (partition, offset)
            message = by_offset.get(where)
            if message is None:
                verdict.add("unknown_offset", "below the committed offset", where)
                continue
            is_dead = where in dead
            stored = states.get(root(message), "absent")
            if message.expect == "stored" and is_dead:
                verdict.add("valid_dead_lettered", message.kind, where)
            elif message.expect == "either" and is_dead and stored != "absent":
                verdict.add("stored_and_dead_lettered", message.kind, where)
            elif not is_dead and (message.expect == "dead_letter" or stored == "absent"):
                verdict.add("lost", f"{message.kind} ({message.expect})", where)
            elif message.expect != "dead_letter" and stored == "stored" and not is_dead:
                verdict.stored += 1


def _invalid_rows(messages: list[Planned], copies: dict[Identity, int], verdict: Verdict) -> None:
    for message in messages:
        if message.expect == "dead_letter" and any(i in copies for i in message.readings):
            verdict.add("invalid_stored", message.kind, (message.partition, message.offset))


def _rows(
    messages: list[Planned], by_offset: dict[Offset, Planned], rows: list[Row], verdict: Verdict
) -> None:
    """Rows no message sent, values that changed, and (when recorded) wrong sources."""
    sent: dict[Identity, float] = {}
    invalid: set[Identity] = set()
    for message in messages:
        if message.expect == "dead_letter":
            invalid.update(message.readings)
        else:
            sent.update(message.readings)
    strays = [r.identity for r in rows if r.identity not in sent and r.identity not in invalid]
    if strays:
        verdict.add("stray_row", f"{len(strays)} rows, e.g. {strays[:3]}")
    for row in rows:
        expected = sent.get(row.identity)
        if expected is not None and not _same(expected, row.value):
            verdict.add("wrong_value", f"{row.identity}: {row.value} instead of {expected}")
        for source in row.sources or ():
            if not _holds(by_offset.get(source), row.identity):
                verdict.add("wrong_source", f"{row.identity}", source)


def _holds(message: Planned | None, identity: Identity) -> bool:
    """Whether ``message`` is a storable one that carries this reading."""
    return message is not None and message.expect != "dead_letter" and identity in message.readings


def _rollup(messages: list[Planned], observed: Observed, verdict: Verdict) -> None:
    """Each rollup row counts the distinct readings of its minute; suspects: resent ones."""
    stored = Counter(bucket(row.identity) for row in observed.rows)
    for key in sorted(stored.keys() | observed.rollup.keys()):
        found, expected = observed.rollup.get(key, 0), stored.get(key, 0)
        if found != expected:
            verdict.add(
                "rollup_count",
                f"{key}: readings_1m counts {found}, readings holds {expected} distinct",
                *_resent(messages).get(key, ()),
            )


def bucket(identity: Identity) -> Bucket:
    device, metric, event_ms, _ = identity
    return device, metric, event_ms - event_ms % 60_000


def _resent(messages: list[Planned]) -> dict[Bucket, list[Offset]]:
    """Offsets of messages sent more than once, by the rollup rows their readings fall in."""
    sends = Counter(root(m) for m in messages if m.expect != "dead_letter")
    found: dict[Bucket, list[Offset]] = defaultdict(list)
    for message in messages:
        if message.expect != "dead_letter" and sends[root(message)] > 1:
            for key in {bucket(identity) for identity in message.readings}:
                found[key].append((message.partition, message.offset))
    return found


def _latest(observed: Observed, verdict: Verdict) -> None:
    newest: dict[tuple[str, str], tuple[int, int, float]] = {}
    for row in observed.rows:
        device, metric, event_ms, seq = row.identity
        key = (device, metric)
        if key not in newest or (event_ms, seq) > newest[key][:2]:
            newest[key] = (event_ms, seq, row.value)
    for key in sorted(newest.keys() | observed.latest.keys()):
        expected = newest[key][2] if key in newest else None
        found = observed.latest.get(key)
        if expected is None or found is None or not _same(expected, found):
            verdict.add("latest", f"{key}: latest holds {found}, newest stored is {expected}")


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))
