# Dashboards as code (included by the main Makefile).
DASHBOARD_CHECK = $$(deploy/local/build.sh path dashboard-check)
DASHBOARD_JSON = dashboards/*.json dashboards/*/*.json

.PHONY: dashboards dashboards-check
TEST_CHECKS += dashboards-check

dashboards: $(STAMP) ## regenerate the dashboard JSON from dashboards/*.py (both logs backends)
	$(PY) -m dashboards.generate

dashboards-check: $(STAMP) ## fail when the dashboard JSON drifts from the code or the strict checker finds a defect
	$(PY) -m dashboards.generate --check
	$(DASHBOARD_CHECK) $(DASHBOARD_JSON)
