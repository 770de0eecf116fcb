"""What the deployment tests share: the repository's deploy files, schemas, helm, commands.

Schemas come from Go modules through the module proxy (`go mod download`), the same way
helm does (scripts/ensure-helm.sh); the files a test needs are copied to `.cache/deploy/`
so later runs need neither Go nor the network.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from streams.cli import build_parser
from streams.settings import env_name

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "deploy"
CHART = REPO / "helm" / "streamgauge"
COMPOSE = REPO / "docker-compose.yml"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "streamgauge.json"
HELM = REPO / ".cache" / "bin" / "helm"

# Kubernetes versions the chart is validated against: the oldest it supports, the newest.
KUBE_VERSIONS = ("1.30.0", "1.37.0")

COMPOSE_SPEC = ("github.com/compose-spec/compose-go/v2", "v2.16.2", "schema/compose-spec.json")
KEDA = "github.com/kedacore/keda/v2", "v2.21.0"
PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator", "v0.85.0"
# (apiVersion, kind) -> (module, version, path of the CustomResourceDefinition)
CRDS = {
    ("keda.sh/v1alpha1", "ScaledObject"): (*KEDA, "config/crd/bases/keda.sh_scaledobjects.yaml"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"): (
        *KEDA,
        "config/crd/bases/keda.sh_triggerauthentications.yaml",
    ),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): (
        *PROMETHEUS_OPERATOR,
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
    ),
    ("monitoring.coreos.com/v1", "PrometheusRule"): (
        *PROMETHEUS_OPERATOR,
        "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
    ),
}


def go_module_file(module: str, version: str, path: str) -> Path:
    """One file of a Go module at a version, cached under .cache/deploy/."""
    cached = CACHE / f"{module.replace('/', '+')}@{version}" / path
    if not cached.exists():
        if shutil.which("go") is None:
            raise RuntimeError(f"Go is needed once to fetch {module}@{version}; install Go.")
        out = subprocess.run(
            ["go", "mod", "download", "-json", f"{module}@{version}"],
            capture_output=True,
            text=True,
            check=True,
            cwd=CACHE.parent,
        )
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(json.loads(out.stdout)["Dir"]) / path, cached)
    return cached


def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The openAPIV3Schema of a custom resource, made strict: unknown fields are errors.

    The API server prunes unknown fields silently, so a misspelt field would only show up as
    a setting that has no effect; here it fails.
    """
    module, version, path = CRDS[(api_version, kind)]
    crd = yaml.safe_load(go_module_file(module, version, path).read_text())
    served = api_version.split("/")[1]
    (schema,) = [
        v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"] if v["name"] == served
    ]
    result: dict[str, Any] = strict(schema)
    return result


def strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


def compose_spec() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(go_module_file(*COMPOSE_SPEC).read_text())
    return schema


_VARIABLE = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


def interpolate(value: Any) -> Any:
    """Compose's ${VAR:-default} with nothing set in the environment: the defaults."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: m.group(2) or "", value)
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    return value


def compose() -> dict[str, Any]:
    """docker-compose.yml as Compose reads it: merge keys resolved, variables interpolated."""
    loaded: dict[str, Any] = interpolate(yaml.safe_load(COMPOSE.read_text()))
    return loaded


def ensure_helm() -> Path:
    subprocess.run([REPO / "scripts" / "ensure-helm.sh"], check=True)
    return HELM


def helm(*args: str | Path) -> str:
    done = subprocess.run([HELM, *args], capture_output=True, text=True)
    if done.returncode:
        raise AssertionError(f"helm {' '.join(map(str, args))} failed:\n{done.stderr}")
    return done.stdout


def render(*args: str, kube_version: str = KUBE_VERSIONS[-1]) -> list[dict[str, Any]]:
    """The chart's manifests, as `helm template` renders them."""
    return [doc for doc in yaml.safe_load_all(_template(args, kube_version)) if doc]


@functools.cache
def _template(args: tuple[str, ...], kube_version: str) -> str:
    return helm("template", "sg", CHART, "--kube-version", kube_version, *args)


def pod_specs(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload."""
    for doc in manifests:
        if doc["kind"] in {"Deployment", "Job"}:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def check_command(argv: list[str]) -> str | None:
    """None when `streamgauge ARGV` is a valid command line, else why not."""
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        return f"`streamgauge {' '.join(argv)}` is not a streamgauge command line"
    return None


def setting_names() -> set[str]:
    from dataclasses import fields

    from streams.settings import Settings

    return {env_name(f.name) for f in fields(Settings)}
