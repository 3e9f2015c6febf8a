"""The editing trace the core, cold-open and history scenarios replay (tests/data/traces)."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

from collab_core import ops

from . import ROOT

TRACES = Path(os.environ.get("PAIRLS_TRACES", ROOT / "tests" / "data" / "traces"))


def load_trace() -> dict[str, Any]:
    with gzip.open(TRACES / "automerge-paper.json.gz", "rt", encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]


def patch_op(p: int, d: int, ins: str) -> ops.Op:
    """The canonical op of one trace patch (retain, insert, delete), built directly."""
    op: ops.Op = [p] if p else []
    if ins:
        op.append(ins)
    if d:
        op.append(-d)
    return op
