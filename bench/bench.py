"""pairls end-to-end benchmark: one table, measured in one run on this machine.

    .venv/bin/python bench/bench.py            # or: make bench
    .venv/bin/python bench/bench.py keystroke  # one scenario alone (or --only throughput,latency)
    .venv/bin/python bench/bench.py --list     # the scenarios and their targets
    .venv/bin/python bench/bench.py --only throughput,latency --profile /tmp/hub.stacks

Sets up everything itself: an embedded PostgreSQL in a temp dir (unless
``DATABASE_URL`` is set), and for every hub scenario a fresh hub
*subprocess* (``python -m collab_server --port 0 --database-url ...``), so
that the load generator (this process) and the hub are separate processes.
Cleans up at the end.  The table (every target with its verdict and the
baseline measured beside it, then method and machine notes) is printed and,
when every scenario ran, written to ``docs/benchmarks.md`` (``--out``).

The bench is the package ``bench/pairls_bench/``: the load generator's
client (``client.py``: a deliberately lean RFC 6455 client sending
precomputed ops, so that client CPU stays well below the hub's; the hub runs
unmodified), the environment (``env.py``), the report (``report.py``) and one
module per scenario, each with its measurement, its targets and its Method.
This file is only its entry point.
"""

from __future__ import annotations

import sys

from pairls_bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
