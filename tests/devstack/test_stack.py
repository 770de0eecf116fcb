"""``streamgauge dev up | status | down`` on a private stack: ports, processes, messages."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from bench._torture_faults import free_port_range
from devstack.daemon import free_port, port_open

pytestmark = pytest.mark.integration


def running(pid: int) -> bool:
    """The process exists and is not a zombie waiting for init to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def dev(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "dev", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_up_twice_status_and_down_leave_nothing_behind(tmp_path: Path) -> None:
    kafka = free_port_range(2)  # the broker and its controller (the next port)
    clickhouse, registry = free_port(), free_port()
    env = {
        **os.environ,
        "STREAMGAUGE_DEVSTACK_DIR": str(tmp_path / "stack"),
        "STREAMGAUGE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka}",
        "STREAMGAUGE_CLICKHOUSE_PORT": str(clickhouse),
        "STREAMGAUGE_DEVSTACK_REGISTRY_PORT": str(registry),
    }
    try:
        up = dev(env, "up")
        assert up.returncode == 0, up.stderr
        assert "kafka      ready at" in up.stdout
        assert "clickhouse ready at" in up.stdout
        assert "registry   ready at" in up.stdout
        again = dev(env, "up")
        assert again.returncode == 0
        assert again.stdout.count("already running") == 3

        status = dev(env, "status")
        assert status.returncode == 0
        lines = status.stdout.splitlines()[1:]
        assert [line.split()[:3] for line in lines] == [
            ["kafka", "running", f"127.0.0.1:{kafka}"],
            ["clickhouse", "running", f"127.0.0.1:{clickhouse}"],
            ["registry", "running", f"127.0.0.1:{registry}"],
        ]
        pids = [int(line.split()[3]) for line in lines]
        assert all(running(pid) for pid in pids)
        assert str(tmp_path / "stack") in status.stdout
    finally:
        down = dev(env, "down")
    assert down.returncode == 0
    # broker, KRaft controller, ClickHouse HTTP, schema registry
    for port in (kafka, kafka + 1, clickhouse, registry):
        assert not port_open("127.0.0.1", port), f"port {port} still listening"
    assert not any(running(pid) for pid in pids), "a process survived down"
    stopped = dev(env, "status")
    assert stopped.returncode == 3
    assert stopped.stdout.count("stopped") == 3


def test_a_taken_port_is_one_clear_sentence(tmp_path: Path) -> None:
    kafka = free_port_range(2)  # the broker and its controller (the next port)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        env = {
            **os.environ,
            "STREAMGAUGE_DEVSTACK_DIR": str(tmp_path / "stack"),
            "STREAMGAUGE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka}",
            "STREAMGAUGE_CLICKHOUSE_PORT": str(taken),
            "STREAMGAUGE_DEVSTACK_REGISTRY_PORT": str(free_port()),
        }
        try:
            up = dev(env, "up")
        finally:
            dev(env, "down")
    assert up.returncode == 1
    assert "Traceback" not in up.stderr
    assert f"127.0.0.1:{taken} is already in use" in up.stderr
    assert len(up.stderr.strip().splitlines()) == 1


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.extended
def test_a_three_broker_cluster_comes_up_reports_each_broker_and_goes_down(
    tmp_path: Path,
) -> None:
    kafka = free_port_range(6)  # three brokers and their controllers
    clickhouse, registry = free_port(), free_port()
    env = {
        **os.environ,
        "STREAMGAUGE_DEVSTACK_DIR": str(tmp_path / "stack"),
        "STREAMGAUGE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka}",
        "STREAMGAUGE_CLICKHOUSE_PORT": str(clickhouse),
        "STREAMGAUGE_DEVSTACK_REGISTRY_PORT": str(registry),
    }
    bootstrap = f"127.0.0.1:{kafka},127.0.0.1:{kafka + 2},127.0.0.1:{kafka + 4}"
    try:
        up = dev(env, "up", "--brokers", "3")
        assert up.returncode == 0, up.stderr
        assert f"STREAMGAUGE_KAFKA_BOOTSTRAP_SERVERS={bootstrap}" in up.stdout
        status = dev(env, "status", "--brokers", "3")
        assert status.returncode == 0, status.stdout
        lines = [line.split()[:3] for line in status.stdout.splitlines()[1:]]
        assert lines[:3] == [
            ["kafka-1", "running", f"127.0.0.1:{kafka}"],
            ["kafka-2", "running", f"127.0.0.1:{kafka + 2}"],
            ["kafka-3", "running", f"127.0.0.1:{kafka + 4}"],
        ]
        with AdminClient({"bootstrap.servers": bootstrap}) as admin:
            assert len(admin.describe_cluster(request_timeout=10).result().nodes) == 3
        # Without --brokers, status shows the configured single broker and the running three,
        # and up refuses to start a single broker beside them, in one sentence.
        assert "kafka-2    running" in dev(env, "status").stdout
        single = dev(env, "up")
        assert single.returncode == 1
        assert "Kafka already runs here as 3 brokers" in single.stderr
        assert len(single.stderr.strip().splitlines()) == 1
    finally:
        down = dev(env, "down")
    assert down.returncode == 0
    for port in [*range(kafka, kafka + 6), clickhouse, registry]:
        assert not port_open("127.0.0.1", port), f"port {port} still listening"
