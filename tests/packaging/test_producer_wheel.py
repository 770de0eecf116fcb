"""The producer as a gateway installs it: the built wheel, a fresh virtualenv, no checkout.

Proves the base install is the producer alone (confluent-kafka and fastavro), that the schemas
come with the package, and that docs/producing.md's example runs as written: the workers
store every measurement it sends.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streams.clickhouse import sync_client
from streams.settings import Settings
from tests.support.workers import Workers, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "producing.md"
# What a source checkout holds beside the package's sources: none of it goes into the build.
LOCAL_STATE = (".venv", ".devstack", ".cache", ".git", "build", "*.egg-info", "__pycache__")
CACHES = (".mypy_cache", ".ruff_cache", ".pytest_cache", "results", "*.so")


def example() -> str:
    (block,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    return str(block)


def run(
    command: list[str | Path], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd, env=env)
    assert done.returncode == 0, f"{command[:3]} failed:\n{done.stdout}\n{done.stderr}"
    return done


def test_the_installed_wheel_produces_what_the_workers_store(
    pipeline: Settings, tmp_path: Path
) -> None:
    source, dist, venv = tmp_path / "source", tmp_path / "dist", tmp_path / "venv"
    shutil.copytree(
        REPO, source, symlinks=True, ignore=shutil.ignore_patterns(*LOCAL_STATE, *CACHES)
    )
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, source])
    (wheel,) = dist.glob("streamgauge-*.whl")
    run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    pip: list[str | Path] = [python, "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "install", "--quiet", "-c", REPO / "constraints.txt", wheel])
    listed = json.loads(run([*pip, "list", "--format", "json"]).stdout)
    installed = {item["name"].lower() for item in listed} - {"pip", "setuptools"}
    assert installed == {"streamgauge", "confluent-kafka", "fastavro"}

    # Outside the checkout, with only what a gateway would set.
    gateway = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "STREAMGAUGE_KAFKA_BOOTSTRAP_SERVERS": pipeline.kafka_bootstrap_servers,
        "STREAMGAUGE_TOPIC": pipeline.topic,
    }
    where = run(
        [python, "-c", "import streams; print(streams.__file__)"], cwd=tmp_path, env=gateway
    )
    assert Path(where.stdout.strip()).is_relative_to(venv)
    sent = run([python, "-c", example()], cwd=tmp_path, env=gateway)
    assert "1000 measurements acknowledged" in sent.stdout
    command = subprocess.run(
        [venv / "bin" / "streamgauge", "--help"], capture_output=True, text=True, env=gateway
    )
    assert command.returncode == 1
    assert "pip install 'streamgauge[pipeline]'" in command.stderr

    workers = Workers(pipeline, 1, tmp_path / "workers.log")
    client = sync_client(pipeline)
    try:
        assert wait_until(
            lambda: client.query("SELECT count() FROM readings").result_rows[0][0] >= 2000, 90
        ), workers.output()[-3000:]
    finally:
        workers.stop()
    stored = client.query(
        "SELECT count(), uniqExact(device_id, seq), uniqExact(device_id) FROM readings FINAL"
    ).result_rows[0]
    assert stored == (2000, 1000, 10)
