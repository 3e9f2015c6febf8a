#!/usr/bin/env bash
# Installs what the real-VS-Code end-to-end test (tests/e2e/test_vscode.py) drives,
# idempotently, OUTSIDE the repository (about 800 MB):
#
#   $CACHE/node24   Node 24 from npm (`node@24`; code-server requires exactly v24)
#   $CACHE/app      code-server from npm, its native modules built against that Node
#   tests/e2e/vscode/node_modules   playwright-core (its package-lock.json)
#   Debian: chromium (the browser playwright drives) and libkrb5-dev (code-server's
#   kerberos module builds against it), when missing and we are root.
#
# CACHE is $PAIRLS_CODE_SERVER_DIR, else ${PAIRLS_CACHE:-~/.cache/pairls}/code-server.
# A second run with the same versions does nothing but print them.
# Exit status: 0 installed (or already there), 1 failed.
set -euo pipefail

CODE_SERVER_VERSION="${PAIRLS_CODE_SERVER_VERSION:-4.139.1}"
NODE_SPEC="node@24"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${PAIRLS_CODE_SERVER_DIR:-${PAIRLS_CACHE:-$HOME/.cache/pairls}/code-server}"
E2E="$ROOT/tests/e2e/vscode"
STAMP="$CACHE/installed"
WANT="code-server=$CODE_SERVER_VERSION $NODE_SPEC"

say() { echo "install-code-server: $*"; }

# --- Debian packages ---------------------------------------------------------------
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing="$missing libkrb5-dev"
if [ -n "$missing" ]; then
	if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
		say "missing Debian packages:$missing; run as root on Debian: apt-get install$missing"
		exit 1
	fi
	say "apt-get install$missing"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 || {
		apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $missing >/dev/null
	}
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 # one install at a time (two `make test` at once)

start=$(date +%s)
NODE_HOME="$CACHE/node24/node_modules/node"
NODE_BIN="$NODE_HOME/bin/node"
CODE_SERVER="$CACHE/app/node_modules/code-server/out/node/entry.js"

if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ] || [ ! -x "$NODE_BIN" ] || [ ! -f "$CODE_SERVER" ]; then
	rm -f "$STAMP"
	# --- Node 24 (its own prefix: `node`'s preinstall puts the binary in a nested
	# node_modules that a later install in the same prefix would prune) ---------------
	if [ ! -x "$NODE_BIN" ] || [ "$("$NODE_BIN" -p 'process.versions.node.split(".")[0]')" != 24 ]; then
		say "npm install $NODE_SPEC into $CACHE/node24"
		rm -rf "$CACHE/node24"
		npm install --prefix "$CACHE/node24" --no-fund --no-audit --loglevel=error "$NODE_SPEC" >/dev/null
	fi
	# node-gyp builds code-server's native modules against the headers of the Node
	# package itself, instead of downloading them
	# (node@24 puts the whole release, include/ too, in node_modules/node-<os>-<arch>)
	HEADERS="$(dirname "$(dirname "$(dirname "$(find "$NODE_HOME/node_modules" -path '*/include/node/node.h' | head -1)")")")"
	[ -f "$HEADERS/include/node/node.h" ] || { say "no Node headers under $NODE_HOME"; exit 1; }

	# --- code-server: installed into a staging prefix, moved into place when whole ---
	say "npm install code-server@$CODE_SERVER_VERSION into $CACHE/app (builds native modules; ~2 min)"
	rm -rf "$CACHE/app.partial" "$CACHE/app"
	if ! PATH="$NODE_HOME/bin:$PATH" npm_config_nodedir="$HEADERS" \
		npm install --prefix "$CACHE/app.partial" --no-fund --no-audit --loglevel=error \
		"code-server@$CODE_SERVER_VERSION" >"$CACHE/install.log" 2>&1; then
		tail -40 "$CACHE/install.log"
		say "code-server install failed (log: $CACHE/install.log)"
		exit 1
	fi
	mv "$CACHE/app.partial" "$CACHE/app"
	echo "$WANT" >"$STAMP"
fi

# --- playwright-core, from the test's own lockfile --------------------------------------
if [ ! -f "$E2E/node_modules/playwright-core/package.json" ] ||
	[ "$E2E/package-lock.json" -nt "$E2E/node_modules/.package-lock.json" ]; then
	say "npm ci in tests/e2e/vscode (playwright-core)"
	(cd "$E2E" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-fund --no-audit --loglevel=error >/dev/null)
fi

elapsed=$(($(date +%s) - start))
say "node $("$NODE_BIN" --version), code-server $("$NODE_BIN" -p "require('$CACHE/app/node_modules/code-server/package.json').version")," \
	"playwright-core $("$NODE_BIN" -p "require('$E2E/node_modules/playwright-core/package.json').version")," \
	"$(chromium --version 2>/dev/null | head -1 | cut -d' ' -f1-2) in $CACHE ($(du -sh "$CACHE" 2>/dev/null | cut -f1), ${elapsed}s)"
