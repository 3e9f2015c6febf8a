"""The language server as a real process on stdio pipes, spoken to in raw bytes (the tests of
its reading, ``tests/lsp_bridge/test_stdio*.py``; the fixture ``raw`` is in their conftest)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from typing import Any

from lsp_bridge.framing import content_length
from tests.support.lsp_editor import ROOT, spawn_on_socket_pairs

__all__ = ["INITIALIZE", "RawServer", "message", "notification", "request"]


def message(obj: Any) -> bytes:
    body = json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def request(id_: int, method: str, params: Any = None) -> bytes:
    return message({"jsonrpc": "2.0", "id": id_, "method": method, "params": params})


def notification(method: str, params: Any = None) -> bytes:
    return message({"jsonrpc": "2.0", "method": method, "params": params})


INITIALIZE = request(1, "initialize", {"processId": None, "rootUri": None, "capabilities": {}})


class RawServer:
    """``python -m lsp_bridge`` with its stdin and stdout as pipes (as Python and Emacs give
    them) or as a socket pair each (*stdio* ``"socket"``: as libuv gives them, in Neovim and
    in VS Code's Node.js), nothing between."""

    async def start(self, loop: str = "auto", stdio: str = "pipe") -> RawServer:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PAIRLS_USER_ID=f"test-raw-{secrets.token_hex(4)}")
        cmd = (sys.executable, "-m", "lsp_bridge", "--log-level", "WARNING", "--loop", loop)
        if stdio == "pipe":
            self.proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, cwd=str(ROOT), env=env,
            )  # fmt: skip
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
            return self
        assert stdio == "socket", stdio
        self.proc, self.stdout, self.stdin, self._out_writer = await spawn_on_socket_pairs(
            cmd, env, str(ROOT)
        )
        return self

    async def write(self, data: bytes) -> None:
        self.stdin.write(data)
        await self.stdin.drain()

    def close_stdin(self) -> None:
        """What an editor that has gone does: the server reads the end of its stdin."""
        self.stdin.close()

    async def answer(self, id_: int) -> dict[str, Any]:
        """The next answer to request *id_* (what comes before it, the server's own
        notifications and requests, is passed over)."""
        return json.loads(await self.answer_body(id_))

    async def answer_body(self, id_: int) -> bytes:
        """:meth:`answer` as the bytes its Content-Length counted."""
        return (await self.answer_bodies({id_}))[id_]

    async def answer_bodies(self, ids: set[int]) -> dict[int, bytes]:
        """The answers to requests *ids*, in whatever order they come (the rest is passed over)."""
        found: dict[int, bytes] = {}
        while found.keys() != ids:
            body = await asyncio.wait_for(self.next_body(), 20)
            msg = json.loads(body)
            if msg.get("id") in ids and "method" not in msg:
                found[msg["id"]] = body
        return found

    async def next_body(self) -> bytes:
        """The next message the server wrote, as the bytes its Content-Length counted."""
        head = await self.stdout.readuntil(b"\r\n\r\n")
        length = content_length(head[:-4])
        assert length is not None, head
        return await self.stdout.readexactly(length)

    async def ended(self) -> tuple[int, str]:
        """Its exit code and what it logged, once it ends by itself."""
        assert self.proc.stderr is not None
        err = await asyncio.wait_for(self.proc.stderr.read(), 20)
        return await asyncio.wait_for(self.proc.wait(), 20), err.decode(errors="replace")
