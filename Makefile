# streamgauge: `make run` runs the main job on the local stack, `make test` runs the whole suite.
# Both work from a fresh clone: they create .venv, install the package with its dev extras,
# and the local stack fetches Kafka's jars from Maven Central into .cache/ on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install lint typecheck pytest test-slow test-cluster tools clean

# BROKERS=3: on a local 3-broker Kafka cluster (docs/deploy-cluster.md).
run: $(STAMP)
	$(BIN)/streamgauge dev run $(if $(BROKERS),--brokers $(BROKERS))

test: $(STAMP)
	$(MAKE) lint typecheck pytest

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt streams/_fastcheck.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[pipeline,dev]'
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Tools some tests need, installed once: promtool and Chromium (Debian), and helm
# built from its Go module into .cache/bin.
tools:
	scripts/ensure-tools.sh
	scripts/ensure-helm.sh

# The test session starts the local stack if it is not running and stops what it started.
# Two processes share the tests (most of them wait on Kafka, ClickHouse and the clock); the
# tests marked `serial` run afterwards, one at a time (pyproject.toml says which and why).
pytest: $(STAMP) tools
	$(BIN)/pytest -n 2 -m "not serial and not extended"
	$(BIN)/pytest -m "serial and not extended"

test-slow: $(STAMP) tools
	$(BIN)/pytest -m slow

# Every scenario on the local 3-broker cluster (make test runs the reduced set).
test-cluster: $(STAMP) tools
	$(BIN)/pytest -m cluster -rP

clean:
	-$(BIN)/streamgauge dev down
	rm -rf .devstack
