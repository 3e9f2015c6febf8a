"""pairls' end-to-end benchmark as a package: one load-generator client (``client``), one
environment (``env``: PostgreSQL, hub processes, CPU and profiles), one report (``report``), and
one module per scenario, each with its measurement, its targets and its paragraph of the
report's Method (``core``, ``throughput``, ... ``hocus``; the list is ``cli.SCENARIOS``).

    .venv/bin/python bench/bench.py                  # every scenario: make bench
    .venv/bin/python bench/bench.py keystroke        # one scenario alone (or --only a,b)
    .venv/bin/python bench/bench.py --list           # the scenarios and their targets

The package is ``bench/pairls_bench``, imported as ``pairls_bench`` with ``bench/`` on
``sys.path`` (as it is for every script in ``bench/``); importing it puts the repository on
``sys.path`` too, for ``collab_core``, ``collab_server`` and ``tests.support``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
