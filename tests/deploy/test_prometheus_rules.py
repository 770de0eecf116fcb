"""The alert rules: promtool accepts them, their unit tests pass, each alert has a runbook.

promtool comes from Debian's `prometheus` package (scripts/ensure-tools.sh installs it); the
tests fail rather than skip without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from streams.metrics import CATALOGUE

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "alerts_test.yml"
RUNBOOK = REPO / "docs" / "runbook.md"
RUNBOOK_URL = "https://github.com/streamgauge/streamgauge/blob/main/docs/runbook.md#"


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    assert path, "promtool is missing: run scripts/ensure-tools.sh (Debian's prometheus)"
    return subprocess.run([path, *map(str, args)], capture_output=True, text=True, check=False)


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_quiet() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    names = {rule["alert"] for rule in alerts()}
    assert fired == names
    assert quiet == names


def test_every_alert_links_to_its_own_runbook_section() -> None:
    anchors = {_anchor(line[3:]) for line in RUNBOOK.read_text().splitlines() if line[:3] == "## "}
    for rule in alerts():
        url = rule["annotations"]["runbook_url"]
        assert url == RUNBOOK_URL + rule["alert"].lower()
        assert url.removeprefix(RUNBOOK_URL) in anchors, f"docs/runbook.md lacks ## {rule['alert']}"


def test_every_alert_has_a_severity_and_a_summary() -> None:
    for rule in alerts():
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]


def test_the_rules_use_only_catalogued_metrics() -> None:
    # a histogram's series are its name's _bucket, _sum and _count
    used = {
        re.sub(r"_bucket$", "", name)
        for name in re.findall(r"\bstreamgauge_[a-z0-9_]+", RULES.read_text())
    }
    assert used, "the rules name no streamgauge metric"
    assert used <= set(CATALOGUE), used - set(CATALOGUE)


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
