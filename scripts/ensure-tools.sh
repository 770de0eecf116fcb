#!/usr/bin/env bash
# promtool for the alert-rule and /metrics tests (tests/deploy/test_prometheus_rules.py,
# tests/deploy/test_grafana_dashboard.py, tests/streams/lag/test_exporter.py), from Debian's
# `prometheus` package. Idempotent: does nothing when `promtool` is already on PATH. Needs
# root or passwordless sudo the first time (apt-get), as CI machines here have. The package's
# Prometheus service is not started (no init system runs in CI); only promtool is used.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo -n"
fi
echo "ensure-tools: installing Debian's prometheus for promtool (once)"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus
command -v promtool >/dev/null
