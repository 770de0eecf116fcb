"""bench versus, small: the Kafka engine baseline and the workers drain one backlog, measured."""

from __future__ import annotations

import dataclasses

import pytest

from bench._teardown import delete_topics
from bench.versus import Run, clickhouse_pid, drain, produce
from streams import topics
from streams.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_engine_and_the_workers_each_store_the_whole_backlog(
    local_stack: Settings, unique: str
) -> None:
    base = dataclasses.replace(
        local_stack,
        topic=f"test-versus-{unique}",
        dlq_topic=f"test-versus-{unique}.dlq",
        topic_partitions=3,
        schema_registry_url=f"http://127.0.0.1:{local_stack.devstack_registry_port}",
    )
    topics.create(base)
    try:
        sent = produce(base, 3000, 50)
        server = clickhouse_pid(base)
        assert server is not None, "the local ClickHouse's CPU is measured"
        for side in ("engine", "workers"):
            run = Run(side, 1, sent.readings, sent.readings / sent.sent)
            drain(base, run, f"test_versus_{side}_{unique}", server)
            figures = run.figures()
            assert figures["stored"] == sent.readings, side
            assert figures["readings_per_second"] > 0
            assert figures["cpu_us_per_reading_clickhouse"] > 0
            # the side's own processes are measured (the workers) or there are none (the
            # engine); over the 10→90 % window a backlog this small can fall between two
            # CPU ticks, so the check is on the whole run
            assert (run.samples[-1][2] > 0) == (side == "workers"), side
            assert figures["cpu_us_per_reading_own"] >= 0
    finally:
        delete_topics(base)
