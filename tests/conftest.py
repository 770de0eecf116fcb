"""Shared fixtures: the local stack (started if needed, stopped if we started it), unique names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from devstack import stack
from streams import migrations, topics
from streams.settings import Settings
from tests.support.kafka import delete_topics
from tests.support.parallel import controller
from tests.support.pipeline import migrate_up

_STARTED = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    """With ``-n N``, the local stack starts once, before the workers, and stops after them:
    each worker's ``local_stack`` then finds it running (and stops nothing)."""
    if controller(config):
        config.stash[_STARTED] = stack.up(Settings.from_env(), lambda line: print(line))


def pytest_unconfigure(config: pytest.Config) -> None:
    started = config.stash.get(_STARTED, [])
    if started:
        stack.down(Settings.from_env(), lambda line: print(line), only=started)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without ``-m``, the ``extended`` scenarios stay out (``make test`` stays < 20 min)."""
    if config.getoption("markexpr"):
        return
    kept = [item for item in items if item.get_closest_marker("extended") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


@pytest.fixture(scope="session")
def local_stack() -> Iterator[Settings]:
    """Kafka and the local ClickHouse, running for the whole session."""
    settings = Settings.from_env()
    started = stack.up(settings, lambda line: print(line))
    yield settings
    if started:
        stack.down(settings, lambda line: print(line), only=started)


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic, group and database names."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def pipeline(local_stack: Settings, unique: str) -> Iterator[Settings]:
    """Settings for an isolated pipeline: its own topics, consumer group and database."""
    settings = local_stack.isolated(f"test-{unique}", batch_max_seconds=0.5)
    topics.create(settings)
    migrate_up(settings)
    yield settings
    migrations.drop(settings)
    delete_topics(settings, settings.topic, settings.dlq_topic)
