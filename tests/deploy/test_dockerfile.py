"""The Dockerfile: pinned base, the shared install script, non-root, the entrypoint."""

from __future__ import annotations

import fnmatch
import re

from tests.deploy.support import REPO, setting_names

DOCKERFILE = REPO / "Dockerfile"
INSTALL = REPO / "scripts" / "install-venv.sh"


def instructions() -> list[tuple[int, str, str]]:
    """(stage, instruction, arguments), continuation lines joined, comments dropped."""
    result, stage, pending = [], 0, ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not (pending or line.strip()):
            continue
        pending += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if line.endswith("\\"):
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        stage += keyword == "FROM"
        result.append((stage, keyword, " ".join(arguments.split())))
        pending = ""
    return result


def test_base_image_is_pinned_by_version_and_digest() -> None:
    (base,) = [args for _, keyword, args in instructions() if keyword == "ARG"]
    assert re.fullmatch(
        r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base
    ), base
    froms = [args for _, keyword, args in instructions() if keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE}"]


def test_the_image_installs_with_the_shared_script_only() -> None:
    runs = [args for _, keyword, args in instructions() if keyword == "RUN"]
    assert "sh scripts/install-venv.sh /opt/streamgauge/venv /src" in runs
    assert not [run for run in runs if "pip" in run], "pip belongs in scripts/install-venv.sh"
    script = INSTALL.read_text()
    assert (
        "pip\" install --no-cache-dir --disable-pip-version-check -c constraints.txt '.[pipeline]'"
        in script
    )
    assert "[dev]" not in script
    assert "-e " not in script


def test_runtime_runs_streamgauge_as_non_root_without_healthcheck() -> None:
    runtime = [(keyword, args) for stage, keyword, args in instructions() if stage == 2]
    assert ("USER", "10001:10001") in runtime
    assert ("ENTRYPOINT", '["streamgauge"]') in runtime
    assert not [i for i in instructions() if i[1] == "HEALTHCHECK"], "orchestrators probe"
    copies = [args for keyword, args in runtime if keyword == "COPY"]
    assert copies == ["--from=builder /opt/streamgauge/venv /opt/streamgauge/venv"]


def test_runtime_env_names_settings_and_the_schemas_come_with_the_package() -> None:
    env: dict[str, str] = {}
    for stage, keyword, args in instructions():
        if stage == 2 and keyword == "ENV":
            for item in args.split():
                name, _, value = item.partition("=")
                env[name] = value
    names = {name for name in env if name.startswith("STREAMGAUGE_")}
    assert names <= setting_names(), names - setting_names()
    assert "STREAMGAUGE_SCHEMAS_DIR" not in env
    assert "STREAMGAUGE_MIGRATIONS_DIR" not in env
    assert (REPO / "streams" / "schemas").resolve() == REPO / "schemas"
    assert "schemas/ schemas/" in [
        args for stage, keyword, args in instructions() if stage == 1 and keyword == "COPY"
    ]
    assert env["STREAMGAUGE_WORKER_METRICS_HOST"] == "0.0.0.0"


def test_dockerignore_admits_every_copied_path() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for _, keyword, args in instructions():
        if keyword != "COPY" or args.startswith("--from"):
            continue
        for source in args.split()[:-1]:
            path = source.rstrip("/")
            included = False
            for pattern in patterns:
                negated = pattern.startswith("!")
                if fnmatch.fnmatch(path, pattern.lstrip("!")):
                    included = negated
            assert included, f"{path} is excluded by .dockerignore"
            assert (REPO / path).exists(), path
