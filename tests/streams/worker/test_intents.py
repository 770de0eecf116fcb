"""Batch intents in commit metadata."""

from __future__ import annotations

from streams.worker.intents import Intent, group_intents, parse_intent


def test_an_intent_round_trips_through_metadata() -> None:
    intent = Intent(100, 250)
    assert parse_intent(0, 100, intent.metadata()) == intent
    sent = Intent(100, 250, letters_sent=True)
    assert sent.metadata() == "sg1:100-250:dl"
    assert parse_intent(0, 100, sent.metadata()) == sent
    assert parse_intent(0, 100, "sg1:100-250") == Intent(100, 250, letters_sent=False)


def test_metadata_for_another_offset_or_garbage_is_no_intent() -> None:
    assert parse_intent(0, 101, Intent(100, 250).metadata()) is None
    assert parse_intent(0, 100, "") is None
    assert parse_intent(0, 100, None) is None
    assert parse_intent(0, 100, "sg1:100-99") is None
    assert parse_intent(0, 100, "sg1:100-250:xx") is None
    assert parse_intent(0, 100, "someone else's metadata") is None


def test_each_member_of_a_group_reads_its_own_part_and_the_whole_group() -> None:
    intents = group_intents([(3, 70, 80), (1, 100, 250)])
    assert intents[1].metadata() == intents[3].metadata() == "sg2:1:100-250,3:70-80"
    for partition, first in ((1, 100), (3, 70)):
        parsed = parse_intent(partition, first, intents[partition].metadata())
        assert parsed == intents[partition]
        assert parsed is not None
        assert parsed.group == ((1, 100, 250), (3, 70, 80))
        assert parsed.letters_sent, "a group's letters go before its intents"
    assert (intents[1].first, intents[1].last) == (100, 250)


def test_a_group_intent_that_does_not_name_this_partition_and_offset_is_no_intent() -> None:
    metadata = "sg2:1:100-250,3:70-80"
    assert parse_intent(2, 100, metadata) is None, "another partition's"
    assert parse_intent(1, 101, metadata) is None, "another offset"
    assert parse_intent(1, 100, "sg2:1:100-250") is None, "a group has two parts or more"
    assert parse_intent(1, 100, "sg2:1:100-250,1:300-310") is None, "one part per partition"
    assert parse_intent(1, 100, "sg2:1:100-250,3:80-70") is None
    assert parse_intent(1, 100, "sg2:1:100-250,3:70-80:dl") is None
