# One command runs locally exactly what CI runs: `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= configs/example.toml
APT_PACKAGES := $(shell grep -v '^\#' packaging/apt-packages.txt | xargs)
TEST_DIRS := $(wildcard tests/unit tests/integration)

.PHONY: run test lint typecheck check-configs unit e2e bench bench-parse bench-register venv apt clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

venv: $(BIN)/.installed

## make run: start the softswitch on the example config (127.0.0.1:5060, UDP and TCP)
run: venv
	$(BIN)/b2bua run --config $(CONFIG)

## apt: install the SIP peers the tests drive (only as root, only what is missing)
apt:
	@if [ "$$(id -u)" = "0" ]; then \
		missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
		if [ -n "$$missing" ]; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		fi; \
	else \
		echo "not root: skipping apt-get; the e2e tests need: $(APT_PACKAGES)"; \
	fi

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

check-configs: venv
	$(BIN)/b2bua check-config configs/*.toml

unit: venv
	$(BIN)/pytest $(TEST_DIRS) --cov=b2bua --cov=media --cov-report=term:skip-covered -q

e2e: venv apt
	B2BUA_REQUIRE_E2E=1 $(BIN)/pytest tests/e2e tests/support -m e2e -q

## make test: everything CI runs
test: venv apt lint typecheck check-configs unit e2e

## make bench: every benchmark, one after the other; results in benchmarks/results/
bench: bench-parse bench-register

bench-parse: venv
	$(BIN)/python benchmarks/bench_parse.py

bench-register: venv apt
	$(BIN)/python benchmarks/bench_register.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .coverage
