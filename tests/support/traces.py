"""Helpers for replaying the real editing traces (tests/data/traces, see its README).

Concurrent traces are replayed with one client per agent under the README's
delivery rule: before agent *a* applies transaction *i*, it must show
exactly the other agents' transactions that *i*'s ``parents`` include.  With
one op in flight per client that is only possible if

* each hub op of agent *b* covers a run of *b*'s transactions that never
  spans a *cut point* (a count *k* such that some other agent's transaction
  has exactly *k* of *b*'s transactions in its causal past): before *b*
  applies a transaction while its count is a cut point, its client must have
  no buffer (:func:`cut_points`);
* hub messages reach the client state machine as soon as they arrive (so
  acks flow), and a :class:`~collab_core.view.LaggingView` holds back the
  remote ops the agent may not show yet (tagged with the author and the last
  of the author's transactions the op covers).
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

from collab_core import ops

TRACES = Path(os.environ.get("PAIRLS_TRACES", Path(__file__).resolve().parents[1] / "data" / "traces"))


def load(name: str) -> dict[str, Any]:
    with gzip.open(TRACES / name, "rt", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def txn_op(patches: list[list[Any]]) -> ops.Op:
    """One op for a transaction: its patches composed, each on the result of the one before."""
    op: ops.Op = []
    for pos, deleted, inserted in patches:
        op = ops.compose(op, ops.normalize([pos, inserted, -deleted]))
    return op


def causal_counts(txns: list[dict[str, Any]], n: int) -> list[list[int]]:
    """``seen[i][b]``: how many of agent *b*'s transactions transaction *i*'s causal past holds.

    (For the README's traces the causal past is a prefix of each agent's
    transactions, so a count says exactly which ones.)
    """
    seen: list[list[int]] = []
    for t in txns:
        s = [0] * n
        for p in t["parents"]:
            sp = seen[p]
            pa = txns[p]["agent"]
            for b in range(n):
                s[b] = max(s[b], sp[b] + (b == pa))
        seen.append(s)
    return seen


def cut_points(txns: list[dict[str, Any]], seen: list[list[int]], n: int) -> list[set[int]]:
    """For each agent *b*: the counts *k* of *b*'s transactions at which some
    other agent's transaction cuts (has exactly *k* of them in its past)."""
    cuts: list[set[int]] = [set() for _ in range(n)]
    for t, s in zip(txns, seen, strict=True):
        a = t["agent"]
        for b in range(n):
            if b != a:
                cuts[b].add(s[b])
    return cuts
