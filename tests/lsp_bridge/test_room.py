"""The language server's room state machine (lsp_bridge.room), fed events by hand: every detour.

No sockets, no editor, no clock: :class:`Wire` plays the hub's side of the
protocol (docs/protocol.md) message by message, the way websockets' own
tests drive its protocol objects, and checks what the room sends and tells
the editor.  The hub's side of an op is the real sequencer
(:class:`~collab_server.document.Sequencer`), so acks and broadcasts are what
a hub would send.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from collab_core import ops
from collab_core.errors import CloseCode
from collab_server.document import ClientId, Rev, Sequenced, Sequencer, Submission
from lsp_bridge.completion import IdentifierIndex
from lsp_bridge.editor_sync import ContentChange, apply_changes
from lsp_bridge.room import (
    HELD_CARRY_LOOK,
    RECENT_CHARS,
    RECENT_REVS,
    ApplyEdit,
    CarryTaken,
    Connect,
    Disconnect,
    Done,
    DropHeld,
    HoldCarry,
    KeepCarry,
    Log,
    Notify,
    Progress,
    Restore,
    Room,
    RoomConfig,
    ShowMessage,
    TextChanged,
    TextReplaced,
)
from tests.support.room_time import advance

HUB = "ws://hub.test:8765"
LINK = "http://hub.test:8765"  # invites are links a browser opens too


class Wire:
    """A room, its clock, and the hub's half of the conversation, by hand."""

    def __init__(self, *, limits: dict[str, Any] | None = None, **config: Any) -> None:
        self.room = Room(name="Ada", encoding="utf-16", config=RoomConfig(**config))
        self.now = 100.0
        self.sent: list[dict[str, Any]] = []
        self.events: list[Any] = []
        self.limits = {"maxMessageBytes": 1 << 20, "rate": 1000, "burst": 2000, **(limits or {})}
        self.hub: dict[str, Sequencer] = {}
        self.ids = iter(range(1, 10**9))

    # -- the room's outputs --

    def step(self) -> None:
        self.sent += self.room.messages_to_send(self.now)
        self.events += self.room.events()

    def advance(self, seconds: float) -> None:
        """Let time pass, ticking at every wakeup on the way."""
        self.now = advance(self.room, self.now, seconds, self._stepped)

    def _stepped(self, now: float) -> None:
        self.now = now
        self.step()

    def take(self, kind: str, **match: Any) -> dict[str, Any]:
        """The first message of *kind* the room sent (and matching *match*), removed."""
        self.step()
        for i, m in enumerate(self.sent):
            if m["type"] == kind and all(m.get(k) == v for k, v in match.items()):
                return self.sent.pop(i)
        raise AssertionError(f"no {kind} {match} in {[m['type'] for m in self.sent]}")

    def all(self, kind: str) -> list[dict[str, Any]]:
        self.step()
        out = [m for m in self.sent if m["type"] == kind]
        self.sent = [m for m in self.sent if m["type"] != kind]
        return out

    def events_of(self, cls: type) -> list[Any]:
        self.step()
        out = [e for e in self.events if isinstance(e, cls)]
        self.events = [e for e in self.events if not isinstance(e, cls)]
        return out

    def done(self, ticket: int) -> Done:
        for e in self.events_of(Done):
            if e.ticket == ticket:
                return e
        raise AssertionError(f"ticket {ticket} not done")

    # -- the hub's side --

    def feed(self, msg: dict[str, Any]) -> None:
        self.room.receive(msg, self.now)
        self.step()

    def reply(self, request: dict[str, Any], **fields: Any) -> None:
        self.feed({**fields, "id": request["id"]})

    def connect(self) -> dict[str, Any]:
        """The socket opens; the hello is answered; returns the hello."""
        connects = self.events_of(Connect)
        assert connects and connects[-1].url == HUB
        self.room.connection_opened(self.now)
        hello = self.take("hello")
        self.reply(hello, type="welcome", protocol=1, participant="me", limits=self.limits)
        return hello

    def create(self, *, documents: list[dict[str, Any]] | None = None, room: str = "R") -> dict[str, Any]:
        ticket = self.room.create(HUB, "r", f"client-{next(self.ids)}", self.now)
        self.step()
        hello = self.connect()
        req = self.take("create_room")
        self.reply(
            req,
            type="room_created",
            room=room,
            role="owner",
            participant="me",
            author="ada-author",
            participants=[{"id": "me", "name": "Ada", "role": "owner"}],
            documents=documents or [],
            presence=[],
            ownerSecret="O" * 43,
            editorSecret="E" * 43,
            viewerSecret="V" * 43,
        )
        assert self.done(ticket).result is not None
        return hello

    def rejoin(self, documents: list[dict[str, Any]] | None = None, role: str = "owner") -> dict[str, Any]:
        """After a reconnect: hello, then join with the owner's secret, answered."""
        hello = self.connect()
        join = self.take("join")
        assert join["room"] == "R"
        self.reply(
            join,
            type="joined",
            room="R",
            role=role,
            participant="me",
            author="ada-author",
            participants=[
                {"id": "me", "name": "Ada", "role": role},
                {"id": "bob", "name": "Bob", "role": "editor"},
            ],
            documents=documents
            if documents is not None
            else [{"path": p, "rev": s.rev} for p, s in self.hub.items()],
            presence=[],
        )
        return hello

    def hub_doc(self, path: str, text: str = "") -> Sequencer:
        seq = self.hub[path] = Sequencer(text, 0)
        return seq

    def commit(self, path: str, msg: dict[str, Any]) -> Sequenced:
        """The hub takes an op the room sent: sequenced, committed, acked."""
        seq = self.hub[path]
        out = seq.submit(
            Submission(ClientId("room"), msg["seq"], Rev(msg["rev"]), ops.check(msg["op"]), "me")
        )
        assert isinstance(out, Sequenced), out
        seq.commit(seq.take_unsent()[-1].rev)
        self.feed({"type": "ack", "path": path, "seq": msg["seq"], "rev": out.rev})
        return out

    def peer_op(self, path: str, op: ops.Op, author: str = "bob", *, deliver: bool = True) -> dict[str, Any]:
        seq = self.hub[path]
        n = getattr(seq, "_bob", 0) + 1
        seq._bob = n  # type: ignore[attr-defined]
        out = seq.submit(Submission(ClientId(author), n, seq.rev, op, author))
        assert isinstance(out, Sequenced)
        seq.commit(seq.take_unsent()[-1].rev)
        msg = {"type": "op", "path": path, "rev": out.rev, "op": out.op, "author": author}
        if deliver:
            self.feed(msg)
        return msg

    def opened(self, req: dict[str, Any], **extra: Any) -> None:
        seq = self.hub[req["path"]]
        if "since" in req:
            entries = [
                {
                    "rev": s.rev,
                    "op": s.op,
                    "author": s.author,
                    **({"seq": s.seq} if s.client_id == "room" else {}),
                }
                for s in seq.ops_since(req["since"]) or []
            ]
            self.reply(req, type="opened", path=req["path"], rev=seq.committed_rev, ops=entries, **extra)
        else:
            self.reply(req, type="opened", path=req["path"], rev=seq.committed_rev, text=seq.committed_text)

    def share(self, uri: str, path: str, text: str, version: int = 1) -> int:
        ticket = self.room.share(uri, path, text, version, self.now)
        self.step()
        return ticket

    def type(self, uri: str, version: int, start: tuple[int, int], text: str) -> None:
        self.room.editor_changed(uri, version, [ContentChange((*start, *start), text)], self.now)
        self.step()

    def lost(self, code: int | None = 1006, reason: str | None = None) -> None:
        self.room.connection_closed(code, self.now, reason)
        self.step()


def _share_created(w: Wire, uri: str, path: str, text: str) -> tuple[int, dict[str, Any]]:
    """Share a new document: created from the buffer, opened since 0."""
    ticket = w.share(uri, path, text)
    create = w.take("create_document", path=path)
    w.hub_doc(path, create["text"])
    w.reply(create, type="document_created", path=path, rev=0)
    req = w.take("open", path=path)
    assert req["since"] == 0
    w.opened(req)
    return ticket, create


# -- room entries and client ids ----------------------------------------------------------------


def test_each_room_entry_says_hello_with_a_new_client_id() -> None:
    w = Wire()
    first = w.create()
    _share_created(w, "file:///a.txt", "a.txt", "")
    w.type("file:///a.txt", 2, (0, 0), "x")
    op = w.take("op")
    assert op["seq"] == 1
    w.commit("a.txt", op)
    assert w.done(w.room.leave(w.now)).result == {}
    assert w.take("leave") and w.events_of(Disconnect)
    second = w.create()
    assert second["clientId"] != first["clientId"]
    _share_created(w, "file:///a.txt", "b.txt", "")
    w.type("file:///a.txt", 2, (0, 0), "y")
    # seq starts again at 1, but under a new client id: the hub never takes it for the old one
    op = w.take("op")
    assert op["seq"] == 1


def test_a_reconnect_keeps_the_client_id_of_the_entry() -> None:
    w = Wire()
    first = w.create()
    w.lost()
    w.advance(6)
    again = w.rejoin()
    assert again["clientId"] == first["clientId"]


# -- leaving ------------------------------------------------------------------------------------


def _join_again(w: Wire, client_id: str, documents: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """Join room R with its editor invite (a new entry, offered *client_id*); returns the ticket
    and the hello."""
    ticket = w.room.join(f"{HUB}/room/R#" + "E" * 43, client_id, w.now)
    w.step()
    hello = w.connect()
    join = w.take("join")
    w.reply(
        join,
        type="joined",
        room="R",
        role="editor",
        participant="me",
        participants=[{"id": "me", "name": "Ada", "role": "editor"}],
        documents=documents,
        presence=[],
    )
    assert w.done(ticket).result is not None
    return ticket, hello


def test_leaving_waits_until_the_hub_has_what_was_typed() -> None:
    w = Wire()
    hello = w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.events_of(Done)
    w.type("file:///x.txt", 2, (0, 3), "!")
    first = w.take("op")
    w.type("file:///x.txt", 3, (0, 4), "?")  # waits behind it
    ticket = w.room.leave(w.now)
    w.step()
    # still in the room, nothing said yet: the typing goes first
    assert w.room.in_room and w.room.status()["leaving"]
    assert not w.all("leave") and not w.events_of(Disconnect) and not w.events_of(Done)
    w.commit("x.txt", first)
    w.commit("x.txt", w.take("op"))
    assert w.done(ticket).result == {}
    assert w.take("leave") and w.events_of(Disconnect) and not w.room.in_room
    assert w.hub["x.txt"].committed_text == "abc!?"
    assert not w.events_of(ShowMessage) and w.room.stats["left_unsent"] == 0
    # with nothing unsent, the next entry is a new client
    again = w.create()
    assert again["clientId"] != hello["clientId"]


def test_leaving_with_nothing_unsent_is_at_once() -> None:
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    assert w.done(w.room.leave(w.now)).result == {}
    assert w.take("leave") and w.events_of(Disconnect)
    w.advance(30)
    assert not w.events_of(Connect) and not w.sent


@pytest.mark.parametrize("committed", [False, True], ids=["never-received", "committed-unheard"])
def test_a_leave_the_hub_cannot_hear_keeps_the_typing_for_the_next_entry(committed: bool) -> None:
    """The hub is away while leaving: after leave_timeout the room is left, said once, and the
    next entry into it is the same client, which sends the typing (or finds it committed)."""
    w = Wire()
    hello = w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.type("file:///x.txt", 2, (0, 3), "!")
    op = w.take("op")
    if committed:  # the hub committed it, the ack was lost with the connection
        seq = w.hub["x.txt"]
        seq.submit(Submission(ClientId("room"), op["seq"], Rev(op["rev"]), op["op"], "me"))
        seq.commit(seq.take_unsent()[-1].rev)
    w.lost()
    w.type("file:///x.txt", 3, (0, 4), "?")  # typed offline
    w.peer_op("x.txt", ["<"], deliver=False)  # meanwhile in the room
    w.events_of(Done)
    assert "lost the connection" in w.events_of(ShowMessage)[0].text
    ticket = w.room.leave(w.now)
    w.advance(4.9)
    assert w.room.in_room and not w.events_of(Done)  # reconnects come and go unanswered
    w.advance(0.2)
    assert w.done(ticket).result == {"unsent": ["x.txt"]}
    (said,) = w.events_of(ShowMessage)
    assert said.text == (
        "pairls: left the room before the hub had your last edits to x.txt; "
        "they stay in your editor and go to the room when you join it again"
    )
    assert not said.error and w.events_of(Disconnect) and not w.room.in_room
    assert w.room.stats["left_unsent"] == 1
    w.events_of(Connect)
    w.advance(30)
    assert not w.events_of(Connect) and not w.events_of(ShowMessage)  # out means out
    w.sent.clear()

    # back in: the same client id; the document is caught up since our revision
    _, again = _join_again(w, "client-new", [{"path": "x.txt", "rev": w.hub["x.txt"].rev}])
    assert again["clientId"] == hello["clientId"] and w.room.stats["carried"] == 1
    req = w.take("open", path="x.txt")
    assert req["since"] == 0  # our revision when we left
    w.opened(req)
    pending = w.all("op")
    if committed:  # recognised in the catch-up by its seq: what was typed after it goes
        assert [p["seq"] for p in pending] == [op["seq"] + 1]
    else:
        assert pending[0]["seq"] == op["seq"]  # the same op again: never applied twice
    for sent in pending:
        w.commit("x.txt", sent)
    for sent in w.all("op"):
        w.commit("x.txt", sent)
    # the buffer shares again with what it shows; the room's ops reach it
    w.share("file:///x.txt", "x.txt", "abc!?", version=3)
    (edit,) = w.events_of(ApplyEdit)  # what happened in the room meanwhile
    assert ops.apply("abc!?", _op_of(edit, "abc!?")) == "<abc!?"
    assert w.hub["x.txt"].committed_text == "<abc!?"  # once each
    assert w.room.document_text("x.txt") == w.hub["x.txt"].committed_text
    assert w.room.heals == 0


@pytest.mark.parametrize("left_first", [False, True], ids=["exiting", "leaving-then-exiting"])
def test_an_editor_going_with_the_hub_away_keeps_the_typing_for_the_next_server(
    left_first: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """The editor is going (``shutdown``, a signal), with the hub away: the room waits for the
    acknowledgements as a leave does, but 2 s at most, then goes, and hands what the hub never acknowledged to
    the shell to keep (:class:`KeepCarry`, plain JSON), saying nothing to an editor that is
    gone.  The next server, another process, takes it back at its entry into the room: the same
    client, the same seqs, the typing committed once."""
    w = Wire()
    hello = w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.type("file:///x.txt", 2, (0, 3), "!")
    op = w.take("op")
    w.lost()
    w.type("file:///x.txt", 3, (0, 4), "?")  # typed offline
    w.events_of(ShowMessage)  # (lost the connection)
    w.events_of(Done)
    tickets = []
    if left_first:  # the user leaves, and closes the editor a second later
        tickets.append(w.room.leave(w.now))
        w.advance(1)
    tickets.append(w.room.leave(w.now, exiting=True))
    w.advance(1.9)  # (exit_timeout, 2 s from the exit, sooner than the leave's 5 s)
    assert w.room.in_room and not w.events_of(Done)
    w.advance(0.2)
    assert {d.ticket: d.result for d in w.events_of(Done)} == {t: {"unsent": ["x.txt"]} for t in tickets}
    assert not w.events_of(ShowMessage) and not w.room.in_room
    assert w.room.stats["left_unsent"] == 1
    (kept,) = w.events_of(KeepCarry)
    assert kept.room_id == "R"
    said = [r.getMessage() for r in caplog.records if r.name == "lsp_bridge.room"]
    assert said == [
        "exiting before the hub had the last edits to 1 document(s): kept for the next entry into the room"
    ]
    assert "abc" not in caplog.text
    saved = json.loads(json.dumps(kept.saved))  # (what a file holds)

    # the next server: a new room, the same hub; the editor opened the saved file
    w2 = Wire()
    w2.hub = w.hub
    assert w2.room.restore_carry(saved) is Restore.TAKEN
    _, again = _join_again(w2, "client-new", [{"path": "x.txt", "rev": w.hub["x.txt"].rev}])
    assert again["clientId"] == hello["clientId"] and w2.room.stats["carried"] == 1
    (taken,) = w2.events_of(CarryTaken)
    assert taken.room_id == "R"
    req = w2.take("open", path="x.txt")
    assert req["since"] == 0
    w2.opened(req)
    (sent,) = w2.all("op")
    assert sent["seq"] == op["seq"]  # the op in flight again: never applied twice
    w2.commit("x.txt", sent)
    for more in w2.all("op"):
        w2.commit("x.txt", more)
    assert w.hub["x.txt"].committed_text == "abc!?"
    w2.share("file:///x.txt", "x.txt", "abc!?", version=1)
    assert w2.room.document_text("x.txt") == "abc!?" and w2.room.heals == 0


def _commit_all(w: Wire, path: str) -> None:
    """The hub takes every op the room sends, acknowledging each (the next goes on the ack)."""
    while sent := w.all("op"):
        for msg in sent:
            w.commit(path, msg)


def test_what_the_hub_has_not_acknowledged_for_a_second_is_held_for_a_server_killed_without_a_word() -> None:
    """kill -9, the OOM killer, a crash: the server has no time to keep anything at exit.  So what
    the hub has not acknowledged for ``hold_after`` (1 s) goes to the shell to keep at once
    (:class:`HoldCarry`, the JSON an exit keeps), and again once more is typed; the next server,
    another process, takes it back as it takes what an exit kept, and the room gets the typing
    once.  Typing sent on a connection the hub answers on is not held, however slow its answer."""
    w = Wire()
    hello = w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.type("file:///x.txt", 2, (0, 3), "!")
    slow = w.take("op")
    w.advance(1.5)  # connected, the hub slow to acknowledge: its answer will come, nothing held
    assert not w.events_of(HoldCarry)
    w.commit("x.txt", slow)
    w.advance(5)
    assert not w.events_of(HoldCarry)
    w.type("file:///x.txt", 3, (0, 4), "?")
    in_flight = w.take("op")
    w.lost()  # (the op in flight is unacknowledged from here on)
    w.advance(0.9)
    assert not w.events_of(HoldCarry)
    w.advance(0.2)
    (held,) = w.events_of(HoldCarry)
    assert (held.room_id, held.client_id) == ("R", hello["clientId"])
    w.advance(3)
    assert not w.events_of(HoldCarry)  # (nothing new: not written again)
    w.type("file:///x.txt", 4, (0, 5), "#")  # typed offline
    w.peer_op("x.txt", ["<"], deliver=False)  # meanwhile in the room
    w.advance(1.1)
    (held,) = w.events_of(HoldCarry)
    assert w.room.stats["held"] == 2 and not w.events_of(DropHeld)
    saved = json.loads(json.dumps(held.saved))  # (what the file holds)

    # the server is killed here; the next one finds the held copy
    w2 = Wire()
    w2.hub = w.hub
    assert w2.room.restore_carry(saved) is Restore.TAKEN
    _, again = _join_again(w2, "client-new", [{"path": "x.txt", "rev": w.hub["x.txt"].rev}])
    assert again["clientId"] == hello["clientId"]
    req = w2.take("open", path="x.txt")
    w2.opened(req)
    (sent,) = w2.all("op")
    assert sent["seq"] == in_flight["seq"]  # the op in flight again: never applied twice
    w2.commit("x.txt", sent)
    _commit_all(w2, "x.txt")
    assert w.hub["x.txt"].committed_text == "<abc!?#"
    w2.share("file:///x.txt", "x.txt", "<abc!?#", version=1)
    assert w2.room.document_text("x.txt") == "<abc!?#" and w2.room.heals == 0


def _type_offline_until_held(w: Wire, version: int, at: tuple[int, int], text: str) -> None:
    """*text* typed in x.txt and sent, the connection lost with it in flight, a second gone: held."""
    w.type("file:///x.txt", version, at, text)
    w.take("op")
    w.lost()
    w.advance(1.1)
    assert len(w.events_of(HoldCarry)) == 1


def _held_once() -> Wire:
    """A room with x.txt ("abc"), "!" typed and held (the hub away)."""
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    _type_offline_until_held(w, 2, (0, 3), "!")
    return w


def test_a_held_copy_is_dropped_once_the_hub_has_it_all_and_replaced_by_what_an_exit_keeps() -> None:
    """Back online, the held copy is done with once the hub has acknowledged everything
    (:class:`DropHeld`, at the next look); held again when the hub goes away again; and an exit
    with the hub away keeps it all (:class:`KeepCarry`), which replaces the held copy: no
    DropHeld after it."""
    w = _held_once()
    w.advance(5)
    w.rejoin()
    w.opened(w.take("open", path="x.txt"))
    _commit_all(w, "x.txt")
    assert w.hub["x.txt"].committed_text == "abc!"
    assert not w.events_of(DropHeld)
    w.advance(1.1)
    assert len(w.events_of(DropHeld)) == 1
    w.advance(10)
    assert not w.events_of(HoldCarry) and not w.events_of(DropHeld)

    _type_offline_until_held(w, 3, (0, 4), "?")
    w.room.leave(w.now, exiting=True)
    w.advance(2.1)
    (kept,) = w.events_of(KeepCarry)
    assert kept.room_id == "R" and not w.room.in_room
    assert not w.events_of(DropHeld)  # (the shell replaces the held copy with the kept one)
    w.advance(10)
    assert not w.events_of(HoldCarry) and not w.events_of(DropHeld)


def test_an_exit_holds_what_the_hub_has_not_acknowledged_at_once() -> None:
    """The editor goes a moment after a key the hub has not acknowledged (offline): the room
    holds it on disk as the exit's wait begins, not a second on (``hold_after``), since the next
    server of the user may start within that wait (an editor reloaded) and looks for it; the
    wait's end keeps it in place of the held copy.  On a connection the hub answers on, an exit
    holds nothing: the acknowledgement comes in milliseconds."""
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.type("file:///x.txt", 2, (0, 3), "!")
    w.take("op")
    w.lost()
    w.advance(0.2)
    assert not w.events_of(HoldCarry)
    w.room.leave(w.now, exiting=True)
    (held,) = w.events_of(HoldCarry)
    assert held.room_id == "R" and w.room.stats["held"] == 1
    w.advance(2.1)
    (kept,) = w.events_of(KeepCarry)
    assert kept.saved == held.saved and not w.events_of(DropHeld) and not w.room.in_room

    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.type("file:///x.txt", 2, (0, 3), "!")
    in_flight = w.take("op")
    w.room.leave(w.now, exiting=True)
    assert not w.events_of(HoldCarry) and w.room.in_room
    w.commit("x.txt", in_flight)
    assert not w.events_of(HoldCarry) and not w.events_of(KeepCarry) and not w.room.in_room


def _left_holding() -> tuple[Wire, HoldCarry]:
    """A room with x.txt ("abc"), "!" typed and held (the hub away), then left (not exiting):
    the leave's carry, held on disk."""
    w = _held_once()
    w.room.leave(w.now)
    w.advance(5.1)
    assert not w.room.in_room and w.room.stats["left_unsent"] == 1
    (held,) = w.events_of(HoldCarry)
    assert not w.events_of(DropHeld) and not w.events_of(KeepCarry)
    return w, held


def test_what_a_leave_could_not_deliver_is_held_on_disk_for_a_server_killed_before_it_joins_again() -> None:
    """Leaving (not exiting) with the hub away keeps the changes in memory for the next entry of
    this server; until then they are held on disk as well (:class:`HoldCarry`, not dropped with
    the room): killed before that entry, the server leaves them to the next, which sends them
    once.  A leave with everything acknowledged drops a held copy, as before."""
    w, held = _left_holding()
    assert held.room_id == "R" and set(held.saved["docs"]) == {"x.txt"}
    w.advance(30)
    assert not w.events_of(HoldCarry) and not w.events_of(DropHeld)

    # killed here; the next server finds the held copy
    w2 = Wire()
    w2.hub = w.hub
    assert w2.room.restore_carry(json.loads(json.dumps(held.saved))) is Restore.TAKEN
    _join_again(w2, "client-new", [{"path": "x.txt", "rev": w.hub["x.txt"].rev}])
    w2.opened(w2.take("open", path="x.txt"))
    _commit_all(w2, "x.txt")
    assert w.hub["x.txt"].committed_text == "abc!"

    # held, the hub back and acknowledging it all, then left before the next look: dropped
    w3 = _held_once()
    w3.rejoin()
    w3.opened(w3.take("open", path="x.txt"))
    _commit_all(w3, "x.txt")
    w3.room.leave(w3.now)
    w3.advance(0.1)
    assert len(w3.events_of(DropHeld)) == 1 and not w3.events_of(HoldCarry)


def test_an_entry_that_takes_a_leaves_carry_back_drops_its_held_copy_once_the_hub_has_it() -> None:
    """This server joins the room it left again: the carry is its, and the copy on disk is
    done with once the hub has acknowledged it all (:class:`DropHeld` at the next look)."""
    w, _ = _left_holding()
    _join_again(w, "client-new", [{"path": "x.txt", "rev": w.hub["x.txt"].rev}])
    assert len(w.events_of(CarryTaken)) == 1
    w.opened(w.take("open", path="x.txt"))
    _commit_all(w, "x.txt")
    assert w.hub["x.txt"].committed_text == "abc!"
    w.advance(1.1)
    assert len(w.events_of(DropHeld)) == 1 and not w.events_of(HoldCarry)


def test_an_entry_into_another_room_keeps_a_leaves_carry_on_disk() -> None:
    """This server enters another room: the carry goes to the shell to keep on disk (in place
    of its held copy) for a later entry into its room.  An entry that fails keeps it held."""
    w, held = _left_holding()
    failed = w.room.create(HUB, "r2", "client-other", w.now)
    w.step()
    w.events_of(Connect)
    w.room.connection_closed(1006, w.now, None)
    w.advance(60)
    assert w.done(failed).error is not None and not w.room.in_room
    assert not w.events_of(DropHeld) and not w.events_of(KeepCarry)
    w.create(room="R2")
    (kept,) = w.events_of(KeepCarry)
    assert (kept.room_id, kept.client_id, kept.saved) == (held.room_id, held.client_id, held.saved)
    assert not w.events_of(DropHeld) and not w.events_of(CarryTaken)


def _kept_elsewhere(room_id: str) -> dict[str, Any]:
    """A carry as an earlier server kept it, of *room_id*: "ab" at rev 1, "!" in flight as seq 2."""
    client = {
        "rev": 1,
        "shadow": "ab",
        "outstanding": {"seq": 2, "op": [2, "!"]},
        "buffer": None,
        "nextSeq": 3,
    }
    return {
        "version": 1,
        "roomId": room_id,
        "clientId": "earlier",
        "seqs": {"x.txt": 3},
        "docs": {"x.txt": {"create": False, "need": None, "client": client}},
    }


def test_a_kept_carry_is_restored_only_before_an_entry() -> None:
    w = Wire()
    w.create()
    assert w.room.restore_carry(_kept_elsewhere("OTHER")) is Restore.NOT_NOW  # (in a room)
    assert w.room.stats["carries_unreadable"] == 0


def test_a_carry_of_another_room_is_kept_on_disk_when_this_server_enters_a_room() -> None:
    """A carry from another room that no entry took back is not dropped, nor left in memory
    only, when this server enters a room: it goes to the shell to keep, as at exit; leaving this
    room with edits unsent then makes a carry of its own, held."""
    w = Wire()
    assert w.room.restore_carry(_kept_elsewhere("OTHER")) is Restore.TAKEN
    assert w.room.restore_carry(_kept_elsewhere("THIRD")) is Restore.NOT_NOW  # (holds one)
    w.create()  # (room R: the carry of OTHER is not this entry's)
    (kept,) = w.events_of(KeepCarry)
    assert kept.room_id == "OTHER" and kept.saved == _kept_elsewhere("OTHER")
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.type("file:///x.txt", 2, (0, 3), "!")
    w.take("op")
    w.lost()
    w.room.leave(w.now)
    w.advance(5.1)
    assert not w.events_of(KeepCarry)
    assert [h.room_id for h in w.events_of(HoldCarry)] == ["R", "R"]  # (offline for 1 s; the leave)
    assert w.room.stats["left_unsent"] == 1


def _wait_for_carry(w: Wire, held_until: float) -> list[float]:
    """Run the shell's loop before an entry against a holder that ends at *held_until*: the
    times the room had the shell look on disk (the last one lets the entry go)."""
    looks = [w.now]
    while (wait := w.room.wait_for_carry(lambda: w.now < held_until, w.now)) is not None:
        assert 0 < wait <= HELD_CARRY_LOOK
        w.now += wait
        looks.append(w.now)
    return looks


def test_an_entry_waits_for_another_servers_carry_until_that_server_keeps_it() -> None:
    """An editor reloaded offline: the old server holds its carry while its exit's wait runs,
    and ends 1.2 s later. The entry looks every 50 ms and goes on at the first look after it."""
    w = Wire(exit_timeout=2.0)
    start = w.now
    looks = _wait_for_carry(w, held_until=start + 1.2)
    assert looks[-1] - start == pytest.approx(1.2, abs=HELD_CARRY_LOOK)
    assert len(looks) == pytest.approx(1.2 / HELD_CARRY_LOOK + 1, abs=2)
    assert (w.room.stats["carry_waits"], w.room.stats["carry_waits_given_up"]) == (1, 0)


def test_an_entry_gives_up_on_a_carry_its_holder_never_lets_go(caplog: pytest.LogCaptureFixture) -> None:
    """Another editor of the user is offline in the room and keeps running: its carry stays
    with it. The entry waits the exit's wait and a second, then goes on without it, said and
    counted; a later entry waits again."""
    w = Wire(exit_timeout=2.0)
    start = w.now
    with caplog.at_level(logging.WARNING):
        looks = _wait_for_carry(w, held_until=float("inf"))
    assert looks[-1] - start == pytest.approx(3.0)
    assert (w.room.stats["carry_waits"], w.room.stats["carry_waits_given_up"]) == (1, 1)
    assert "joining without them" in caplog.text
    assert _wait_for_carry(w, held_until=float("inf"))[-1] - looks[-1] == pytest.approx(3.0)
    assert w.room.stats["carry_waits_given_up"] == 2


def test_an_entry_that_would_take_no_carry_does_not_wait_for_one() -> None:
    """Nothing held elsewhere, or a carry of this server's own already in hand, or in a room
    already: the entry goes at once, and no wait is counted. The shell's look on disk is made
    only for an entry that would take a carry."""
    looked: list[float] = []

    def held() -> bool:
        looked.append(w.now)
        return True

    w = Wire()
    assert w.room.wait_for_carry(lambda: False, w.now) is None
    assert w.room.restore_carry(_kept_elsewhere("R")) is Restore.TAKEN
    assert w.room.wait_for_carry(held, w.now) is None
    w = Wire()
    w.create()
    assert w.room.wait_for_carry(held, w.now) is None
    assert w.room.stats["carry_waits"] == 0
    assert looked == []


def test_a_kept_carry_that_cannot_be_read_is_counted_and_not_taken(caplog: pytest.LogCaptureFixture) -> None:
    w = Wire()
    for broken in (
        None,
        {"version": 2},
        {"version": 1, "roomId": "R", "clientId": "c", "seqs": {}, "docs": {}},
        {"version": 1, "roomId": "R", "clientId": "c", "seqs": {"x.txt": 0}, "docs": {"x.txt": {}}},
        {
            "version": 1,
            "roomId": "R",
            "clientId": "c",
            "seqs": {"x.txt": 3},
            "docs": {
                "x.txt": {
                    "create": False,
                    "need": None,
                    # an op in flight that does not fit the text
                    "client": {
                        "rev": 1,
                        "shadow": "ab",
                        "outstanding": {"seq": 2, "op": [5, "x"]},
                        "buffer": None,
                        "nextSeq": 3,
                    },
                }
            },
        },
    ):
        assert w.room.restore_carry(broken) is Restore.UNREADABLE
    assert w.room.stats["carries_unreadable"] == 5
    hello = w.create()
    assert w.room.stats["carried"] == 0 and hello["clientId"] != "c"


def test_the_next_entry_of_a_carried_client_goes_on_with_every_documents_seq() -> None:
    """Seq numbers of the documents that had nothing unsent go on too: the hub would take a
    seq 1 of the same client for the acknowledged op it already has."""
    w = Wire()
    w.create()
    _share_created(w, "file:///a.txt", "a.txt", "")
    _share_created(w, "file:///b.txt", "b.txt", "")
    for v in (2, 3):
        w.type("file:///a.txt", v, (0, 0), "a")
        w.commit("a.txt", w.take("op"))
    w.type("file:///b.txt", 2, (0, 0), "b")
    w.take("op")
    w.lost()
    ticket = w.room.leave(w.now)
    w.advance(6)
    assert w.done(ticket).result == {"unsent": ["b.txt"]}
    w.sent.clear()
    _join_again(w, "client-new", [{"path": p, "rev": s.rev} for p, s in w.hub.items()])
    for req in w.all("open"):
        w.opened(req)
    w.commit("b.txt", w.take("op", path="b.txt"))
    w.share("file:///a.txt", "a.txt", "aa", version=4)
    w.type("file:///a.txt", 5, (0, 2), "!")
    assert w.take("op", path="a.txt")["seq"] == 3


def test_entering_while_a_leave_waits_is_refused_in_words() -> None:
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.type("file:///x.txt", 2, (0, 3), "!")
    w.room.leave(w.now)
    ticket = w.room.join(f"{HUB}/room/R#" + "E" * 43, "client-x", w.now)
    assert (
        w.done(ticket).error == "still leaving the room (sending what you typed last); try again in a moment"
    )


# -- sharing ------------------------------------------------------------------------------------


def test_two_buffers_of_one_path_are_one_document() -> None:
    w = Wire()
    w.create()
    _share_created(w, "file:///a/x.py", "x.py", "abc\n")
    ticket = w.share("file:///b/x.py", "x.py", "abc\n")
    assert w.done(ticket).result == {"path": "x.py", "rev": 0, "text": "abc\n"}
    assert not w.all("create_document") and not w.all("open")
    w.type("file:///a/x.py", 2, (0, 3), "!")
    op = w.take("op")
    assert op["seq"] == 1 and op["op"] == [3, "!"]
    # the other buffer shows it
    (edit,) = w.events_of(ApplyEdit)
    assert edit.uri == "file:///b/x.py" and edit.edit.edits[0].new_text == "!"


def test_typing_while_the_share_is_under_way_is_kept() -> None:
    w = Wire()
    w.create()
    ticket = w.share("file:///x.py", "x.py", "hello\n")
    create = w.take("create_document")
    w.type("file:///x.py", 2, (0, 5), " world")  # before the hub answered
    w.hub_doc("x.py", create["text"])
    w.reply(create, type="document_created", path="x.py", rev=0)
    w.peer_op("x.py", ["> "], deliver=False)  # a peer was quicker than our open
    req = w.take("open", path="x.py")
    w.opened(req)
    assert w.done(ticket).result is not None
    op = w.take("op")
    assert op["rev"] == 1 and ops.apply("> hello\n", op["op"]) == "> hello world\n"
    (edit,) = w.events_of(ApplyEdit)  # the peer's text reaches the buffer
    assert edit.edit.edits[0].new_text == "> "
    assert not w.room.heals


def test_the_rooms_text_wins_and_typing_during_the_share_is_rebased_onto_it() -> None:
    w = Wire()
    w.create(documents=[{"path": "x.txt", "rev": 3}])
    w.hub_doc("x.txt", "Hello, world!")
    # following it began; the editor opens its own (older) copy meanwhile and the user types
    follow = w.take("open", path="x.txt")
    ticket = w.share("file:///x.txt", "x.txt", "hello world")
    w.type("file:///x.txt", 2, (0, 5), " big")
    w.opened(follow)
    assert w.done(ticket).result is not None
    # the room's text wins over the local copy, and the typing is kept on top of it
    (edit,) = w.events_of(ApplyEdit)
    assert ops.apply("hello big world", _op_of(edit, "hello big world")) == "Hello big, world!"
    op = w.take("op")
    assert ops.apply("Hello, world!", op["op"]) == "Hello big, world!"


def test_typing_into_an_older_copy_is_rebased_onto_the_rooms_text() -> None:
    w = Wire()
    w.create()
    w.hub_doc("x.txt", "Hello, world!")
    w.feed({"type": "document_added", "path": "x.txt", "rev": 0, "by": "bob"})
    follow = w.take("open", path="x.txt")
    ticket = w.share("file:///x.txt", "x.txt", "Hello, world!")
    w.type("file:///x.txt", 2, (0, 5), " big")  # typed before the room's text arrived
    w.opened(follow)
    assert w.done(ticket).result is not None
    op = w.take("op")
    assert ops.apply("Hello, world!", op["op"]) == "Hello big, world!"
    assert not w.events_of(ApplyEdit)  # the buffer already shows it


def _op_of(edit: ApplyEdit, text: str) -> ops.Op:
    """The op an ApplyEdit makes on *text* (UTF-16 positions, ASCII here)."""
    from lsp_bridge.positions import LineIndex

    idx = LineIndex.of(text)
    out: ops.Op = []
    spans = sorted(
        (idx.offset(*e.start, "utf-16"), idx.offset(*e.end, "utf-16"), e.new_text) for e in edit.edit.edits
    )
    pos = 0
    for s, e, new in spans:
        out += [s - pos, new, -(e - s)]
        pos = e
    return ops.normalize(out)


# -- size ---------------------------------------------------------------------------------------


def test_a_big_paste_goes_in_pieces_that_fit_the_hubs_frames() -> None:
    w = Wire(limits={"maxMessageBytes": 2000})
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "")
    paste = 'línea 😀 "citada"\n' * 600  # ~11 kB
    w.type("file:///x.txt", 2, (0, 0), paste)
    pieces = 0
    while True:
        ops_sent = w.all("op")
        if not ops_sent:
            break
        assert len(ops_sent) == 1, "one op in flight"
        (op,) = ops_sent
        assert len(json.dumps(op, ensure_ascii=False, separators=(",", ":")).encode()) <= 2000
        w.commit("x.txt", op)
        pieces += 1
    assert pieces >= 6 and w.hub["x.txt"].committed_text == paste


def _shown(w: Wire, uri: str, version: int, text: str, fix: ApplyEdit) -> str:
    """The editor applies *fix* to *text* (UTF-16 columns of ASCII and U+FFFD only) and says so
    at *version*, its places last to first; returns the new text."""
    w.room.edit_answered(uri, True, w.now)
    lines = text.split("\n")
    changes = []
    for e in reversed(fix.edit.edits):
        (sl, sc), (el, ec) = e.start, e.end
        assert sl == el
        lines[sl] = lines[sl][:sc] + e.new_text + lines[sl][ec:]
        changes.append(ContentChange((sl, sc, el, ec), e.new_text))
    w.room.editor_changed(uri, version, changes, w.now)
    w.step()
    assert not w.all("op")  # (the change was our edit, not the user's)
    return "\n".join(lines)


def test_text_the_hub_refuses_goes_as_replacement_characters_and_the_editor_shows_them() -> None:
    """NUL and half a UTF-16 pair (an editor's odd buffer): the hub refuses both, so they go as
    U+FFFD, one code point for one, and the editor is brought to that; said once per document."""
    w = Wire()
    w.create()
    uri = "file:///x.txt"
    buffer = "a\x00b\ud800c\n"
    _, create = _share_created(w, uri, "x.txt", buffer)
    assert create["text"] == "a\ufffdb\ufffdc\n"
    (fix,) = w.events_of(ApplyEdit)
    buffer = _shown(w, uri, 2, buffer, fix)
    assert buffer == "a\ufffdb\ufffdc\n"
    # typed: a lone surrogate and a NUL, each an op of its own
    for version, (col, ch) in [(3, (5, "\udc00")), (5, (6, "\x00"))]:
        buffer = buffer[:col] + ch + buffer[col:]
        w.type(uri, version, (0, col), ch)
        (op,) = w.all("op")
        assert "\ufffd" in op["op"] and ch not in json.dumps(op["op"])
        w.commit("x.txt", op)
        (fix,) = w.events_of(ApplyEdit)
        buffer = _shown(w, uri, version + 1, buffer, fix)
    assert buffer == w.hub["x.txt"].committed_text == "a\ufffdb\ufffdc\ufffd\ufffd\n"
    assert not w.events_of(ApplyEdit)  # (nothing more to show: the editor has the room's text)
    said = [e.text for e in w.events_of(ShowMessage) if "cannot be shared" in e.text]
    assert len(said) == 1 and "x.txt" in said[0]
    # and a program's output (a run's, appended) with NUL goes the same way, unsaid
    ticket = w.room.publish("out.txt", "", w.now)
    w.step()
    create = w.take("create_document", path="out.txt")
    w.hub_doc("out.txt", create["text"])
    w.reply(create, type="document_created", path="out.txt", rev=0)
    w.opened(w.take("open", path="out.txt"))
    assert w.done(ticket).result is not None
    assert w.room.append("out.txt", "ok\x00\n", w.now)
    w.step()
    (op,) = w.all("op")
    assert op["op"] == ["ok\ufffd\n"]
    assert not [e for e in w.events_of(ShowMessage) if "cannot be shared" in e.text]


def test_a_file_too_big_for_one_frame_is_created_empty_and_sent_as_ops() -> None:
    w = Wire(limits={"maxMessageBytes": 4000})
    w.create()
    text = "x = 1\n" * 2000
    ticket, create = _share_created(w, "file:///big.py", "big.py", text)
    assert create["text"] == ""
    while op := next(iter(w.all("op")), None):
        w.commit("big.py", op)
    assert w.hub["big.py"].committed_text == text
    assert w.done(ticket).result is not None


def test_a_document_larger_than_the_hub_allows_is_refused_once_in_words() -> None:
    w = Wire(limits={"maxDocumentBytes": 1000})
    w.create()
    t1 = w.share("file:///big.txt", "big.txt", "y" * 5000)
    err = w.done(t1).error
    assert err is not None and "more than this hub allows" in err
    assert not w.all("create_document")


def test_an_op_the_hub_refuses_as_too_large_stops_sharing_once() -> None:
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "a")
    w.type("file:///x.txt", 2, (0, 1), "b" * 10)
    op = w.take("op")
    w.feed({"type": "error", "code": "too_large", "message": "too large", "path": "x.txt", "seq": op["seq"]})
    (msg,) = w.events_of(ShowMessage)
    assert "no longer shared" in msg.text and "x.txt" in msg.text
    assert w.take("close", path="x.txt")
    w.type("file:///x.txt", 3, (0, 11), "c")  # the buffer is not shared any more
    assert not w.all("op") and not w.events_of(ShowMessage)


def test_a_document_the_hub_refuses_as_over_its_quota_is_not_shared_said_once_in_words() -> None:
    w = Wire()
    w.create()
    tickets = [w.share(f"file:///f{i}.txt", f"f{i}.txt", "text") for i in range(3)]
    creates = [w.take("create_document", path=f"f{i}.txt") for i in range(3)]
    for create in creates:
        w.reply(create, type="error", code="quota_exceeded", message="over a quota of this hub")
    done = {e.ticket: e for e in w.events_of(Done)}
    errors = [done[t].error for t in tickets]
    assert all(e and "as many documents as the hub allows" in e for e in errors), errors
    (msg,) = w.events_of(ShowMessage)  # said once, not once per file
    assert msg.error and "f0.txt" in msg.text and "your text stays in your editor" in msg.text
    assert "quota_exceeded" not in msg.text
    # the buffers are not shared: typing sends nothing, sharing again says why
    w.type("file:///f1.txt", 2, (0, 0), "x")
    assert not w.all("op") and not w.all("create_document")
    again = w.share("file:///f1.txt", "f1.txt", "xtext", version=3)
    err = w.done(again).error
    assert err is not None and "as many documents as the hub allows" in err


def test_a_room_at_its_advertised_document_quota_refuses_before_sending() -> None:
    w = Wire(limits={"maxDocumentsPerRoom": 2})
    w.create(documents=[{"path": "a.txt", "rev": 0}, {"path": "b.txt", "rev": 0}])
    w.take("open", path="a.txt")
    w.take("open", path="b.txt")
    ticket = w.share("file:///c.txt", "c.txt", "new")
    err = w.done(ticket).error
    assert err is not None and "as many documents as the hub allows (2)" in err
    assert not w.all("create_document")
    assert len(w.events_of(ShowMessage)) == 1


def test_create_room_carries_the_token_and_a_refusal_says_how_to_give_it() -> None:
    w = Wire()
    ticket = w.room.create(HUB, "r", "client-1", w.now, "the-token")
    w.step()
    w.connect()
    req = w.take("create_room")
    assert req["token"] == "the-token"
    w.reply(
        req, type="error", code="bad_token", message="creating a room on this hub needs its create-room token"
    )
    err = w.done(ticket).error
    assert err is not None and "createToken" in err and "PAIRLS_CREATE_TOKEN" in err
    assert "the-token" not in err
    assert not w.room.in_room
    # no token: the field is left out
    w.advance(1)
    ticket = w.room.create(HUB, "r", "client-2", w.now)
    w.step()
    w.connect()
    assert "token" not in w.take("create_room")
    assert ticket


def test_a_hub_with_as_many_rooms_as_it_allows_is_said_in_words() -> None:
    w = Wire()
    ticket = w.room.create(HUB, "r", "client-1", w.now)
    w.step()
    w.connect()
    w.reply(w.take("create_room"), type="error", code="quota_exceeded", message="over a quota of this hub")
    err = w.done(ticket).error
    assert err is not None and "as many rooms as it allows" in err


# -- reconnecting -------------------------------------------------------------------------------


def test_reconnects_back_off_and_are_said_once() -> None:
    w = Wire(backoff_min=0.2, backoff_max=5.0)
    w.create()
    delays = []
    for _ in range(8):
        w.lost(None)
        wake = w.room.next_wakeup()
        assert wake is not None
        delays.append(wake - w.now)
        w.advance(wake - w.now)
        assert w.events_of(Connect)
    assert delays == sorted(delays) and delays[0] == pytest.approx(0.2) and delays[-1] == pytest.approx(5.0)
    lost = [e for e in w.events_of(ShowMessage) if "lost" in e.text]
    assert len(lost) == 1
    w.room.connection_opened(w.now)
    hello = w.take("hello")
    w.reply(hello, type="welcome", protocol=1, participant="me", limits=w.limits)
    join = w.take("join")
    w.reply(join, type="joined", room="R", role="owner", participant="me", participants=[], documents=[])
    back = [e for e in w.events_of(ShowMessage) if "reconnected" in e.text]
    assert len(back) == 1


def test_a_connection_that_keeps_dropping_at_once_backs_off_like_any_failure() -> None:
    """A hub that accepts and closes at once (a frame too big, say) never makes a tight loop."""
    w = Wire(backoff_min=0.2, backoff_max=5.0)
    w.create()
    for _ in range(6):
        w.lost(1009)
        w.advance(10)
        w.rejoin(documents=[])
    w.lost(1009)
    wake = w.room.next_wakeup()
    assert wake is not None and wake - w.now == pytest.approx(5.0)


def test_the_backoff_starts_over_after_a_healthy_connection() -> None:
    w = Wire(backoff_min=0.2, healthy_after=10)
    w.create()
    for _ in range(5):
        w.lost(None)
        w.advance(6)
    w.rejoin(documents=[])
    w.advance(11)
    w.lost(None)
    wake = w.room.next_wakeup()
    assert wake is not None and wake - w.now == pytest.approx(0.2)


def test_a_reconnect_catches_up_since_our_revision_and_resends_the_same_seq() -> None:
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.type("file:///x.txt", 2, (0, 3), "!")
    first = w.take("op")
    w.lost()
    w.type("file:///x.txt", 3, (0, 4), "?")  # typed offline
    w.peer_op("x.txt", ["<"], deliver=False)  # committed while we were away
    w.advance(6)
    w.rejoin()
    req = w.take("open", path="x.txt")
    assert req["since"] == 0
    w.opened(req)
    again = w.take("op")
    assert again["seq"] == first["seq"] and again["rev"] == 1 and again["op"] == [4, "!"]
    w.commit("x.txt", again)
    buffered = w.take("op")
    w.commit("x.txt", buffered)
    assert w.hub["x.txt"].committed_text == "<abc!?"
    assert w.room.heals == 0


def _indexed(w: Wire, index: IdentifierIndex) -> tuple[int, int]:
    """The room's text events so far into *index*, as the language server feeds its completion
    index; how many were whole texts and how many changes."""
    whole = changes = 0
    w.step()
    texts = [e for e in w.events if isinstance(e, TextReplaced | TextChanged)]
    w.events = [e for e in w.events if not isinstance(e, TextReplaced | TextChanged)]
    for e in texts:
        if isinstance(e, TextReplaced):
            whole += 1
            if e.text is None:
                index.remove(e.path)
            else:
                index.update(e.path, e.text)
        else:
            changes += 1
            index.apply_op(e.path, e.old, e.op, e.new, e.author)
    return whole, changes


def test_a_catch_up_by_ops_says_each_change_and_no_whole_text() -> None:
    """A reconnect that reads the ops since our revision changes the text by those ops: each is
    a change (the completion index counts only the words it touches), not a new whole text (a
    recount of the document: 100 ms for a 1.5 MB one, at every reconnect)."""
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "alpha")
    index = IdentifierIndex()
    assert _indexed(w, index)[0] == 1  # the shared text, whole
    w.type("file:///x.txt", 2, (0, 5), " beta")
    w.commit("x.txt", w.take("op"))
    assert _indexed(w, index) == (0, 1)
    w.lost()
    w.peer_op("x.txt", [10, " gamma"], deliver=False)  # committed while we were away
    w.peer_op("x.txt", ["delta "], deliver=False)
    w.advance(6)
    w.rejoin()
    req = w.take("open", path="x.txt")
    assert req["since"] == 1
    w.opened(req)
    client = w.room.docs["x.txt"].client
    assert client is not None and client.text == "delta alpha beta gamma"
    whole, changes = _indexed(w, index)
    assert (whole, changes) == (0, 2)
    fresh = IdentifierIndex()
    fresh.update("x.txt", client.text)
    assert index.counts("x.txt") == fresh.counts("x.txt")
    # a whole text read (the hub has no ops that far back) is a whole text
    w.lost()
    w.peer_op("x.txt", ["epsilon "], deliver=False)
    w.advance(6)
    w.rejoin()
    req = w.take("open", path="x.txt")
    del req["since"]
    w.opened(req)
    assert _indexed(w, index) == (1, 0)
    assert index.counts("x.txt") == {"epsilon": 1, "delta": 1, "alpha": 1, "beta": 1, "gamma": 1}


def _restored(w: Wire) -> None:
    """The hub comes back from a backup older than what the room saw: x.txt at rev 1 again."""
    hub = w.hub["x.txt"] = Sequencer("abc", 0)
    hub.submit(Submission(ClientId("bob"), 1, Rev(0), ["<"], "bob"))
    hub.commit(hub.take_unsent()[-1].rev)


def test_a_hub_behind_our_revision_after_a_cut_is_read_whole_with_the_op_in_flight_rebased() -> None:
    """``future_revision`` with an op in flight: the hub never took that op (it was made after
    what the hub has), so it goes back with our typing onto the hub's text, once; it asked
    ``since`` again for ever before (found by test_room_hub_fuzz)."""
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.peer_op("x.txt", ["<"])
    w.peer_op("x.txt", [">"])  # rev 2
    w.type("file:///x.txt", 2, (0, 0), "!")
    w.take("op")
    w.lost()
    _restored(w)
    w.advance(6)
    w.rejoin()
    req = w.take("open", path="x.txt")
    assert req["since"] == 2
    w.reply(req, type="error", code="future_revision", path="x.txt")
    req = w.take("open", path="x.txt")
    assert "since" not in req
    w.opened(req)
    w.commit("x.txt", w.take("op"))
    assert w.hub["x.txt"].committed_text == "!<abc"
    assert w.room.docs["x.txt"].client is not None and w.room.docs["x.txt"].client.text == "!<abc"
    assert not w.all("open")


def test_a_digest_from_a_hub_behind_our_revision_heals() -> None:
    """A hub restored from a backup says an older revision in its digest: no op would ever bring
    us back to its text, so the room reads it whole (it waited for ops that never came)."""
    w = Wire(check_after=1.0)
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.peer_op("x.txt", ["<"])
    w.peer_op("x.txt", [">"])
    _editor_shows(w, "file:///x.txt")
    _restored(w)
    w.advance(1.5)
    digest = w.take("digest", path="x.txt")
    seq = w.hub["x.txt"]
    w.reply(digest, type="digest", path="x.txt", rev=seq.committed_rev, sha256="0" * 64)
    assert w.room.heals == 1
    w.opened(w.take("open", path="x.txt"))
    assert w.room.docs["x.txt"].client is not None and w.room.docs["x.txt"].client.text == "<abc"


def test_what_the_last_connection_brought_ahead_of_its_turn_is_not_applied_after_a_reconnect() -> None:
    """An op that came while the document was being read again is held for its turn; the
    connection drops, and the next hub (restored from a backup) has less: the next
    connection's read is what counts, the old connection's op is not applied on top of it."""
    w = Wire(check_after=1.0)
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.advance(1.5)
    digest = w.take("digest", path="x.txt")
    w.reply(digest, type="digest", path="x.txt", rev=0, sha256="0" * 64)  # a heal: read it whole
    w.take("open", path="x.txt")
    w.feed({"type": "op", "path": "x.txt", "rev": 2, "op": ["?"], "author": "bob"})  # held
    w.lost()
    _restored(w)
    w.advance(6)
    w.rejoin()
    w.opened(w.take("open", path="x.txt"))
    client = w.room.docs["x.txt"].client
    assert client is not None and client.text == "<abc" and client.rev == 1


def test_an_op_committed_before_the_cut_is_acked_by_the_catch_up() -> None:
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.type("file:///x.txt", 2, (0, 3), "!")
    op = w.take("op")
    seq = w.hub["x.txt"]
    out = seq.submit(Submission(ClientId("room"), op["seq"], Rev(op["rev"]), op["op"], "me"))
    seq.commit(seq.take_unsent()[-1].rev)
    assert isinstance(out, Sequenced)
    w.lost()  # the ack never came
    w.advance(6)
    w.rejoin()
    w.opened(w.take("open", path="x.txt"))  # the op is in the catch-up, with its seq
    assert not w.all("op")  # not sent twice
    assert w.room.docs["x.txt"].client is not None and not w.room.docs["x.txt"].client.unacknowledged


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["unavailable", "rate_limited"])
def test_a_refused_op_goes_again_later_with_the_same_seq(code: str) -> None:
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.type("file:///x.txt", 2, (0, 3), "!")
    op = w.take("op")
    w.feed({"type": "error", "code": code, "message": "m", "path": "x.txt", "seq": op["seq"]})
    assert not w.all("op")
    w.advance(1)
    again = w.take("op")
    assert again["seq"] == op["seq"]


@pytest.mark.parametrize("code", ["revision_too_old", "not_open"])
def test_a_refused_op_catches_up_then_goes_again(code: str) -> None:
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.type("file:///x.txt", 2, (0, 3), "!")
    op = w.take("op")
    w.peer_op("x.txt", ["<"], deliver=False)
    w.feed({"type": "error", "code": code, "message": "m", "path": "x.txt", "seq": op["seq"]})
    req = w.take("open", path="x.txt")
    assert req["since"] == 0
    w.opened(req)
    again = w.take("op")
    assert again["seq"] == op["seq"] and again["rev"] == 1
    w.commit("x.txt", again)
    assert w.hub["x.txt"].committed_text == "<abc!" and w.room.heals == 0


def test_an_op_that_does_not_fit_heals_by_rebasing_the_typing_never_dropping_it() -> None:
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "hello world")
    w.type("file:///x.txt", 2, (0, 11), "!")
    op = w.take("op")
    w.type("file:///x.txt", 3, (0, 0), ">")  # typed while the op is in flight
    # the hub's text is not what we thought (a bug somewhere): it refuses the op
    w.hub["x.txt"] = Sequencer("HELLO world", 4)
    w.feed({"type": "error", "code": "invalid_op", "message": "m", "path": "x.txt", "seq": op["seq"]})
    assert w.room.heals == 1 and w.events_of(Log)
    req = w.take("open", path="x.txt")
    assert "since" not in req  # read whole
    w.opened(req)
    healed = w.take("op")
    assert healed["seq"] > op["seq"] and healed["rev"] == 4
    w.commit("x.txt", healed)
    assert w.hub["x.txt"].committed_text == ">HELLO world!"
    (edit,) = w.events_of(ApplyEdit)  # the buffer is brought to the room's text
    assert _op_of(edit, ">hello world!")


def test_a_catch_up_during_a_heal_sends_the_op_in_flight_again() -> None:
    """A heal holds the client while an op is in flight; a gap that comes before the op's
    fate turns the whole read into a catch-up.  The catch-up sends the op again (found by
    test_room_hub_fuzz: it released the hold and sent nothing, so the op never went)."""
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "hello world")
    w.type("file:///x.txt", 2, (0, 11), "!")
    op = w.take("op")
    w.feed({"type": "op", "path": "x.txt", "rev": 1, "op": [500, "z"], "author": "bob"})  # does not fit
    assert w.room.heals == 1
    w.opened(w.take("open", path="x.txt"))  # since 0: nothing new; the op goes again
    assert w.take("op")["seq"] == op["seq"]
    w.feed({"type": "op", "path": "x.txt", "rev": 3, "op": ["q"], "author": "bob"})  # a gap
    req = w.take("open", path="x.txt")
    assert req["since"] == 0
    w.opened(req)
    again = w.take("op")
    assert again["seq"] == op["seq"]
    w.commit("x.txt", again)
    assert w.hub["x.txt"].committed_text == "hello world!"
    assert w.room.docs["x.txt"].client is not None and w.room.docs["x.txt"].client.text == "hello world!"


def test_a_content_hash_that_differs_heals_when_quiet() -> None:
    w = Wire(check_after=1.0)
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.peer_op("x.txt", [3, "d"])
    w.room.edit_answered("file:///x.txt", True, w.now)
    w.room.editor_changed("file:///x.txt", 2, [ContentChange((0, 3, 0, 3), "d")], w.now)
    w.advance(1.5)
    digest = w.take("digest", path="x.txt")
    w.reply(digest, type="digest", path="x.txt", rev=1, sha256="0" * 64)
    assert w.room.heals == 1
    w.opened(w.take("open", path="x.txt"))
    assert w.room.docs["x.txt"].client is not None and w.room.docs["x.txt"].client.text == "abcd"


# -- joining a big room -------------------------------------------------------------------------


def test_joining_follows_documents_a_few_at_a_time_and_retries_what_failed() -> None:
    w = Wire(max_opens=8, resend_min=0.5, progress_threshold=20)
    docs = [{"path": f"d{i:03}.txt", "rev": 0} for i in range(100)]
    for d in docs:
        w.hub_doc(d["path"], f"text of {d['path']}")
    w.create(documents=docs)
    refused = 0
    for _ in range(10_000):
        opens = w.all("open")
        if not opens:
            if all(d.state.value == "open" for d in w.room.docs.values()):
                break
            w.advance(1)
            continue
        assert len(opens) <= 8 and len(w.room._opening) <= 8
        for req in opens:
            if refused < 20 and int(req["path"][1:4]) % 5 == 0:
                refused += 1
                w.reply(req, type="error", code="unavailable", message="m", path=req["path"])
            else:
                w.opened(req)
    assert refused == 20
    assert all(d.state.value == "open" for d in w.room.docs.values())
    assert w.room.status()["following"] == {"open": 100, "total": 100}
    kinds = [p.kind for p in w.events_of(Progress)]
    assert kinds[0] == "begin" and kinds[-1] == "end" and "report" in kinds


def test_ten_thousand_documents_are_all_followed_within_the_hubs_rate() -> None:
    w = Wire(limits={"rate": 1000, "burst": 2000})
    docs = [{"path": f"f/{i}.py", "rev": 0} for i in range(10_000)]
    for d in docs:
        w.hub_doc(d["path"], "")
    w.create(documents=docs)
    sent_at: list[float] = []
    while w.room.following()["open"] < 10_000:
        w.step()
        opens = [m for m in w.sent if m["type"] == "open"]
        w.sent = [m for m in w.sent if m["type"] != "open"]
        sent_at += [w.now] * len(opens)
        for req in opens:
            w.opened(req)
        if not opens:
            w.advance(0.01)
    assert w.room.status()["following"] == {"open": 10_000, "total": 10_000}
    # the hub's bucket: a burst of 2000, then 1000 a second; we keep under it
    for t in sent_at[::500]:
        within = sum(1 for u in sent_at if t <= u < t + 1.0)
        assert within <= 2000 + 1000


# -- catch-up is one edit -----------------------------------------------------------------------


def test_everything_the_editor_has_not_shown_goes_in_one_edit() -> None:
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "".join(f"line {i}\n" for i in range(50)))
    w.lost()
    for i in range(40):  # a peer types all over the document while we are away
        w.peer_op("x.txt", [i * 8 + 5, "*"], deliver=False)
    w.advance(6)
    w.rejoin()
    w.opened(w.take("open", path="x.txt"))
    (edit,) = w.events_of(ApplyEdit)
    assert len(edit.edit.edits) == 40  # one applyEdit, a TextEdit per place


# -- the editor's refusals ----------------------------------------------------------------------


def _refusing(w: Wire) -> ApplyEdit:
    """A shared x.txt "abc" at version 1 and a peer's "<": the applyEdit the room sends for it."""
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.peer_op("x.txt", ["<"])
    (edit,) = w.events_of(ApplyEdit)
    assert edit.edit.version == 1
    return edit


def test_a_refused_edit_goes_again_at_once_against_the_change_that_came_meanwhile() -> None:
    w = Wire()
    _refusing(w)
    w.type("file:///x.txt", 2, (0, 3), "!")  # the user typed: that is why it was refused
    w.room.edit_answered("file:///x.txt", False, w.now, (2, "abc!"))
    (again,) = w.events_of(ApplyEdit)
    assert again.edit.version == 2 and _op_of(again, "abc!") == ["<"]
    assert w.room.stats["edits_refused"] == 1 and w.room.stats["edit_retries"] == 0


def test_a_refused_edit_with_no_change_since_goes_once_more_then_waits_for_the_editor() -> None:
    """Never a loop: the same edit at the same version goes at most twice."""
    w = Wire()
    _refusing(w)
    w.room.edit_answered("file:///x.txt", False, w.now, (1, "abc"))
    w.advance(0.5)
    assert not w.events_of(ApplyEdit)  # the editor's change may be on its way (eglot: 0.5 s)
    w.advance(0.6)
    (again,) = w.events_of(ApplyEdit)
    assert again.edit.version == 1 and w.room.stats["edit_retries"] == 1
    w.room.edit_answered("file:///x.txt", False, w.now, (1, "abc"))
    w.advance(60)
    assert not w.events_of(ApplyEdit)
    assert w.room.stats["edits_held"] == 1 and w.room.status()["documents"]["x.txt"]["pending"]
    assert w.room.status()["documents"]["x.txt"]["views"]["file:///x.txt"]["held"]
    # the editor's next change: recomputed against it
    w.type("file:///x.txt", 2, (0, 0), "A")
    (last,) = w.events_of(ApplyEdit)
    assert last.edit.version == 2 and ops.apply("Aabc", _op_of(last, "Aabc")) in ("<Aabc", "A<abc")
    w.room.edit_answered("file:///x.txt", True, w.now)
    assert w.room.stats["edit_retries"] == 1 and w.room.heals == 0


def test_a_buffer_that_moved_without_a_change_we_saw_is_resynced_not_retried() -> None:
    """The editor refuses because its buffer is at a version we never heard of (a didChange
    lost on the way: the bug that once re-sent the edit at the didOpen version forever):
    its text is read as the user's and the edit computed against it."""
    w = Wire()
    _refusing(w)
    w.room.edit_answered("file:///x.txt", False, w.now, (4, "abcX"))
    assert w.room.stats["resyncs"] == 1
    op = w.take("op")
    assert op["op"] == [4, "X"] and op["rev"] == 1  # on the room's "<abc"
    (again,) = w.events_of(ApplyEdit)
    assert again.edit.version == 4 and _op_of(again, "abcX") == ["<"]
    assert any("resynced" in e.text for e in w.events_of(Log))


# -- cursors ------------------------------------------------------------------------------------


def _bob_at_6_in_hello_world() -> Wire:
    """A room sharing x.txt ("hello world") with Bob's cursor at 6 in it, at rev 0."""
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "hello world")
    w.feed({"type": "participant_joined", "participant": {"id": "bob", "name": "Bob", "role": "editor"}})
    w.feed(
        {
            "type": "presence",
            "participant": "bob",
            "name": "Bob",
            "path": "x.txt",
            "rev": 0,
            "ranges": [[6, 6]],
        }
    )
    return w


def test_peers_cursors_move_with_incoming_ops_and_carry_their_revision() -> None:
    w = _bob_at_6_in_hello_world()
    assert w.room.cursors("file:///x.txt")[0][1] == [((0, 6), (0, 6))]
    w.peer_op("x.txt", ["> "], author="carol")
    bob = w.room.participants["bob"]
    assert bob.rev == 1 and bob.ranges == [[8, 8]]
    # the editor has not shown the op yet: in its text the cursor is where it was
    assert w.room.cursors("file:///x.txt")[0][1] == [((0, 6), (0, 6))]
    notes = [n for n in w.events_of(Notify) if n.method == "pairls/cursors"]
    assert notes


def test_a_presence_older_than_our_text_is_moved_by_the_ops_since() -> None:
    """A presence can be older than the ops that follow it (its sender held it back a moment,
    and its op was committed meanwhile): it is moved past them as if it had come in time, the
    sender's own inserts pushing the sender's cursor on, and then by every op after."""
    w = _bob_watching_x()
    w.peer_op("x.txt", [5, "a"], author="ada")  # rev 1: Ada typed at 5
    _editor_shows(w, "file:///bob/x.txt")
    w.peer_op("x.txt", ["> "], author="carol")  # rev 2
    _editor_shows(w, "file:///bob/x.txt")
    # Ada's presence from before her keystroke: her cursor at 5, at rev 0
    late = {
        "type": "presence",
        "participant": "ada",
        "name": "Ada",
        "path": "x.txt",
        "rev": 0,
        "ranges": [[5, 5]],
    }
    w.feed(late)
    ada = w.room.participants["ada"]
    assert (ada.rev, ada.ranges) == (2, [[8, 8]])
    assert w.room.cursors("file:///bob/x.txt")[0][1] == [((0, 8), (0, 8))]
    w.peer_op("x.txt", [8, "b"], author="ada")  # and on with her typing
    assert (ada.rev, ada.ranges) == (3, [[9, 9]])
    assert w.room.stats["cursors_too_old"] == 0
    # older than the revisions kept: left as it came (its next presence puts it right), counted
    for _ in range(RECENT_REVS):
        w.peer_op("x.txt", ["."], author="carol")
    w.feed({**late, "rev": 2})
    assert (ada.rev, ada.ranges) == (2, [[5, 5]]) and w.room.stats["cursors_too_old"] == 1
    # a paste is not kept (its text could be megabytes): a presence from before it is too old
    doc = w.room.docs["x.txt"]
    rev = doc.client.rev  # type: ignore[union-attr]
    w.peer_op("x.txt", ["x" * (RECENT_CHARS + 1)], author="carol")
    w.peer_op("x.txt", ["."], author="carol")
    assert [r[0] for r in doc.recent] == [rev + 2] and doc.recent_chars == 1
    w.feed({**late, "rev": rev})
    assert w.room.stats["cursors_too_old"] == 2
    w.feed({**late, "rev": rev + 1})  # (from after it: moved past the op since)
    assert (ada.rev, ada.ranges) == (rev + 2, [[6, 6]]) and w.room.stats["cursors_too_old"] == 2


def test_peers_cursors_move_with_our_own_acknowledged_ops() -> None:
    w = _bob_at_6_in_hello_world()
    w.type("file:///x.txt", 2, (0, 0), "> ")
    w.commit("x.txt", w.take("op"))
    bob = w.room.participants["bob"]
    assert (bob.rev, bob.ranges) == (1, [[8, 8]])
    assert w.room.cursors("file:///x.txt")[0][1] == [((0, 8), (0, 8))]


def test_an_incoming_op_goes_to_the_editor_before_the_cursors_it_moved() -> None:
    """The peers wait on the text: its edit is the first event of the step, ahead of the
    cursors notification (and anything else) the same op produced."""
    w = _bob_at_6_in_hello_world()
    w.step()
    w.events.clear()
    w.room.receive(w.peer_op("x.txt", ["> "], author="carol", deliver=False), w.now)
    events = w.room.events()
    kinds = [type(e).__name__ for e in events]
    assert "Notify" in kinds and kinds[0] == "ApplyEdit", kinds


def test_our_cursor_goes_to_the_hub_in_the_hubs_text_at_our_revision() -> None:
    w = Wire(presence_interval=0.05)
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "hello world")
    w.type("file:///x.txt", 2, (0, 0), ">> ")  # not acknowledged yet
    w.take("op")
    w.room.cursor_moved("file:///x.txt", [(9, 9)], w.now)  # after "hello" in the editor
    w.advance(0.1)
    (pres,) = w.all("presence")
    assert pres["rev"] == 0 and pres["ranges"] == [[6, 6]]


def _bob_watching_x() -> Wire:
    """Bob's room, with Ada in it and x.txt ("hello world") open: what Ada's presences and
    ops do to her cursor there."""
    bob = Wire()
    bob.create()
    _share_created(bob, "file:///bob/x.txt", "x.txt", "hello world")
    bob.feed({"type": "participant_joined", "participant": {"id": "ada", "name": "Ada", "role": "editor"}})
    return bob


def _to_bob(bob: Wire, ada: Wire, presences: list[dict[str, Any]], op: dict[str, Any] | None) -> None:
    """What the hub broadcasts of Ada's: her presences (they need no commit: ahead of her op)
    and her op once committed, as Bob's hub connection delivers them; Bob's editor shows it."""
    for p in presences:
        bob.feed({**p, "participant": "ada", "name": "Ada"})
    if op is not None:
        ack = ada.commit("x.txt", op)
        bob.peer_op("x.txt", ack.op, author="ada")
        _editor_shows(bob, "file:///bob/x.txt")


def _editor_shows(w: Wire, uri: str) -> None:
    """The editor applies the room's edit, answers ``applied: true`` and reports the change."""
    (edit,) = w.events_of(ApplyEdit)
    w.room.edit_answered(uri, True, w.now)
    version = edit.edit.version
    for e in edit.edit.edits:
        version += 1
        w.room.editor_changed(uri, version, [ContentChange((*e.start, *e.end), e.new_text)], w.now)
    w.step()


def test_typing_sends_no_presence_the_peers_infer_from_the_op_and_they_show_the_cursor_right() -> None:
    """Issue 14: a keystroke's presence costs every server in the room a frame, a
    ``pairls/cursors`` and an inlay hint refresh.  The peers move our cursor past what we type
    when our op arrives, so while the cursor only follows the typing no presence goes (until
    ``presence_implied_interval``); any other move goes at once.  Bob's room, fed what the
    hub broadcasts, shows Ada's cursor where her editor has it after every keystroke."""
    ada, bob = Wire(presence_interval=0.05, presence_implied_interval=1.0), _bob_watching_x()
    ada.create()
    _share_created(ada, "file:///x.txt", "x.txt", "hello world")
    cursor, version = 5, 2
    for n, ch in enumerate("abc"):
        ada.type("file:///x.txt", version, (0, cursor), ch)
        op = ada.take("op")
        cursor, version = cursor + 1, version + 1
        ada.room.cursor_moved("file:///x.txt", [(cursor, cursor)], ada.now)
        presences = ada.all("presence")
        assert len(presences) == (1 if n == 0 else 0), presences  # only the first keystroke's
        _to_bob(bob, ada, presences, op)
        assert bob.room.cursors("file:///bob/x.txt")[0][1] == [((0, cursor), (0, cursor))]
        ada.advance(0.2)
    assert ada.room.stats["presence_implied"] == 2
    # a move that is not typing goes at once, and Bob shows it
    ada.room.cursor_moved("file:///x.txt", [(1, 1)], ada.now)
    (moved,) = ada.all("presence")
    _to_bob(bob, ada, [moved], None)
    assert bob.room.cursors("file:///bob/x.txt")[0][1] == [((0, 1), (0, 1))]


def test_a_held_back_presence_goes_within_its_interval_at_the_newest_revision() -> None:
    """The hub keeps each member's last presence for newcomers: while Ada types, hers still
    goes once a ``presence_implied_interval``, at the revision the room has reached, with the
    cursor where the peers already hold it (a peer's op in between included)."""
    ada = Wire(presence_interval=0.05, presence_implied_interval=1.0)
    ada.create()
    _share_created(ada, "file:///x.txt", "x.txt", "hello world")
    ada.type("file:///x.txt", 2, (0, 5), "a")
    ada.commit("x.txt", ada.take("op"))
    ada.room.cursor_moved("file:///x.txt", [(6, 6)], ada.now)
    assert ada.all("presence") == [{"type": "presence", "path": "x.txt", "rev": 1, "ranges": [[6, 6]]}]
    ada.advance(0.1)
    ada.type("file:///x.txt", 3, (0, 6), "b")
    ada.commit("x.txt", ada.take("op"))
    ada.room.cursor_moved("file:///x.txt", [(7, 7)], ada.now)
    assert ada.all("presence") == []
    ada.peer_op("x.txt", [">> "], author="bob")  # Bob types at the start: her cursor moves on
    ada.advance(0.5)
    assert ada.all("presence") == []
    ada.advance(0.5)
    assert ada.all("presence") == [{"type": "presence", "path": "x.txt", "rev": 3, "ranges": [[10, 10]]}]


def test_an_op_and_a_presence_in_one_frame_tell_the_editor_of_the_cursors_once() -> None:
    w = _bob_at_6_in_hello_world()
    w.step()
    w.events.clear()
    op = w.peer_op("x.txt", ["> "], author="carol", deliver=False)
    pres = {
        "type": "presence",
        "participant": "bob",
        "name": "Bob",
        "path": "x.txt",
        "rev": 1,
        "ranges": [[2, 2]],
    }
    w.room.receive_frame([op, pres], w.now)
    notes = [n for n in w.events_of(Notify) if n.method == "pairls/cursors"]
    assert len(notes) == 1
    assert notes[0].params["cursors"][0]["ranges"][0]["start"] == {"line": 0, "character": 0}
    _editor_shows(w, "file:///x.txt")
    assert w.room.cursors("file:///x.txt")[0][1] == [((0, 2), (0, 2))]


def test_a_due_inlay_hint_refresh_goes_in_the_step_of_the_cursors_that_moved() -> None:
    """Given the time, :meth:`Room.events` puts a refresh that is due with the cursors of the
    step (no timer of its own: a wake-up of the server each); one that is not due yet waits
    for its time."""
    w = _bob_at_6_in_hello_world()
    w.advance(1.0)
    w.events.clear()
    w.room.receive(w.peer_op("x.txt", ["> "], author="carol", deliver=False), w.now)
    kinds = [type(e).__name__ for e in w.room.events(w.now)]
    assert kinds.count("RefreshInlayHints") == 1 and kinds.index("RefreshInlayHints") > kinds.index("Notify")
    w.now += 0.01
    w.room.receive(w.peer_op("x.txt", ["> "], author="carol", deliver=False), w.now)
    assert "RefreshInlayHints" not in [type(e).__name__ for e in w.room.events(w.now)]
    assert w.room.next_wakeup() == pytest.approx(w.now - 0.01 + 0.05)


# -- entering -----------------------------------------------------------------------------------


def _unreachable_for(w: Wire, seconds: int) -> None:
    """Every connection the room tries in the next *seconds* fails at once."""
    for _ in range(seconds):
        w.step()
        if w.events_of(Connect):
            w.lost(None)
        w.advance(1)


def test_an_unreachable_hub_fails_the_command_in_words() -> None:
    w = Wire(enter_timeout=10)
    ticket = w.room.create(HUB, "r", "client-x", w.now)
    _unreachable_for(w, 20)
    err = w.done(ticket).error
    assert err is not None and "cannot reach the hub" in err
    assert w.room.status()["roomId"] is None


def test_a_hub_that_answers_hello_but_not_the_join_is_said_to_be_running() -> None:
    """Reached, but its answer to the join never came (its database is very slow, say): not
    "cannot reach the hub" (it is running)."""
    w = Wire(enter_timeout=10)
    ticket = w.room.join(f"{HUB}/room/R#" + "E" * 43, "client-x", w.now)
    w.step()
    w.connect()
    w.take("join")
    w.advance(10)
    err = w.done(ticket).error
    assert err == f"the hub at {HUB} is running but did not answer in 10 s; try again"
    assert w.room.status()["roomId"] is None


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (
            "unavailable",
            "is running but could not serve the request for 10 s "
            "(it is busy, shutting down, or cannot reach its database)",
        ),
        ("rate_limited", "asked to slow down for 10 s; try again in a moment"),
    ],
)
def test_a_join_the_hub_refuses_for_now_until_the_deadline_says_what_the_hub_said(
    code: str, words: str
) -> None:
    """The hub answers the join with a refusal for now (its database is down): the join goes
    again with backoff, and if the deadline comes first the user is told what the hub said,
    also when a later attempt could not connect at all."""
    w = Wire(enter_timeout=10)
    ticket = w.room.join(f"{HUB}/room/R#" + "E" * 43, "client-x", w.now)
    w.step()
    w.connect()
    w.reply(w.take("join"), type="error", code=code, message="try again")
    assert w.events_of(Disconnect)
    _unreachable_for(w, 20)
    err = w.done(ticket).error
    assert err is not None and words in err and HUB in err, err


def test_a_certificate_that_does_not_verify_fails_the_join_at_once_without_retrying() -> None:
    w = Wire(enter_timeout=10)
    ticket = w.room.join(f"{HUB}/room/R#" + "E" * 43, "client-x", w.now)
    assert w.events_of(Connect)
    w.room.connection_failed("the certificate of the hub at hub.test could not be verified", w.now)
    err = w.done(ticket).error
    assert err == "the certificate of the hub at hub.test could not be verified"
    assert w.events_of(Disconnect)
    assert w.room.next_wakeup() is None  # no reconnect, no enter deadline left
    w.advance(60)
    assert not w.events_of(Connect)
    status = w.room.status()
    assert status["roomId"] is None and status["state"] == "disconnected"
    assert status["stats"]["gave_up"] == 1 and status["stats"]["connects"] == 1


def test_a_certificate_failure_on_reconnect_leaves_the_room_once_in_words() -> None:
    """A hub whose certificate stops verifying (expired, replaced): no backoff loop against it."""
    w = Wire()
    w.create()
    _share_created(w, "file:///a.txt", "a.txt", "abc")
    w.lost(None)
    w.advance(1)
    assert w.events_of(Connect)
    w.room.connection_failed("the certificate of the hub at hub.test could not be verified (expired)", w.now)
    shown = w.events_of(ShowMessage)
    errors = [e.text for e in shown if e.error]
    assert errors == [
        "pairls: disconnected from the hub: "
        "the certificate of the hub at hub.test could not be verified (expired)"
    ]
    assert w.events_of(Disconnect)
    assert w.room.next_wakeup() is None
    w.advance(60)
    assert not w.events_of(Connect)
    assert w.room.status()["roomId"] is None and w.room.stats["gave_up"] == 1
    # the editor keeps its text: typing goes nowhere, and a new join works as before
    w.type("file:///a.txt", 2, (0, 3), "d")
    assert not w.all("op")
    ticket = w.room.join(f"{HUB}/room/R#" + "E" * 43, "client-y", w.now)
    w.connect()
    join = w.take("join")
    w.reply(join, type="joined", room="R", role="editor", participant="me", participants=[], documents=[])
    assert w.done(ticket).result is not None


@pytest.mark.parametrize("end", ["removed", "certificate", "no_such_room"])
def test_typing_the_hub_never_had_when_a_reconnect_cannot_rejoin_is_kept_for_the_next_entry(end: str) -> None:
    """Offline, the user types; the reconnect cannot get back in: the invite was withdrawn
    meanwhile (``removed``), or the hub's certificate no longer verifies.  The room is left, said
    in words, and what the hub never had is kept as a leave keeps it (in memory, and held on
    disk): the next entry (a new invite, once the certificate is put right) is the same client
    and sends it, the op in flight with its seq, and the hub commits it once.  A room that no
    longer exists keeps nothing: the editors keep the text."""
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.type("file:///x.txt", 2, (0, 3), "!")
    in_flight = w.take("op")
    w.lost(None)
    w.type("file:///x.txt", 3, (0, 4), "?")  # typed offline
    w.advance(1)
    w.events_of(HoldCarry)  # (offline for a second: held while in the room)
    w.events_of(ShowMessage)  # ("lost the connection")
    if end == "certificate":
        w.room.connection_failed("the certificate of the hub at hub.test could not be verified", w.now)
    else:
        w.connect()
        w.reply(w.take("join"), type="error", code=end, message="refused")
    assert not w.room.in_room and w.room.next_wakeup() is None
    texts = [m.text for m in w.events_of(ShowMessage)]
    held = w.events_of(HoldCarry)
    if end == "no_such_room":
        assert len(texts) == 1 and not held and w.room.stats["left_unsent"] == 0
        assert len(w.events_of(DropHeld)) == 1  # (the copy held while offline: nothing to keep)
        return
    assert [t.partition(";")[0] for t in texts[1:]] == [
        "pairls: left the room before the hub had your last edits to x.txt"
    ]
    assert [h.room_id for h in held] == ["R"] and not w.events_of(DropHeld)
    _join_again(w, "client-new", [{"path": "x.txt", "rev": 0}])
    assert len(w.events_of(CarryTaken)) == 1
    w.opened(w.take("open", path="x.txt"))
    (sent,) = w.all("op")
    assert sent["seq"] == in_flight["seq"]
    w.commit("x.txt", sent)
    _commit_all(w, "x.txt")
    assert w.hub["x.txt"].committed_text == "abc!?"
    w.advance(1.1)
    assert len(w.events_of(DropHeld)) == 1  # (the hub has it all: the held copy is done with)


def test_a_plain_connection_failure_still_backs_off_and_retries() -> None:
    """Only what connection_failed is told is final; a refused connection is retried."""
    w = Wire(backoff_min=0.2)
    w.create()
    w.lost(None)
    wake = w.room.next_wakeup()
    assert wake is not None and wake - w.now == pytest.approx(0.2)
    w.advance(0.2)
    assert w.events_of(Connect)
    assert w.room.stats["gave_up"] == 0


def test_a_hub_that_cannot_serve_the_join_now_is_asked_again() -> None:
    w = Wire()
    ticket = w.room.join(f"{HUB}/room/R#" + "E" * 43, "client-x", w.now)
    w.step()
    w.connect()
    join = w.take("join")
    w.reply(join, type="error", code="unavailable", message="m")
    assert not [e for e in w.events if isinstance(e, Done)]
    w.advance(1)
    w.connect()
    join = w.take("join")
    w.reply(join, type="joined", room="R", role="editor", participant="me", participants=[], documents=[])
    assert w.done(ticket).result is not None


def test_a_viewers_typing_is_undone_and_said_once() -> None:
    w = Wire()
    ticket = w.room.join(f"{HUB}/room/R#" + "V" * 43, "client-v", w.now)
    w.step()
    w.connect()
    join = w.take("join")
    w.hub_doc("x.txt", "abc")
    w.reply(
        join,
        type="joined",
        room="R",
        role="viewer",
        participant="me",
        participants=[],
        documents=[{"path": "x.txt", "rev": 0}],
    )
    assert w.done(ticket).result is not None
    w.opened(w.take("open"))
    w.share("file:///x.txt", "x.txt", "abc")
    for v in range(2, 5):
        w.type("file:///x.txt", v, (0, 0), "z")
        w.room.edit_answered("file:///x.txt", True, w.now)
    assert not w.all("op")
    said = [e for e in w.events_of(ShowMessage) if "viewer" in e.text]
    assert len(said) == 1


def test_an_edit_refused_as_forbidden_makes_us_a_viewer_and_restores_the_buffer() -> None:
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.type("file:///x.txt", 2, (0, 3), "!")
    op = w.take("op")
    w.feed({"type": "error", "code": "forbidden", "message": "m", "path": "x.txt", "seq": op["seq"]})
    assert w.room.role == "viewer"
    (edit,) = w.events_of(ApplyEdit)
    assert _op_of(edit, "abc!") == [3, -1]  # the buffer goes back to the room's text
    assert [e for e in w.events_of(ShowMessage) if "viewer" in e.text]
    assert w.room.heals == 0


def test_a_document_the_hub_lost_is_caught_up_later() -> None:
    """An `unavailable` with a path and no seq: the hub's task for it ended; we open it again."""
    w = Wire(resend_min=0.5)
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.feed({"type": "error", "code": "unavailable", "message": "m", "path": "x.txt"})
    assert not w.all("open")
    w.advance(1)
    req = w.take("open", path="x.txt")
    assert req["since"] == 0
    w.opened(req)
    assert w.room.docs["x.txt"].state.value == "open" and w.room.heals == 0


def test_following_a_peer_shows_where_they_are() -> None:
    from lsp_bridge.room import FollowTo

    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "one\ntwo\n")
    w.feed({"type": "participant_joined", "participant": {"id": "bob", "name": "Bob", "role": "editor"}})
    assert w.room.set_follow("nobody") == "no such participant"
    assert w.room.set_follow("bob") is None
    w.feed(
        {
            "type": "presence",
            "participant": "bob",
            "name": "Bob",
            "path": "x.txt",
            "rev": 0,
            "ranges": [[5, 5]],
        }
    )
    (f,) = w.events_of(FollowTo)
    assert (
        f.path == "x.txt" and f.uri == "file:///x.txt" and f.selection == ((1, 1), (1, 1)) and f.name == "Bob"
    )
    w.feed(
        {
            "type": "presence",
            "participant": "bob",
            "name": "Bob",
            "path": "y.txt",
            "rev": 0,
            "ranges": [[0, 0]],
        }
    )
    (g,) = w.events_of(FollowTo)
    assert g.path == "y.txt" and g.uri is None  # not open here: the file is shown
    w.room.set_follow(None)
    w.feed(
        {
            "type": "presence",
            "participant": "bob",
            "name": "Bob",
            "path": "x.txt",
            "rev": 0,
            "ranges": [[0, 0]],
        }
    )
    assert not w.events_of(FollowTo)


# -- the owner's controls ------------------------------------------------------------------------


def _in_room_with_bob(w: Wire) -> None:
    w.create()
    w.feed({"type": "participant_joined", "participant": {"id": "bob", "name": "Bob", "role": "editor"}})


def test_the_owners_controls_are_requests_the_hub_answers() -> None:
    w = Wire()
    _in_room_with_bob(w)
    ticket = w.room.kick("bob", w.now)
    req = w.take("kick")
    assert req["participant"] == "bob"
    w.reply(req, type="kicked", participant="bob")
    assert w.done(ticket).result == {}

    ticket = w.room.set_role("bob", "viewer", w.now)
    req = w.take("set_role")
    assert (req["participant"], req["role"]) == ("bob", "viewer")
    w.reply(req, type="role_set", participant="bob", role="viewer")
    assert w.done(ticket).result == {}
    assert w.room.participants["bob"].role == "viewer"

    ticket = w.room.rotate_invites(w.now)
    w.reply(w.take("rotate_invites"), type="invites_rotated", editorSecret="N" * 43, viewerSecret="W" * 43)
    assert w.done(ticket).result == {
        "invite": f"{LINK}/room/R#" + "N" * 43,
        "viewerInvite": f"{LINK}/room/R#" + "W" * 43,
    }
    assert w.room.editor_invite == f"{LINK}/room/R#" + "N" * 43
    # a hub that sends something that is no secret gets no invite made of it
    ticket = w.room.rotate_invites(w.now)
    w.reply(w.take("rotate_invites"), type="invites_rotated", editorSecret="../x", viewerSecret="W" * 43)
    assert w.done(ticket).error == "the hub sent invites that are not valid"


def test_deleting_the_room_leaves_it_for_good() -> None:
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    ticket = w.room.delete_room(w.now)
    w.reply(w.take("delete_room"), type="room_deleted")
    assert w.done(ticket).result == {}
    assert not w.room.in_room and w.events_of(Disconnect)
    w.room.connection_closed(4410, w.now, "room deleted by its owner")  # (the shell stopped reading)
    w.advance(60)
    assert not w.events_of(Connect) and w.room.next_wakeup() is None


@pytest.mark.parametrize(
    ("kind", "error"),
    [("editor", "only the room's owner can do that"), ("viewer", "only the room's owner can do that")],
)
def test_only_the_owner_is_offered_the_controls(kind: str, error: str) -> None:
    w = Wire()
    ticket = w.room.kick("bob", w.now)
    assert w.done(ticket).error == "join or create a room first"
    w.room.join(f"{HUB}/room/R#" + "E" * 43, "client-e", w.now)
    w.step()
    w.connect()
    w.reply(
        w.take("join"), type="joined", room="R", role=kind, participant="me", participants=[], documents=[]
    )
    w.events_of(Done)
    w.room.kick("bob", w.now)
    w.room.set_role("bob", "viewer", w.now)
    w.room.rotate_invites(w.now)
    w.room.delete_room(w.now)
    assert [e.error for e in w.events_of(Done)] == [error] * 4
    assert not [m for m in w.all("kick") + w.all("set_role") + w.all("delete_room")]


def test_the_owner_cannot_act_on_an_owner_or_give_a_role_that_is_none() -> None:
    w = Wire()
    _in_room_with_bob(w)
    assert w.done(w.room.kick("me", w.now)).error == "the owner cannot be removed or given another role"
    assert w.done(w.room.set_role("bob", "owner", w.now)).error == "the role must be editor or viewer"
    assert w.done(w.room.kick(None, w.now)).error == "no such participant"
    # the hub's refusals, in words
    ticket = w.room.kick("far-away", w.now)
    w.reply(w.take("kick"), type="error", code="no_such_participant", message="m")
    assert w.done(ticket).error == "no such participant in the room"
    ticket = w.room.kick("other-owner", w.now)
    w.reply(w.take("kick"), type="error", code="forbidden", message="m")
    assert w.done(ticket).error == "the owner cannot be removed or given another role"
    # a command the hub never answered fails once the connection is lost
    ticket = w.room.rotate_invites(w.now)
    w.take("rotate_invites")
    w.lost()
    assert w.done(ticket).error == "lost the connection to the hub before it answered; try again"
    assert w.done(w.room.delete_room(w.now)).error == (
        "not connected to the hub right now; try again once it is back"
    )


@pytest.mark.parametrize(
    ("code", "reason", "said"),
    [
        (4403, "removed from the room by the owner", "you were removed from the room by the owner"),
        (4401, "the owner changed the invites", "the room's owner changed the invites"),
        (4410, "room deleted by its owner", "the room was deleted by its owner"),
        (4410, "room deleted after being idle", "the room was deleted after being idle"),
        (4410, "anything else", "the room was deleted"),
    ],
)
def test_a_place_the_owner_ended_is_said_in_words_and_not_reconnected(
    code: int, reason: str, said: str
) -> None:
    """Said in words, and no reconnect.  An op in flight goes nowhere now: it is kept for an
    entry with a new invite, as a leave keeps it (and held on disk), unless the room is gone."""
    w = Wire()
    w.create()
    _share_created(w, "file:///x.txt", "x.txt", "abc")
    w.type("file:///x.txt", 2, (0, 3), "!")
    ticket = w.room.set_role("bob", "viewer", w.now)
    w.lost(code, reason)
    assert w.done(ticket).error is not None
    msg, *kept = w.events_of(ShowMessage)
    assert msg.text == f"pairls: {said}" or msg.text.startswith(f"pairls: {said}")
    held = w.events_of(HoldCarry)
    if code == CloseCode.ROOM_DELETED:
        assert not kept and not held and w.room.stats["left_unsent"] == 0
    else:
        assert [m.text.partition(";")[0] for m in kept] == [
            "pairls: left the room before the hub had your last edits to x.txt"
        ]
        assert [h.room_id for h in held] == ["R"] and w.room.stats["left_unsent"] == 1
    assert not w.room.in_room and w.events_of(Disconnect)
    w.advance(60)
    assert not w.events_of(Connect) and w.room.next_wakeup() is None
    assert w.room.status()["roomId"] is None and w.room.heals == 0


def _joined_as_editor_with_a_document(w: Wire) -> None:
    w.room.join(f"{HUB}/room/R#" + "E" * 43, "client-e", w.now)
    w.step()
    w.connect()
    w.hub_doc("x.txt", "abc")
    w.reply(
        w.take("join"),
        type="joined",
        room="R",
        role="editor",
        participant="me",
        participants=[{"id": "me", "name": "Ada", "role": "editor"}],
        documents=[{"path": "x.txt", "rev": 0}],
    )
    w.opened(w.take("open"))
    w.share("file:///x.txt", "x.txt", "abc")


def test_a_role_the_owner_changes_takes_effect_at_once() -> None:
    w = Wire()
    _joined_as_editor_with_a_document(w)
    w.type("file:///x.txt", 2, (0, 3), "!")
    in_flight = w.take("op")
    w.feed({"type": "participant_changed", "participant": {"id": "me", "name": "Ada", "role": "viewer"}})
    assert w.room.role == "viewer" and w.room.participants["me"].role == "viewer"
    (said,) = w.events_of(ShowMessage)
    assert said.text == "pairls: the room's owner made you a viewer: your edits are no longer shared"
    # the op the hub had not taken is refused, and the buffer goes back to the room's text
    w.feed({"type": "error", "code": "forbidden", "message": "m", "path": "x.txt", "seq": in_flight["seq"]})
    (edit,) = w.events_of(ApplyEdit)
    assert _op_of(edit, "abc!") == [3, -1]
    # (the editor applies it: its didChange, then its answer)
    w.room.editor_changed("file:///x.txt", 3, [ContentChange((0, 3, 0, 4), "")], w.now)
    w.room.edit_answered("file:///x.txt", True, w.now)
    assert not w.all("op") and not w.events_of(ShowMessage)  # said once
    # made an editor again: typing is shared
    w.feed({"type": "participant_changed", "participant": {"id": "me", "name": "Ada", "role": "editor"}})
    assert [e.text for e in w.events_of(ShowMessage)] == [
        "pairls: the room's owner made you an editor: your edits are shared"
    ]
    w.type("file:///x.txt", 4, (0, 3), "?")
    assert w.take("op")["op"] == [3, "?"]
    # someone else's role: the list says it, nothing else changes
    w.feed({"type": "participant_changed", "participant": {"id": "bob", "name": "Bob", "role": "viewer"}})
    assert w.room.participants["bob"].role == "viewer" and w.room.role == "editor"
    assert w.room.heals == 0


def test_a_keystroke_with_the_buffers_copy_makes_the_rooms_text_once_also_after_a_peers_edit() -> None:
    """Issue 14: on a large document every copy of the text a keystroke makes is time.  The
    server's copy of the buffer after the user's change, handed over with the change, is the
    room's text from then on (the view's and the client's: one string), so a keystroke makes
    the text once.  A peer's edit, shown, parts the two (each side makes its own); the next
    keystroke finds them equal and shares them again.  The hub gets every keystroke."""
    w = Wire()
    w.create()
    uri = "file:///x.txt"
    _share_created(w, uri, "x.txt", "hello world")
    doc = w.room.docs["x.txt"]
    view = doc.views[uri]
    assert doc.client is not None
    version = 1

    def typed(at: int, text: str) -> None:
        nonlocal version
        version += 1
        before = view.sync.text
        change = ContentChange((0, at, 0, at), text)
        after, _ = apply_changes(before, [change], view.sync.encoding)
        w.room.editor_changed(uri, version, [change], w.now, (before, after))
        assert doc.client is not None and doc.client.text is view.sync.text is after
        w.commit("x.txt", w.take("op"))

    typed(5, ",")
    typed(12, "!")
    w.peer_op("x.txt", [0, ">"])
    _editor_shows(w, uri)
    assert doc.client.text == view.sync.text == ">hello, world!"
    version = max(version, view.sync.version)
    typed(1, "<")
    assert w.hub["x.txt"].committed_text == "><hello, world!"
