# Hookline: `make run` starts the gateway, `make test` runs the whole suite.
# Both create .venv from uv.lock (uv itself is pinned and bootstrapped into .uv/).

PYTHON     ?= python3
UV_VERSION := 0.13.8
UV         := .uv/bin/uv
VENV       := .venv
STAMP      := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)

.PHONY: run test lint format system-deps bench clean help

help:
	@echo "make run     start the gateway on 127.0.0.1:8000 (HOOKLINE_CONFIG/HOST/PORT honoured)"
	@echo "make test    lint, type-check and run the whole test suite"
	@echo "make lint    ruff + mypy only"
	@echo "make bench   ingest benchmark (bench/ingest_bench.py)"

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	rm -f $(VENV)/.synced-*
	touch $@

run: $(STAMP)
	exec $(VENV)/bin/hookline serve

SCHEMA_DIR := tests/observability/schema

system-deps: $(SCHEMA_DIR)/node_modules/.package-lock.json
	@bash scripts/install-system-deps.sh

# Grafana's published dashboard schema types (npm) for the dashboard type-check
$(SCHEMA_DIR)/node_modules/.package-lock.json: $(SCHEMA_DIR)/package-lock.json
	npm ci --prefix $(SCHEMA_DIR) --no-audit --no-fund --loglevel=error

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: $(STAMP) system-deps lint
	$(VENV)/bin/pytest

bench: $(STAMP)
	$(VENV)/bin/python bench/ingest_bench.py

# The adapter fuzzers of `make test` with the deep hypothesis profile (60 times the
# examples: thousands per property and provider; no per-test timeout)
.PHONY: fuzz
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=deep $(VENV)/bin/pytest tests/unit/handlers/test_fuzz.py --timeout=0

clean:
	rm -rf $(VENV) .uv .pytest_cache .mypy_cache .ruff_cache
