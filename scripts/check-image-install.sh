#!/usr/bin/env bash
# The container image's install, checked without a container engine.
#
# 1. The Dockerfile's builder-stage COPY lines assemble the same build context in a
#    temporary directory (what the image copies, nothing else from the checkout).
# 2. scripts/install-venv.sh, the very script the Dockerfile runs, installs it into a clean
#    venv at the image's path, moved under the temporary directory.
# 3. The runtime stage's COPY of schemas/ and its ENV lines are applied the same way.
# 4. From outside the checkout, with only the image's environment, every entrypoint the
#    deployments use answers --help, the settings load, the schemas and migrations are found
#    where the image's ENV says, and every data file of the packages was installed.
#
# Wheels come from .cache/image-wheels: filled from PyPI with constraints.txt on first use and
# whenever constraints.txt or pyproject.toml change, so later runs need no network.
# Usage: scripts/check-image-install.sh      (PYTHON picks a Python 3.11, default python3)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dockerfile=$repo/Dockerfile
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- the interpreter matches the image's base ------------------------------------------
image_python=$(sed -n 's/^ARG PYTHON_IMAGE=python:\([0-9]*\.[0-9]*\)\..*/\1/p' "$dockerfile")
have_python=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$image_python" != "$have_python" ]; then
    echo "check-image-install: the image uses Python $image_python, $python is $have_python;" \
        "set PYTHON to a Python $image_python." >&2
    exit 1
fi

# Lines of one Dockerfile stage (1: builder, 2: runtime), continuation lines joined.
stage() {
    awk -v want="$1" '
        /^FROM / { n++ }
        n == want && !/^[[:space:]]*#/ {
            line = line $0
            if (sub(/\\$/, "", line)) next
            print line; line = ""
        }' "$dockerfile"
}

# COPY SRC... DEST/ (no --from) into ROOT/DEST, the way the Dockerfile copies them.
copy_lines() {
    local root=$1 args dest src
    while read -r -a args; do
        [ "${args[0]:-}" = COPY ] || continue
        [[ "${args[1]}" == --from=* ]] && continue
        dest=$root/${args[-1]}
        mkdir -p "$dest"
        for src in "${args[@]:1:${#args[@]}-2}"; do
            if [ -d "$repo/$src" ]; then cp -R "$repo/$src/." "$dest"; else cp "$repo/$src" "$dest"; fi
        done
    done
    find "$root" -name __pycache__ -prune -exec rm -rf {} +
}

# --- 1. the build context -----------------------------------------------------------------
workdir=$(stage 1 | awk '$1 == "WORKDIR" { print $2 }')
context=$work$workdir
stage 1 | copy_lines "$context"

# --- 2. the install, with wheels from the cache ---------------------------------------------
wheels=$repo/.cache/image-wheels
inputs=$(cat "$repo/constraints.txt" "$repo/pyproject.toml" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$wheels/.inputs" 2>/dev/null)" != "$inputs" ]; then
    echo "check-image-install: downloading wheels into $wheels"
    rm -rf "$wheels"
    mkdir -p "$wheels"
    "$python" -m pip download --disable-pip-version-check --quiet \
        --cache-dir "$repo/.cache/pip" -d "$wheels" \
        -c "$repo/constraints.txt" "$context[pipeline]" "setuptools>=69"
    echo "$inputs" >"$wheels/.inputs"
fi
read -r -a run < <(stage 1 | awk '$1 == "RUN" && /install-venv.sh/ { $1 = ""; print }')
[ "${run[0]}" = sh ] && [ "${run[1]}" = scripts/install-venv.sh ] || {
    echo "check-image-install: the builder stage must RUN sh scripts/install-venv.sh VENV SRC" >&2
    exit 1
}
venv=$work${run[2]}
(cd "$context" && PIP_NO_INDEX=1 PIP_FIND_LINKS=$wheels PYTHON=$python \
    sh scripts/install-venv.sh "$venv" "$work${run[3]}")

# --- 3. the runtime stage: its COPY of the checkout and its ENV -----------------------------
stage 2 | copy_lines "$work"
image_env=(PATH=/usr/local/bin:/usr/bin:/bin HOME="$work")
while read -r assignment; do
    image_env+=("$(eval "PATH=/usr/local/bin:/usr/bin:/bin; echo \"${assignment//\/opt\//$work/opt/}\"")")
done < <(stage 2 | awk '$1 == "ENV" { for (i = 2; i <= NF; i++) print $i }')

# --- 4. the entrypoints, from outside the checkout, with the image's environment only --------
cd "$work"
check() {
    echo "check-image-install: streamgauge $*"
    env -i "${image_env[@]}" streamgauge "$@" >/dev/null
}
check --help
check worker --help
check api --help
check lag-exporter --help
check migrate --help
check simulate --help
check topics --help
# the one-shot commands of docker-compose.yml and the chart's hook Job
check topics create --help
check migrate check --help
check migrate up --help

echo "check-image-install: settings, schemas, migrations and package data"
env -i "${image_env[@]}" python - "$context" <<'PY'
import sys
from pathlib import Path

import importlib.util

import api
import streams
from streams import migrations
from streams.codec import load_versions
from streams.settings import Settings

settings = Settings.from_env()  # an unknown STREAMGAUGE_* name in the image's ENV fails here
assert load_versions(settings.schemas_dir), f"no Avro schema in {settings.schemas_dir}"
assert migrations.load(settings.migrations_dir), f"no migration in {settings.migrations_dir}"
context = Path(sys.argv[1])
missing = []
# The development tools stay out of the image.
assert importlib.util.find_spec("devstack") is None, "the image holds devstack"
assert importlib.util.find_spec("bench") is None, "the image holds bench"
for package in (streams, api):
    source, installed = Path(package.__file__).parent, context / package.__name__
    assert source.is_relative_to(sys.prefix), f"{package.__name__} imported from {source}"
    for path in installed.rglob("*"):
        relative = path.relative_to(installed)
        if path.is_file() and path.suffix not in (".py", ".c") and not (source / relative).exists():
            missing.append(f"{package.__name__}/{relative}")
assert not missing, "package data not installed (pyproject package-data): " + ", ".join(missing)
from streams.fastcheck import FastCheck

assert FastCheck.available(), "streams/_fastcheck.c was not compiled (the builder needs gcc)"
PY
echo "check-image-install: ok"
