"""Scenario 1: the core's replay of automerge-paper, patch -> op -> ``ops.apply``, against plain
``str`` slicing (best of 3)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from collab_core import ops

from .env import Env
from .report import Results
from .scenario import Scenario
from .traces import load_trace, patch_op


def bench_core(res: Results, trace: dict[str, Any]) -> None:
    print("1. core replay (automerge-paper)", flush=True)
    patches = [tuple(p) for t in trace["txns"] for p in t["patches"]]
    start: str = trace["startContent"]
    end: str = trace["endContent"]
    prebuilt = [patch_op(*p) for p in patches]

    def plain() -> str:
        s = start
        for p, d, ins in patches:
            s = s[:p] + ins + s[p + d :]
        return s

    def via_ops() -> str:
        s = start
        apply, mk = ops.apply, patch_op
        for p, d, ins in patches:
            s = apply(s, mk(p, d, ins))
        return s

    def via_normalize() -> str:
        s = start
        apply, norm = ops.apply, ops.normalize
        for p, d, ins in patches:
            s = apply(s, norm([p, ins, -d]))
        return s

    def apply_prebuilt() -> str:
        s = start
        apply = ops.apply
        for op in prebuilt:
            s = apply(s, op)
        return s

    cases = {
        "plain": plain,
        "ops": via_ops,
        "normalize": via_normalize,
        "prebuilt": apply_prebuilt,
    }
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(3):  # interleaved, best of 3
        for name, fn in cases.items():
            t = time.perf_counter()
            out = fn()
            dt = time.perf_counter() - t
            assert out == end, f"{name} replay does not reach endContent"
            best[name] = min(best[name], dt)
    n = len(patches)
    ratio = best["ops"] / best["plain"]
    res.add(
        "1. core replay, patch -> op -> ops.apply vs str slicing (best of 3)",
        f"{ratio:.2f}x ({best['ops']:.2f} s vs {best['plain']:.2f} s, {n:,} patches)",
        "<= 1.5x",
        ratio <= 1.5,
    )
    res.base("plain str slicing replay", f"{best['plain']:.3f} s, {best['plain'] / n * 1e6:.2f} us/patch")
    res.note(
        f"core replay detail (best of 3): op built directly {best['ops'] / n * 1e6:.2f} us/patch; "
        f"op built with ops.normalize {best['normalize'] / n * 1e6:.2f} us/patch "
        f"({best['normalize'] / best['plain']:.2f}x); ops prebuilt, apply only "
        f"{best['prebuilt'] / n * 1e6:.2f} us/patch ({best['prebuilt'] / best['plain']:.2f}x)"
    )


async def run(res: Results, env: Env, args: argparse.Namespace) -> None:
    bench_core(res, load_trace())


def method(args: argparse.Namespace) -> list[str]:
    """This scenario's paragraph of the report's Method."""
    return [
        "- 1: automerge-paper (259,778 patches) replayed from `startContent`; `plain` is "
        "`s[:p] + ins + s[p+d:]`, `ops` builds the canonical op `[p, ins, -d]` (empty parts left out) "
        "and calls `ops.apply`; runs interleaved, best of 3; both must reach `endContent`.",
    ]


SCENARIO = Scenario(
    key="core",
    number=1,
    title="core replay of automerge-paper",
    targets=("patch -> op -> ops.apply at most 1.5x plain str slicing",),
    run=run,
    method=method,
    database=False,
)
