"""A room session: the hub connection plus every shared document (no LSP here).

The language server (``server.py``) translates LSP into calls on
:class:`Session` and implements :class:`Editor`, the few things the session
needs from the editor side (apply an edit, show a message, notify).  Per
document, a :class:`~collab_server.client.DocumentClient` talks to the hub
and an :class:`~lsp_bridge.editor_sync.EditorSync` talks to the editor;
this module moves ops between the two and keeps them alive across
reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

from collab_server import ops
from collab_server.client import DocumentClient, Outgoing

from .editor_sync import ContentChange, EditorSync, EditToApply
from .hub_client import HubConnection, HubError, HubUnavailable
from .invite import Invite, parse_invite

__all__ = ["Editor", "Session", "SharedDocument", "SessionError"]

logger = logging.getLogger(__name__)

#: the user's cursor goes to the hub at most this often (seconds): typing moves it every keystroke
PRESENCE_INTERVAL = 0.05

COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c"]


class SessionError(Exception):
    """A room action failed; the message is fit to show the user."""


class Editor(Protocol):
    """What the session needs from the language-server side."""

    encoding: str

    def apply_edit(self, uri: str, edit: EditToApply) -> Awaitable[bool]: ...

    def show_message(self, text: str, *, error: bool = False) -> None: ...

    def log(self, text: str) -> None: ...

    def notify(self, method: str, params: dict[str, Any]) -> None: ...

    def cursors_changed(self, uri: str) -> None: ...

    def text_changed(self, path: str, old: str, op: ops.Op, new: str, author: str | None) -> None:
        """The room text of *path* changed by *op* (for the completion index)."""
        ...

    def text_replaced(self, path: str, text: str | None) -> None:
        """The room text of *path* is now *text* (``None``: forget it)."""
        ...


@dataclass
class SharedDocument:
    path: str
    uri: str | None = None
    client: DocumentClient | None = None
    sync: EditorSync | None = None
    #: the editor's version when it was opened, and local edits made before the hub answered
    early: ops.Op = field(default_factory=list)
    applying: bool = False
    #: set by every didChange: a refused edit waits for it before going again
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    heals: int = 0
    check_task: asyncio.Task[None] | None = None
    #: hub ops/acks that arrived ahead of their turn (during an open or a catch-up), by rev
    held: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.client is not None


@dataclass
class Participant:
    id: str
    name: str
    role: str
    color: str
    path: str | None = None
    #: code point ranges in the participant's text of ``path``
    ranges: list[list[int]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "color": self.color, "role": self.role}
        if self.path is not None:
            out["path"] = self.path
            out["ranges"] = self.ranges
        return out


class Session:
    """One room on one hub; see the module docstring."""

    def __init__(self, editor: Editor, *, name: str, client_id: str | None = None) -> None:
        self.editor = editor
        self.name = name
        self.client_id = client_id or secrets.token_urlsafe(16)
        self.hub: HubConnection | None = None
        self.invite: Invite | None = None
        self.room_id: str | None = None
        self.role: str | None = None
        self.viewer_invite: str | None = None
        self.editor_invite: str | None = None
        self.docs: dict[str, SharedDocument] = {}
        self.by_uri: dict[str, SharedDocument] = {}
        self.participants: dict[str, Participant] = {}
        self.room_documents: dict[str, int] = {}
        self.heals = 0
        self.follow: str | None = None
        self.on_follow: Any = None
        self._presence_out: tuple[SharedDocument, list[list[int]]] | None = None
        self._presence_timer: asyncio.TimerHandle | None = None
        self._presence_sent = 0.0

    # -- status ----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.hub is not None and self.hub.connected

    def status(self) -> dict[str, Any]:
        docs = {}
        for path, d in self.docs.items():
            c = d.client
            docs[path] = {
                "rev": c.rev if c else None,
                "pending": bool(c and c.outstanding is not None) or bool(d.sync and not d.sync.quiet),
                "open": d.uri is not None,
                # the shadow's hash, so a client (or a test) can compare without the text
                "sha256": hashlib.sha256(c.text.encode("utf-8")).hexdigest() if c else None,
            }
        return {
            "connected": self.connected,
            "state": self.hub.state if self.hub else "disconnected",
            "roomId": self.room_id,
            "role": self.role,
            "hubUrl": self.hub.url if self.hub else None,
            "participants": len(self.participants),
            "documents": docs,
            "heals": self.heals,
        }

    def _state_changed(self, state: str) -> None:
        self.editor.notify("pairls/status", self.status())
        if self.room_id is None:
            return
        if state == "disconnected":
            self.editor.show_message(
                "pairls: lost the connection to the hub; your edits are kept and will be sent on reconnect"
            )

    # -- rooms -------------------------------------------------------------------

    async def _connect(self, hub_url: str) -> HubConnection:
        if self.hub is not None and self.hub.url == hub_url:
            return self.hub
        if self.hub is not None:
            await self.hub.close()
        self.hub = HubConnection(
            hub_url,
            name=self.name,
            client_id=self.client_id,
            on_message=self._received,
            on_connected=self._connected,
            on_state=self._state_changed,
        )
        self.hub.start()
        return self.hub

    async def create_room(self, hub_url: str, name: str = "") -> dict[str, Any]:
        if self.room_id is not None:
            raise SessionError("already in a room; leave it first")
        hub = await self._connect(hub_url)
        await self._wait(hub)
        reply = await self._call(hub, {"type": "create_room", "name": name})
        self.editor_invite = str(Invite(hub_url, reply["room"], reply["editorSecret"]))
        self.viewer_invite = str(Invite(hub_url, reply["room"], reply["viewerSecret"]))
        self.invite = Invite(hub_url, reply["room"], reply["ownerSecret"])
        self._entered(reply)
        self._follow_room_documents()
        return {"roomId": self.room_id, "invite": self.editor_invite, "viewerInvite": self.viewer_invite}

    async def join_room(self, invite_text: str) -> dict[str, Any]:
        if self.room_id is not None:
            raise SessionError("already in a room; leave it first")
        try:
            invite = parse_invite(invite_text)
        except ValueError as exc:
            raise SessionError(str(exc)) from None
        hub = await self._connect(invite.hub_url)
        await self._wait(hub)
        reply = await self._call(hub, {"type": "join", "room": invite.room_id, "secret": invite.secret})
        self.invite = invite
        self.editor_invite = invite_text if reply["role"] != "viewer" else None
        self.viewer_invite = invite_text if reply["role"] == "viewer" else None
        self._entered(reply)
        self._follow_room_documents()
        return {
            "roomId": self.room_id,
            "role": self.role,
            "participants": [p.describe() for p in self.participants.values()],
            "documents": [{"path": p, "rev": r} for p, r in sorted(self.room_documents.items())],
        }

    async def leave(self) -> None:
        hub = self.hub
        if hub is not None and self.room_id is not None:
            with contextlib.suppress(HubError, HubUnavailable):
                await hub.request({"type": "leave"}, timeout=5)
        for doc in self.docs.values():
            if doc.check_task is not None:
                doc.check_task.cancel()
            self.editor.text_replaced(doc.path, None)
        self.docs.clear()
        self.by_uri.clear()
        self.participants.clear()
        self.room_documents.clear()
        self.room_id = self.role = self.invite = None
        self.editor_invite = self.viewer_invite = None
        if hub is not None:
            await hub.close()
            self.hub = None
        self.editor.notify("pairls/status", self.status())
        self.editor.notify("pairls/participants", {"participants": []})

    async def _wait(self, hub: HubConnection) -> None:
        try:
            await hub.wait_connected(10.0)
        except HubUnavailable:
            # keep retrying in the background only if we are in a room; else give up now
            await hub.close()
            self.hub = None
            raise SessionError(f"cannot reach the hub at {hub.url}; is pairls-hub running?") from None

    async def _call(self, hub: HubConnection, msg: dict[str, Any]) -> dict[str, Any]:
        try:
            return await hub.request(msg)
        except HubError as exc:
            raise SessionError(_explain(exc.code)) from None
        except HubUnavailable as exc:
            raise SessionError(str(exc)) from None

    def _entered(self, reply: dict[str, Any]) -> None:
        self.room_id = reply["room"]
        self.role = reply["role"]
        self.participants = {}
        for p in reply.get("participants", []):
            self._participant(p)
        for pres in reply.get("presence", []):
            self._presence(pres)
        self.room_documents = {d["path"]: d["rev"] for d in reply.get("documents", [])}
        self.editor.notify("pairls/status", self.status())
        self._participants_changed()

    def _follow_room_documents(self) -> None:
        """Keep every room document's text here, open in the editor or not (completions use all)."""
        for path in list(self.room_documents):
            if path not in self.docs:
                asyncio.get_running_loop().create_task(self._background_open(path))

    async def _background_open(self, path: str) -> None:
        hub = self.hub
        if hub is None or path in self.docs:
            return
        doc = SharedDocument(path)
        self.docs[path] = doc
        try:
            opened = await hub.request({"type": "open", "path": path})
        except (HubError, HubUnavailable):
            if self.docs.get(path) is doc:
                del self.docs[path]
            return
        if self.docs.get(path) is not doc:
            return  # the editor opened it meanwhile (share took over)
        doc.client = DocumentClient(opened["text"], opened["rev"], self.client_id)
        self.editor.text_replaced(path, opened["text"])
        self._deliver_held(doc)

    async def _connected(self) -> None:
        """(Re)connected: re-join the room and catch every open document up."""
        hub = self.hub
        if hub is None or self.invite is None or self.room_id is None:
            return
        reply = await hub.request({"type": "join", "room": self.invite.room_id, "secret": self.invite.secret})
        self._entered(reply)
        for doc in list(self.docs.values()):
            if doc.client is None:
                continue
            opened = await hub.request({"type": "open", "path": doc.path, "since": doc.client.rev})
            for entry in opened.get("ops", []):
                if entry["rev"] == doc.client.rev + 1:
                    self._hub_op(doc, entry["rev"], entry["op"], entry.get("seq"))
            self._deliver_held(doc)
            out = doc.client.resend()
            if out is not None:
                self._send_op(doc, out)
        self.editor.log(f"pairls: reconnected to {hub.url}")

    # -- documents --------------------------------------------------------------------

    async def share(self, uri: str, path: str, text: str, version: int) -> dict[str, Any]:
        """Share the editor's open document *uri* at *path* (the room's text wins if it has one)."""
        hub = self.hub
        if hub is None or self.room_id is None:
            raise SessionError("join or create a room first")
        doc = self.docs.get(path)
        if doc is not None and doc.uri == uri and doc.sync is not None:
            return {"path": path, "rev": doc.client.rev if doc.client else 0}
        if doc is not None and doc.uri is None and doc.client is not None:
            # followed in the background until now: attach the editor; the room's text wins
            doc.uri = uri
            doc.sync = EditorSync(text, version, self.editor.encoding)
            self.by_uri[uri] = doc
            if text != doc.client.text:
                doc.sync.reset(doc.client.text)
            self._pump(doc)
            self.editor.notify("pairls/status", self.status())
            return {"path": path, "rev": doc.client.rev}
        doc = SharedDocument(path, uri)
        doc.sync = EditorSync(text, version, self.editor.encoding)
        self.docs[path] = doc
        self.by_uri[uri] = doc
        try:
            if path not in self.room_documents:
                if self.role == "viewer":
                    raise SessionError("viewers cannot share documents")
                try:
                    await hub.request({"type": "create_document", "path": path, "text": text})
                except HubError as exc:
                    if exc.code != "document_exists":
                        raise
                self.room_documents.setdefault(path, 0)
            opened = await hub.request({"type": "open", "path": path})
        except HubError as exc:
            self._drop(doc)
            raise SessionError(_explain(exc.code)) from None
        except HubUnavailable as exc:
            self._drop(doc)
            raise SessionError(str(exc)) from None
        except SessionError:
            self._drop(doc)
            raise
        doc.client = DocumentClient(opened["text"], opened["rev"], self.client_id)
        self.editor.text_replaced(path, opened["text"])
        sync = doc.sync
        if sync.text != opened["text"] or doc.early:
            # The room's text wins: bring the buffer to it (edits typed meanwhile included).
            sync.reset(opened["text"])
        doc.early = []
        self._deliver_held(doc)
        self._pump(doc)
        self.editor.notify("pairls/status", self.status())
        return {"path": path, "rev": opened["rev"]}

    def _drop(self, doc: SharedDocument) -> None:
        if self.docs.get(doc.path) is doc:
            del self.docs[doc.path]
        if doc.uri is not None and self.by_uri.get(doc.uri) is doc:
            del self.by_uri[doc.uri]

    def unshare(self, uri: str) -> None:
        """The editor closed *uri*: keep following the room's text, without an editor."""
        doc = self.by_uri.pop(uri, None)
        if doc is None:
            return
        doc.uri = None
        doc.sync = None

    def did_change(self, uri: str, version: int, changes: list[ContentChange]) -> bool:
        """The editor's changes; returns True if any of them was the user's (not our applied edit)."""
        doc = self.by_uri.get(uri)
        if doc is None or doc.sync is None:
            return False
        user_ops = doc.sync.did_change(version, changes)
        doc.changed.set()
        if not user_ops:
            self._pump(doc)
            return False
        if self.role == "viewer":
            # The hub would refuse these; restore the buffer now and say why.
            if doc.client is not None:
                doc.sync.reset(doc.client.text)
            self.editor.show_message(
                "pairls: you joined as a viewer; your edits are not shared and were undone"
            )
            self._pump(doc)
            return False
        if doc.client is None:
            for op in user_ops:
                doc.early = ops.compose(doc.early, op)
            return True
        self._user_ops(doc, user_ops)
        self._pump(doc)
        return True

    def _user_ops(self, doc: SharedDocument, user_ops: list[ops.Op]) -> None:
        """Edits the user made in the editor, as ops on the client's text: to the hub."""
        if doc.client is None or not user_ops or self.role == "viewer":
            return
        for op in user_ops:
            old = doc.client.text
            out = doc.client.apply_local(op)
            self.editor.text_changed(doc.path, old, op, doc.client.text, self.name)
            if out is not None:
                self._send_op(doc, out)
        self._schedule_check(doc)

    def _send_op(self, doc: SharedDocument, out: Outgoing) -> None:
        if self.hub is not None:
            self.hub.send({"type": "op", "path": doc.path, "rev": out.base_rev, "seq": out.seq, "op": out.op})

    # -- from the hub ------------------------------------------------------------------

    def _received(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        path = msg.get("path")
        doc = self.docs.get(path) if isinstance(path, str) else None
        if kind in ("op", "ack") and doc is not None:
            doc.held.append(msg)
            self._deliver_held(doc)
        elif kind == "error" and doc is not None and msg.get("seq") is not None:
            self._op_refused(doc, msg)
        elif kind == "presence":
            self._presence(msg)
        elif kind == "participant_joined":
            self._participant(msg["participant"])
            self._participants_changed()
        elif kind == "participant_left":
            gone = self.participants.pop(msg.get("participant", ""), None)
            self._participants_changed()
            if gone is not None and gone.path is not None:
                self._cursors_changed(gone.path)
        elif kind == "document_added" and isinstance(path, str):
            self.room_documents[path] = msg.get("rev", 0)
            self._follow_room_documents()
        elif kind == "error":
            logger.warning("hub error: %s", msg.get("code"))

    def _deliver_held(self, doc: SharedDocument) -> None:
        """Apply held hub ops and acks in revision order.

        The reply to an ``open`` (or its catch-up ops) and the live ops after
        it arrive in order, but the live ones are dispatched before the
        awaiting coroutine resumes: an op the client is not ready for waits
        here for its turn, and one it has already seen is dropped.
        """
        client = doc.client
        if client is None:
            return  # the open is under way; it delivers them when done
        while doc.held:
            doc.held.sort(key=lambda m: m["rev"])
            msg = doc.held[0]
            if msg["rev"] > client.rev + 1:
                return  # a gap: the catch-up is still to come
            doc.held.pop(0)
            if msg["rev"] <= client.rev:
                continue  # seen already (in a catch-up, or a re-sent op's ack)
            if msg["type"] == "ack":
                out = client.receive_ack(msg["rev"])
                if out is not None:
                    self._send_op(doc, out)
            else:
                author = self.participants.get(msg.get("author", ""))
                self._hub_op(doc, msg["rev"], msg["op"], None, author.name if author else None)
            self._schedule_check(doc)

    def _hub_op(
        self, doc: SharedDocument, rev: int, op: ops.Op, seq: int | None, author: str | None = None
    ) -> None:
        assert doc.client is not None
        old = doc.client.text
        local, out = doc.client.receive_op(rev, op, self.client_id if seq is not None else None, seq)
        if local:
            self.editor.text_changed(doc.path, old, local, doc.client.text, author)
        if out is not None:
            self._send_op(doc, out)
        if doc.sync is not None and local:
            doc.sync.receive_remote(local)
            self._pump(doc)

    def _op_refused(self, doc: SharedDocument, msg: dict[str, Any]) -> None:
        code = msg.get("code")
        client = doc.client
        if client is None or client.outstanding is None or msg.get("seq") != client.outstanding.seq:
            return
        if code in ("rate_limited", "unavailable"):
            loop = asyncio.get_running_loop()
            loop.call_later(0.5, self._resend, doc)
        elif code == "forbidden":
            self.role = "viewer"
            self.editor.show_message("pairls: the hub refused your edit: you are a viewer in this room")
            self._reopen_soon(doc)
        else:
            logger.warning("hub refused an op on %s: %s", doc.path, code)
            self._reopen_soon(doc)

    def _resend(self, doc: SharedDocument) -> None:
        if doc.client is not None:
            out = doc.client.resend()
            if out is not None:
                self._send_op(doc, out)

    def _reopen_soon(self, doc: SharedDocument) -> None:
        asyncio.get_running_loop().create_task(self.heal(doc, reason="refused"))

    # -- healing ---------------------------------------------------------------------------

    def _schedule_check(self, doc: SharedDocument) -> None:
        """After a quiet moment, compare our text with the hub's (a content hash)."""
        if doc.check_task is not None and not doc.check_task.done():
            doc.check_task.cancel()
        doc.check_task = asyncio.get_running_loop().create_task(self._check_later(doc))

    async def _check_later(self, doc: SharedDocument, delay: float = 1.0) -> None:
        await asyncio.sleep(delay)
        await self.check(doc)

    async def check(self, doc: SharedDocument) -> bool:
        """Compare with the hub's content hash when quiet; heal on a mismatch. True if in sync."""
        hub, client = self.hub, doc.client
        if hub is None or client is None or client.outstanding is not None or not hub.connected:
            return False
        try:
            reply = await hub.request({"type": "digest", "path": doc.path}, timeout=5)
        except (HubError, HubUnavailable):
            return False
        if reply.get("rev") != client.rev or client.outstanding is not None:
            return False  # things moved on; a later check will tell
        ours = hashlib.sha256(client.text.encode("utf-8")).hexdigest()
        if ours == reply.get("sha256"):
            return True
        await self.heal(doc, reason="content hash differs from the hub's")
        return False

    async def heal(self, doc: SharedDocument, *, reason: str) -> None:
        """Reload the hub's text and bring the editor to it with one minimal edit."""
        hub = self.hub
        if hub is None:
            return
        try:
            opened = await hub.request({"type": "open", "path": doc.path})
        except (HubError, HubUnavailable):
            return
        self.heals += 1
        doc.heals += 1
        logger.warning("healing %s (heal #%d): %s", doc.path, self.heals, reason)
        self.editor.log(f"pairls: healed {doc.path}: {reason}")
        doc.client = DocumentClient(opened["text"], opened["rev"], self.client_id, next_seq=_next_seq(doc))
        self.editor.text_replaced(doc.path, opened["text"])
        if doc.sync is not None:
            doc.sync.reset(opened["text"])
        self._deliver_held(doc)
        if doc.sync is not None:
            self._pump(doc)

    def check_editor_text(self, uri: str, editor_text: str) -> None:
        """The editor's text as the LSP library tracked it; heal if ours disagrees."""
        doc = self.by_uri.get(uri)
        if doc is None or doc.sync is None or not doc.sync.quiet or doc.client is None:
            return
        if doc.sync.text != editor_text:
            self.heals += 1
            doc.heals += 1
            logger.warning("healing %s (heal #%d): editor text drifted", doc.path, self.heals)
            doc.sync.view.text = editor_text
            doc.sync.reset(doc.client.text)
            self._pump(doc)

    # -- to the editor -------------------------------------------------------------------------

    def _pump(self, doc: SharedDocument) -> None:
        if doc.applying or doc.sync is None or doc.uri is None:
            return
        edit = doc.sync.edit_to_send()
        if edit is None:
            return
        doc.applying = True
        asyncio.get_running_loop().create_task(self._apply(doc, edit))

    async def _apply(self, doc: SharedDocument, edit: EditToApply) -> None:
        assert doc.sync is not None and doc.uri is not None
        doc.changed.clear()
        try:
            applied = await self.editor.apply_edit(doc.uri, edit)
        except Exception as exc:  # eglot answers a stale edit with an error
            logger.debug("applyEdit failed: %s", type(exc).__name__)
            applied = False
        doc.applying = False
        self._user_ops(doc, doc.sync.edit_answered(applied))
        if not applied:
            # Refused: the user's changes are on their way (eglot sends them up
            # to 0.5 s later); go again once they are here, not before.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(doc.changed.wait(), 1.0)
        self._pump(doc)

    # -- presence ------------------------------------------------------------------------------

    def _participant(self, p: dict[str, Any]) -> Participant:
        pid = p["id"]
        old = self.participants.get(pid)
        if old is not None:
            return old
        color = COLORS[len(self.participants) % len(COLORS)]
        part = Participant(pid, p.get("name", "?"), p.get("role", "editor"), color)
        self.participants[pid] = part
        return part

    def _participants_changed(self) -> None:
        self.editor.notify("pairls/participants", {"participants": self.participants_list()})

    def participants_list(self) -> list[dict[str, Any]]:
        me = self.hub.participant if self.hub else None
        out = []
        for p in self.participants.values():
            d = p.describe()
            d["self"] = p.id == me
            out.append(d)
        return out

    def _presence(self, msg: dict[str, Any]) -> None:
        pid = msg.get("participant")
        if not isinstance(pid, str):
            return
        part = self.participants.get(pid) or self._participant({"id": pid, "name": msg.get("name", "?")})
        old_path = part.path
        part.path = msg.get("path")
        part.ranges = msg.get("ranges", [])
        if old_path is not None and old_path != part.path:
            self._cursors_changed(old_path)
        if part.path is not None:
            self._cursors_changed(part.path)
        if self.follow == pid and self.on_follow is not None:
            asyncio.get_running_loop().create_task(self.on_follow(part))

    def _cursors_changed(self, path: str) -> None:
        doc = self.docs.get(path)
        if doc is not None and doc.uri is not None:
            self.editor.cursors_changed(doc.uri)

    def cursors(self, path: str) -> list[Participant]:
        me = self.hub.participant if self.hub else None
        return [p for p in self.participants.values() if p.path == path and p.id != me]

    def send_presence(self, uri: str, ranges: list[tuple[int, int]]) -> None:
        """Where the user's cursor is; sent at most every PRESENCE_INTERVAL (the newest wins)."""
        doc = self.by_uri.get(uri)
        if doc is None or doc.client is None or self.hub is None:
            return
        self._presence_out = (doc, [[a, h] for a, h in ranges][:64])
        if self._presence_timer is None:
            loop = asyncio.get_running_loop()
            wait = max(0.0, self._presence_sent + PRESENCE_INTERVAL - loop.time())
            self._presence_timer = loop.call_later(wait, self._flush_presence)

    def _flush_presence(self) -> None:
        self._presence_timer = None
        out, self._presence_out = self._presence_out, None
        if out is None or self.hub is None:
            return
        doc, ranges = out
        if doc.client is None:
            return
        self._presence_sent = asyncio.get_running_loop().time()
        self.hub.send({"type": "presence", "path": doc.path, "rev": doc.client.rev, "ranges": ranges})


def _next_seq(doc: SharedDocument) -> int:
    return doc.client.next_seq if doc.client is not None else 1


def _explain(code: str) -> str:
    return {
        "bad_invite": "the invite is not valid for this room (check that it was copied whole)",
        "no_such_room": "that room does not exist on this hub",
        "forbidden": "your role in this room does not allow that",
        "document_exists": "a document with that path already exists in the room",
        "no_such_document": "no such document in the room",
        "bad_path": "that path cannot be shared",
        "unavailable": "the hub is busy or shutting down; try again",
    }.get(code, f"the hub refused the request ({code})")
