# Two commands matter: `make up` runs the whole system locally, `make test` passes the tests.
SHELL := /bin/bash
GO ?= go
STACK := scripts/stack.sh

.PHONY: up down status logs test test-unit bench bench-system build fmt vet compose-config fuzz chaos chaos-short failover check-deploy

up:
	@$(STACK) up

down:
	@$(STACK) down

status:
	@$(STACK) status

logs:
	@tail -n 100 -F .state/logs/*.log

build:
	$(GO) build ./...

# Integration tests need the servers; they start (or reuse) the local ones. The system checks
# after them run one after the other: two private copies of the system restarting components
# side by side on two cores slow each other's recoveries past their goals.
test:
	@$(STACK) servers
	@scripts/ensure-test-tools.sh
	@set -a && source <($(STACK) env) && set +a && $(GO) test -race -count=1 -timeout 20m ./...
	@$(MAKE) --no-print-directory fuzz FUZZTIME=20000x
	@$(MAKE) --no-print-directory chaos-short
	@$(MAKE) --no-print-directory failover
	@$(MAKE) --no-print-directory check-deploy

# The Docker deployment files, checked as far as a machine without a Docker engine can.
check-deploy:
	@scripts/check-deploy.sh

# Fuzzing: request decoding, and the ledger's batch planning with the money invariants as oracle.
# make test gives each a number of executions, not a duration: Go 1.26's fuzzing coordinator can
# report its own -fuzztime deadline as a failure on a busy machine (golang/go#75804).
FUZZTIME ?= 1m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeTransaction$$' -fuzztime $(FUZZTIME) ./internal/httpapi/
	$(GO) test -run '^$$' -fuzz '^FuzzApply$$' -fuzztime $(FUZZTIME) ./internal/ledger/

test-unit:
	$(GO) test -short -count=1 ./...

bench:
	@$(STACK) servers
	@scripts/bench.sh

# A load run on the running system (make up) while each server and service is SIGKILLed in turn.
chaos:
	@scripts/chaos.sh

# A short chaos run on a private copy of the system: the fast-restarting components, a few
# seconds apart, then the money verified and every effect audited one by one.
chaos-short:
	@CHAOS_PRIVATE=1 CHAOS_TARGETS="postgres kafka processor consumer notifier" CHAOS_GAP=6 \
		CHAOS_RATE=200 CHAOS_USERS=50 scripts/chaos.sh

# PostgreSQL failover under load: a private copy of the system with HA=1 (a primary and a
# synchronous standby, pg_auto_failover), the primary node SIGKILLed twice while a load run goes
# on, then the money verified and every effect audited; prints the requests each failover failed.
failover:
	@HA=1 CHAOS_PRIVATE=1 CHAOS_TARGETS="primary primary" CHAOS_GAP=15 CHAOS_RATE=200 CHAOS_USERS=50 CHAOS_GOAL_S=20 \
		scripts/chaos.sh

# The whole system (a private copy) under load at several rates: CPU per transaction per component.
bench-system:
	@scripts/bench-system.sh

fmt:
	gofmt -l -w .

vet:
	$(GO) vet ./...

# docker-compose.yml as Docker Compose resolves it (observability profile included); fails if invalid.
compose-config:
	@if docker compose version >/dev/null 2>&1; then docker compose --profile observability config; \
	else docker-compose --profile observability config; fi
