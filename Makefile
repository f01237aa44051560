# finrec — two commands do all the set-up: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR := var/demo
DEMO_CUSTOMERS ?= 20000
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: help install demo demo-data demo-train serve test test-fast lint typecheck openapi bench clean \
	fuzz load faults hostile

help:
	@echo "make demo   - install, migrate SQLite, generate a synthetic bank, train, serve on 127.0.0.1:8000"
	@echo "make test   - install and run the test suite (PostgreSQL too when FINREC_TEST_DATABASE_URL is set)"
	@echo "make lint   - ruff + mypy --strict"
	@echo "make hostile / fuzz / load / faults - the suites of docs/suites.md"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@bash scripts/demo.sh

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

# Suites that prove the service holds (docs/suites.md); each prints a summary and RESULT: PASS.
hostile: $(STAMP)
	timeout 300 $(BIN)/python -m pytest -q -p no:cacheprovider tests/app/api/test_hostile.py

fuzz: $(STAMP)
	timeout 1500 $(BIN)/python -m suites.fuzz

load: $(STAMP)
	timeout 1200 $(BIN)/python -m suites.load

faults: $(STAMP)
	timeout 1500 $(BIN)/python -m suites.faults

lint: $(STAMP)
	$(BIN)/ruff check app recommenders migrations tests benchmarks suites
	$(BIN)/ruff format --check app recommenders migrations tests benchmarks suites
	$(BIN)/mypy app recommenders

openapi: $(STAMP)
	$(BIN)/python -m app.cli openapi --out openapi.yaml

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
