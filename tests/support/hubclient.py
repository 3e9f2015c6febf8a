"""A small real websocket client of the hub protocol, for tests and benchmarks.

``Peer`` speaks the wire protocol over a real connection.  Requests are
matched to replies by ``id``; everything else (acks, broadcast ops,
presence, participant events, errors without id) lands in per-kind queues.
``SharedDoc`` runs one document through the core's
:class:`~collab_core.client.DocumentClient`: local edits go out one at a
time, acks and broadcasts come back in revision order.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from collab_core import ops
from collab_core.client import DocumentClient, Outgoing
from lsp_bridge.invite import parse_invite


async def until(cond: Callable[[], bool], timeout: float = 30) -> None:
    """Wait for *cond* (state the hub or its clients reach on their own time), polling."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


class HubError(Exception):
    def __init__(self, msg: dict[str, Any]) -> None:
        super().__init__(f"{msg.get('code')}: {msg.get('message')}")
        self.code = msg.get("code")
        self.msg = msg


class Peer:
    """One connection to the hub."""

    def __init__(
        self, url: str, name: str = "tester", client_id: str | None = None, user: str | None = None
    ) -> None:
        self.url = url
        self.name = name
        self.client_id = client_id or secrets.token_urlsafe(12)
        #: hello's "user" (None: none sent, the hub takes the client id)
        self.user = user
        self.ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self.events: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        self._event = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self.docs: dict[str, SharedDoc] = {}
        self.participant = ""
        self.closed: asyncio.Future[tuple[int | None, str | None]] | None = None
        #: what ended the reader other than the connection closing (it then reads no more)
        self.reader_error: BaseException | None = None
        # open requests in flight: request id -> (path, auto_deliver)
        self._opens: dict[Any, tuple[str, bool]] = {}

    async def connect(self, *, hello: bool = True, **kwargs: Any) -> Peer:
        self.ws = await connect(self.url, max_size=None, compression=None, **kwargs)
        self.closed = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())
        if hello:
            msg: dict[str, Any] = {
                "type": "hello",
                "protocol": 1,
                "name": self.name,
                "clientId": self.client_id,
            }
            if self.user is not None:
                msg["user"] = self.user
            welcome = await self.request(msg)
            self.participant = welcome["participant"]
        return self

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    async def send_raw(self, data: str | bytes) -> None:
        assert self.ws is not None
        await self.ws.send(data)

    async def send(self, msg: dict[str, Any]) -> None:
        await self.send_raw(json.dumps(msg, ensure_ascii=False))

    async def request(self, msg: dict[str, Any], timeout: float = 30, rid: Any = None) -> dict[str, Any]:
        """Send *msg* with an ``id`` (*rid*, or the next number) and wait for the reply that carries it."""
        rid = next(self._ids) if rid is None else rid
        msg = dict(msg, id=rid)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        await self.send(msg)
        reply = await asyncio.wait_for(fut, timeout)
        if reply.get("type") == "error":
            raise HubError(reply)
        return reply

    async def next_event(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        return await self.next_event_of((kind,), timeout)

    async def next_event_of(self, kinds: tuple[str, ...], timeout: float = 10) -> dict[str, Any]:
        """The next event of the first of *kinds* that has one (e.g. an op's ack or its refusal)."""

        async def wait() -> dict[str, Any]:
            while not any(self.events[k] for k in kinds):
                self._event.clear()
                await self._event.wait()
            return next(self.events[k] for k in kinds if self.events[k]).popleft()

        return await asyncio.wait_for(wait(), timeout)

    async def _read(self) -> None:
        assert self.ws is not None and self.closed is not None
        try:
            async for frame in self.ws:
                if type(frame) is not str:  # (raised: the reader ends, and the test with it)
                    raise AssertionError("the hub sent a binary frame; its protocol is text frames")
                decoded = json.loads(frame)
                for msg in decoded if isinstance(decoded, list) else [decoded]:
                    rid = msg.get("id")
                    if rid is not None and rid in self._waiting:
                        opening = self._opens.pop(rid, None)
                        if opening is not None and msg.get("type") == "opened":
                            # the document exists from its reply on: an op the hub sends right
                            # after it (in this frame or the next) must not land before it does
                            path, auto = opening
                            self.docs[path] = SharedDoc(
                                self, path, msg["text"], msg["rev"], auto_deliver=auto
                            )
                        fut = self._waiting.pop(rid)
                        if not fut.done():
                            fut.set_result(msg)
                        continue
                    kind = msg.get("type")
                    doc = self.docs.get(msg.get("path", ""))
                    if doc is not None and kind in ("ack", "op"):
                        doc.received(msg)
                    elif doc is not None and kind == "error" and msg.get("seq") is not None:
                        doc.refused(msg)
                        self.events["error"].append(msg)
                    else:
                        self.events[kind].append(msg)
                self._event.set()
        except ConnectionClosed:
            pass
        except Exception as exc:
            self.reader_error = exc  # kept for the test or bench to see, not swallowed unseen
        finally:
            rcvd = self.ws.protocol.close_rcvd
            if not self.closed.done():
                self.closed.set_result((rcvd.code if rcvd else None, rcvd.reason if rcvd else None))
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection closed"))
            self._event.set()

    # -- rooms and documents -------------------------------------------------

    async def create_room(self, name: str = "", token: str | None = None) -> dict[str, Any]:
        msg: dict[str, Any] = {"type": "create_room", "name": name}
        if token is not None:
            msg["token"] = token
        return await self.request(msg)

    async def join(self, room: str, secret: str) -> dict[str, Any]:
        return await self.request({"type": "join", "room": room, "secret": secret})

    async def create_document(self, path: str, text: str = "") -> dict[str, Any]:
        return await self.request({"type": "create_document", "path": path, "text": text})

    async def open(self, path: str, *, auto_deliver: bool = True) -> SharedDoc:
        """Open *path*; the SharedDoc is made as its reply is read (see :meth:`_read`)."""
        rid = next(self._ids)
        self._opens[rid] = (path, auto_deliver)
        try:
            await self.request({"type": "open", "path": path}, rid=rid)
        finally:
            self._opens.pop(rid, None)
        return self.docs[path]

    async def reopen(self, doc: SharedDoc) -> None:
        """After a reconnect: catch up from the doc's revision, then re-send what is unacknowledged."""
        self.docs[doc.path] = doc
        doc.peer = self
        in_flight = doc.client.outstanding
        # what follows `opened` on the wire applies after its ops: hold it until they are in
        auto, doc.auto_deliver = doc.auto_deliver, False
        try:
            reply = await self.request({"type": "open", "path": doc.path, "since": doc.client.rev})
        finally:
            doc.auto_deliver = auto
        for entry in reply["ops"]:
            doc.catch_up(entry)
        if auto:
            doc.deliver_all()
        out = doc.client.outstanding
        if out is not None and in_flight is not None and out.seq == in_flight.seq:
            # still unacknowledged; an op sent by catch_up (the buffer, after our
            # own op in the list acked the one in flight) is new: sending it
            # twice would get it acked twice
            await doc.submit(doc.client.resend())  # type: ignore[arg-type]


class SharedDoc:
    """One open document driven by the core client state machine."""

    def __init__(self, peer: Peer, path: str, text: str, rev: int, *, auto_deliver: bool = True) -> None:
        self.peer = peer
        self.path = path
        self.client = DocumentClient(text, rev, peer.client_id)
        self.auto_deliver = auto_deliver
        #: hub messages (acks and ops) not yet given to the state machine
        self.inbox: deque[dict[str, Any]] = deque()
        self.errors: list[dict[str, Any]] = []
        #: seconds after which an op refused as unavailable or rate_limited is
        #: sent again (same seq), as the protocol says; None: never
        self.resend_after: float | None = None
        self.changed = asyncio.Event()
        self.acked_ops = 0
        self.remote_ops = 0

    @property
    def text(self) -> str:
        return self.client.text

    @property
    def rev(self) -> int:
        return self.client.rev

    def received(self, msg: dict[str, Any]) -> None:
        self.inbox.append(msg)
        if self.auto_deliver:
            self.deliver_all()
        self.changed.set()

    def refused(self, msg: dict[str, Any]) -> None:
        """The hub refused an op of ours."""
        self.errors.append(msg)
        out = self.client.outstanding
        retryable = msg.get("code") in ("unavailable", "rate_limited")
        if self.resend_after is not None and retryable and out is not None and out.seq == msg.get("seq"):
            asyncio.get_running_loop().call_later(self.resend_after, self._resend, out.seq)
        self.changed.set()

    def _resend(self, seq: int) -> None:
        out = self.client.outstanding
        if out is not None and out.seq == seq:  # not acked meanwhile
            self._send_soon(self.client.resend())  # type: ignore[arg-type]

    def deliver_one(self) -> dict[str, Any]:
        msg = self.inbox.popleft()
        if msg["type"] == "ack":
            self.acked_ops += 1
            out = self.client.receive_ack(msg["rev"])
        else:
            self.remote_ops += 1
            _, out = self.client.receive_op(msg["rev"], msg["op"])
        if out is not None:
            self._send_soon(out)
        return msg

    def deliver_all(self) -> None:
        while self.inbox:
            self.deliver_one()

    def catch_up(self, entry: dict[str, Any]) -> None:
        seq = entry.get("seq")
        _, out = self.client.receive_op(entry["rev"], entry["op"], self.peer.client_id if seq else None, seq)
        if out is not None:
            self._send_soon(out)

    def _send_soon(self, out: Outgoing) -> None:
        asyncio.get_running_loop().create_task(self.submit(out))

    async def submit(self, out: Outgoing) -> None:
        with contextlib.suppress(Exception):
            await self.peer.send(
                {"type": "op", "path": self.path, "rev": out.base_rev, "seq": out.seq, "op": out.op}
            )

    async def edit(self, op: ops.Op) -> None:
        out = self.client.apply_local(op)
        if out is not None:
            await self.submit(out)

    async def splice(self, pos: int, deleted: int, inserted: str) -> None:
        op: ops.Op = []
        if pos:
            op.append(pos)
        if inserted:
            op.append(inserted)
        if deleted:
            op.append(-deleted)
        await self.edit(ops.normalize(op))

    def synced(self) -> bool:
        return self.client.outstanding is None and not self.inbox

    async def wait_synced(self, timeout: float = 60) -> None:
        async def wait() -> None:
            while not self.synced():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)

    async def wait_rev(self, rev: int, timeout: float = 60) -> None:
        async def wait() -> None:
            while self.client.rev < rev or self.client.outstanding is not None:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)


async def hub_text(url: str, invite: str, path: str) -> str:
    """*path*'s text as the hub at *url* has it: a fresh protocol peer joins with *invite* and opens it."""
    inv = parse_invite(invite)
    peer = await Peer(url, "checker").connect()
    try:
        await peer.join(inv.room_id, inv.secret)
        return (await peer.open(path)).text
    finally:
        await peer.close()


async def room_paths(url: str, invite: str) -> list[str]:
    """The paths of the room's documents, as a fresh protocol peer joining with *invite* is told."""
    inv = parse_invite(invite)
    peer = await Peer(url, "checker").connect()
    try:
        joined = await peer.join(inv.room_id, inv.secret)
        return [d["path"] for d in joined.get("documents", [])]
    finally:
        await peer.close()
