# The shared engines of several Pulse replicas (included by the main Makefile): PostgreSQL for
# sensors, NATS JetStream for the log bus. One Pulse process needs neither.
ENGINES := $(PYTHON) deploy/local/engines.py

.PHONY: engines engines-up engines-down engines-status
TEST_CHECKS += engines

engines: ## install Debian's PostgreSQL when missing and build nats-server (idempotent)
	$(ENGINES) install

engines-up: engines ## start PostgreSQL and NATS JetStream on loopback; print the URLs Pulse takes
	$(ENGINES) up

engines-down: ## stop the engines engines-up started
	$(ENGINES) down

engines-status: ## show whether PostgreSQL and NATS run
	$(ENGINES) status
