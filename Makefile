# DMP Pipeline. `make up` runs it, `make test` tests it. `make help` lists every target.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help up down status test test-fast test-unit test-kafka-3.9 lint typecheck bench bench-scale docs clean lock

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9.-]+:.*## / {printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is needed (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

venv: $(STAMP) ## create the virtualenv and install the locked dependencies

LOCK_FLAGS := --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-find-links --no-emit-index-url
lock: $(STAMP) ## pin every dependency again from pyproject.toml (requirements.lock; requirements-server.lock for images)
	$(VENV)/bin/pip-compile $(LOCK_FLAGS) --upgrade --extra server --extra dev -o requirements.lock pyproject.toml
	$(VENV)/bin/pip-compile $(LOCK_FLAGS) --extra server -c requirements.lock -o requirements-server.lock pyproject.toml

up: $(STAMP) ## start broker, store and the three services in the background (idempotent)
	$(PY) -m infra.stack up

down: ## stop what `make up` started (data stays in var/)
	@if [ -x $(PY) ]; then $(PY) -m infra.stack down; fi

status: $(STAMP) ## show what is running
	$(PY) -m infra.stack status

test: $(STAMP) ## the full test suite; starts and stops its own broker and store on free ports
	$(PY) -m pytest

test-fast: $(STAMP) ## the full suite but the three-broker cluster faults (4-7 minutes of it on 2 cores)
	$(PY) -m pytest -m "not cluster"

test-kafka-3.9: $(STAMP) ## the integration and fault tiers against Kafka 3.9.2, the older line still supported
	DMP_KAFKA_VERSION=3.9.2 $(PY) -m pytest tests/integration tests/faults

test-unit: $(STAMP) ## only the fast tests, no broker or store
	$(PY) -m pytest -m unit

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check .

typecheck: $(STAMP) ## mypy, strict
	$(VENV)/bin/mypy shared services infra cli bench tests

bench: $(STAMP) ## the benchmark; prints a table and writes var/bench/latest.json
	$(PY) -m bench

SCALE ?= 10000,100000
bench-scale: $(STAMP) ## cost growth with stored volume (SCALE=10000,100000; add 1000000 for 1M); writes var/bench/scale.json
	$(PY) -m bench --scale $(SCALE)

docs: $(STAMP) ## build the documentation site into var/site/ (fails on a broken link)
	$(VENV)/bin/mkdocs build --strict --quiet

clean: down ## stop everything and delete var/ (data, logs, built tools) and the virtualenv
	rm -rf var $(VENV)
