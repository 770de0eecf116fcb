"""Batch intents in commit metadata."""

from __future__ import annotations

from streams.worker.intents import Intent, parse_intent


def test_an_intent_round_trips_through_metadata() -> None:
    intent = Intent(100, 250)
    assert parse_intent(100, intent.metadata()) == intent
    sent = Intent(100, 250, letters_sent=True)
    assert sent.metadata() == "sg1:100-250:dl"
    assert parse_intent(100, sent.metadata()) == sent
    assert parse_intent(100, "sg1:100-250") == Intent(100, 250, letters_sent=False)


def test_metadata_for_another_offset_or_garbage_is_no_intent() -> None:
    assert parse_intent(101, Intent(100, 250).metadata()) is None
    assert parse_intent(100, "") is None
    assert parse_intent(100, None) is None
    assert parse_intent(100, "sg1:100-99") is None
    assert parse_intent(100, "sg1:100-250:xx") is None
    assert parse_intent(100, "someone else's metadata") is None
