"""A hub that speaks the protocol well enough for ``pairls-lsp`` to join its one room and
edit, and that puts whatever paths a test gives it into every message that carries one.

It keeps the text of the documents it was sent (single writer: every op applies at the
head; an op that does not apply ends the connection), answers ``open``, ``create_document``,
``op`` (acks) and ``digest`` honestly, and lets a test push any message to the connected
language server (:meth:`push`) and drop the connection (:meth:`drop`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

from collab_core import ops

ROOM = "R" * 22
SECRET = "S" * 43


class HostileHub:
    def __init__(self, evil_paths: list[Any]) -> None:
        self.evil_paths = evil_paths
        self.texts: dict[str, str] = {"good.txt": "hello from the room\n"}
        self.revs: dict[str, int] = {"good.txt": 0}
        self.received: list[dict[str, Any]] = []
        self.conns: list[ServerConnection] = []
        self._server: Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    @property
    def invite(self) -> str:
        return f"{self.url}/room/{ROOM}#{SECRET}"

    async def start(self) -> HostileHub:
        self._server = await serve(self._handle, "127.0.0.1", 0, max_size=None)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def push(self, msg: Any) -> None:
        """Send *msg* (any JSON, or a str frame as it is) to every connected language server."""
        frame = msg if isinstance(msg, str) else json.dumps(msg)
        for ws in list(self.conns):
            try:
                await ws.send(frame)
            except Exception:  # a connection that went: the next one gets the rest
                continue

    async def drop(self) -> None:
        """Close every connection (the language servers reconnect)."""
        for ws in list(self.conns):
            await ws.close()

    def evil_documents(self) -> list[dict[str, Any]]:
        return [{"path": p, "rev": 3} for p in self.evil_paths]

    async def _handle(self, ws: ServerConnection) -> None:
        self.conns.append(ws)
        try:
            async for frame in ws:
                msg = json.loads(frame)
                for one in msg if isinstance(msg, list) else [msg]:
                    self.received.append(one)
                    for reply in self._answer(one):
                        await ws.send(json.dumps(reply))
        except Exception:  # the language server went away
            pass
        finally:
            self.conns.remove(ws)

    def _answer(self, msg: dict[str, Any]) -> list[Any]:
        kind, rid, path = msg.get("type"), msg.get("id"), msg.get("path")
        if kind == "hello":
            return [{"id": rid, "type": "welcome", "protocol": 1, "participant": "me", "limits": {}}]
        if kind == "join":
            evil = [{"id": f"evil{i}", "name": "Mallory\u202e", "role": "editor"} for i in range(2)]
            return [
                {
                    "id": rid,
                    "type": "joined",
                    "room": ROOM,
                    "role": "editor",
                    "participant": "me",
                    "participants": [{"id": "me", "name": "me", "role": "editor"}, *evil],
                    "documents": [{"path": "good.txt", "rev": 0}, *self.evil_documents()],
                    "presence": [
                        {"participant": "evil0", "path": p, "rev": 0, "ranges": [[0, 0]]}
                        for p in self.evil_paths
                    ],
                }
            ]
        if kind == "open":
            since = msg.get("since")
            if path in self.texts and since is not None and since > self.revs[path]:
                return [{"id": rid, "type": "error", "code": "future_revision", "path": path}]
            if path in self.texts and since == self.revs[path]:
                return [{"id": rid, "type": "opened", "path": path, "rev": since, "ops": []}]
            if path in self.texts:
                return [
                    {
                        "id": rid,
                        "type": "opened",
                        "path": path,
                        "rev": self.revs[path],
                        "text": self.texts[path],
                    }
                ]
            # an evil path: pretend it exists, with text that must land nowhere
            return [{"id": rid, "type": "opened", "path": path, "rev": 3, "text": "pwned\n"}]
        if kind == "create_document" and isinstance(path, str):
            self.texts[path], self.revs[path] = msg.get("text") or "", 0
            return [{"id": rid, "type": "document_created", "path": path, "rev": 0}]
        if kind == "op" and path in self.texts:
            self.texts[path] = ops.apply(self.texts[path], ops.check(msg["op"]))
            self.revs[path] += 1
            return [{"type": "ack", "path": path, "seq": msg["seq"], "rev": self.revs[path]}]
        if kind == "digest" and path in self.texts:
            sha = hashlib.sha256(self.texts[path].encode("utf-8")).hexdigest()
            return [{"id": rid, "type": "digest", "path": path, "rev": self.revs[path], "sha256": sha}]
        if kind == "close":
            return [{"id": rid, "type": "closed", "path": path}]
        if kind == "leave":
            return [{"id": rid, "type": "left"}]
        return []
