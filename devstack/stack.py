"""The local stack as a whole: Kafka and the local ClickHouse, brought up, down and reported on."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from devstack.clickhouse_local import LocalClickHouse
from devstack.daemon import Daemon
from devstack.kafka_broker import KafkaBroker
from devstack.registry import LocalRegistry
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


def components(settings: Settings) -> list[Component]:
    kafka_host, kafka_port = _host_port(settings.kafka_bootstrap_servers)
    kafka = KafkaBroker(
        settings.devstack_dir, settings.cache_dir, kafka_host, kafka_port, kafka_port + 1
    )
    clickhouse = LocalClickHouse(
        settings.devstack_dir,
        host=settings.clickhouse_host,
        port=settings.clickhouse_port,
        user=settings.clickhouse_user,
        password=settings.clickhouse_password,
    )
    registry = LocalRegistry(settings.devstack_dir, port=settings.devstack_registry_port)
    return [
        Component(kafka, ready_timeout=90.0),
        Component(clickhouse, ready_timeout=30.0),
        Component(registry, ready_timeout=30.0),
    ]


def up(settings: Settings, say: Callable[[str], None]) -> list[str]:
    """Start whatever is not running, wait until each is ready; return the names started."""
    started = []
    for component in components(settings):
        daemon = component.service.daemon
        pid = daemon.pid()
        if pid is not None:
            say(f"{component.name:10} already running at {daemon.address} (pid {pid})")
            continue
        begin = time.monotonic()
        component.service.start()
        daemon.wait_ready(component.service.ready, component.ready_timeout)
        started.append(component.name)
        say(
            f"{component.name:10} ready at {daemon.address} in {time.monotonic() - begin:.1f} s "
            f"(pid {daemon.pid()}, log {daemon.log_file})"
        )
    return started


def down(settings: Settings, say: Callable[[str], None], only: list[str] | None = None) -> None:
    """Stop the components (all, or those named), the last started first."""
    for component in reversed(components(settings)):
        if only is not None and component.name not in only:
            continue
        stopped = component.service.daemon.stop()
        say(f"{component.name:10} {'stopped' if stopped else 'was not running'}")


def status(settings: Settings) -> list[Status]:
    rows = []
    for component in components(settings):
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


def _host_port(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return host or "127.0.0.1", int(port or 9092)
