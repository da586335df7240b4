# pos-ingest — `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
PYTEST_ARGS ?=
APT_PACKAGES := chromium prometheus

.PHONY: help setup install system-deps services run test test-fast bench chaos clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

setup: system-deps install services ## everything a fresh machine needs (system packages, venv, local services)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## create the venv and install pos-ingest with its dev extra

system-deps: ## Debian packages the tests use (headless Chromium, Prometheus/promtool)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

services: ## make sure the machine's PostgreSQL and Redis answer
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
	  --save "" --appendonly no --dir /tmp --logfile /tmp/redis-pos-ingest.log

run: install services ## the whole system: embedded broker and S3, migrations, topics, every service
	$(VENV)/bin/pos-ingest up

test: install system-deps services ## start an embedded broker and S3 server, run every test, stop them
	@mkdir -p .run; set -e; \
	$(PY) -m ingest.devstack start --env-file .run/test-deps.env >/dev/null; \
	trap '$(PY) -m ingest.devstack stop --env-file .run/test-deps.env' EXIT; \
	set -a; . ./.run/test-deps.env; set +a; \
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: install ## unit, adapter and schema tests only (no servers)
	$(PY) -m pytest -q tests/unit tests/adapters tests/deploy

bench: install services ## the benchmark: brings the stack up, measures against baselines, tears it down
	$(PY) bench/run.py

chaos: install services ## the full fault-injection suite
	@mkdir -p .run; set -e; \
	$(PY) -m ingest.devstack start --env-file .run/chaos-deps.env >/dev/null; \
	trap '$(PY) -m ingest.devstack stop --env-file .run/chaos-deps.env' EXIT; \
	set -a; . ./.run/chaos-deps.env; set +a; \
	CHAOS_FULL=1 $(PY) -m pytest -q -s tests/chaos

clean: ## remove the venv and run files
	rm -rf $(VENV) .run
