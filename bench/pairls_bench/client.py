"""The load generator's websocket client: a lean RFC 6455 client (asyncio protocol, no per-frame
task or queue) speaking the wire protocol of docs/protocol.md, and the helpers that set up rooms
with it and pace the load."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import struct
from collections.abc import Callable
from typing import Any

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WS(asyncio.Protocol):
    """Minimal RFC 6455 client: text frames, ping -> pong, close; masked sends.

    ``on_text(payload: bytes)`` is called for every text frame.  Until a
    scenario installs its own hot-path handler, frames are parsed as JSON and
    replies are matched to :meth:`request` by ``id``.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.key = base64.b64encode(os.urandom(16))
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_text: Callable[[bytes], None] = self._generic
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.ids = 0
        self.errors: list[dict[str, Any]] = []

    # transport callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        req = (
            f"GET / HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        transport.write(req.encode())  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during handshake"))
        if not self.closed.done():
            self.closed.set_result(None)
        for fut in self.waiting.values():
            if not fut.done():
                fut.set_exception(ConnectionError("connection closed"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.opened.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end])
            del buf[: end + 4]
            accept = base64.b64encode(hashlib.sha1(self.key + _GUID).digest())
            if not head.startswith(b"HTTP/1.1 101") or accept not in head:
                self.opened.set_exception(ConnectionError(head[:200].decode(errors="replace")))
                self.transport.close()  # type: ignore[union-attr]
                return
            self.opened.set_result(None)
        while len(buf) >= 2:
            b1 = buf[1] & 0x7F
            off = 2
            if b1 == 126:
                if len(buf) < 4:
                    return
                b1 = (buf[2] << 8) | buf[3]
                off = 4
            elif b1 == 127:
                if len(buf) < 10:
                    return
                b1 = int.from_bytes(buf[2:10], "big")
                off = 10
            end = off + b1
            if len(buf) < end:
                return
            opcode = buf[0] & 0x0F
            payload = bytes(buf[off:end])
            del buf[:end]
            if opcode == 1:
                if payload.startswith(b"["):
                    # several messages in one frame (docs/protocol.md): hand them over one by one
                    for msg in json.loads(payload):
                        self.on_text(json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode())
                else:
                    self.on_text(payload)
            elif opcode == 9:
                self._frame(0xA, payload)
            elif opcode == 8:
                with contextlib.suppress(Exception):
                    self._frame(0x8, payload[:2])
                self.transport.close()  # type: ignore[union-attr]
                return
            # pong (10), binary and continuation frames: the hub sends none we need

    # sending
    def _frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        if n:
            m = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
            payload = (int.from_bytes(payload, "big") ^ m).to_bytes(n, "big")
        self.transport.write(head + mask + payload)  # type: ignore[union-attr]

    def send(self, text: str) -> None:
        self._frame(0x1, text.encode())

    async def request(self, msg: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        self.ids += 1
        msg["id"] = self.ids
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[self.ids] = fut
        self.send(json.dumps(msg, separators=(",", ":")))
        reply = await asyncio.wait_for(fut, timeout)
        if reply.get("type") == "error":
            raise RuntimeError(f"hub error {reply.get('code')} for {msg['type']}")
        return reply

    def _generic(self, payload: bytes) -> None:
        msg = json.loads(payload)
        fut = self.waiting.pop(msg.get("id"), None) if msg.get("id") is not None else None
        if fut is not None:
            if not fut.done():
                fut.set_result(msg)
        elif msg.get("type") == "error":
            self.errors.append(msg)

    async def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(Exception):
                self._frame(0x8, struct.pack("!H", 1000))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.closed), 2)
            self.transport.close()


def _split(url: str) -> tuple[str, int]:
    m = re.match(r"ws://([^:/]+):(\d+)", url)
    assert m, url
    return m.group(1), int(m.group(2))


def through(invite: str, hub_url: str, proxy_url: str) -> str:
    """*invite* (a link or the ``ws://`` form) naming *proxy_url*'s host and port instead of the hub's.

    Raises AssertionError if the invite does not name the hub: a join would then
    bypass the proxy, and a scenario about the network would measure without it.
    """
    (hh, hp), (ph, pp) = _split(hub_url), _split(proxy_url)
    hub, proxy = f"{hh}:{hp}", f"{ph}:{pp}"
    swapped = re.sub(r"^(\w+://)" + re.escape(hub) + r"(?=[/?#]|$)", lambda m: m.group(1) + proxy, invite)
    assert swapped != invite, f"the invite does not name the hub at {hub}"
    return swapped


async def connect(url: str, name: str = "bench", *, user: str | None = None) -> WS:
    host, port = _split(url)
    _, ws = await asyncio.get_running_loop().create_connection(lambda: WS(host, port), host, port)
    await ws.opened
    hello: dict[str, Any] = {
        "type": "hello",
        "protocol": 1,
        "name": name,
        "clientId": secrets.token_urlsafe(12),
    }
    if user is not None:
        hello["user"] = user
    await ws.request(hello)
    return ws


async def make_room(url: str, n: int, *, path: str, text: str) -> tuple[list[WS], dict[str, Any]]:
    """n connections in a new room; the first created it and the document; all have it open."""
    owner = await connect(url, "owner")
    room = await owner.request({"type": "create_room", "name": "bench"})
    await owner.request({"type": "create_document", "path": path, "text": text})
    conns = [owner]
    for i in range(n - 1):
        c = await connect(url, f"peer{i}")
        await c.request({"type": "join", "room": room["room"], "secret": room["editorSecret"]})
        conns.append(c)
    opened = [await c.request({"type": "open", "path": path}) for c in conns]
    return conns, opened[0]


async def gather_limited(coros: list[Any], limit: int = 50) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(c: Any) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def ticker(period: float, phase: float, fn: Callable[[], None], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    nxt = loop.time() + phase
    while not stop.is_set():
        nxt += period
        await asyncio.sleep(max(0.0, nxt - loop.time()))
        fn()
