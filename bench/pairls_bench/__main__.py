"""``python -m pairls_bench`` (with ``bench/`` on ``sys.path``): the same as ``bench/bench.py``."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
