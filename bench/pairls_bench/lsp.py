"""The language server as an editor runs it (scenarios 6-10): ``pairls-lsp`` subprocesses driven over
stdio by ``tests/support/lsp_editor.py``'s TestEditor, in rooms on a hub."""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from .env import Env

#: the Method paragraph scenarios 6-8 share (each gives it; the report shows it once)
METHOD = (
    "- 6-8: the language server as an editor runs it: each `pairls-lsp` is a `python -m lsp_bridge` "
    "subprocess on stdio, driven by a pytest-lsp `LanguageClient` with VS Code 1.65's capabilities "
    "(`tests/support/lsp_editor.py` TestEditor: applies a `workspace/applyEdit`, answers "
    "`applied: true` and reports the change as a `didChange`, like VS Code); all clients live in this "
    "bench process; each scenario has a fresh hub on the same PostgreSQL."
)

#: CompletionItemKinds the server gives jedi's names (identifiers are Text, keywords Keyword)
_JEDI_KINDS = {2, 3, 6, 7, 9, 10, 17}  # Method, Function, Variable, Class, Module, Property, File


async def lsp_editor(env: Env, name: str, hub_url: str, kind: str = "vscode") -> Any:
    """A TestEditor (pytest-lsp client at the editor boundary) and its own ``python -m lsp_bridge``."""
    from tests.support.lsp_editor import TestEditor

    workspace = env.tmp / "ws" / f"{name}-{secrets.token_hex(3)}"
    workspace.mkdir(parents=True)
    return await TestEditor(kind, name, workspace, hub_url, seed=len(name)).start()


async def lsp_room(
    env: Env, hub_url: str, tag: str, docs: dict[str, str], language_id: str
) -> tuple[Any, Any, dict[str, str], dict[str, str]]:
    """Editor A opens *docs* and creates a room (autoShare shares them); editor B joins and
    opens them empty (the room's text wins: one applyEdit each).  Both quiet on return."""
    from tests.support.lsp_editor import settle

    a = await lsp_editor(env, f"Ada{tag}", hub_url)
    ua = {p: a.uri(p) for p in docs}
    for p, t in docs.items():
        a.open(ua[p], t, language_id)
    room = await a.command("pairls.createRoom", {"name": f"bench{tag}"})
    b = await lsp_editor(env, f"Bob{tag}", hub_url)
    await b.command("pairls.joinRoom", {"invite": room["invite"]})
    ub = {p: b.uri(p) for p in docs}
    for p in docs:
        b.open(ub[p], "", language_id)
    for p in docs:
        await settle([(a, ua[p]), (b, ub[p])], p, timeout=300)
    return a, b, ua, ub


def server_process(ed: Any) -> psutil.Process:
    return psutil.Process(ed.client._server.pid)


async def stop_editors(eds: list[Any]) -> None:
    await asyncio.gather(*(ed.stop() for ed in eds))


def _position(text: str, offset: int) -> Any:
    """LSP position (utf-16) of a code point offset."""
    from lsprotocol import types as T

    line = text.count("\n", 0, offset)
    col = text[text.rfind("\n", 0, offset) + 1 : offset]
    return T.Position(line=line, character=len(col.encode("utf-16-le")) // 2)


async def timed_completions(
    ed: Any, uri: str, text: str, offsets: list[int], gap: float
) -> tuple[list[float], int]:
    """Request to response (ms) of a completion at each offset, *gap* s apart; and how many
    answers carried jedi's names."""
    from lsprotocol import types as T

    out: list[float] = []
    with_jedi = 0
    for off in offsets:
        params = T.CompletionParams(
            text_document=T.TextDocumentIdentifier(uri=uri), position=_position(text, off)
        )
        t0 = time.perf_counter()
        res = await ed.client.text_document_completion_async(params)
        out.append((time.perf_counter() - t0) * 1e3)
        items = res.items if isinstance(res, T.CompletionList) else (res or [])
        assert items, f"no completion at {off}"
        with_jedi += any(int(i.kind or 0) in _JEDI_KINDS for i in items)
        await asyncio.sleep(gap)
    return out, with_jedi


async def jedi_worker_rss(ed: Any) -> int | None:
    """RSS of the server's jedi worker process, if the server reports one (issue 14: run jedi where
    its memory and its GIL cannot touch the keystroke path, and count its memory apart).

    The hook: a server that runs jedi in a process of its own gives that process's pid as
    ``jediPid`` in ``pairls.status``; without it (jedi in the server's own process) None, and
    scenario 8 reports the server alone."""
    pid = (await ed.status()).get("jediPid")
    if not isinstance(pid, int):
        return None
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return None


def _bench_module() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/
    import completion_bench

    return completion_bench
