"""The local stack as a whole: Kafka (one broker or a 3-broker cluster), the local ClickHouse and
the schema registry, brought up, down and reported on."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from devstack.clickhouse_local import LocalClickHouse
from devstack.daemon import Daemon
from devstack.kafka_broker import cluster
from devstack.registry import LocalRegistry
from streams.errors import UserError
from streams.settings import Settings


class Service(Protocol):
    @property
    def daemon(self) -> Daemon: ...

    @property
    def data_dir(self) -> Path: ...

    def start(self) -> None: ...

    def ready(self) -> bool: ...


@dataclass(frozen=True)
class Component:
    service: Service
    ready_timeout: float

    @property
    def name(self) -> str:
        return self.service.daemon.name


@dataclass(frozen=True)
class Status:
    name: str
    running: bool
    address: str
    pid: int | None
    data_dir: Path
    log_file: Path


def components(settings: Settings, brokers: int | None = None) -> list[Component]:
    """The stack's programs; Kafka as one broker or as ``brokers`` (default: the setting)."""
    kafka_host, kafka_port = _host_port(settings.kafka_bootstrap_servers)
    brokers = brokers or settings.devstack_brokers
    if brokers not in (1, 3):
        raise UserError(
            f"The local stack runs 1 Kafka broker or 3 (a 3-voter controller quorum), not "
            f"{brokers} (--brokers, STREAMGAUGE_DEVSTACK_BROKERS)."
        )
    kafka = cluster(settings.devstack_dir, settings.cache_dir, kafka_host, kafka_port, brokers)
    clickhouse = LocalClickHouse(
        settings.devstack_dir,
        host=settings.clickhouse_host,
        port=settings.clickhouse_port,
        user=settings.clickhouse_user,
        password=settings.clickhouse_password,
    )
    registry = LocalRegistry(settings.devstack_dir, port=settings.devstack_registry_port)
    return [
        *(Component(broker, ready_timeout=90.0) for broker in kafka),
        Component(clickhouse, ready_timeout=30.0),
        Component(registry, ready_timeout=30.0),
    ]


def up(settings: Settings, say: Callable[[str], None], brokers: int | None = None) -> list[str]:
    """Start whatever is not running, wait until each is ready; return the names started.

    All are started before any is waited for: a cluster's brokers elect a controller only
    once a majority of them runs.
    """
    wanted = components(settings, brokers)
    names = {c.name for c in wanted}
    other = [c.name for c in _shown(settings, brokers) if c.name not in names]
    if other:
        shape = "one broker" if other == ["kafka"] else f"{len(other)} brokers"
        raise UserError(
            f"Kafka already runs here as {shape} ({', '.join(other)}); stop the stack with "
            "`streamgauge dev down` before starting it with another number of brokers."
        )
    starting = []
    for component in wanted:
        daemon = component.service.daemon
        pid = daemon.pid()
        if pid is not None:
            say(f"{component.name:10} already running at {daemon.address} (pid {pid})")
            continue
        component.service.start()
        starting.append((component, time.monotonic()))
    for component, begin in starting:
        daemon = component.service.daemon
        daemon.wait_ready(component.service.ready, component.ready_timeout)
        say(
            f"{component.name:10} ready at {daemon.address} in {time.monotonic() - begin:.1f} s "
            f"(pid {daemon.pid()}, log {daemon.log_file})"
        )
    return [component.name for component, _ in starting]


def down(settings: Settings, say: Callable[[str], None], only: list[str] | None = None) -> None:
    """Stop the components (all, or those named), the last started first.

    Kafka is stopped in both shapes, whichever the settings name: nothing stays behind.
    """
    chosen = [c for c in reversed(_shown(settings, None)) if only is None or c.name in only]
    running = {c.name for c in chosen if c.service.daemon.pid() is not None}
    for component in chosen:
        # A cluster's brokers are asked at once: one by one, the last ones would wait for a
        # controller quorum that is gone.
        if component.name.startswith("kafka-"):
            component.service.daemon.terminate()
    for component in chosen:
        component.service.daemon.stop()
        say(f"{component.name:10} {'stopped' if component.name in running else 'was not running'}")


def status(settings: Settings, brokers: int | None = None) -> list[Status]:
    """Each component of the configured shape, and any of the other shape that runs."""
    shown = _shown(settings, brokers)
    rows = []
    for component in shown:
        daemon = component.service.daemon
        pid = daemon.pid()
        rows.append(
            Status(
                component.name,
                pid is not None,
                daemon.address,
                pid,
                component.service.data_dir,
                daemon.log_file,
            )
        )
    return rows


def cluster_settings(settings: Settings, brokers: int) -> Settings:
    """``settings`` for a local stack of ``brokers``: every broker to bootstrap from (one may
    be down), topics replicated on up to three of them."""
    if brokers == 1:
        return settings
    host, port = _host_port(settings.kafka_bootstrap_servers)
    nodes = cluster(settings.devstack_dir, settings.cache_dir, host, port, brokers)
    return dataclasses.replace(
        settings,
        devstack_brokers=brokers,
        kafka_bootstrap_servers=",".join(node.daemon.address for node in nodes),
        topic_replication=nodes[0].replication,
    )


def _shown(settings: Settings, brokers: int | None) -> list[Component]:
    """The components of the shape asked for, then the other shape's running ones."""
    shown = {c.name: c for c in components(settings, brokers)}
    for component in [*components(settings, 1), *components(settings, 3)]:
        if component.name not in shown and component.service.daemon.pid() is not None:
            shown[component.name] = component
    return list(shown.values())


def _host_port(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return host or "127.0.0.1", int(port or 9092)
