"""The Kafka reader's child process: a crash, a hang or an error fails one refresh, no more."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest

from streams.lag.isolation import IsolatedReader, ReadFailed
from streams.settings import Settings
from tests.streams.lag.fakes import FakeReader


def reader(tmp_path: Path, how: str, answer_timeout: float = 30.0) -> IsolatedReader:
    settings = dataclasses.replace(Settings(), cache_dir=tmp_path, log_level=how)
    return IsolatedReader(settings, ["g"], reader=FakeReader, answer_timeout=answer_timeout)


def test_a_child_that_crashes_fails_one_read_and_is_replaced(tmp_path: Path) -> None:
    isolated = reader(tmp_path, "crash")
    try:
        with pytest.raises(ReadFailed, match=r"process died \(exit code -11\)"):
            isolated.read()
        assert isolated.read().requests == {"Metadata": 1}
    finally:
        isolated.close()


def test_a_kafka_error_is_a_sentence_and_the_child_stays(tmp_path: Path) -> None:
    isolated = reader(tmp_path, "fail")
    try:
        sentence = r"^Reading lag from Kafka failed: Local: Timed out\.$"
        with pytest.raises(ReadFailed, match=sentence):
            isolated.read()
        assert isolated.read().offsets.groups == []
    finally:
        isolated.close()


def test_a_child_that_does_not_answer_is_killed_and_replaced(tmp_path: Path) -> None:
    isolated = reader(tmp_path, "hang", answer_timeout=1.0)
    try:
        began = time.monotonic()
        with pytest.raises(ReadFailed, match="did not answer within 1 s"):
            isolated.read()
        assert time.monotonic() - began < 10
        assert isolated.read().fetched == 0
    finally:
        isolated.close()


def test_interrupt_ends_a_read_in_progress(tmp_path: Path) -> None:
    isolated = reader(tmp_path, "hang")
    threading.Timer(2.0, isolated.interrupt).start()  # as the exporter does on SIGTERM
    began = time.monotonic()
    try:
        with pytest.raises(ReadFailed, match="process died"):
            isolated.read()
        assert time.monotonic() - began < 10
    finally:
        isolated.close()
