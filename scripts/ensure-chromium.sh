#!/usr/bin/env bash
# Headless Chromium for the dashboard test (tests/api/test_dashboard.py), from Debian's
# `chromium` package. Idempotent: does nothing when `chromium` is already on PATH. Needs root
# or passwordless sudo the first time (apt-get), as CI machines here have.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo -n"
fi
echo "ensure-chromium: installing Debian's chromium (once)"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium
command -v chromium >/dev/null
