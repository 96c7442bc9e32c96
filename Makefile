# Hookline: `make run` starts the gateway, `make test` runs the whole suite.
# Both create .venv from uv.lock (uv itself is pinned and bootstrapped into .uv/).

PYTHON     ?= python3
UV_VERSION := 0.13.8
UV         := .uv/bin/uv
VENV       := .venv
STAMP      := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)

.PHONY: run demo test test-unit lint format system-deps system-packages bench bench-peers clean help slo image schema

help:
	@echo "make run     start the gateway on 127.0.0.1:8000 (HOOKLINE_CONFIG/HOST/PORT honoured)"
	@echo "make demo    send signed sample events from every provider to it (second terminal)"
	@echo "make test    lint, type-check and run the whole test suite"
	@echo "make test-unit  the fast suite alone (no servers or external tools)"
	@echo "make lint    ruff + mypy + import contracts (lint-imports) + hadolint only"
	@echo "make image   build the OCI image with podman (scripts/build-image.sh; root on Debian)"
	@echo "make bench   ingest benchmark against fair baselines (bench/ingest_bench.py)"
	@echo "make bench-peers  the same plus the Django + django-anymail peer"
	@echo "make mutate  mutation testing of the critical modules (MODULE=path/to/module.py for one)"
	@echo "make slo     regenerate the SLO rules and dashboard from grafana/slo/slos.yml"
	@echo "make schema  regenerate gateway/storage/schema.sql (the migrated schema) after a migration"
	@echo "the CLI:     .venv/bin/hookline --help   (make run / make test create .venv)"

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	rm -f $(VENV)/.synced-*
	touch $@

run: $(STAMP)
	@echo "the CLI, from another terminal: .venv/bin/hookline --help"
	exec $(VENV)/bin/hookline serve

demo: $(STAMP)
	$(VENV)/bin/hookline demo
	@echo "the CLI: .venv/bin/hookline --help (e.g. .venv/bin/hookline events --limit 5)"

SCHEMA_DIR := tests/observability/schema

system-deps: system-packages $(SCHEMA_DIR)/node_modules/.package-lock.json

# Debian packages the suite needs (promtool, amtool, node, npm), installed only when missing
system-packages:
	@bash scripts/install-system-deps.sh

# Grafana's published dashboard schema types (npm) for the dashboard type-check
$(SCHEMA_DIR)/node_modules/.package-lock.json: $(SCHEMA_DIR)/package-lock.json | system-packages
	npm ci --prefix $(SCHEMA_DIR) --no-audit --no-fund --loglevel=error

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/hadolint Containerfile

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: $(STAMP) system-deps lint
	$(VENV)/bin/pytest

# the fast suite alone: no PostgreSQL, gateway process, promtool, checkov or container
# (tests marked `integration`, see pytest_collection_modifyitems in tests/conftest.py)
test-unit: $(STAMP)
	$(VENV)/bin/pytest -m "not integration"

# SLOs as code: regenerate the rules, promtool tests and dashboard from grafana/slo/slos.yml
slo: $(STAMP)
	$(VENV)/bin/python scripts/slo_rules.py

# the schema snapshot: a throwaway embedded PostgreSQL, every migration, pg_dump --schema-only
schema: $(STAMP)
	$(VENV)/bin/python -m gateway.storage.snapshot

# the OCI image (Containerfile), built without a container registry: podman + mmdebstrap
image:
	bash scripts/build-image.sh

# Hookline against the floor and the naive receiver of every signing scheme, one process
# each, same run (bench/ingest_bench.py; docs/benchmarks.md); needs wrk
bench: $(STAMP)
	$(VENV)/bin/python bench/ingest_bench.py $(BENCH_ARGS)
	$(VENV)/bin/python bench/batch_bench.py

# the same plus the Django + django-anymail peer (the optional `bench` dependency group)
bench-peers: $(STAMP)
	$(UV) sync --frozen --group bench --python $(PYTHON)
	$(VENV)/bin/python bench/ingest_bench.py --peers $(BENCH_ARGS)

# The adapter fuzzers of `make test` with the deep hypothesis profile (60 times the
# examples: thousands per property and provider; no per-test timeout)
.PHONY: fuzz
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=deep $(VENV)/bin/pytest tests/unit/handlers/test_fuzz.py --timeout=0

# Mutation testing (mutmut) of the modules whose promises matter most; not part of `make test`.
# The modules and tests are [tool.mutmut] in pyproject.toml; docs/testing.md has the scores.
.PHONY: mutate
MODULE ?=
mutate: $(STAMP)
	$(VENV)/bin/python scripts/mutate.py $(MODULE)

clean:
	rm -rf $(VENV) .uv .pytest_cache .mypy_cache .ruff_cache mutants
