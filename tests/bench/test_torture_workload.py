"""bench torture's workload: each message's fate, as the generator tells it, is the true one."""

from __future__ import annotations

import random

import pytest

from bench._torture_workload import (
    HOSTILE,
    PRODUCER_LIMIT,
    TOPIC_LIMIT,
    Mix,
    Planned,
    Workload,
    identities,
)
from streams.codec import DecodeError, Decoder, load_versions
from streams.settings import Settings
from streams.validate import Validator

NOW_MS = 1_790_000_000_000
LIMIT = 64 * 1024
MIX = Mix(
    invalid=0.2, resend=0.1, many_readings=2, over_worker_limit=2, near_kafka_limit=2, backfill=True
)


def draw(seed: int) -> list[Planned]:
    versions = load_versions(Settings().schemas_dir)
    return Workload(random.Random(seed), versions, LIMIT).draw(400, NOW_MS, MIX)


def verdict(
    decoder: Decoder, message: Planned
) -> tuple[str, dict[tuple[str, str, int, int], float]]:
    """What today's decoder and validator make of a message: a reason, or "ok" and its rows."""
    if len(message.payload) > LIMIT:
        return "oversized", {}
    try:
        record = decoder.decode(message.payload)
    except DecodeError as error:
        return error.reason, {}
    rejection = Validator(3600 * 1000).check(record, NOW_MS)
    return (rejection.reason, {}) if rejection else ("ok", identities(record))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_message_meets_the_fate_the_generator_gives_it(seed: int) -> None:
    decoder = Decoder(load_versions(Settings().schemas_dir))
    for message in draw(seed):
        reason, rows = verdict(decoder, message)
        if message.expect == "dead_letter":
            assert reason == message.reason, message.kind
        elif message.expect == "stored" or reason == "ok":  # "either": stored whole, or a letter
            assert reason == "ok", message.kind
            assert rows == message.readings, message.kind


def test_the_mix_has_every_hostile_kind_resends_and_both_oversized_sizes() -> None:
    messages = draw(4)
    kinds = {m.kind for m in messages}
    assert set(HOSTILE) <= kinds
    assert {"resend", "many_readings", "backfill", "oversized_worker", "oversized_kafka"} <= kinds
    near = [len(m.payload) for m in messages if m.kind == "oversized_kafka"]
    assert all(900_000 <= size < TOPIC_LIMIT for size in near)
    assert all(
        LIMIT < len(m.payload) < LIMIT + 5000 for m in messages if m.kind == "oversized_worker"
    )
    assert PRODUCER_LIMIT < TOPIC_LIMIT


def test_a_resend_is_the_same_bytes_as_its_original() -> None:
    messages = draw(5)
    resends = [m for m in messages if m.original is not None]
    assert resends
    for resend in resends:
        original = messages[resend.original or 0]
        assert (resend.key, resend.payload) == (original.key, original.payload)


def test_a_seed_draws_the_same_workload_again() -> None:
    assert [m.payload for m in draw(6)] == [m.payload for m in draw(6)]
