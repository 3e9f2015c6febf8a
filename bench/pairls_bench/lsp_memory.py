"""Scenario 8: RSS of a ``pairls-lsp`` with 20 shared documents of 2,000 lines, before and after
one completion in each (jedi's parse); baseline: the same as plain text (jedi never imported)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from .env import Env
from .lsp import (
    METHOD,
    _bench_module,
    jedi_worker_rss,
    lsp_editor,
    server_process,
    stop_editors,
    timed_completions,
)
from .report import Results
from .scenario import Scenario


async def bench_lsp_memory(res: Results, env: Env, *, docs: int, lines: int) -> None:
    print(f"8. pairls-lsp memory, {docs} shared documents of {lines:,} lines", flush=True)
    from tests.support.lsp_editor import settle

    cb = _bench_module()
    texts = {f"src/mod{i:02d}.py": cb.make_document(lines, seed=200 + i) for i in range(docs)}
    hub = env.hub()
    eds: list[Any] = []
    mib = 2**20
    try:

        async def share_all(tag: str, suffix: str, language_id: str) -> tuple[Any, dict[str, str], float]:
            a = await lsp_editor(env, f"Mem{tag}", hub.url)
            eds.append(a)
            a_p = server_process(a)
            await asyncio.sleep(1.0)
            fresh = a_p.memory_info().rss
            room = await a.command("pairls.createRoom", {"name": f"mem{tag}"})
            uris = {}
            for p, t in texts.items():
                path = p.removesuffix(".py") + suffix
                uris[path] = a.uri(path)
                a.open(uris[path], t, language_id)  # autoShare: shared as opened
            b = await lsp_editor(env, f"Peer{tag}", hub.url)
            eds.append(b)
            await b.command("pairls.joinRoom", {"invite": room["invite"]})
            for path in uris:
                await settle([(a, uris[path])], path, timeout=300)
            # some edits: A adds a line to every document, B types in three of them
            ub = {}
            for i, (path, u) in enumerate(uris.items()):
                a.insert(u, a.text(u).index("\ndef ") + 1, f"def added_{i}(x):\n    return x + {i}\n\n")
                if i < 3:
                    ub[path] = b.uri(path)
                    b.open(ub[path], "", language_id)
            for path, u in ub.items():
                await settle([(a, uris[path]), (b, u)], path, timeout=300)
            for u in ub.values():
                b.type(u, b.text(u).index("\nclass ") + 1, "# reviewed by bob\n")
            for path, u in uris.items():
                await settle([(a, u)] + ([(b, ub[path])] if path in ub else []), path, timeout=300)
            await asyncio.sleep(3.0)
            return a, uris, fresh

        # baseline: the same documents as plain text (jedi is never imported)
        a, _, fresh = await share_all("t", ".txt", "plaintext")
        plain = server_process(a).memory_info().rss
        await stop_editors(eds)
        eds.clear()
        # Python: the first didOpen of a Python document warms jedi up (imports it, loads os's stubs)
        a, uris, _ = await share_all("p", ".py", "python")
        a_p = server_process(a)
        before = a_p.memory_info().rss
        # one completion in each document (1-4 characters into a word); ask again in the same word
        # until jedi's names are in the answer (its answer is cached per word), bounded
        jedi_docs = 0
        for path, u in uris.items():
            text = a.text(u)
            off = cb.positions(text, 1, seed=len(path) + jedi_docs)[0]
            while not text[off - 1].isalnum():
                off += 1
            for _ in range(40):
                got, with_jedi = await timed_completions(a, u, text, [off], 0.0)
                if with_jedi:
                    jedi_docs += 1
                    break
                await asyncio.sleep(0.25)
        await asyncio.sleep(3.0)
        after = a_p.memory_info().rss
        worker = await jedi_worker_rss(a)
    finally:
        await stop_editors(eds)
        env.stop_hub(hub)
    res.add(
        f"8. pairls-lsp RSS, {docs} shared Python documents x {lines:,} lines, edited, settled, "
        "no completion yet (jedi not loaded until the first completion)",
        f"{before / mib:.1f} MiB",
        "< 80 MB",
        before < 80e6,
    )
    res.add(
        f"8. pairls-lsp RSS, the same after one completion in each document (jedi ran on "
        f"{jedi_docs} of {docs})",
        f"{after / mib:.1f} MiB",
        "< 80 MB",
        after < 80e6,
    )
    if worker is not None:
        res.add(
            "8. the same server's jedi worker process, RSS, counted apart from the server's",
            f"{worker / mib:.1f} MiB",
            "apart (no target)",
            None,
        )
    res.base(
        f"pairls-lsp RSS: fresh (initialized, no room) / the same {docs} documents as plain text "
        "(jedi never imported)",
        f"{fresh / mib:.1f} MiB / {plain / mib:.1f} MiB",
    )


async def run(res: Results, env: Env, args: argparse.Namespace) -> None:
    await bench_lsp_memory(res, env, docs=20, lines=2000)


def method(args: argparse.Namespace) -> list[str]:
    """This scenario's paragraph of the report's Method (after the one 6-8 share)."""
    return [
        METHOD,
        "- 8: fresh hub; server A initialized (RSS 'fresh'), creates a room, opens 20 Python modules "
        "of 2,000 lines (`completion_bench.make_document`, different seeds; autoShare shares each); "
        "B joins (its server follows every room document), opens 3 of them and types a line in each; "
        "A inserts a 3-line function in every document; all quiet (`settle`), 3 s, RSS of A's "
        "server (psutil). Note: the server warms jedi up at the first Python `didOpen` (it imports "
        "jedi and completes `os.pa`), so 'no completion yet' already has jedi loaded. Then one "
        "completion per document (asked again in the same word until jedi's names come back, i.e. "
        "jedi has parsed that document; parso keeps the trees of the last 2), 3 s, RSS again. "
        "Baseline: the same procedure with the documents as `.txt` / `plaintext` on a fresh server "
        "(jedi never imported).",
    ]


SCENARIO = Scenario(
    key="lsp-memory",
    number=8,
    title="pairls-lsp memory",
    targets=("the language server at most 80 MB RSS with 20 documents of 2,000 lines",),
    run=run,
    method=method,
)
