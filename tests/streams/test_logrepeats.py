"""librdkafka's retries log one line, then a count, not a line per attempt."""

from __future__ import annotations

import logging

import pytest

from streams.logrepeats import RepeatFilter
from streams.settings import Settings


def test_a_line_repeated_with_other_numbers_shows_once_then_its_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    logger = logging.getLogger("test.logrepeats")
    logger.addFilter(RepeatFilter(30, clock=lambda: now[0]))
    caplog.set_level(logging.INFO, logger.name)
    for attempt in range(10):
        now[0] = attempt
        logger.error("SSL handshake failed (after %dms in state SSL_HANDSHAKE)", attempt + 3)
    logger.error("another failure")
    logger.warning("SSL handshake failed (after 5ms in state SSL_HANDSHAKE)")  # other level
    now[0] = 31
    logger.error("SSL handshake failed (after 7ms in state SSL_HANDSHAKE)")
    assert [r.getMessage() for r in caplog.records] == [
        "SSL handshake failed (after 3ms in state SSL_HANDSHAKE)",
        "another failure",
        "SSL handshake failed (after 5ms in state SSL_HANDSHAKE)",
        "SSL handshake failed (after 7ms in state SSL_HANDSHAKE) (9 more like it in 31 s)",
    ]


def test_every_kafka_client_logs_through_the_filter() -> None:
    logger = Settings().kafka_config()["logger"]
    Settings().kafka_config()
    assert sum(isinstance(f, RepeatFilter) for f in logger.filters) == 1
