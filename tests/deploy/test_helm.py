"""helm/streamgauge: lint, schema-valid manifests, the alert rules, scaling, hardening.

helm is built from its Go module by scripts/ensure-helm.sh (once, into .cache/bin). Built-in
kinds are validated against Kubernetes' own schemas (kubernetes-validate, strict: unknown
fields fail); KEDA's and prometheus-operator's kinds against the openAPIV3Schema of their
CustomResourceDefinitions, taken from the Go modules of those projects and made strict too.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from streams.worker import source
from tests.deploy.support import (
    ALERTS,
    CHART,
    CRDS,
    DASHBOARD,
    KUBE_VERSIONS,
    check_command,
    containers,
    crd_schema,
    ensure_helm,
    helm,
    pod_specs,
    render,
    setting_names,
)

KEDA_API = ("--api-versions", "keda.sh/v1alpha1")
EXTERNAL_METRICS_API = ("--api-versions", "external.metrics.k8s.io/v1beta1")
MONITORING_API = (
    "--api-versions",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "--api-versions",
    "monitoring.coreos.com/v1/PrometheusRule",
)
PRODUCTION = ("-f", str(CHART / "values-production.yaml"))
SASL = ("--set", "kafka.sasl.mechanism=SCRAM-SHA-256", "--set", "kafka.sasl.username=sg")
# A Strimzi cluster's TLS listener with `authentication: tls` users.
STRIMZI_MTLS = (
    "--set", "kafka.schemaRegistryUrl=https://registry:8081",
    "--set", "kafka.schemaRegistry.existingSecret=registry-user",
    "--set", "kafka.schemaRegistry.caSecret=registry-ca",
    "--set", "clickhouse.secure=true",
    "--set", "clickhouse.caSecret=clickhouse-ca",
    "--set", "kafka.securityProtocol=SSL",
    "--set", "kafka.tls.caSecret=events-cluster-ca-cert",
    "--set", "kafka.tls.clientSecret=streamgauge-user",
)  # fmt: skip
OAUTH = (
    "--set", "kafka.securityProtocol=SASL_SSL",
    "--set", "kafka.sasl.mechanism=OAUTHBEARER",
    "--set", "kafka.sasl.oauthbearer.tokenUrl=https://idp/token",
    "--set", "kafka.sasl.oauthbearer.clientId=streamgauge",
    "--set", "kafka.sasl.existingSecret=idp-client",
    "--set", "autoscaling.engine=hpa",
)  # fmt: skip

SCENARIOS: dict[str, tuple[str, ...]] = {
    "default": (),
    "production": (*PRODUCTION, *MONITORING_API),
    "keda-sasl-monitoring": (*KEDA_API, *MONITORING_API, *SASL),
    "hpa-cpu": ("--set", "autoscaling.hpa.metric=cpu"),
    "fixed-replicas-no-api": ("--set", "autoscaling.enabled=false", "--set", "api.enabled=false"),
    "dashboard": ("--set", "grafanaDashboard.enabled=true"),
    "keda-strimzi-mtls": (*KEDA_API, *STRIMZI_MTLS),
    "oauthbearer": OAUTH,
}


@pytest.fixture(scope="module", autouse=True)
def _helm() -> None:
    ensure_helm()


def by_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in manifests if doc["kind"] == kind]


def all_scenarios() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for name, args in SCENARIOS.items():
        yield name, render(*args)


@pytest.mark.parametrize("values", [(), PRODUCTION], ids=["default", "production"])
def test_lint(values: tuple[str, ...]) -> None:
    helm("lint", "--strict", CHART, "--kube-version", KUBE_VERSIONS[0], *values)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_manifests_follow_their_schemas(scenario: str, kube_version: str) -> None:
    manifests = render(*SCENARIOS[scenario], kube_version=kube_version)
    assert manifests
    for doc in manifests:
        what = f"{doc['kind']}/{doc['metadata']['name']}"
        if (doc["apiVersion"], doc["kind"]) in CRDS:
            schema = crd_schema(doc["apiVersion"], doc["kind"])
            error = jsonschema.exceptions.best_match(
                jsonschema.Draft4Validator(schema).iter_errors(doc)
            )
            assert error is None, f"{what}: {error.message} at {list(error.absolute_path)}"
            continue
        try:
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            raise AssertionError(f"{what}: {error.message} at {list(error.path)}") from None


def test_prometheus_rule_carries_the_rules_promtool_tests() -> None:
    (rule,) = by_kind(render(*MONITORING_API), "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]


@pytest.mark.parametrize("source", [ALERTS, DASHBOARD], ids=lambda p: p.name)
def test_chart_files_are_copies_of_the_deploy_files(source: Any) -> None:
    copy = CHART / "files" / source.name
    assert source.exists(), f"{source} is missing"
    hint = f"cp {source.relative_to(CHART.parents[1])} {copy.relative_to(CHART.parents[1])}"
    assert copy.exists(), hint
    assert copy.read_bytes() == source.read_bytes(), hint


def worker_deployment(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    (workers,) = [
        d for d in by_kind(manifests, "Deployment") if d["metadata"]["name"].endswith("-worker")
    ]
    return workers


def test_autoscaler_is_what_the_cluster_can_run_never_a_silent_one_pod() -> None:
    with_keda = render(*KEDA_API, *EXTERNAL_METRICS_API)
    assert by_kind(with_keda, "ScaledObject")
    assert not by_kind(with_keda, "HorizontalPodAutoscaler")
    with_adapter = render(*EXTERNAL_METRICS_API)
    assert by_kind(with_adapter, "HorizontalPodAutoscaler")
    assert "replicas" not in worker_deployment(with_adapter)["spec"]  # the HPA owns it
    assert by_kind(render("--set", "autoscaling.hpa.metric=cpu"), "HorizontalPodAutoscaler")
    # Neither KEDA nor an external metrics API: nothing could scale, so nothing pretends to:
    # the Deployment keeps worker.replicas (an HPA there would hold one pod for good), and
    # the install notes say why (NOTES.txt).
    bare = render()
    assert not by_kind(bare, "HorizontalPodAutoscaler")
    assert not by_kind(bare, "ScaledObject")
    assert worker_deployment(bare)["spec"]["replicas"] == 2


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("autoscalling.enabled=false", "additional properties 'autoscalling' not allowed"),
        ("autoscaling.engine=kedaa", "value must be one of 'auto', 'keda', 'hpa'"),
        ("kafka.securityProtocol=TLS", "value must be one of"),
        ("kafka.partitions=0", "minimum"),
        ("api.port=http", "got string, want integer"),
    ],
)
def test_values_off_the_schema_are_refused_before_anything_renders(value: str, said: str) -> None:
    with pytest.raises(AssertionError, match=said):
        helm("template", "sg", str(CHART), "--set-string" if "=http" in value else "--set", value)


def test_keda_leaves_stuck_partitions_out_of_the_pod_count() -> None:
    (scaled,) = by_kind(render(*KEDA_API), "ScaledObject")
    metadata = scaled["spec"]["triggers"][0]["metadata"]
    assert metadata["limitToPartitionsWithLag"] == "true"
    assert metadata["excludePersistentLag"] == "true"
    assert metadata["activationLagThreshold"] == "0"
    assert metadata["allowIdleConsumers"] == "false"  # KEDA refuses it with the first


def test_the_gate_loads_production_only_when_asked() -> None:
    def steps(*values: str) -> list[list[str]]:
        (job,) = by_kind(render(*values), "Job")
        return [c["args"] for c in containers(job["spec"]["template"]["spec"])]

    assert ["migrate", "check"] not in steps()  # no staging server: skipped (NOTES say so)
    assert ["migrate", "check"] in steps("--set", "migrations.checkOnTarget=true")
    (job,) = by_kind(render("--set", "migrations.checkOnTarget=true"), "Job")
    (gate,) = [
        c for c in containers(job["spec"]["template"]["spec"]) if c["name"] == "migrate-check"
    ]
    env = {e["name"]: e.get("value") for e in gate["env"]}
    assert env["STREAMGAUGE_MIGRATIONS_CHECK_ON_TARGET"] == "true"  # the command asks it too
    assert ["migrate", "check"] in steps("--set", "migrations.staging.existingSecret=staging")


def test_the_api_disruption_budget_only_when_a_drain_can_meet_it() -> None:
    def budgets(*values: str) -> list[str]:
        return [d["metadata"]["name"] for d in by_kind(render(*values), "PodDisruptionBudget")]

    assert "sg-streamgauge-api" in budgets()  # 2 replicas, 1 must stay
    assert "sg-streamgauge-api" not in budgets("--set", "api.replicas=1")
    assert "sg-streamgauge-worker" in budgets("--set", "api.replicas=1")


def test_keda_scales_on_the_ingest_groups_lag() -> None:
    (scaled,) = by_kind(render(*KEDA_API, "--set", "autoscaling.lagThreshold=2500"), "ScaledObject")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == "streamgauge-ingest"
    assert trigger["metadata"]["topic"] == "measurements"
    assert trigger["metadata"]["lagThreshold"] == "2500"
    assert trigger["metadata"]["allowIdleConsumers"] == "false"


def test_hpa_fallback_scales_on_lag_per_pod() -> None:
    (hpa,) = by_kind(render(*EXTERNAL_METRICS_API), "HorizontalPodAutoscaler")
    (metric,) = hpa["spec"]["metrics"]
    assert metric["external"]["metric"]["name"] == "streamgauge_consumer_lag_messages"
    assert metric["external"]["metric"]["selector"]["matchLabels"]["group"] == "streamgauge-ingest"
    assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "10000"}


@pytest.mark.parametrize("asked", [0, 4, 50])
def test_worker_pods_never_exceed_partitions(asked: int) -> None:
    limits = ("--set", "kafka.partitions=12", "--set", f"autoscaling.maxReplicas={asked}")
    expected = 12 if asked in (0, 50) else asked
    (scaled,) = by_kind(render(*KEDA_API, *limits), "ScaledObject")
    assert scaled["spec"]["maxReplicaCount"] == expected
    (hpa,) = by_kind(render(*EXTERNAL_METRICS_API, *limits), "HorizontalPodAutoscaler")
    assert hpa["spec"]["maxReplicas"] == expected
    fixed = render("--set", "autoscaling.enabled=false", "--set", "worker.replicas=40", *limits)
    assert worker_deployment(fixed)["spec"]["replicas"] == 12


def test_every_container_runs_a_streamgauge_command() -> None:
    seen = set()
    for name, manifests in all_scenarios():
        for workload, pod in pod_specs(manifests):
            for container in containers(pod):
                argv = container["args"]
                seen.add(" ".join(argv[:2]))
                assert "command" not in container, f"{workload}: the image's entrypoint runs"
                assert check_command(argv) is None, f"{name} {workload}: {check_command(argv)}"
    assert {"worker --processes", "api", "lag-exporter", "topics create", "migrate up"} <= seen
    assert "migrate check" in seen


def test_workers_run_one_process_per_pod() -> None:
    (worker,) = [
        d for d in by_kind(render(), "Deployment") if d["metadata"]["name"].endswith("-worker")
    ]
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["worker", "--processes", "1"]


def test_environment_names_are_settings() -> None:
    for name, manifests in all_scenarios():
        for workload, pod in pod_specs(manifests):
            for container in containers(pod):
                names = {
                    e["name"] for e in container["env"] if e["name"].startswith("STREAMGAUGE_")
                }
                unknown = names - setting_names()
                assert not unknown, f"{name} {workload}: {unknown}"


def test_cluster_name_reaches_the_migrations() -> None:
    (job,) = by_kind(render("--set", "clickhouse.cluster=telemetry"), "Job")
    for container in containers(job["spec"]["template"]["spec"]):
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["STREAMGAUGE_CLICKHOUSE_CLUSTER"] == "telemetry"


def test_pods_are_non_root_read_only_with_resources() -> None:
    for name, manifests in all_scenarios():
        for workload, pod in pod_specs(manifests):
            assert pod["securityContext"]["runAsNonRoot"] is True, workload
            assert pod["automountServiceAccountToken"] is False, workload
            for container in containers(pod):
                security = container["securityContext"]
                assert security["readOnlyRootFilesystem"] is True, f"{name} {workload}"
                assert security["allowPrivilegeEscalation"] is False, f"{name} {workload}"
                assert security["capabilities"]["drop"] == ["ALL"], f"{name} {workload}"
                assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
                assert container["resources"]["requests"], f"{name} {workload}"


def test_probes() -> None:
    deployments = {
        d["metadata"]["name"].removeprefix("sg-streamgauge-"): d
        for d in by_kind(render(), "Deployment")
    }

    def probe(component: str, kind: str) -> dict[str, Any]:
        (container,) = deployments[component]["spec"]["template"]["spec"]["containers"]
        result: dict[str, Any] = container[kind]["httpGet"]
        return result

    assert probe("worker", "livenessProbe") == {"path": "/metrics", "port": "metrics"}
    # A worker reading its new partitions' commits while the coordinator moves holds its event
    # loop (metrics included) for at most this long: the probe must not restart it meanwhile.
    (worker,) = deployments["worker"]["spec"]["template"]["spec"]["containers"]
    live = worker["livenessProbe"]
    allowance = live["periodSeconds"] * live["failureThreshold"]
    assert allowance > source.ASSIGN_READ_SECONDS + source.ASSIGN_READ_TIMEOUT
    assert probe("api", "livenessProbe") == {"path": "/healthz", "port": "http"}
    assert probe("api", "readinessProbe") == {"path": "/readyz", "port": "http"}
    # A Kafka outage makes the exporter unready (/healthz 503), never restarts it.
    assert probe("lag-exporter", "livenessProbe") == {"path": "/", "port": "http"}
    assert probe("lag-exporter", "readinessProbe") == {"path": "/healthz", "port": "http"}
    assert deployments["lag-exporter"]["spec"]["replicas"] == 1


def test_migration_gate_runs_before_install_and_upgrade() -> None:
    manifests = render("--set", "migrations.staging.url=http://ops:pw@staging:8123")
    (job,) = by_kind(manifests, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    pod = job["spec"]["template"]["spec"]
    assert [c["args"] for c in containers(pod)] == [
        ["topics", "create"],
        ["migrate", "check"],
        ["migrate", "up"],
    ]
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 0
    # The hook runs before the release's Secret exists: it reads a hook copy made before it.
    (hook_secret,) = [
        s
        for s in by_kind(manifests, "Secret")
        if "helm.sh/hook" in s["metadata"].get("annotations", {})
    ]
    assert int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for c in containers(pod)
        for e in c["env"]
        if "valueFrom" in e
    }
    assert refs == {hook_secret["metadata"]["name"]}


def test_existing_secrets_replace_the_charts() -> None:
    manifests = render(
        *SASL,
        *KEDA_API,
        "--set", "clickhouse.existingSecret=ch",
        "--set", "kafka.sasl.existingSecret=kafka-user",
        "--set", "api.existingSecret=api-keys",
    )  # fmt: skip
    (secret,) = [s for s in by_kind(manifests, "Secret") if "annotations" not in s["metadata"]]
    assert set(secret["data"]) == {"kafka-sasl-username"}  # KEDA reads the user name from it
    (api,) = [d for d in by_kind(manifests, "Deployment") if d["metadata"]["name"].endswith("-api")]
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["STREAMGAUGE_CLICKHOUSE_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "ch",
        "key": "password",
    }
    assert (
        env["STREAMGAUGE_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "kafka-user"
    )
    assert env["STREAMGAUGE_API_KEYS"]["valueFrom"]["secretKeyRef"] == {
        "name": "api-keys",
        "key": "api-keys",
    }
    (auth,) = by_kind(manifests, "TriggerAuthentication")
    assert {"parameter": "password", "name": "kafka-user", "key": "password"} in auth["spec"][
        "secretTargetRef"
    ]


# Helm's install order of the kinds this chart renders (hooks of equal weight follow it).
KIND_ORDER = [
    "PodDisruptionBudget", "ServiceAccount", "Secret", "ConfigMap", "Service",
    "Deployment", "Job", "HorizontalPodAutoscaler", "ScaledObject", "TriggerAuthentication",
    "ServiceMonitor", "PrometheusRule",
]  # fmt: skip


def references(pod: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every object a pod needs to start: its account, its Secrets."""
    needed = {("ServiceAccount", pod.get("serviceAccountName", "default"))}
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            needed.add(("Secret", volume["secret"]["secretName"]))
    for container in containers(pod):
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                needed.add(("Secret", ref["name"]))
    return needed


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_first_install_s_hooks_find_everything_they_use(scenario: str) -> None:
    # On `helm install` the pre-install hooks run before any other object of the release
    # exists, in order of weight, then kind: what a hook's pod needs from the chart must be
    # a hook created before it (what the chart does not render is the user's, and exists).
    manifests = render(*SCENARIOS[scenario])
    made = {(doc["kind"], doc["metadata"]["name"]) for doc in manifests}

    def hook(doc: dict[str, Any]) -> bool:
        events = doc["metadata"].get("annotations", {}).get("helm.sh/hook", "")
        return "pre-install" in events.split(",")

    hooks = sorted(
        filter(hook, manifests),
        key=lambda doc: (
            int(doc["metadata"]["annotations"].get("helm.sh/hook-weight", "0")),
            KIND_ORDER.index(doc["kind"]),
        ),
    )
    assert [doc["kind"] for doc in hooks][-1] == "Job"
    existing: set[tuple[str, str]] = set()
    for doc in hooks:
        if doc["kind"] == "Job":
            missing = (references(doc["spec"]["template"]["spec"]) & made) - existing
            assert not missing, f"{doc['metadata']['name']} needs {missing} before it exists"
        existing.add((doc["kind"], doc["metadata"]["name"]))


def test_tls_material_comes_from_secrets_into_every_pod() -> None:
    manifests = render(*STRIMZI_MTLS, *KEDA_API, "--set", "kafka.tls.keyPasswordKey=user.pass")
    pods = dict(pod_specs(manifests))
    assert len(pods) >= 4  # workers, API, exporter, the migration hook
    for pod in pods.values():
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["kafka-ca"]["secret"]["secretName"] == "events-cluster-ca-cert"
        assert volumes["kafka-client"]["secret"]["secretName"] == "streamgauge-user"
        assert volumes["clickhouse-ca"]["secret"]["secretName"] == "clickhouse-ca"
        assert volumes["registry-ca"]["secret"]["secretName"] == "registry-ca"
        for container in containers(pod):
            mounts = {m["name"]: m for m in container["volumeMounts"]}
            assert mounts["kafka-ca"]["readOnly"] is True
            env = {e["name"]: e for e in container["env"]}
            assert (
                env["STREAMGAUGE_KAFKA_SSL_CA_FILE"]["value"] == "/etc/streamgauge/kafka-ca/ca.crt"
            )
            assert env["STREAMGAUGE_KAFKA_SSL_CERTIFICATE_FILE"]["value"].endswith("/user.crt")
            assert env["STREAMGAUGE_KAFKA_SSL_KEY_FILE"]["value"].endswith("/user.key")
            assert env["STREAMGAUGE_CLICKHOUSE_CA_FILE"]["value"] == (
                "/etc/streamgauge/clickhouse-ca/ca.crt"
            )
            assert env["STREAMGAUGE_SCHEMA_REGISTRY_CA_FILE"]["value"] == (
                "/etc/streamgauge/registry-ca/ca.crt"
            )
            assert env["STREAMGAUGE_SCHEMA_REGISTRY_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
                "name": "registry-user",
                "key": "password",
            }
            assert env["STREAMGAUGE_KAFKA_SSL_KEY_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
                "name": "streamgauge-user",
                "key": "user.pass",
            }
    (auth,) = by_kind(manifests, "TriggerAuthentication")
    parameters = {ref["parameter"]: ref for ref in auth["spec"]["secretTargetRef"]}
    assert set(parameters) == {"ca", "cert", "key", "keyPassword"}
    assert parameters["ca"]["name"] == "events-cluster-ca-cert"


def test_oauthbearer_takes_its_client_secret_from_a_secret() -> None:
    manifests = render(*OAUTH)
    for _, pod in pod_specs(manifests):
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert env["STREAMGAUGE_KAFKA_OAUTHBEARER_TOKEN_URL"]["value"] == "https://idp/token"
        assert (
            env["STREAMGAUGE_KAFKA_OAUTHBEARER_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["name"]
            == "idp-client"
        )
        assert "STREAMGAUGE_KAFKA_SASL_USERNAME" not in env


def test_the_api_needs_keys_and_the_chart_makes_one_when_none_is_given() -> None:
    manifests = render(*MONITORING_API)
    secrets = {s["metadata"]["name"]: s for s in by_kind(manifests, "Secret")}
    key = base64.b64decode(secrets["sg-streamgauge-api-key"]["data"]["key"]).decode()
    assert len(key) >= 40
    entries = base64.b64decode(secrets["sg-streamgauge"]["data"]["api-keys"]).decode()
    assert entries == f"read+metrics:{hashlib.sha256(key.encode()).hexdigest()}"
    api = next(
        d for d in by_kind(manifests, "Deployment") if d["metadata"]["name"].endswith("-api")
    )
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["STREAMGAUGE_API_AUTH"]["value"] == "true"
    endpoints = [e for m in by_kind(manifests, "ServiceMonitor") for e in m["spec"]["endpoints"]]
    (scraped,) = [e for e in endpoints if "authorization" in e]  # the API's /metrics
    assert scraped["authorization"]["credentials"] == {
        "name": "sg-streamgauge-api-key",
        "key": "key",
    }

    open_api = render("--set", "api.auth=false")
    names = {s["metadata"]["name"] for s in by_kind(open_api, "Secret")}
    assert "sg-streamgauge-api-key" not in names
    api = next(d for d in by_kind(open_api, "Deployment") if d["metadata"]["name"].endswith("-api"))
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["STREAMGAUGE_API_AUTH"]["value"] == "false"


def test_the_slo_and_the_runbook_address_are_this_install_s() -> None:
    manifests = render(
        *MONITORING_API,
        "--set", "lagSloSeconds=120",
        "--set", "prometheusRule.runbookUrl=https://wiki.example/streamgauge/runbook/",
    )  # fmt: skip
    (rule,) = by_kind(manifests, "PrometheusRule")
    rules = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    slo = rules["StreamgaugeLagAboveSLO"]
    assert slo["expr"].endswith("(streamgauge_consumer_lag_seconds) > 120")
    assert "older than the 120 s SLO" in slo["annotations"]["description"]
    for name, alert in rules.items():
        url = alert["annotations"]["runbook_url"]
        assert url == f"https://wiki.example/streamgauge/runbook#{name.lower()}"
    for _, pod in pod_specs(manifests):
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert env["STREAMGAUGE_LAG_SLO_SECONDS"] == "120"  # the API's freshness: the same
    (board,) = by_kind(
        render("--set", "lagSloSeconds=120", "--set", "grafanaDashboard.enabled=true"),
        "ConfigMap",
    )
    (lag,) = [p for p in json.loads(board["data"]["streamgauge.json"])["panels"] if p["id"] == 2]
    assert lag["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] == 120
    assert "the 120 s SLO" in lag["description"]


def test_workers_and_api_can_have_their_own_clickhouse_users() -> None:
    manifests = render(
        "--set", "worker.clickhouse.user=streamgauge_ingest",
        "--set", "worker.clickhouse.existingSecret=ingest-password",
        "--set", "api.clickhouse.user=streamgauge_api",
        "--set", "api.clickhouse.existingSecret=api-password",
    )  # fmt: skip
    users = {}
    for name, pod in pod_specs(manifests):
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        password = env["STREAMGAUGE_CLICKHOUSE_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
        users[name.rsplit("-", 1)[-1]] = (env["STREAMGAUGE_CLICKHOUSE_USER"]["value"], password)
    assert users["worker"] == ("streamgauge_ingest", "ingest-password")
    assert users["api"] == ("streamgauge_api", "api-password")
    assert users["migrate"] == ("streamgauge", "sg-streamgauge-migrate")  # clickhouse.user
    with pytest.raises(AssertionError, match=r"worker\.clickhouse\.existingSecret must hold"):
        helm("template", "sg", str(CHART), "--set", "worker.clickhouse.user=streamgauge_ingest")


def test_monitoring_uses_the_compose_job_names() -> None:
    monitors = by_kind(render(*MONITORING_API), "ServiceMonitor")
    assert {m["spec"]["jobLabel"] for m in monitors} == {"app.kubernetes.io/component"}
    assert {
        m["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] for m in monitors
    } == {
        "worker",
        "api",
        "lag-exporter",
    }
