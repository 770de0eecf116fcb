"""The Grafana dashboard: valid JSON, ready to provision, only catalogued metrics, valid PromQL."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from streams.metrics import CATALOGUE

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "streamgauge.json"
# What Prometheus exposes besides the name itself, by metric kind.
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": (), "gauge": ()}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in node.get("panels", []):
        yield panel
        yield from panels(panel)


def expressions() -> list[str]:
    return [t["expr"] for p in panels(dashboard()) for t in p.get("targets", [])]


def test_the_dashboard_is_provisionable_json() -> None:
    board = dashboard()
    assert board["uid"] == "streamgauge"
    assert board["id"] is None  # provisioning assigns it
    assert board["title"]
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in panels(board):
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]


def test_every_metric_it_references_is_in_the_catalogue() -> None:
    known = {
        name + suffix for name, spec in CATALOGUE.items() for suffix in ("", *SUFFIXES[spec.kind])
    }
    referenced = {m for e in expressions() for m in re.findall(r"\bstreamgauge_[a-z0-9_]+", e)}
    assert referenced - known == set()
    # the panels the dashboard exists for
    for name in (
        "streamgauge_consumer_lag_seconds",
        "streamgauge_consumer_lag_messages",
        "streamgauge_consumer_status",
        "streamgauge_messages_consumed_total",
        "streamgauge_batch_rows_bucket",
        "streamgauge_insert_duration_seconds_bucket",
        "streamgauge_end_to_end_delay_seconds_bucket",
        "streamgauge_messages_dead_lettered_total",
        "streamgauge_api_requests_total",
        "streamgauge_api_request_duration_seconds_bucket",
    ):
        assert name in referenced, name


def test_every_expression_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query (dashboard variables replaced by a match-all regex)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run scripts/ensure-tools.sh (Debian's prometheus)"
    rules = [
        {"record": f"dashboard:query_{i}", "expr": re.sub(r"\$\w+", ".*", expression)}
        for i, expression in enumerate(expressions())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_series_is_scoped_to_the_chosen_namespace() -> None:
    # Two releases scraped by one Prometheus: each panel shows the namespace chosen (all of
    # them, or the empty one of docker-compose, with "All").
    variables = [v["name"] for v in json.loads(DASHBOARD.read_text())["templating"]["list"]]
    assert variables[:2] == ["datasource", "namespace"]
    for expr in expressions():
        for selector in re.findall(r"\bstreamgauge_[a-z0-9_]+(\{[^}]*\})?", expr):
            assert selector.startswith('{namespace=~"$namespace"'), expr
