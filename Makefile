# hfops: `make run` starts the console and worker; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_DISABLE_TELEMETRY := 1
export HF_DATASETS_OFFLINE := 1
export HF_EVALUATE_OFFLINE := 1

.PHONY: setup sysdeps run test lint docs bench clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# System packages the tests need: headless Chromium + driver, and prometheus (ships promtool).
sysdeps:
	@bash scripts/install-sysdeps.sh

run: setup
	$(BIN)/hfops console

test: setup sysdeps lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=40

# ruff (lint + format) and mypy on lib/ (configured in pyproject.toml).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Regenerate the command-line reference from the parser.
docs: setup
	COLUMNS=110 $(BIN)/python -m hfops.cli.reference > docs/cli.md

bench: setup
	$(BIN)/python bench/sync.py
	$(BIN)/python bench/evals.py
	$(BIN)/python bench/refine.py

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache
