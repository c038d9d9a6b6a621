# Dashboards as code (included by the main Makefile).
.PHONY: dashboards dashboards-check
TEST_CHECKS += dashboards-check

dashboards: $(STAMP) ## regenerate dashboards/*.json from dashboards/pulse.py
	$(PY) -m dashboards.generate

dashboards-check: $(STAMP) ## fail when the committed dashboard JSON differs from the code
	$(PY) -m dashboards.generate --check
