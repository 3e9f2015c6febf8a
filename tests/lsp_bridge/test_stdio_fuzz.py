"""A broken editor cannot break the language server: thousands of LSP messages, each a valid one
with a part of it made wrong (a field of another type, missing or extra, an id no answer can
carry, a position past the end, a hostile value), sent to the real server over its pipes.

Afterwards the server is still there and answers; every request it was sent got an answer; none
of what it was sent reached its log; and it counted no error of its own (``serverErrors``,
``failedTasks``): each one would be a bug of ours, which the editor's mistake only showed.
Without a room: what the hub would make of a broken editor's edits is the hub's fuzz test.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import random
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.raw_lsp import INITIALIZE, RawServer, message, notification, request

pytestmark = pytest.mark.timeout(120)

SECRET = "SECRET-TEXT"
MESSAGES = 3000
#: eight sessions (by hand: ``PAIRLS_FUZZ_SEED=N`` runs seeds N to N + 7)
FIRST_SEED = int(os.environ.get("PAIRLS_FUZZ_SEED", "1"))
SEEDS = list(range(FIRST_SEED, FIRST_SEED + 8))
A_PY = "file:///fuzz/a.py"
B_TXT = "file:///fuzz/b.txt"
TEXT = f"import os\n\ndef {SECRET.lower().replace('-', '_')}(x):\n    return os.path.join(x, '{SECRET}')\n"
#: commands that act without a hub or a room, or refuse for want of one (never createRoom,
#: joinRoom, or running anything: a broken editor's fuzz should not reach the network)
COMMANDS = [
    "pairls.status", "pairls.participants", "pairls.runs", "pairls.history", "pairls.blame",
    "pairls.follow", "pairls.undoMine", "pairls.redoMine", "pairls.leaveRoom", "pairls.openRevision",
    "pairls.revisionText", "pairls.runOutput", "pairls.stopRun", "pairls.shareDocument",
    "pairls.openDocument", "pairls.kick", "pairls.setRole", "pairls.rotateInvites", "no.such.command",
]  # fmt: skip
AT_A_POSITION = ("textDocument/completion", "textDocument/hover", "textDocument/documentHighlight")
HOSTILE: list[Any] = [
    None, True, False, 0, -1, 2**31, 2**63, 2**64 + 5, -(2**70), 1.5, -0.0, "", SECRET, "x" * 5000,
    "\ud800", [], [None], [SECRET], {}, {SECRET: SECRET}, {"line": -5, "character": 2**40},
]  # fmt: skip


def _pos(rng: random.Random) -> dict[str, Any]:
    return {"line": rng.choice([0, 1, 2, 3, 4, 50]), "character": rng.choice([0, 3, 10, 200])}


def _range(rng: random.Random) -> dict[str, Any]:
    return {"start": _pos(rng), "end": _pos(rng)}


class Editor:
    """A stream of valid messages (the versions and texts a real editor would send)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.versions = {A_PY: 1, B_TXT: 1}

    def next(self, i: int) -> dict[str, Any]:
        rng = self.rng
        uri = rng.choice([A_PY, B_TXT])
        doc = {"uri": uri}
        kind = rng.randrange(12)
        if kind < 3:
            self.versions[uri] += 1
            change: dict[str, Any] = {"text": rng.choice(["x", f"\n{SECRET}", "", "é😀"])}
            if rng.random() < 0.8:
                change["range"] = _range(rng)
            params = {"textDocument": {**doc, "version": self.versions[uri]}, "contentChanges": [change]}
            return {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": params}
        if kind < 6:  # a request at a position
            method = AT_A_POSITION[kind - 3]
            return {"jsonrpc": "2.0", "id": i, "method": method,
                    "params": {"textDocument": doc, "position": _pos(rng)}}  # fmt: skip
        if kind == 6:
            return {"jsonrpc": "2.0", "id": i, "method": "textDocument/inlayHint",
                    "params": {"textDocument": doc, "range": _range(rng)}}  # fmt: skip
        if kind == 7:
            args = rng.choice([[], [{}], [{"path": "a.py", "rev": 3, "line": 2}], [uri, 5]])
            return {"jsonrpc": "2.0", "id": i, "method": "workspace/executeCommand",
                    "params": {"command": rng.choice(COMMANDS), "arguments": args}}  # fmt: skip
        if kind == 8:
            if rng.random() < 0.5:
                return {"jsonrpc": "2.0", "method": "textDocument/didSave", "params": {"textDocument": doc}}
            # closed and opened again, with the text it had (the editor's own)
            self.versions[uri] += 1
            item = {**doc, "languageId": "python" if uri == A_PY else "plaintext",
                    "version": self.versions[uri], "text": TEXT}  # fmt: skip
            return {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": item}}
        if kind == 9:
            cursor = {"uri": uri, "ranges": [_range(rng)], "version": self.versions[uri]}
            return {"jsonrpc": "2.0", "method": "pairls/cursor", "params": cursor}
        if kind == 10:
            return {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": i - rng.randrange(5)}}
        added = [{"uri": "file:///fuzz", "name": "fuzz"}]
        return {"jsonrpc": "2.0", "method": "workspace/didChangeWorkspaceFolders",
                "params": {"event": {"added": added, "removed": []}}}  # fmt: skip


def _places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in *value* (a path of keys and indexes), itself included."""
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _places(v, (*path, k))
    elif isinstance(value, list):
        for j, v in enumerate(value):
            out += _places(v, (*path, j))
    return out


def broken(rng: random.Random, msg: dict[str, Any]) -> dict[str, Any]:
    """*msg* with one part of it made wrong (the ``jsonrpc`` field stays: the reader's own test
    covers what is not JSON-RPC 2.0)."""
    msg = copy.deepcopy(msg)
    places = [p for p in _places(msg) if p and p[0] != "jsonrpc"]
    path = rng.choice(places)
    parent: Any = msg
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    how = rng.randrange(4)
    if how == 0 and isinstance(parent, dict):
        del parent[last]
    elif how == 1 and isinstance(parent, dict):
        parent[rng.choice(["extra", SECRET, "range", "text", "id"])] = rng.choice(HOSTILE)
    else:
        # (a method's name or an id is the editor's, and the log may name it: the text may not)
        named = path in (("method",), ("id",), ("params", "id"))
        value: Any = rng.choice([v for v in HOSTILE if SECRET not in str(v)] if named else HOSTILE)
        if rng.random() < 0.05:
            value = [value]
            for _ in range(300):  # deep, past what a recursive reader takes lightly
                value = [value]
        parent[last] = value
    return msg


def answerable(msg: dict[str, Any]) -> Any:
    """The id an answer to *msg* must carry, or None if it needs none (a notification, or an id
    no answer could name)."""
    msg_id = msg.get("id")
    if "method" not in msg or type(msg_id) not in (int, str):
        return None
    if type(msg_id) is int and not -(2**63) <= msg_id < 2**64:
        return None  # (JSON readers differ on integers past 64 bits)
    return msg_id


async def read_answers(server: RawServer, answers: dict[str, Any]) -> None:
    while True:
        msg = json.loads(await server.next_body())
        if "method" not in msg and "id" in msg:
            answers[json.dumps(msg["id"])] = msg


async def read_log(server: RawServer, log: bytearray) -> None:
    assert server.proc.stderr is not None
    while chunk := await server.proc.stderr.read(65536):
        log += chunk


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_broken_editor_cannot_break_the_server(raw: RawServer, seed: int) -> None:
    server = await raw.start()
    answers: dict[str, Any] = {}
    log = bytearray()
    readers = [asyncio.create_task(read_answers(server, answers)), asyncio.create_task(read_log(server, log))]
    try:
        await server.write(INITIALIZE)
        await until(lambda: "1" in answers)
        opened = [
            notification(
                "textDocument/didOpen",
                {"textDocument": {"uri": uri, "languageId": lang, "version": 1, "text": TEXT}},
            )
            for uri, lang in ((A_PY, "python"), (B_TXT, "plaintext"))
        ]
        await server.write(notification("initialized", {}) + b"".join(opened))
        rng = random.Random(seed)
        editor = Editor(rng)
        expected: set[str] = set()
        for i in range(2, MESSAGES + 2):
            msg = editor.next(i)
            if rng.random() < 0.7:
                msg = broken(rng, msg)
            msg_id = answerable(msg)
            if msg_id is not None:
                expected.add(json.dumps(msg_id))
            await server.write(message(msg))
            if i % 100 == 0:
                await asyncio.sleep(0.05)  # (as an editor types: the server reads as it goes)
        # everything asked was answered, the server still answers, and counted nothing of its own
        await until(lambda: expected <= answers.keys(), lambda: sorted(expected - answers.keys())[:10])
        status = request(10**9, "workspace/executeCommand", {"command": "pairls.status", "arguments": [{}]})
        await server.write(status)
        await until(lambda: str(10**9) in answers)
        stats = answers[str(10**9)]["result"]["stats"]
        errors = [line for line in log.decode(errors="replace").splitlines() if " ERROR " in line]
        assert (stats["serverErrors"], stats["failedTasks"]) == (0, 0), (stats, errors[:20])
        await server.write(request(10**9 + 1, "shutdown"))
        await until(lambda: str(10**9 + 1) in answers)
        await server.write(notification("exit"))
        assert await asyncio.wait_for(server.proc.wait(), 20) == 0
    finally:
        await asyncio.wait_for(readers[1], 20) if server.proc.returncode is not None else None
        for task in readers:
            task.cancel()
    text = log.decode(errors="replace")
    assert SECRET not in text and SECRET.lower().replace("-", "_") not in text, _around(text, SECRET)
    assert "Traceback" not in text, _around(text, "Traceback")


async def until(cond: Callable[[], bool], what: Callable[[], Any] = lambda: None) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, what()
        await asyncio.sleep(0.02)


def _around(text: str, what: str) -> str:
    at = text.find(what)
    return text[max(0, at - 1500) : at + 500] if at >= 0 else ""
