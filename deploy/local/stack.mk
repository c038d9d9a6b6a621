# The local stack of upstream binaries (included by the main Makefile).
STACK := $(PYTHON) deploy/local/stack.py
# What collector-validate checks (tests/build points it at a broken copy).
COLLECTOR_CONFIG ?= deploy/otel-collector/config.yaml
COLLECTOR_K8S_CONFIG ?= deploy/otel-collector/k8s.yaml

.PHONY: stack stack-up stack-down stack-reset stack-status collector-validate
TEST_CHECKS += collector-validate

stack: ## build or install the pinned upstream binaries (first build takes minutes, then cached)
	deploy/local/build.sh all

stack-up: stack ## start Collector, Jaeger, Prometheus, VictoriaLogs, Alertmanager on loopback; print URLs
	$(STACK) up

stack-down: ## stop exactly the processes stack-up started
	$(STACK) down

stack-reset: ## stop the stack and empty its state (.stack/: metrics, logs, alerts of earlier runs)
	$(STACK) reset

stack-status: ## show which stack processes run and whether they are ready
	$(STACK) status

collector-validate: ## otelcol validate of the collector config, alone and with the Kubernetes layer
	@set -e; bin=$$(deploy/local/build.sh path otelcol); dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	OTELCOL_STORAGE_DIR=$$dir $$bin validate --config $(COLLECTOR_CONFIG); \
	OTELCOL_STORAGE_DIR=$$dir $$bin validate --config $(COLLECTOR_CONFIG) --config $(COLLECTOR_K8S_CONFIG); \
	echo "collector configs valid"
