# CryptoRL: set-up, run, test, dev UI, bench, lint.
# Every target installs into .venv first if needed (idempotent).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The repo's dagster.yaml is the instance (plain `dagster dev` in the repo root finds it too).
# State goes under $CRYPTORL_STORAGE if you set it, else storage/ (cryptorl_core/settings.py).
export DAGSTER_HOME := $(CURDIR)
HOST ?= 127.0.0.1
PORT ?= 3000

.PHONY: setup run test dev bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# torch: the CPU build where there is no CUDA (an unpinned torch pulls a multi-GB CUDA build)
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
	  $(BIN)/python -m pip install -q torch; \
	else \
	  $(BIN)/python -m pip install -q torch==2.13.0; \
	fi
	$(BIN)/python -m pip install -q -e '.[dev,deploy]'
	@mkdir -p storage
	@touch $(STAMP)

run: setup
	$(BIN)/python -m cryptorl_dagster.cli run

test: setup
	$(BIN)/python -m pytest -q tests

dev: setup
	$(BIN)/dagster dev -h $(HOST) -p $(PORT)

bench: setup
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

lint: setup
	$(BIN)/ruff check cryptorl_core cryptorl_dagster tests bench

clean:
	rm -rf storage/dagster storage/artifacts storage/history storage/schedules storage/logs
