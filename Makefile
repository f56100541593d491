# leadboxer-pipedrive: every target sets up what it needs (a .venv from the pinned locks).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export AIRFLOW_HOME ?= $(CURDIR)/.airflow/home
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)
export GX_ANALYTICS_ENABLED := false

.PHONY: setup test test-fast test-services lint demo airflow browser-check chaos bench lock clean

setup: $(STAMP)

# The package itself is installed editable (no dependencies: the locks have them), so Airflow sees it as a
# provider (connection types, form fields) and loads its plugin (the UI's report pages), as a user's Airflow does.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.txt -r requirements-dev.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --editable .
	touch $(STAMP)

## The whole suite: unit, sandbox, contract and DAG integration tests (not the ones needing real services).
test: setup
	$(BIN)/pytest -m "not services"

## The DAGs on real services: PostgreSQL (metadata database and ledger) and a CeleryExecutor with a Redis
## broker and a real `airflow celery worker`; needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379.
test-services: setup
	$(BIN)/pytest -m services tests/services

## Unit and sandbox tests only (no Airflow database).
test-fast: setup
	$(BIN)/pytest -m "not integration"

lint: setup
	$(BIN)/ruff check .

## Runs one hour of the activity sync against both sandboxes on SQLite Airflow, then prints a summary.
demo: setup
	$(BIN)/python -m scripts.demo

## Airflow standalone (SQLite) with the DAGs, the plugin, the connections to fresh sandboxes in its database and
## the demo hour synced; every DAG paused. UI on http://localhost:8080 (login printed by Airflow). Ctrl-C stops it.
airflow: setup
	$(BIN)/python -m scripts.airflow_standalone

## The UI of `make airflow` in Debian's chromium (Playwright): trigger forms, connections, Test, reports.
browser-check: setup
	$(BIN)/python -m scripts.browser_check

## Recompile the locks from requirements*.in (needs the package index).
lock:
	$(BIN)/uv pip compile requirements.in -o requirements.txt --python-version 3.11
	$(BIN)/uv pip compile requirements-dev.in -o requirements-dev.txt --python-version 3.11

clean:
	rm -rf .airflow .pytest_cache .ruff_cache

## The activity sync under faults, overlapping runs and a killed task, at 5,000+ events; prints the invariants.
chaos: setup
	$(BIN)/python -m scripts.chaos

## The benchmark suite against the sandboxes (tokens, request rate, 1M-event pipeline, DAG imports): one table.
bench: setup
	$(BIN)/python -m scripts.bench
