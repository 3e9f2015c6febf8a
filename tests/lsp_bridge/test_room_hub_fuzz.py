"""A broken or hostile hub cannot break the language server's room (sans-I/O).

The room (``lsp_bridge.room.Room``) is driven as the language server drives it, with no
sockets and no clock: :class:`FuzzHub` answers every request the room sends and sends what a
hub sends of its own accord (peers' ops, presences, participants, documents added, runs,
errors), using the hub's real sequencer for what an honest hub would say; the editor is the
simulated VS Code of ``editors.py``, which asserts that every edit it is sent addresses places
its text has.  Most messages have one part made wrong: a value of another type or size, a
key missing or added, a revision off by a few, an id nobody asked for.

What must hold, whatever the hub sends: the room never raises; every edit the editor gets
is one it can apply; once the hub turns honest again, the editor and the room's view of it
hold the same text, and the room's text is the honest hub's.  A hub that lies can make the
room's text anything (it is the room); it cannot make the editor and the language server
disagree about what the editor shows, nor leave the room unable to heal.

tests/lsp_bridge/test_hostile_hub.py covers the paths a hub names (nothing outside the
workspace); this test, the room's handling of everything else.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from typing import Any

import pytest

from collab_core import ops
from collab_server.document import ClientId, Rev, Sequenced, Sequencer, Submission
from lsp_bridge.room import (
    ApplyEdit,
    Connect,
    Disconnect,
    DocState,
    Done,
    Room,
    RoomConfig,
    hub_limits,
)
from tests.lsp_bridge.editors import Answer, Notification, VSCode
from tests.support.mutate import mutate
from tests.support.room_time import advance

HUB = "ws://hub.test:8765"
URI = "file:///w/x.txt"
PATH = "x.txt"
TEXT = "def main():\n    print('hello')\n\nalpha beta\n😀 gamma\n"
LIMITS = {"maxMessageBytes": 1 << 20, "rate": 1000, "burst": 2000}
#: rounds of a session (longer by hand: 2,000 rounds x 400 seeds ran clean)
ROUNDS = int(os.environ.get("PAIRLS_FUZZ_ROUNDS", "400"))


class FuzzHub:
    """The room, the editor, and a hub that is honest or not, message by message."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.room = Room(name="Ada", encoding="utf-16", config=RoomConfig())
        self.now = 100.0
        self.editor = VSCode(TEXT, random.Random(seed + 1))
        self.docs: dict[str, Sequencer] = {}
        self.requests: list[dict[str, Any]] = []
        #: the hub's answers to the room's ops, not sent yet
        self.pending_acks: list[dict[str, Any]] = []
        #: how much of what the hub sends is made wrong (0: an honest hub)
        self.hostility = 0.7
        #: seq of the ops the hub makes itself (peers', and the user's undos and redos)
        self.peer_seq = 0
        self.connected = False

    # -- the room's side, as the language server drives it --

    def step(self) -> None:
        """Take what the room sends and tells; the editor does what it is told."""
        for _ in range(100):
            out = self.room.messages_to_send(self.now)
            events = self.room.events(self.now)
            if not out and not events and not self.editor.outbox:
                return
            for msg in out:
                self.hub_got(msg)
            for e in events:
                if isinstance(e, Connect):
                    self.connected = True
                    self.room.connection_opened(self.now)
                elif isinstance(e, Disconnect):
                    self.connected = False
                elif isinstance(e, ApplyEdit):
                    assert e.uri == URI
                    self.editor.receive_edit(e.edit)
            while self.editor.outbox:
                said = self.editor.outbox.popleft()
                if isinstance(said, Answer):
                    self.room.edit_answered(URI, said.applied, self.now)
                else:
                    assert isinstance(said, Notification)
                    self.room.editor_changed(URI, said.version, said.changes, self.now)
        raise AssertionError("the room and the editor talk for ever")

    def advance(self, seconds: float) -> None:
        self.now = advance(self.room, self.now, seconds, self._stepped)

    def _stepped(self, now: float) -> None:
        self.now = now
        self.step()

    def type(self) -> None:
        text = self.editor.text
        start = self.rng.randrange(len(text) + 1)
        end = min(len(text), start + self.rng.choice([0, 0, 1, 3]))
        new = self.rng.choice(["a", "é", "😀", "\n", "", "xyz"])
        if text[start - 1 : start + 1] == "\r\n" or text[end - 1 : end + 1] == "\r\n":
            return
        self.editor.user_edit(start, end, new)
        self.step()

    # -- the hub's side --

    def send(self, *msgs: dict[str, Any]) -> None:
        """One frame from the hub, each message made wrong or not."""
        if not self.connected:
            return
        frame = [mutate(m, self.rng) if self.rng.random() < self.hostility else m for m in msgs]
        self.room.receive_frame(frame, self.now)
        self.step()

    def hub_got(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "op" and "seq" in msg:
            self._submit(msg)
        elif "id" in msg:
            self.requests.append(msg)

    def _submit(self, msg: dict[str, Any]) -> None:
        seq = self.docs.get(msg["path"])
        if seq is None:
            return
        try:
            op = ops.check(msg["op"])
            out = seq.submit(Submission(ClientId("ada"), msg["seq"], Rev(msg["rev"]), op, "ada"))
        except ValueError:  # (a sequencer refusal comes back as a Refusal)
            out = None
        if isinstance(out, Sequenced):
            seq.commit(seq.take_unsent()[-1].rev)
            self.pending_acks.append({"type": "ack", "path": msg["path"], "seq": msg["seq"], "rev": out.rev})
        else:
            self.pending_acks.append(
                {"type": "error", "code": "invalid_op", "path": msg["path"], "seq": msg["seq"]}
            )

    def answer(self, req: dict[str, Any]) -> list[dict[str, Any]]:
        """What an honest hub answers to *req* (a frame's messages)."""
        made = self._made(req)
        if made is not None:
            return made
        return [self._answer(req)]

    def _made(self, req: dict[str, Any]) -> list[dict[str, Any]] | None:
        """An undo or redo: the hub's op, then the answer; None for another request."""
        kind, path = req.get("type"), req.get("path")
        if kind not in ("undo", "redo") or not isinstance(path, str) or path not in self.docs:
            return None
        if self.rng.random() < 0.5:
            return [{"id": req["id"], "type": "error", "code": f"nothing_to_{kind}", "path": path}]
        op = self.peer_op(path, author="me")
        assert op is not None
        return [
            op,
            {
                "id": req["id"],
                "type": "undone" if kind == "undo" else "redone",
                "path": path,
                "rev": op["rev"],
            },
        ]

    def _answer(self, req: dict[str, Any]) -> dict[str, Any]:
        kind, rid = req.get("type"), req["id"]
        if kind == "hello":
            return {"id": rid, "type": "welcome", "protocol": 1, "participant": "me", "limits": dict(LIMITS)}
        if kind in ("create_room", "join"):
            return {
                "id": rid,
                "type": "room_created" if kind == "create_room" else "joined",
                "room": "R",
                "role": "owner",
                "participant": "me",
                "author": "ada-author",
                "participants": [
                    {"id": "me", "name": "Ada", "role": "owner"},
                    {"id": "bob", "name": "Bob", "role": "editor"},
                ],
                "documents": [{"path": p, "rev": s.committed_rev} for p, s in self.docs.items()],
                "presence": [],
                "ownerSecret": "O" * 43,
                "editorSecret": "E" * 43,
                "viewerSecret": "V" * 43,
            }
        path = req.get("path")
        if kind == "create_document" and isinstance(path, str):
            if path in self.docs:
                return {"id": rid, "type": "error", "code": "document_exists", "path": path}
            self.docs[path] = Sequencer(req["text"], 0)
            return {"id": rid, "type": "document_created", "path": path, "rev": 0}
        seq = self.docs.get(path) if isinstance(path, str) else None
        if kind == "open" and seq is not None:
            if "since" in req:
                if req["since"] > seq.committed_rev:
                    return {"id": rid, "type": "error", "code": "future_revision", "path": path}
                since = seq.ops_since(req["since"])
                if since is not None:
                    entries = [
                        {
                            "rev": s.rev,
                            "op": s.op,
                            "author": s.author,
                            **({"seq": s.seq} if s.client_id == "ada" else {}),
                        }
                        for s in since
                    ]
                    return {
                        "id": rid,
                        "type": "opened",
                        "path": path,
                        "rev": seq.committed_rev,
                        "ops": entries,
                    }
            return {
                "id": rid,
                "type": "opened",
                "path": path,
                "rev": seq.committed_rev,
                "text": seq.committed_text,
            }
        if kind == "digest" and seq is not None:
            digest = hashlib.sha256(seq.committed_text.encode("utf-8")).hexdigest()
            return {"id": rid, "type": "digest", "path": path, "rev": seq.committed_rev, "sha256": digest}
        if kind == "history" and seq is not None:
            changes = [
                {
                    "rev": rev,
                    "firstRev": rev,
                    "author": "bob-author",
                    "name": "Bob",
                    "time": "2026-12-03T10:00:00Z",
                    "inserted": 1,
                    "deleted": 0,
                    "line": 0,
                }
                for rev in range(seq.committed_rev, max(0, seq.committed_rev - 3), -1)
            ]
            return {"id": rid, "type": "history", "path": path, "changes": changes, "more": False}
        if kind == "blame" and seq is not None:
            lines = [
                {
                    "author": "bob-author",
                    "name": "Bob",
                    "time": "2026-12-03T10:00:00Z",
                    "rev": seq.committed_rev,
                }
                for _ in seq.committed_text.split("\n")
            ]
            return {"id": rid, "type": "blame", "path": path, "rev": seq.committed_rev, "lines": lines}
        if kind == "revision" and seq is not None and req.get("rev") == seq.committed_rev:
            return {
                "id": rid,
                "type": "revision",
                "path": path,
                "rev": seq.committed_rev,
                "text": seq.committed_text,
            }
        if kind == "kick":
            return {"id": rid, "type": "kicked", "participant": req.get("participant")}
        if kind == "set_role":
            return {
                "id": rid,
                "type": "role_set",
                "participant": req.get("participant"),
                "role": req.get("role"),
            }
        if kind == "rotate_invites":
            return {"id": rid, "type": "invites_rotated", "editorSecret": "F" * 43, "viewerSecret": "W" * 43}
        return {"id": rid, "type": "error", "code": "bad_message", "path": path}

    def peer_op(self, path: str, author: str = "bob") -> dict[str, Any] | None:
        seq = self.docs.get(path)
        if seq is None:
            return None
        text = seq.committed_text
        at = self.rng.randrange(len(text) + 1)
        if text and self.rng.random() < 0.3:
            at = min(at, len(text) - 1)
            op = ops.check([at, -1] if at else [-1])
        else:
            op = ops.check([at, self.rng.choice(["b", "\n", "😀", "ß "])] if at else ["b"])
        self.peer_seq += 1
        out = seq.submit(Submission(ClientId(author), self.peer_seq, seq.rev, op, author))
        assert isinstance(out, Sequenced), out
        seq.commit(seq.take_unsent()[-1].rev)
        return {"type": "op", "path": path, "rev": out.rev, "op": out.op, "author": author}

    def unsolicited(self) -> dict[str, Any]:
        """Something a hub sends of its own accord."""
        paths = list(self.docs) or [PATH]
        path = self.rng.choice(paths)
        seq = self.docs.get(path)
        rev = seq.committed_rev if seq is not None else 0
        choices: list[dict[str, Any]] = [
            {
                "type": "presence",
                "participant": "bob",
                "name": "Bob",
                "path": path,
                "rev": rev,
                "ranges": [[1, 3]],
            },
            {"type": "participant_joined", "participant": {"id": "carl", "name": "Carl", "role": "editor"}},
            {"type": "participant_changed", "participant": {"id": "bob", "name": "Bob", "role": "viewer"}},
            {"type": "participant_left", "participant": "carl"},
            {"type": "run_request", "participant": "bob", "name": "Bob", "command": "make test", "key": "k1"},
            {
                "type": "run_status",
                "path": ".pairls/runs/1.log",
                "state": "running",
                "name": "Bob",
                "command": "ls",
            },
            {"type": "run_status", "path": ".pairls/runs/1.log", "state": "ended", "exitCode": 1},
            {
                "type": "error",
                "code": self.rng.choice(["rate_limited", "invalid_op", "unavailable", "room_deleted"]),
            },
            {"type": "error", "code": "invalid_op", "path": path, "seq": self.rng.randrange(5)},
            {"type": "ack", "path": path, "seq": self.rng.randrange(5), "rev": rev},
            {"type": "op", "path": path, "rev": rev + 1, "op": [0, "q"], "author": "bob"},
            {"type": "removed"},
            {"type": "room_deleted"},
            {"type": "left"},
        ]
        if self.rng.random() < 0.05 and len(self.docs) < 4:
            new = f"d{len(self.docs)}.txt"
            self.docs[new] = Sequencer("new doc\n", 0)
            return {"type": "document_added", "path": new, "rev": 0, "by": "bob"}
        return self.rng.choice(choices)

    # -- a session --

    def enter(self) -> None:
        """Create a room and share the editor's buffer (when not in one)."""
        self.room.create(HUB, "r", f"client-{self.rng.randrange(10**9)}", self.now)
        self.step()

    def ask(self) -> None:
        """The user asks something of the room: undo, history, blame, an owner's control."""
        if not self.room.in_room:
            return
        doc = self.room.docs.get(PATH)
        rev = doc.client.rev if doc is not None and doc.client is not None else 0
        asks = [
            lambda: self.room.undo(PATH, self.now),
            lambda: self.room.redo(PATH, self.now),
            lambda: self.room.history(PATH, self.now, limit=self.rng.choice([None, 3])),
            lambda: self.room.revision(PATH, self.rng.choice([rev, 0]), self.now),
            lambda: self.room.blame(PATH, self.now),
            lambda: self.room.blame_lines(URI, self.now),
            lambda: self.room.kick("bob", self.now),
            lambda: self.room.set_role("bob", "viewer", self.now),
            lambda: self.room.rotate_invites(self.now),
        ]
        self.rng.choice(asks)()
        self.step()

    def share(self) -> None:
        """Share the editor's buffer (again, if the hub made the room drop it)."""
        if self.room.in_room and self.room.by_uri.get(URI) is None:
            self.room.share(URI, PATH, self.editor.text, self.editor.version, self.now)
            self.step()

    def round(self) -> None:
        """One thing happens: the hub answers, or speaks, or the user types, or time passes."""
        if not self.room.in_room and not self.connected and not self.requests:
            self.enter()
        self.share()
        r = self.rng.random()
        if self.pending_acks and r < 0.3:
            self.send(self.pending_acks.pop(0))
        elif self.requests and r < 0.6:
            req = self.requests.pop(self.rng.randrange(len(self.requests)))
            if self.rng.random() < 0.1:
                return  # never answered
            self.send(*self.answer(req))
        elif r < 0.75:
            op = self.peer_op(self.rng.choice(list(self.docs) or [PATH]))
            if op is not None:
                self.send(op)
        elif r < 0.85:
            self.send(*(self.unsolicited() for _ in range(self.rng.randint(1, 3))))
        elif r < 0.90:
            self.type()
        elif r < 0.93:
            self.ask()
        elif r < 0.97:
            self.advance(self.rng.choice([0.01, 0.2, 1.0, 5.0]))
        elif self.connected:
            self.cut()

    def cut(self) -> None:
        """The connection drops: what the hub was asked or owed is gone with it."""
        self.connected = False
        self.requests.clear()
        self.pending_acks.clear()
        self.room.connection_closed(1006, self.now)
        self.step()

    def settle(self) -> None:
        """The hub restarts honest (a hub that stays up may leave a request unanswered for
        ever: the room waits for it, as for any hub): answer, acknowledge and let time pass
        until nothing moves."""
        self.hostility = 0.0
        if self.connected:
            self.cut()
        for _ in range(2000):
            if not self.room.in_room and not self.connected and not self.requests:
                return
            self.share()
            if self.pending_acks:
                self.send(self.pending_acks.pop(0))
            elif self.requests:
                self.send(*self.answer(self.requests.pop(0)))
            else:
                self.advance(2.0)
                if not self.requests and not self.pending_acks and self._quiet():
                    return
        raise AssertionError("the room never settled with an honest hub")

    def _quiet(self) -> bool:
        """Connected, the document open, nothing in flight or due, and the editor caught up."""
        doc = self.room.by_uri.get(URI)
        if doc is None:
            return True
        if not self.connected or not self.room.connected or doc.state is not DocState.OPEN:
            return False
        client = doc.client
        return (
            client is not None
            and not client.unacknowledged
            and doc.check_at is None
            and doc.views[URI].sync.quiet
        )


def _session(seed: int, rounds: int) -> FuzzHub:
    f = FuzzHub(seed)
    for _ in range(rounds):
        f.round()
    f.settle()
    return f


def _check(seed: int) -> bool:
    """One session; whether its shared document was there to compare at the end."""
    f = _session(seed, ROUNDS)
    doc = f.room.by_uri.get(URI)
    if doc is None:
        # the hub ended the room, or refused the document for good (too large, say)
        assert not f.room.in_room or f.room.docs[PATH].state is DocState.FAILED
        return False
    assert doc.client is not None
    # the language server knows what the editor shows, the room holds the honest hub's text
    # (a lie put in it healed), and the editor shows it
    assert doc.views[URI].sync.text == f.editor.text
    assert doc.client.text == f.docs[doc.path].committed_text
    assert f.editor.text == doc.client.text
    return True


@pytest.mark.parametrize("block", range(4))
def test_whatever_the_hub_sends_the_editor_and_the_room_agree_and_heal(block: int) -> None:
    compared = [_check(seed) for seed in range(block * 10, block * 10 + 10)]
    # (a session where the hub dropped the document early compares nothing: most must not)
    assert sum(compared) >= 5, compared


def test_only_the_limits_a_room_can_go_by_are_taken_from_a_welcome() -> None:
    said = {
        "maxMessageBytes": float("nan"),
        "rate": float("inf"),
        "burst": True,
        "maxOpComponents": -1,
        "maxDocumentBytes": "16",
        "maxDocumentsPerRoom": 2**60,
        "anything": 5,
    }
    assert hub_limits(said) == {}
    assert hub_limits({"maxMessageBytes": 1 << 20, "rate": 0.5}) == {"maxMessageBytes": 1 << 20, "rate": 0.5}
    assert hub_limits([1, 2]) == {}


def test_a_hubs_error_code_reaches_the_user_and_the_log_only_as_a_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lsp_bridge")
    room = Room(name="Ada", encoding="utf-16", config=RoomConfig())
    ticket = room.create(HUB, "r", "client-1", 100.0)
    room.connection_opened(100.0)
    (hello,) = room.messages_to_send(100.0)
    forged = "x" * 5000 + "\nERROR forged log line"
    room.receive_frame([{"id": hello["id"], "type": "error", "code": forged}], 100.0)
    (done,) = [e for e in room.events(100.0) if isinstance(e, Done) and e.ticket == ticket]
    assert done.error == "the hub refused the request (?)"
    room.receive_frame([{"type": "error", "code": forged}], 100.0)  # (logged: "hub error: ...")
    assert "hub error: ?" in caplog.text and "forged" not in caplog.text
