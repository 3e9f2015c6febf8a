#!/usr/bin/env bash
# Installs what `make bench-hocus` (bench/hocus_bench.py) runs, idempotently:
#
#   $CACHE/node24   Node 24 from npm (`node@24`; Hocuspocus 4 needs Node 22 or newer), the same
#                   prefix scripts/install-code-server.sh installs it in (one copy for both)
#   bench/hocus/node_modules   Hocuspocus 4, yjs, pg, ws (bench/hocus/package-lock.json)
#
# CACHE is $PAIRLS_CODE_SERVER_DIR, else ${PAIRLS_CACHE:-~/.cache/pairls}/code-server.
# Exit status: 0 installed (or already there), 1 failed.
set -euo pipefail

NODE_SPEC="node@24"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${PAIRLS_CODE_SERVER_DIR:-${PAIRLS_CACHE:-$HOME/.cache/pairls}/code-server}"
HOCUS="$ROOT/bench/hocus"
NODE_HOME="$CACHE/node24/node_modules/node"
NODE_BIN="$NODE_HOME/bin/node"

say() { echo "install-bench-hocus: $*"; }

command -v npm >/dev/null 2>&1 || { say "npm not found; install Node.js and npm"; exit 1; }
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 # not while install-code-server.sh installs into the same prefix

# Node 24 in its own prefix (`node`'s preinstall puts the binary in a nested node_modules
# that a later install in the same prefix would prune)
if [ ! -x "$NODE_BIN" ] || [ "$("$NODE_BIN" -p 'process.versions.node.split(".")[0]')" != 24 ]; then
	say "npm install $NODE_SPEC into $CACHE/node24"
	rm -rf "$CACHE/node24"
	npm install --prefix "$CACHE/node24" --no-fund --no-audit --loglevel=error "$NODE_SPEC" >/dev/null
fi

if [ ! -f "$HOCUS/node_modules/@hocuspocus/server/package.json" ] ||
	[ "$HOCUS/package-lock.json" -nt "$HOCUS/node_modules/.package-lock.json" ]; then
	say "npm ci in bench/hocus"
	(cd "$HOCUS" && PATH="$NODE_HOME/bin:$PATH" npm ci --no-fund --no-audit --loglevel=error >/dev/null)
fi

say "node $("$NODE_BIN" --version)," \
	"@hocuspocus/server $("$NODE_BIN" -p "require('$HOCUS/node_modules/@hocuspocus/server/package.json').version")," \
	"yjs $("$NODE_BIN" -p "require('$HOCUS/node_modules/yjs/package.json').version")"
