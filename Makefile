# Voxflow: `make run` to try it, `make test` to check it. Everything installs into .venv.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PG_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

.PHONY: install install-dev run test lint typecheck pytest scenarios bench lock clean \
	web web-test web-e2e web-e2e-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV): $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

# Exactly the locked set, hashes checked; then the project itself, editable.
$(STAMP): requirements.lock pyproject.toml | $(UV)
	$(UV) pip install --python $(BIN)/python --require-hashes --no-deps -r requirements.lock
	$(UV) pip install --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

$(DEV_STAMP): requirements-dev.lock $(STAMP)
	$(UV) pip install --python $(BIN)/python --require-hashes --no-deps -r requirements-dev.lock
	touch $(DEV_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)
	@command -v espeak-ng >/dev/null || (apt-get update -qq && apt-get install -y -qq espeak-ng sox)

run: install web
	$(BIN)/voxflow db upgrade
	$(BIN)/voxflow demo
	$(BIN)/voxflow serve --host 127.0.0.1 --port 8000

lint: install-dev
	$(BIN)/ruff format --check src tests bench migrations
	$(BIN)/ruff check src tests bench migrations

typecheck: install-dev
	$(BIN)/mypy

# Every database test runs on SQLite and on PostgreSQL (tests/conftest.py); pytest's
# exit code 5 ("no tests collected") is a failure here, never a silent pass.
pytest: install-dev
	VOXFLOW_TEST_POSTGRES_URL=$(PG_URL) $(BIN)/pytest -q -m "not slow"; rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc
	VOXFLOW_TEST_POSTGRES_URL=$(PG_URL) $(BIN)/pytest -q -m slow; rc=$$?; \
		if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

# The example flows' scenario tests, exactly as a user runs them.
scenarios: install
	$(BIN)/voxflow test examples/

test: lint typecheck pytest scenarios web-test web-e2e

# The web app (web/: Vite + React + TypeScript), built into web/dist, which the API serves at /.
# npm ci installs exactly web/package-lock.json (the stamp re-runs it when the lock changes).
WEB_STAMP := web/node_modules/.installed

$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci
	touch $(WEB_STAMP)

web: $(WEB_STAMP)
	cd web && npm run build

# Type check + Vitest unit tests of the web app's pure parts (PCM16, scheduler, reducer).
web-test: $(WEB_STAMP)
	cd web && npm run typecheck && npx vitest run

web-e2e-deps:
	@command -v chromium >/dev/null && command -v espeak-ng >/dev/null && command -v sox >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq chromium espeak-ng sox)

# Headless Chromium with a fake microphone (an espeak-ng sentence) talking to Luigi's agent on
# the real `voxflow serve` (offline models, a temporary SQLite database and data dir), ~30 s.
# Screenshot (and, on failure, the server's log) in web/e2e/test-artifacts/.
web-e2e: web install web-e2e-deps
	cd web && VOXFLOW=$(CURDIR)/$(BIN)/voxflow CHROMIUM=$$(command -v chromium) node e2e/talk.e2e.mjs

bench: install-dev
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/control_plane.py
	$(BIN)/python bench/vault.py
	$(BIN)/python bench/voice_offline.py
	$(BIN)/python bench/voice_overhead.py --quick
	$(BIN)/python bench/voice_capacity.py --quick
	$(BIN)/python bench/voice_worker_idle.py

# Re-resolve the locks after changing dependencies in pyproject.toml.
lock: | $(UV)
	$(UV) pip compile pyproject.toml --generate-hashes --python-version 3.11 -q -o requirements.lock
	$(UV) pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -q -o requirements-dev.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache web/node_modules web/dist
