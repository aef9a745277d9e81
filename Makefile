# One command runs locally exactly what CI runs: `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= configs/example.toml
APT_PACKAGES := $(shell grep -v '^\#' packaging/apt-packages.txt | xargs)
TEST_DIRS := $(wildcard tests/unit tests/integration)

.PHONY: run test lint typecheck check-configs unit e2e bench bench-parse bench-register bench-cps bench-relay bench-memory bench-hunt bench-voicemail venv apt clean

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
bench: bench-parse bench-register bench-cps bench-relay bench-memory bench-hunt bench-voicemail

bench-parse: venv
	$(BIN)/python benchmarks/bench_parse.py

bench-register: venv apt
	$(BIN)/python benchmarks/bench_register.py

# Benchmark tools, built or installed under benchmarks/build/ (git-ignored).
BENCH_BUILD := benchmarks/build
# The sippy B2BUA (the reference of bench-cps and bench-memory) in its own virtual
# environment: it installs a console script named `b2bua` that would shadow ours.
SIPPY_VENV := $(BENCH_BUILD)/venv-sippy
BENCH_CC ?= gcc

$(SIPPY_VENV)/.installed:
	$(PYTHON) -m venv $(SIPPY_VENV)
	$(SIPPY_VENV)/bin/pip install --quiet 'sippy==2.5.0'
	touch $@

# The RTP generator of bench-relay (C: sendmmsg/recvmmsg; a Python generator saturates first).
$(BENCH_BUILD)/rtpgen: benchmarks/rtpgen.c
	@command -v $(BENCH_CC) >/dev/null || { echo "bench-relay needs a C compiler: apt-get install gcc"; exit 1; }
	mkdir -p $(BENCH_BUILD)
	$(BENCH_CC) -O2 -Wall -Wextra -o $@ $<

## make bench-cps: calls/s through the switch next to sippy (about 5 minutes)
bench-cps: venv apt $(SIPPY_VENV)/.installed
	$(BIN)/python benchmarks/bench_cps.py

## make bench-relay: concurrent G.711 calls relayed next to a uvloop forwarder (about 9 minutes)
bench-relay: venv apt $(BENCH_BUILD)/rtpgen
	$(BIN)/python benchmarks/bench_relay.py

## make bench-memory: RSS per established call next to sippy (about 3 minutes)
bench-memory: venv apt $(SIPPY_VENV)/.installed
	$(BIN)/python benchmarks/bench_memory.py

## make bench-hunt: hunt member INVITE lateness and calls/s through a hunt, each next to plain calls (about 5 minutes)
bench-hunt: venv apt
	$(BIN)/python benchmarks/bench_hunt.py

## make bench-voicemail: concurrent voicemail recordings with no gap, next to the same calls relayed (about 10 minutes)
bench-voicemail: venv apt
	$(BIN)/python benchmarks/bench_voicemail.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .coverage

# -- issue 7: the signalling ceiling (Kamailio), the summary table, the soak, the profile
.PHONY: bench-proxy bench-summary soak profile

# `make bench` ends with these two (prerequisites added to the rule above, in this order).
bench: bench-proxy bench-summary

## make bench-proxy: calls/s through Kamailio as a stateful proxy (the signalling ceiling), b2bua side by side (about 7 minutes)
bench-proxy: venv apt
	$(BIN)/python benchmarks/bench_proxy.py

## make bench-summary: the "Where we stand" table of benchmarks/README.md from benchmarks/results/*.json (nothing measured)
bench-summary: venv
	$(BIN)/python benchmarks/summary.py

## make soak: 10 minutes at half the measured maximum calls/s, RTP on 1 call in 10; exits 1 when something fails or grows (SOAK_ARGS="--duration 3600 --rate 100")
SOAK_ARGS ?=
soak: venv apt
	$(BIN)/python benchmarks/soak.py $(SOAK_ARGS)

# py-spy (the profiler of `make profile`) in a virtual environment of its own.
$(BENCH_BUILD)/venv-tools/.installed:
	$(PYTHON) -m venv $(BENCH_BUILD)/venv-tools
	$(BENCH_BUILD)/venv-tools/bin/pip install --quiet 'py-spy==0.4.3'
	touch $@

## make profile: py-spy profile of the switch at its maximum calls/s (cps.json), top 15 by own time (PROFILE_ARGS="--rate 200 --duration 60")
PROFILE_ARGS ?=
profile: venv apt $(BENCH_BUILD)/venv-tools/.installed
	$(BIN)/python benchmarks/profile_switch.py $(PROFILE_ARGS)
