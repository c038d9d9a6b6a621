# Alerts: rules, their promtool tests, Alertmanager routing (included by the main Makefile).
PROMTOOL = $$(deploy/local/build.sh path promtool)
AMTOOL = $$(deploy/local/build.sh path amtool)

.PHONY: alerts alerts-check
TEST_CHECKS += alerts-check

alerts: $(STAMP) ## regenerate the SLO rules (alerts/rules/pulse-slo.yaml) from alerts/slo.py
	$(PY) alerts/slo.py

alerts-check: $(STAMP) ## promtool check + test of every rule file, amtool check-config, SLO rules up to date
	$(PY) alerts/slo.py --check
	$(PROMTOOL) check rules alerts/rules/*.yaml
	$(PROMTOOL) test rules alerts/tests/*.test.yaml
	@dir=$$(mktemp -d); rendered=$$($(PYTHON) deploy/local/stack.py render-alertmanager $$dir) && \
		$(AMTOOL) check-config "$$rendered"; rc=$$?; rm -rf "$$dir"; exit $$rc
