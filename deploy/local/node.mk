# A real single-node Kubernetes on this machine (included by the main Makefile): the control
# plane, containerd, the kubelet, kube-proxy and CoreDNS (deploy/local/node.py), and the chart's
# images built here (deploy/local/images.sh). One node per machine; its kubeconfig is
# .node/kubeconfig.
NODE := $(PYTHON) deploy/local/node.py
# containerd, runc, the CNI plugins and iptables of the node; buildah and debootstrap for images.
NODE_DEBIAN_PACKAGES := containerd runc containernetworking-plugins iptables conntrack buildah \
	debootstrap

.PHONY: node node-packages images node-up node-down node-status
TEST_CHECKS += node images

node-packages: ## install the node's Debian packages when missing (apt-get, quiet)
	@missing="$$(for p in $(NODE_DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null | grep -qx installed || echo $$p; done)"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $$missing >/dev/null; \
	fi

node: node-packages ## build the node's pinned binaries (first build takes minutes, then cached)
	nice deploy/local/build.sh node && deploy/local/build.sh crds

images: node-packages ## build the chart's images (Pulse from service/Dockerfile, the backends, pause); import them when the node runs
	nice deploy/local/images.sh build
	@if $(NODE) running; then deploy/local/images.sh import "$$($(NODE) socket)"; fi

node-up: node images ## start the node; prints the KUBECONFIG to export
	$(NODE) up

node-down: ## stop the node and undo what it changed on the machine
	$(NODE) down

node-status: ## show which node processes run and whether they are healthy
	$(NODE) status
