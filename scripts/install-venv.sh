#!/bin/sh
# The image's install steps: a virtualenv at VENV holding streamgauge from the source tree SRC,
# non-editable, the pipeline's runtime dependencies only (no dev extra), versions from
# SRC/constraints.txt.
#
# The Dockerfile's builder stage runs this, and so does scripts/check-image-install.sh (in a
# temporary directory), so CI exercises the image's install without a container engine.
# Usage: scripts/install-venv.sh VENV [SRC]    (PYTHON picks the interpreter, default python3)
set -eu
venv=$1
cd "${2:-.}"
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install --no-cache-dir --disable-pip-version-check -c constraints.txt '.[pipeline]'
