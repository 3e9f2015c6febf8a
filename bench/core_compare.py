"""Compare our OT core (collab_core.ops) with python-ottype on real traces.

    .venv/bin/python bench/core_compare.py [--pairs N]

Replays automerge-paper patch by patch through plain string slicing, our
``ops.apply`` and ottype's C ``apply``; then times transform and compose on
random op pairs for both, with format conversion timed separately.
Traces come from tests/data/traces (or $PAIRLS_TRACES).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ottype.core_boost as ot

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collab_core import ops  # noqa: E402

TRACES = Path(os.environ.get("PAIRLS_TRACES", ROOT / "tests" / "data" / "traces"))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def replay(patches: list[tuple[int, int, str]], start: str) -> dict[str, tuple[float, str]]:
    ours = [ops.normalize([p, ins, -d]) for p, d, ins in patches]

    def plain() -> str:
        s = start
        for p, d, ins in patches:
            s = s[:p] + ins + s[p + d :]
        return s

    def with_ops() -> str:
        s = start
        for op in ours:
            s = ops.apply(s, op)
        return s

    def with_ottype() -> str:
        # ot-text-unicode deletes carry their text, so the op is built from the
        # document as it goes: this conversion is part of the real cost
        s = start
        for p, d, ins in patches:
            op: list[Any] = [p] if p else []
            if ins:
                op.append(ins)
            if d:
                op.append({"d": s[p : p + d]})
            s = ot.apply(s, op)
        return s

    return {
        "plain slicing": timed(plain),
        "ours ops.apply": timed(with_ops),
        "ottype.apply (C)": timed(with_ottype),
    }


def random_op(rng: random.Random, text: str) -> ops.Op:
    op: ops.Op = []
    pos = 0
    for _ in range(rng.randint(1, 4)):
        left = len(text) - pos
        kind = rng.choice("rdi")
        if kind == "i" or left == 0:
            op.append("".join(rng.choice("ab😀\r\né") for _ in range(rng.randint(1, 5))))
        else:
            n = rng.randint(1, min(left, 20))
            op.append(n if kind == "r" else -n)
            pos += n
    return ops.normalize(op)


def to_ot(text: str, op: ops.Op) -> list[Any]:
    out: list[Any] = []
    pos = 0
    for c in op:
        if type(c) is int and c < 0:
            out.append({"d": text[pos : pos - c]})
            pos -= c
        else:
            out.append(c)
            pos += c if type(c) is int else 0
    return out


def pairs_bench(n: int, seed: int = 1) -> dict[str, float]:
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        text = "".join(rng.choice("abcdefgh😀\n") for _ in range(rng.randint(0, 200)))
        a, b = random_op(rng, text), random_op(rng, text)
        c = random_op(rng, ops.apply(text, a))
        cases.append((text, a, b, c))
    conv_t, conv = timed(
        lambda: [(to_ot(t, a), to_ot(t, b), to_ot(ops.apply(t, a), c)) for t, a, b, c in cases]
    )
    res = {
        "ours transform (a',b')": timed(lambda: [ops.transform(a, b) for _, a, b, _ in cases])[0],
        "ottype transform x2 (C)": timed(
            lambda: [(ot.transform(a, b, "left"), ot.transform(b, a, "right")) for a, b, _ in conv]
        )[0],
        "ours compose": timed(lambda: [ops.compose(a, c) for _, a, _, c in cases])[0],
        "ottype compose (C)": timed(lambda: [ot.compose(a, c) for a, _, c in conv])[0],
        "ours -> ottype conversion": conv_t,
    }
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=50_000)
    args = ap.parse_args()
    with gzip.open(TRACES / "automerge-paper.json.gz", "rt", encoding="utf-8") as f:
        d = json.load(f)
    patches = [tuple(p) for txn in d["txns"] for p in txn["patches"]]
    print(f"automerge-paper: {len(patches):,} patches, final length {len(d['endContent']):,}")
    print(f"{'replay':<28}{'seconds':>10}{'us/patch':>10}  correct")
    for name, (secs, text) in replay(patches, d["startContent"]).items():  # type: ignore[arg-type]
        print(f"{name:<28}{secs:>10.3f}{secs / len(patches) * 1e6:>10.2f}  {text == d['endContent']}")
    print(f"\n{args.pairs:,} random op pairs (docs up to 200 code points, 1-4 components per op)")
    print(f"{'operation':<28}{'seconds':>10}{'us/pair':>10}")
    for name, secs in pairs_bench(args.pairs).items():
        print(f"{name:<28}{secs:>10.3f}{secs / args.pairs * 1e6:>10.2f}")


if __name__ == "__main__":
    main()
