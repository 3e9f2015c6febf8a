"""Scenario 6: completion on a 10,000-line document through ``pairls-lsp`` over stdio, request to
response at random offsets with a prefix; Python (jedi, as shipped) and the same text as plain text
(no jedi); detail: the engine in-process (``bench/completion_bench.py``)."""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

from .env import Env, cpu_seconds
from .lsp import METHOD, _bench_module, lsp_room, server_process, stop_editors, timed_completions
from .report import Results, percentile
from .scenario import Scenario


async def bench_lsp_completion(res: Results, env: Env, *, lines: int, requests: int, gap: float) -> None:
    print(
        f"6. completion latency through pairls-lsp ({lines:,}-line document, {requests} requests)", flush=True
    )
    cb = _bench_module()
    text = cb.make_document(lines)
    rng = random.Random(6)
    offsets = [o for o in cb.positions(text, requests * 3, seed=6) if o > 0 and text[o - 1].isalnum()]
    offsets = offsets[:requests]
    hub = env.hub()
    eds: list[Any] = []
    try:
        # one room, two servers; the same text as big.py (Python: jedi) and big.txt (no language)
        a, b, _, ub = await lsp_room(env, hub.url, "c", {"src/big.py": text, "src/big.txt": text}, "python")
        eds = [a, b]
        b_p = server_process(b)
        # warm-up, not counted: the index, pygls' converters (then jedi's first parse, below)
        warm = rng.sample(offsets, 10)
        await asyncio.sleep(2.0)  # jedi's warm-up at the first didOpen is over
        await timed_completions(b, ub["src/big.txt"], text, warm, gap)
        # plain text first: no jedi thread competing for the GIL in the server
        cpu0 = cpu_seconds([b_p])
        t0 = time.perf_counter()
        plain, _ = await timed_completions(b, ub["src/big.txt"], text, offsets, gap)
        cpu_plain = (cpu_seconds([b_p]) - cpu0) / len(plain) * 1e3
        dt_plain = time.perf_counter() - t0
        await timed_completions(b, ub["src/big.py"], text, warm, 0.3)
        await asyncio.sleep(1.0)
        cpu0 = cpu_seconds([b_p])
        py, with_jedi = await timed_completions(b, ub["src/big.py"], text, offsets, gap)
        cpu_py = (cpu_seconds([b_p]) - cpu0) / len(py) * 1e3
    finally:
        await stop_editors(eds)
        env.stop_hub(hub)
    p50, p99 = percentile(py, 50), percentile(py, 99)
    res.add(
        f"6. completion, {lines:,}-line Python document, through pairls-lsp over stdio, as shipped "
        "(jedi in a worker thread, waited on 15 ms) (p50 / p99)",
        f"{p50:.1f} / {p99:.1f} ms",
        "p99 <= 20 ms",
        p99 <= 20,
    )
    q50, q99 = percentile(plain, 50), percentile(plain, 99)
    res.add(
        f"6. completion, the same {lines:,} lines as a plain-text document (no jedi), through pairls-lsp "
        "(p50 / p99)",
        f"{q50:.1f} / {q99:.1f} ms",
        "p99 <= 20 ms",
        q99 <= 20,
    )
    res.note(
        f"completion through pairls-lsp: {len(py)} requests each, {gap * 1e3:.0f} ms apart (after the "
        f"answer), at random offsets 1-4 characters into a word; Python: p90 {percentile(py, 90):.1f} ms, "
        f"max {max(py):.1f} ms, {with_jedi} of {len(py)} answers carried jedi's names (the others: jedi "
        f"over its budget or still busy with an earlier request: skipped, not a failure), server CPU "
        f"{cpu_py:.1f} ms per request (jedi's thread included); plain text: p90 {percentile(plain, 90):.1f} "
        f"ms, max {max(plain):.1f} ms, server CPU {cpu_plain:.1f} ms per request ({dt_plain:.0f} s)"
    )
    # the engine alone, in this process (bench/completion_bench.py)
    f = cb.run(lines=lines, requests=requests, jedi_requests=50)
    res.note(
        f"completion engine in-process (completion_bench.run, {lines:,} lines + 19 x 2,000 in the index): "
        f"without jedi p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms; with jedi inline p50 "
        f"{f['jedi_total_p50_ms']:.1f} ms, p99 {f['jedi_total_p99_ms']:.1f} ms (jedi alone p50 "
        f"{f['jedi_only_p50_ms']:.1f}, p99 {f['jedi_only_p99_ms']:.1f} ms; first call "
        f"{f['jedi_first_ms']:.0f} ms; statuses {f['jedi_statuses']}); typing with jedi (answer reused "
        f"within a word) p50 {f['typing_p50_ms']:.1f} ms, p99 {f['typing_p99_ms']:.1f} ms"
    )


async def run(res: Results, env: Env, args: argparse.Namespace) -> None:
    await bench_lsp_completion(
        res, env, lines=args.completion_lines, requests=args.completion_requests, gap=0.05
    )


def method(args: argparse.Namespace) -> list[str]:
    """This scenario's paragraph of the report's Method (after the one 6-8 share)."""
    return [
        METHOD,
        f"- 6: a room with two servers: A opens and shares `src/big.py` (the deterministic "
        f"{args.completion_lines:,}-line module of `bench/completion_bench.py`) and the same text as "
        "`src/big.txt`; B joins and opens both (the room's text arrives by applyEdit). B requests "
        f"`textDocument/completion` at {args.completion_requests} offsets 1-4 characters into a word "
        "(a prefix typed), one at a time, 50 ms after each answer; time = `perf_counter` from sending the "
        "request to its answer, parsed. 10 warm-up requests each first; plain text measured first, then "
        "Python. jedi: the server runs it in one worker thread and waits at most 15 ms "
        "(`JEDI_WAIT_S`) for it; a late answer is `skipped` (the items come without jedi's names, "
        "`isIncomplete: true`) and lands in the cache for the next keystroke in the word; a request "
        "while jedi is still busy skips it at once. A skipped jedi answer is not a failure; the count "
        "of answers with jedi's names is reported. Detail: `completion_bench.run()` in this process.",
    ]


SCENARIO = Scenario(
    key="completion",
    number=6,
    title="completion through pairls-lsp",
    targets=("p99 <= 20 ms on a 10,000-line file with jedi on",),
    run=run,
    method=method,
)
