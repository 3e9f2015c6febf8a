# The two commands: `make run` starts a hub; `make test` runs the whole suite.
# Each sets up everything it needs on a fresh machine (Python 3.11+).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8765
DATA_DIR ?= data

.PHONY: run test bench lint types fix clean venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev]'
	touch $@

venv: $(VENV)/.installed

run: venv
	$(VENV)/bin/pairls-hub --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

test: venv
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: venv
	$(PY) bench/bench.py

lint: venv
	$(VENV)/bin/ruff check collab_server lsp_bridge tests bench
	$(VENV)/bin/ruff format --check collab_server lsp_bridge tests bench

fix: venv
	$(VENV)/bin/ruff check --fix collab_server lsp_bridge tests bench
	$(VENV)/bin/ruff format collab_server lsp_bridge tests bench

types: venv
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache
