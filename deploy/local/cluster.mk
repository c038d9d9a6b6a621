# A local Kubernetes control plane without containers (included by the main Makefile): etcd,
# kube-apiserver, kube-controller-manager and kube-scheduler on loopback, kwok faking a node.
# `helm install` and `pulse doctor`'s Kubernetes checks run against it; containers never start.
CLUSTER := $(PYTHON) deploy/local/cluster.py

.PHONY: cluster cluster-up cluster-down cluster-status
TEST_CHECKS += cluster

cluster: ## build the control plane's pinned binaries (first build takes minutes, then cached)
	deploy/local/build.sh cluster && deploy/local/build.sh crds

cluster-up: cluster ## start the control plane and a kwok node; prints the KUBECONFIG to export
	$(CLUSTER) up

cluster-down: ## stop the control plane
	$(CLUSTER) down

cluster-status: ## show which control-plane processes run and whether they are healthy
	$(CLUSTER) status
