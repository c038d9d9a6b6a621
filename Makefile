# Pulse: every entry point. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PULSE := $(VENV)/bin/pulse
STAMP := $(VENV)/.installed
PROTO_DIR := service/proto
PROTOS := $(wildcard $(PROTO_DIR)/pulse/v1/*.proto)

.PHONY: help install proto proto-check lint test test-fast serve loadgen run bench profile verify clean

# Areas bring their own targets: the local stack, the local control plane, alerts, dashboards, the Helm chart. Each adds
# the checks `make test` must run to TEST_CHECKS.
TEST_CHECKS :=
-include deploy/local/stack.mk deploy/local/engines.mk deploy/local/node.mk alerts/alerts.mk dashboards/dashboards.mk deploy/helm/chart.mk \
	tests/browser/browser.mk

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install Pulse with its development tools (idempotent)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

proto: $(STAMP) ## regenerate the Python stubs from service/proto
	$(PY) -m grpc_tools.protoc -I $(PROTO_DIR) --python_out=service --pyi_out=service \
		--grpc_python_out=service $(PROTOS)

proto-check: proto ## fail when the committed stubs differ from the protos
	@git diff --exit-code -- service/pulse/v1 || { echo "stubs out of date: run 'make proto' and commit"; exit 1; }

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check .

test-fast: $(STAMP) ## unit and integration tests (no upstream binaries)
	$(VENV)/bin/pytest -q -m "not e2e" tests

test: $(STAMP) lint proto-check stack chromium $(TEST_CHECKS) ## everything CI proves: lint, stubs, unit, integration, end to end
	$(VENV)/bin/pytest -q -p no:cacheprovider tests

serve: $(STAMP) ## run Pulse in the foreground (gRPC 50051, admin 9464)
	$(PULSE) serve

loadgen: $(STAMP) ## run the load generator against localhost:50051
	$(PULSE) loadgen

run: $(STAMP) stack ## the local stack, Pulse and the load generator in the foreground, and where to look; Ctrl-C stops all
	@$(PY) deploy/local/run.py

bench: $(STAMP) ## benchmarks: figures as ratios against a baseline measured in the same run (REPEAT=N: medians of N runs)
	BENCH_REPEAT=$(or $(REPEAT),1) $(PY) -m bench

profile: $(STAMP) ## py-spy flame graphs (SVG) of Pulse under the ingest benchmark and 500 metric streams, in profiles/
	$(PY) -m bench.profile profiles

verify: $(STAMP) ## pulse doctor: the deployed release checked end to end (after make deploy)
	$(PULSE) doctor --namespace $(CHART_NAMESPACE) --release $(CHART_RELEASE)

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache
