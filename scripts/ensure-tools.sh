#!/usr/bin/env bash
# Debian packages some tests need, installed once; each is skipped when its command exists:
#   promtool  (package prometheus) for the alert-rule, config and /metrics checks;
#   chromium  (package chromium)   for the dashboard test (tests/api/test_dashboard.py).
# Needs root or passwordless sudo the first time (apt-get), as CI machines here have. The
# prometheus package's server is not started (no init system runs in CI); only promtool is used.
set -euo pipefail

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo -n"
fi
missing=()
for pair in promtool:prometheus chromium:chromium; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "ensure-tools: installing Debian's ${missing[*]} (once)"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
command -v promtool >/dev/null && command -v chromium >/dev/null
