# The Helm chart and the service image (included by the main Makefile): the chart checks that
# `make test` runs, the sync of the files the chart packages, and the kind/minikube flows.
# Tool pins: helm and kubeconform in deploy/local/versions.env, the Python tools (hadolint,
# checkov, kubernetes-validate schemas) in deploy/helm/tools.txt.
CHART_DIR := deploy/helm/pulse
CHART_RELEASE ?= pulse
CHART_NAMESPACE ?= pulse
# Extra flags of `helm upgrade --install`, e.g. CHART_VALUES="-f my-values.yaml".
CHART_VALUES ?=
# Object names: the release name, plus "-pulse" unless it contains it (the chart's fullname).
CHART_FULLNAME = $(if $(findstring pulse,$(CHART_RELEASE)),$(CHART_RELEASE),$(CHART_RELEASE)-pulse)
IMAGE_REPO ?= pulse
IMAGE_TAG ?= $(shell sed -nE 's/^version = "([^"]+)"/\1/p' pyproject.toml)
IMAGE = $(IMAGE_REPO):$(IMAGE_TAG)
# Container engine of `make image` (docker or podman).
CONTAINER_ENGINE ?= docker
KIND_CLUSTER ?= pulse
MINIKUBE_PROFILE ?= pulse
HELM_BIN = $$(deploy/local/build.sh path helm)

.PHONY: chart-sync chart-check image kind-up kind-load kind-down minikube-up minikube-load \
	minikube-down deploy port-forward
TEST_CHECKS += chart-check

chart-sync: ## copy the collector config, rules, Alertmanager files and dashboards into the chart
	$(PYTHON) deploy/helm/sync.py

chart-check: $(STAMP) ## chart files in sync, helm lint, kubeconform (oldest/newest Kubernetes), backend configs, hadolint, checkov
	@time PYTHON=$(PY) deploy/helm/check.sh

image: ## build the Pulse image from service/Dockerfile, tagged pulse:<pyproject version>
	$(CONTAINER_ENGINE) build -f service/Dockerfile -t $(IMAGE) .

kind-up: ## create the kind cluster "pulse" (KIND_CLUSTER)
	kind get clusters | grep -qx '$(KIND_CLUSTER)' || kind create cluster --name $(KIND_CLUSTER) --wait 120s

kind-load: image ## build the image and load it into the kind cluster
	kind load docker-image $(IMAGE) --name $(KIND_CLUSTER)

kind-down: ## delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER)

minikube-up: ## start the minikube profile "pulse" (MINIKUBE_PROFILE), 4 CPUs, 6 GiB
	minikube start -p $(MINIKUBE_PROFILE) --cpus 4 --memory 6g

minikube-load: image ## build the image and load it into minikube
	minikube -p $(MINIKUBE_PROFILE) image load $(IMAGE)

minikube-down: ## delete the minikube profile
	minikube delete -p $(MINIKUBE_PROFILE)

deploy: chart-sync ## install or upgrade the chart into the current kube context, wait, run helm test
	$(HELM_BIN) upgrade --install $(CHART_RELEASE) $(CHART_DIR) --namespace $(CHART_NAMESPACE) \
		--create-namespace --set pulse.image.repository=$(IMAGE_REPO) \
		--set pulse.image.tag=$(IMAGE_TAG) --wait --timeout 10m $(CHART_VALUES)
	@# No --logs: the test pods are deleted once they pass, so it fails fetching their logs. A
	@# failed pod is kept.
	$(HELM_BIN) test $(CHART_RELEASE) --namespace $(CHART_NAMESPACE) || { echo "a test pod failed" \
		"and is kept: kubectl -n $(CHART_NAMESPACE) logs $(CHART_FULLNAME)-doctor (or -test)"; exit 1; }

port-forward: ## forward Pulse 50051/9464, Grafana 3000, Jaeger 16686, Prometheus 9090, Alertmanager 9093, Loki 3100 or VictoriaLogs 9428; Ctrl-C stops
	@trap 'kill 0' INT TERM EXIT; \
	for fwd in "$(CHART_FULLNAME) 50051:50051 9464:9464" "$(CHART_FULLNAME)-grafana 3000:3000" \
		"$(CHART_FULLNAME)-jaeger 16686:16686" "$(CHART_FULLNAME)-prometheus 9090:9090" \
		"$(CHART_FULLNAME)-alertmanager 9093:9093" "$(CHART_FULLNAME)-loki 3100:3100" \
		"$(CHART_FULLNAME)-victorialogs 9428:9428"; do \
		set -- $$fwd; svc=$$1; shift; \
		if kubectl -n $(CHART_NAMESPACE) get svc $$svc >/dev/null 2>&1; then \
			kubectl -n $(CHART_NAMESPACE) port-forward svc/$$svc "$$@" & \
		fi; \
	done; \
	echo "Pulse localhost:50051, admin http://localhost:9464  Grafana http://localhost:3000"; \
	echo "Jaeger http://localhost:16686  Prometheus http://localhost:9090  Alertmanager http://localhost:9093"; \
	echo "Loki http://localhost:3100 or VictoriaLogs http://localhost:9428/select/vmui (whichever is deployed)"; \
	wait
