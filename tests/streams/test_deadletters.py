"""``streamgauge dlq inspect|replay`` against the real stack: look, fix, replay, store once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from confluent_kafka import Producer

from streams import deadletters
from streams.cli import main
from streams.codec import Encoder, load_versions
from streams.deadletters import Selection
from streams.settings import Settings
from tests.support.fleet import committed, count
from tests.support.workers import Workers, wait_until

pytestmark = pytest.mark.integration

READINGS = {f"metric_{i:02d}": float(i) for i in range(60)}  # about 1,000 bytes


def produce(settings: Settings) -> None:
    encoder = Encoder(load_versions(settings.schemas_dir)[-1])
    big = {
        "device_id": "dev-big",
        "event_time": 1_795_670_400_000,
        "seq": 1,
        "readings": READINGS,
        "firmware": "1",
        "site": "s",
    }
    small = {**big, "device_id": "dev-small", "readings": {"t": 1.0}}
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for key, payload in ((b"dev-small", encoder.encode(small)), (b"dev-big", encoder.encode(big))):
        producer.produce(settings.topic, payload, key, partition=0, headers=[("trace", b"t1")])
    producer.produce(settings.topic, b"not avro at all", b"x", partition=0)
    assert producer.flush(30) == 0


def drain(settings: Settings, tmp_path: Path, end: int) -> None:
    workers = Workers(settings, 1, tmp_path / f"workers-{end}.log")
    try:
        assert wait_until(lambda: committed(settings)[0] == end, 60), workers.output()[-2000:]
    finally:
        assert workers.stop() == 0


def test_inspect_then_replay_after_the_fix_stores_once(
    pipeline: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    strict = dataclasses.replace(pipeline, max_message_bytes=500)  # the big message is too big
    produce(strict)
    drain(strict, tmp_path, 3)
    for name, value in pipeline.to_env().items():
        monkeypatch.setenv(name, value)

    assert main(["dlq", "inspect"]) == 0
    out = capsys.readouterr().out
    assert "2 dead letters in" in out
    assert "oversized: 1" in out
    assert "not_avro: 1" in out
    assert "partition 0 offset 1" in out
    assert '"device_id": "dev-big"' in out
    assert "hex 6e6f74206176726f" in out, "what does not decode is shown in hex"

    assert main(["dlq", "replay"]) == 1, "replaying needs a selector"
    assert "Say which dead letters to replay" in capsys.readouterr().err
    assert main(["dlq", "replay", "--reason", "oversized"]) == 0  # the limit is raised now
    assert main(["dlq", "replay", "--source", "0:1"]) == 0  # and again, by mistake
    drain(pipeline, tmp_path, 5)
    assert count(pipeline, "SELECT count() FROM readings") == 1 + len(READINGS), "stored once"
    (replayed,) = deadletters.read(pipeline, Selection(frozenset({"oversized"})))
    assert replayed.headers == [("trace", b"t1")], "the original's headers travel with it"


def test_a_message_without_the_workers_headers_is_not_taken_for_a_dead_letter() -> None:
    assert deadletters._parse(0, b"k", b"v", [("trace", b"1")]) is None
    letter = deadletters._parse(
        4,
        b"k",
        b"v",
        [
            ("trace", b"1"),
            ("streamgauge.reason", b"oversized"),
            ("streamgauge.source.partition", b"2"),
            ("streamgauge.source.offset", b"17"),
        ],
    )
    assert letter is not None
    assert (letter.reason, letter.source, letter.headers) == (
        "oversized",
        (2, 17),
        [("trace", b"1")],
    )
    assert letter in Selection(frozenset({"oversized"}), partition=2)
    assert letter not in Selection(sources=frozenset({(2, 18)}))
