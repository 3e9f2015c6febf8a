"""Completion micro-benchmark: latency of ``CompletionEngine.complete`` on a large Python document.

    .venv/bin/python bench/completion_bench.py                # 10,000 lines, 500 requests
    .venv/bin/python bench/completion_bench.py --lines 2000 --requests 200

Builds a deterministic, valid 10,000-line Python module (functions and
classes over a vocabulary of ~3,000 identifiers, imports at the top),
indexes it with 19 documents of 2,000 lines (other vocabularies) in the
room, and completes at
random positions: 90% in the middle of an existing identifier (1-4
characters typed, the common case while typing), 10% at any offset.  Times
are wall clock per request, p50/p99, for the engine without jedi (target
p99 <= 20 ms) and, separately, with jedi (its own time reported too; the
first jedi call, which parses the whole module cold, is reported apart).
Also measured: re-indexing the document, the incremental index update for
a one-character insert, and the memory of an index of 20 documents of
2,000 lines (tracemalloc).

:func:`run` returns the figures as a dict, for the bench command.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collab_core import ops  # noqa: E402
from lsp_bridge.completion import CompletionEngine, IdentifierIndex  # noqa: E402

_PARTS = (
    "user item count total index buffer result value node tree cache config request response handler "
    "parser token stream record window offset length error message client server session path name "
    "data state event queue task worker"
).split()


def make_document(lines: int = 10_000, seed: int = 1) -> str:
    """A valid Python module of exactly *lines* lines (deterministic for *seed*)."""
    rng = random.Random(seed)
    vocab = []
    while len(vocab) < 3000:
        w = "_".join(rng.sample(_PARTS, rng.choice((1, 2, 2, 3))))
        if rng.random() < 0.2:
            w = "".join(p.capitalize() for p in w.split("_"))
        vocab.append(w)
    out = ["import os", "import re", "import json", "from collections import defaultdict", ""]
    while len(out) < lines:
        pick = rng.choice
        if rng.random() < 0.15:
            cls = pick(vocab).title().replace("_", "")
            out += [
                f"class {cls}:",
                f"    def __init__(self, {pick(vocab)}):",
                f"        self.{pick(vocab)} = {pick(vocab)}",
                "",
            ]
        out.append(f"def {pick(vocab)}({', '.join(rng.sample(vocab, rng.randint(0, 3)))}):")
        for _ in range(rng.randint(2, 12)):
            a, b, c = pick(vocab), pick(vocab), pick(vocab)
            out += pick(
                [
                    [f"    {a} = {b}({c}, {rng.randint(0, 99)})"],
                    [f"    if {a} > {b}:", f"        {a}.{b} += 1"],
                    [f"    {a} = os.path.join({b}, '{c}')"],
                    [f"    for {a} in {b}:", f"        {c}.append({a})"],
                ]
            )
        out += [f"    return {pick(vocab)}", ""]
    out = out[:lines]
    while out[-1].startswith(" ") or out[-1].endswith(":"):  # do not end inside a block
        out[-1] = ""
    return "\n".join(out) + "\n"


def positions(text: str, count: int, seed: int = 2) -> list[int]:
    """Cursor offsets: mostly 1-4 characters into an identifier, some anywhere."""
    rng = random.Random(seed)
    words = [m.start() for m in re.finditer(r"\b[A-Za-z_]\w{3,}", text)]
    out = []
    for _ in range(count):
        if rng.random() < 0.9:
            out.append(rng.choice(words) + rng.randint(1, 4))
        else:
            out.append(rng.randrange(len(text) + 1))
    return out


def _percentiles(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return qs[49] * 1000, qs[98] * 1000


def index_memory(documents: int = 20, lines: int = 2000) -> float:
    """MiB allocated by an index of *documents* documents of *lines* lines (texts not counted)."""
    texts = [make_document(lines, seed=s) for s in range(documents)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = IdentifierIndex()
    for i, t in enumerate(texts):
        index.update(f"src/m{i}.py", t, author=f"peer{i % 3}")
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / 2**20


def run(
    lines: int = 10_000, requests: int = 500, jedi_requests: int = 100, others: int = 19, seed: int = 1
) -> dict[str, Any]:
    """Measure and return the figures (milliseconds, MiB); ``jedi_requests=0`` skips jedi."""
    text = make_document(lines, seed)
    index = IdentifierIndex()
    for i in range(others):  # the rest of the room, peers' documents
        index.update(f"src/other{i}.py", make_document(2000, seed + 1 + i), author=f"peer{i % 3}")
    t0 = time.perf_counter()
    index.update("src/big.py", text, author="me")
    reindex_ms = (time.perf_counter() - t0) * 1000
    op = ops.insert(len(text) // 2, "x")
    new = ops.apply(text, op)
    t0 = time.perf_counter()
    index.apply_op("src/big.py", text, op, new, "bob")
    incremental_ms = (time.perf_counter() - t0) * 1000
    index.update("src/big.py", text)

    engine = CompletionEngine(index, me="me", jedi_enabled=False)
    samples = []
    for offset in positions(text, requests):
        t0 = time.perf_counter()
        engine.complete("src/big.py", text, offset)
        samples.append(time.perf_counter() - t0)
    p50, p99 = _percentiles(samples)
    figures: dict[str, Any] = {
        "lines": lines,
        "others": others,
        "room_words": len(index),
        "requests": requests,
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": max(samples) * 1000,
        "reindex_ms": reindex_ms,
        "incremental_update_ms": incremental_ms,
        "index_20x2000_mib": index_memory(),
    }
    if jedi_requests:
        engine = CompletionEngine(index, me="me")
        at = positions(text, jedi_requests + 1, seed=3)
        t0 = time.perf_counter()
        first = engine.complete("src/big.py", text, at[0])
        figures["jedi_first_ms"] = (time.perf_counter() - t0) * 1000
        total, jedi_only, statuses = [], [], []
        for offset in at[1:]:
            t0 = time.perf_counter()
            result = engine.complete("src/big.py", text, offset)
            total.append(time.perf_counter() - t0)
            jedi_only.append(result.semantic_seconds)
            statuses.append(result.semantic)
        figures["jedi_total_p50_ms"], figures["jedi_total_p99_ms"] = _percentiles(total)
        figures["jedi_only_p50_ms"], figures["jedi_only_p99_ms"] = _percentiles(jedi_only)
        figures["jedi_statuses"] = {s: statuses.count(s) for s in sorted(set(statuses))}
        figures["jedi_first_status"] = first.semantic
        figures["jedi_window_lines"] = engine.jedi_window("src/big.py")
        figures.update(typing(index, text, words=max(1, jedi_requests // 5)))
    return figures


def typing(index: IdentifierIndex, text: str, words: int, seed: int = 4) -> dict[str, Any]:
    """Type *words* words key by key, each on a new line somewhere; complete after every key.

    Per keystroke: the incremental index update and the completion (jedi
    included, its last answer reused within a word).
    """
    rng = random.Random(seed)
    engine = CompletionEngine(index, me="me")
    engine.complete("src/big.py", text, 0)  # jedi's import, outside the figures
    words_at = [m.end() for m in re.finditer(r"\n    return ", text)]
    choices = ["os.path.join", "json.dumps", "defaultdict", "re.compile", "os.environ"]
    total, jedi_only = [], []
    for _ in range(words):
        at = rng.choice(words_at)
        line = "\n    probe = "
        op = ops.insert(at, line)
        new = ops.apply(text, op)
        index.apply_op("src/big.py", text, op, new, "me")
        text, offset = new, at + len(line)
        for ch in rng.choice(choices):
            t0 = time.perf_counter()
            op = ops.insert(offset, ch)
            new = ops.apply(text, op)
            index.apply_op("src/big.py", text, op, new, "me")
            text, offset = new, offset + 1
            result = engine.complete("src/big.py", text, offset)
            total.append(time.perf_counter() - t0)
            jedi_only.append(result.semantic_seconds)
    out: dict[str, Any] = {"typing_keystrokes": len(total)}
    out["typing_p50_ms"], out["typing_p99_ms"] = _percentiles(total)
    out["typing_jedi_p50_ms"], out["typing_jedi_p99_ms"] = _percentiles(jedi_only)
    return out


def report(f: dict[str, Any]) -> str:
    lines = [
        f"completion on {f['lines']:,} lines ({f['others']} more documents of 2,000 lines in the room,"
        f" {f['room_words']:,} distinct words), {f['requests']} requests (no jedi):"
        f" p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms, max {f['max_ms']:.2f} ms"
        f" (target p99 <= 20 ms: {'ok' if f['p99_ms'] <= 20 else 'MISSED'})",
        f"index: full re-index {f['reindex_ms']:.1f} ms,"
        f" one-character op {f['incremental_update_ms']:.3f} ms;"
        f" 20 documents x 2,000 lines: {f['index_20x2000_mib']:.1f} MiB",
    ]
    if "jedi_first_ms" in f:
        lines.append(
            f"with jedi: first call {f['jedi_first_ms']:.0f} ms ({f['jedi_first_status']});"
            f" then p50 {f['jedi_total_p50_ms']:.1f} ms, p99 {f['jedi_total_p99_ms']:.1f} ms"
            f" (jedi alone p50 {f['jedi_only_p50_ms']:.1f} ms, p99 {f['jedi_only_p99_ms']:.1f} ms);"
            f" statuses {f['jedi_statuses']}, window {f['jedi_window_lines']} lines"
        )
        lines.append(
            f"typing with jedi, {f['typing_keystrokes']} keystrokes (index update + completion):"
            f" p50 {f['typing_p50_ms']:.1f} ms, p99 {f['typing_p99_ms']:.1f} ms"
            f" (jedi alone p50 {f['typing_jedi_p50_ms']:.1f} ms, p99 {f['typing_jedi_p99_ms']:.1f} ms)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--jedi-requests", type=int, default=100, help="0 to skip jedi")
    args = parser.parse_args(argv)
    print(report(run(args.lines, args.requests, args.jedi_requests)))


if __name__ == "__main__":
    main()
