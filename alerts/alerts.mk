# Alerts: rules, their promtool tests, Alertmanager routing (included by the main Makefile).
PROMTOOL = $$(deploy/local/build.sh path promtool)
AMTOOL = $$(deploy/local/build.sh path amtool)

.PHONY: alerts alerts-check
TEST_CHECKS += alerts-check

alerts: $(STAMP) ## regenerate alerts/rules/*.yaml from alerts/areas/ and the monitoring config
	$(PY) -m alerts.generate

alerts-check: $(STAMP) ## rules up to date, promtool check + test of every rule file, amtool check-config
	$(PY) -m alerts.generate --check
	$(PROMTOOL) check rules alerts/rules/*.yaml
	$(PROMTOOL) test rules alerts/tests/*.test.yaml
	@dir=$$(mktemp -d); rendered=$$($(PYTHON) deploy/local/stack.py render-alertmanager $$dir) && \
		$(AMTOOL) check-config "$$rendered"; rc=$$?; rm -rf "$$dir"; exit $$rc
