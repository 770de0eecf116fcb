"""docker-compose.yml: the Compose specification, pinned images, start-up order, commands."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from streams.migrations.users import USERS
from tests.deploy.support import (
    ALERTS,
    REPO,
    check_command,
    compose,
    compose_spec,
    setting_names,
)

STREAMGAUGE_IMAGE = "streamgauge:local"


def services() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose()["services"]
    return result


def ours(service: dict[str, Any]) -> bool:
    return bool(service.get("image") == STREAMGAUGE_IMAGE and service.get("build"))


def test_compose_file_follows_the_compose_specification() -> None:
    jsonschema.Draft202012Validator(compose_spec()).validate(compose())


def test_every_image_is_pinned_to_a_version() -> None:
    for name, service in services().items():
        if ours(service):
            continue
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+(\.\d+)?(@sha256:[0-9a-f]{64})?", image), (
            f"{name}: {image} is not pinned to a version"
        )


def test_kafka_is_the_version_of_the_local_stack() -> None:
    pom = ET.parse(REPO / "devstack" / "resources" / "pom.xml").getroot()
    version = pom.findtext(
        "{http://maven.apache.org/POM/4.0.0}properties/"
        "{http://maven.apache.org/POM/4.0.0}kafka.version"
    )
    assert services()["kafka"]["image"] == f"apache/kafka:{version}"


def test_what_others_wait_for_is_ready_first() -> None:
    all_services = services()
    for name, service in all_services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            target = all_services[dependency]
            condition = spec["condition"]
            if condition == "service_completed_successfully":
                assert target.get("restart") == "no", f"{dependency} is not a one-shot"
            else:
                assert condition == "service_healthy", f"{name} -> {dependency}: {condition}"
                assert "healthcheck" in target, f"{dependency} has no health check"


def test_workers_wait_for_topics_migrations_and_their_user() -> None:
    all_services = services()
    depends = all_services["worker"]["depends_on"]
    assert depends["init-topics"]["condition"] == "service_completed_successfully"
    assert depends["init-users"]["condition"] == "service_completed_successfully"
    users_after = all_services["init-users"]["depends_on"]
    assert users_after["init-migrations"]["condition"] == "service_completed_successfully"


def test_workers_scale_by_containers_of_one_process() -> None:
    worker = services()["worker"]
    assert worker["command"] == ["worker", "--processes", "1"]
    assert "container_name" not in worker, "--scale needs a name per container"
    assert "ports" not in worker, "--scale needs no fixed host port"


def test_streamgauge_services_run_streamgauge_commands() -> None:
    commands = {name: s["command"] for name, s in services().items() if ours(s)}
    every = {"init-topics", "init-migrations", "init-users", "init-api-key", "worker", "api"}
    assert every | {"lag-exporter", "simulator"} <= set(commands)
    problems = [check_command(argv) for argv in commands.values()]
    assert not [p for p in problems if p], problems


def test_environment_names_are_settings() -> None:
    names = {
        variable
        for service in services().values()
        for variable in service.get("environment", {})
        if variable.startswith("STREAMGAUGE_")
    }
    assert names <= setting_names(), names - setting_names()


def test_clickhouse_has_a_password_user_not_the_default() -> None:
    clickhouse = services()["clickhouse"]["environment"]
    assert clickhouse["CLICKHOUSE_USER"] != "default"
    assert clickhouse["CLICKHOUSE_PASSWORD"]
    assert str(clickhouse["CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"]) == "1", "init-users needs it"


def test_workers_and_api_use_their_own_users_made_by_init_users() -> None:
    all_services = services()
    admin = all_services["clickhouse"]["environment"]
    made = all_services["init-users"]["environment"]
    assert all_services["init-users"]["command"] == ["migrate", "users"]
    own = {"worker": "streamgauge_ingest", "api": "streamgauge_api"}
    for name, service in all_services.items():
        if not ours(service):
            continue
        env = service["environment"]
        user = env.get("STREAMGAUGE_CLICKHOUSE_USER")
        password = env.get("STREAMGAUGE_CLICKHOUSE_PASSWORD")
        if name in own:
            role = {user.name: user for user in USERS}[own[name]]
            assert user == role.name, name
            assert password == made[role.variable], f"{name}: not the password init-users set"
            assert password != admin["CLICKHOUSE_PASSWORD"]
        elif name in ("init-migrations", "init-users"):
            assert (user, password) == (admin["CLICKHOUSE_USER"], admin["CLICKHOUSE_PASSWORD"])
        else:
            assert password is None, f"{name} needs no ClickHouse password"


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Named volume -> where the service mounts it."""
    return {
        volume.split(":")[0]: volume.split(":")[1]
        for volume in service.get("volumes", [])
        if isinstance(volume, str) and not volume.startswith(("/", "."))
    }


def test_the_api_requires_the_key_init_api_key_makes_and_prometheus_scrapes_with_it() -> None:
    all_services = services()
    api, maker = all_services["api"], all_services["init-api-key"]
    assert api["environment"].get("STREAMGAUGE_API_AUTH", "true") != "false"
    assert api["depends_on"]["init-api-key"]["condition"] == "service_completed_successfully"
    kept_in = maker["command"][maker["command"].index("--keep-in") + 1]
    volume = next(name for name, path in _mounts(maker).items() if path == kept_in)
    assert f"{_mounts(api)[volume]}/entries" == api["environment"]["STREAMGAUGE_API_KEYS_FILE"]
    assert "read+metrics" in maker["command"]
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "api"]
    prometheus_mount = _mounts(all_services["prometheus"])[volume].removesuffix(":ro")
    assert job["authorization"]["credentials_file"] == f"{prometheus_mount}/key"
    # the named volume starts owned by the image's user, who writes the key
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"install --directory --owner 10001 --group 10001 {kept_in}" in dockerfile


def test_the_simulator_runs_only_with_its_profile() -> None:
    assert services()["simulator"]["profiles"] == ["simulate"]


def test_mounted_files_exist() -> None:
    missing = [
        volume["source"]
        for service in services().values()
        for volume in service.get("volumes", [])
        if isinstance(volume, dict)
        and volume["type"] == "bind"
        and not (REPO / volume["source"]).exists()
    ]
    assert not missing, f"docker compose up would fail: {missing} missing"


def test_prometheus_scrapes_every_component() -> None:
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"worker", "api", "lag-exporter"}
    # Every replica of `--scale worker=N`, found by Docker's DNS.
    assert jobs["worker"]["dns_sd_configs"] == [
        {"names": ["worker"], "type": "A", "port": 9309, "refresh_interval": "15s"}
    ]
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_prometheus_config_loads(tmp_path: Path) -> None:
    assert shutil.which("promtool"), "no promtool: run scripts/ensure-tools.sh"
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    config["rule_files"] = [str(ALERTS)]
    (tmp_path / "key").write_text("sgk_test\n")
    for job in config["scrape_configs"]:
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(tmp_path / "key")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    done = subprocess.run(
        ["promtool", "check", "config", tmp_path / "prometheus.yml"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_provisions_the_dashboard_from_prometheus() -> None:
    root = REPO / "deploy" / "grafana" / "provisioning"
    datasource = yaml.safe_load((root / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((root / "dashboards" / "streamgauge.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    mounts = [v["target"] for v in services()["grafana"]["volumes"] if isinstance(v, dict)]
    assert f"{path}/streamgauge.json" in mounts
