"""The pairls hub side by side with Hocuspocus under one load generator (``make bench-hocus``).

    .venv/bin/python bench/hocus_bench.py [--rounds 3] [--window 12] [--shapes a,b] [--first-run 3]

Needs ``make bench-hocus-deps`` first (Node 24 from npm ``node@24`` and bench/hocus/node_modules).

Starts an embedded PostgreSQL (in a temp dir unless ``DATABASE_URL`` is set); a first short run of
each server (``--first-run`` seconds, not reported: a fresh PostgreSQL is slow at first); then,
interleaved, ``--rounds`` times over (the servers' order reversed every other round): a fresh
``pairls-hub`` process (commits every op to PostgreSQL before its ack), a fresh hub with its commit
taken out (``bench/hub_without_commit.py``: a baseline with no target, the commit's share of each
figure), a fresh Hocuspocus 4 in memory, and a fresh Hocuspocus with ``@hocuspocus/extension-
database`` on the same PostgreSQL (bench/hocus/server.mjs: its default debounce, the state stored
seconds after the answer). Against each, in each shape, one run of the same Node.js load generator
(bench/hocus/load.mjs: one typist per room, one edit in flight, a one-character insert at the end
per edit):

* a: 100 rooms x 2 clients, 1,000 edits/s in all;
* b: 1,500 clients in 500 rooms, 350 edits/s in all.

Prints one table: per shape, edit-to-peer p50/p99 and CPU per acknowledged edit of each server
(PostgreSQL's processes counted apart, for the durable ones), each figure the median of its runs,
and for the hub its group commits from its ``/metrics`` (the statement's mean time, ops per commit);
then the ratios pairls / Hocuspocus-in-memory against issue 14's targets with a verdict, and the
baseline's ratios to Hocuspocus-in-memory without one. A run that fails validation (an edit a peer
never saw, texts that differ, an error) is reported and its figures are not used. Nothing is
asserted: figures only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pairls_bench.hocus import SERVERS, SHAPES, TARGETS, report, run_cli  # noqa: E402

__all__ = ["SERVERS", "SHAPES", "TARGETS", "main", "report"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--window", type=float, default=12.0)
    ap.add_argument("--shapes", default="a,b")
    ap.add_argument(
        "--first-run",
        type=float,
        default=3.0,
        help="window of a first run per server, not reported (0: none)",
    )
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--json", default="", help="also write every run's figures to this file")
    ap.add_argument(
        "--pairls-before",
        default="",
        help="also run the hub of this other checkout (e.g. `git worktree add /tmp/before main`), "
        "interleaved with the others, and report pairls / pairls before",
    )
    return run_cli(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
