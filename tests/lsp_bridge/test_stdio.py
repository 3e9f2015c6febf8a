"""The language server as a real process on stdio pipes, spoken to in raw bytes: how it reads
the editor's messages (whatever pieces they come in) and when it ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lsp_bridge.framing import content_length
from tests.support.lsp_editor import ROOT

pytestmark = pytest.mark.timeout(60)


def message(obj: dict[str, Any]) -> bytes:
    body = json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def request(id_: int, method: str, params: Any = None) -> bytes:
    return message({"jsonrpc": "2.0", "id": id_, "method": method, "params": params})


def notification(method: str, params: Any = None) -> bytes:
    return message({"jsonrpc": "2.0", "method": method, "params": params})


INITIALIZE = request(1, "initialize", {"processId": None, "rootUri": None, "capabilities": {}})


class RawServer:
    """``python -m lsp_bridge`` with its stdin and stdout as pipes, nothing between."""

    async def start(self, loop: str = "auto") -> RawServer:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PAIRLS_USER_ID=f"test-raw-{secrets.token_hex(4)}")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lsp_bridge", "--log-level", "WARNING", "--loop", loop,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=str(ROOT), env=env,
        )  # fmt: skip
        return self

    async def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def answer(self, id_: int) -> dict[str, Any]:
        """The next answer to request *id_* (what comes before it, the server's own
        notifications and requests, is passed over)."""
        assert self.proc.stdout is not None
        while True:
            head = await asyncio.wait_for(self.proc.stdout.readuntil(b"\r\n\r\n"), 20)
            length = content_length(head[:-4])
            assert length is not None, head
            msg = json.loads(await self.proc.stdout.readexactly(length))
            if msg.get("id") == id_ and "method" not in msg:
                return msg

    async def ended(self) -> tuple[int, str]:
        """Its exit code and what it logged, once it ends by itself."""
        assert self.proc.stderr is not None
        err = await asyncio.wait_for(self.proc.stderr.read(), 20)
        return await asyncio.wait_for(self.proc.wait(), 20), err.decode(errors="replace")


@pytest.fixture
async def raw() -> AsyncIterator[RawServer]:
    """A :class:`RawServer` not started yet; killed at teardown if a test left it running."""
    server = RawServer()
    yield server
    proc = getattr(server, "proc", None)
    if proc is not None and proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


@pytest.mark.parametrize("loop", ["auto", "asyncio"])  # (auto: uvloop)
async def test_messages_in_pieces_several_in_one_write_and_a_header_without_length(
    raw: RawServer, loop: str
) -> None:
    server = await raw.start(loop)
    for i in range(len(INITIALIZE)):  # a byte a write: the server reads them in many pieces
        await server.write(INITIALIZE[i : i + 1])
        if i % 16 == 0:
            await asyncio.sleep(0.002)
    assert "capabilities" in (await server.answer(1))["result"]
    # three messages in one write
    await server.write(
        notification("initialized", {})
        + request(2, "workspace/executeCommand", {"command": "pairls.status", "arguments": [{}]})
        + request(3, "workspace/executeCommand", {"command": "pairls.status", "arguments": [{}]})
    )
    first, second = await server.answer(2), await server.answer(3)
    assert first["result"]["connected"] is False
    assert second["result"]["connected"] is False
    # headers with no Content-Length: skipped, and what follows is read as the next message
    await server.write(b"Content-Type: x\r\n\r\nContent-Length: -1\r\n\r\n" + request(4, "shutdown"))
    assert (await server.answer(4))["result"] is None
    await server.write(notification("exit"))
    code, log = await server.ended()
    assert code == 0
    assert log.count("a message without a Content-Length: skipped") == 2


@pytest.mark.parametrize("loop", ["auto", "asyncio"])
async def test_exit_without_shutdown_ends_with_1(raw: RawServer, loop: str) -> None:
    server = await raw.start(loop)
    await server.write(INITIALIZE)
    await server.answer(1)
    await server.write(notification("initialized", {}) + notification("exit"))
    code, _ = await server.ended()
    assert code == 1


@pytest.mark.parametrize("loop", ["auto", "asyncio"])
async def test_the_server_ends_when_the_editor_closes_its_stdin(raw: RawServer, loop: str) -> None:
    server = await raw.start(loop)
    await server.write(INITIALIZE + notification("initialized", {}))
    await server.answer(1)
    assert server.proc.stdin is not None
    server.proc.stdin.close()
    code, log = await server.ended()
    assert code == 0
    assert "Traceback" not in log
