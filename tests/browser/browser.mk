# The browser tests' Chromium (included by the main Makefile).
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: chromium screenshots

chromium: ## install Debian's Chromium for the browser tests (once; apt-get, quiet)
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium package…"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

screenshots: $(STAMP) stack chromium ## browser tests against the live stack; their screenshots into docs/images/
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/browser
	cp test-results/browser/*.png docs/images/
