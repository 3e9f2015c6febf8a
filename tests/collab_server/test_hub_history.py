"""History, blame, revisions and per-person undo over real websockets, on a real PostgreSQL.

The hubs run in this process with a clock the tests move (``Hub(clock=...)``): a
change is a run of one user's ops within a second of each other, so the tests
say where one change ends by moving the clock on.  What blame and history
answer is checked against an independent reading of the ``ops`` table with
asyncpg (:func:`log_changes`, :func:`log_blame`), not against the index.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from collab_core import ops
from collab_server.document import ClientId, Rev, Sequenced
from collab_server.hub import Hub, HubConfig
from collab_server.store import Store, open_store
from tests.support.hubclient import HubError, Peer, SharedDoc
from tests.support.hubproc import start_hub
from tests.support.proxy import TcpProxy

pytestmark = pytest.mark.timeout(180)

DOC = "src/notes.txt"
T0 = 1_764_000_000.0


class Clock:
    """The hubs' wall clock, moved by the tests."""

    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t

    def later(self, seconds: float = 5.0) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def hub(store: Store, clock: Clock) -> AsyncIterator[Hub]:
    h = Hub(store, HubConfig(), clock=clock)
    await h.start("127.0.0.1", 0)
    try:
        yield h
    finally:
        await h.close()


def url(hub: Hub) -> str:
    return f"ws://127.0.0.1:{hub.port}"


@dataclass
class Pair:
    room: dict[str, Any]
    ada: Peer
    bob: Peer
    da: SharedDoc
    db: SharedDoc

    async def close(self) -> None:
        await self.ada.close()
        await self.bob.close()


async def pair(hub_url: str, text: str = "", *, bob_url: str | None = None) -> Pair:
    ada = await Peer(hub_url, "Ada", user="ada-user-0001").connect()
    bob = await Peer(bob_url or hub_url, "Bob", user="bob-user-0001").connect()
    room = await ada.create_room("history")
    await ada.create_document(DOC, text)
    await bob.join(room["room"], room["editorSecret"])
    return Pair(room, ada, bob, await ada.open(DOC), await bob.open(DOC))


async def settle(*docs: SharedDoc) -> None:
    """Every doc has its edits acked and every other's ops applied."""
    for d in docs:
        await d.wait_synced()
    head = max(d.rev for d in docs)
    for d in docs:
        await d.wait_rev(head)


async def typed(doc: SharedDoc, pos: int, text: str) -> None:
    """Type *text* at *pos* a character at a time, each acked before the next."""
    for i, ch in enumerate(text):
        await doc.splice(pos + i, 0, ch)
        await doc.wait_synced()


async def hub_text(hub_url: str, room: dict[str, Any]) -> tuple[str, int]:
    p = await Peer(hub_url, "Fresh").connect()
    try:
        await p.join(room["room"], room["viewerSecret"])
        reply = await p.request({"type": "open", "path": DOC})
        return reply["text"], reply["rev"]
    finally:
        await p.close()


#: the keys of the undos and redos the tests ask for: a new one each press
KEYS = itertools.count(1)


def press(kind: str = "undo", path: str = DOC) -> dict[str, Any]:
    """An undo or redo request with a key of its own."""
    return {"type": kind, "path": path, "key": next(KEYS)}


async def undo(peer: Peer, kind: str = "undo") -> int:
    reply = await peer.request(press(kind))
    assert reply["type"] == ("undone" if kind == "undo" else "redone")
    assert reply["path"] == DOC
    return int(reply["rev"])


async def refused(peer: Peer, msg: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(HubError) as info:
        await peer.request(msg)
    return info.value.msg


async def test_undo_takes_back_only_my_changes_and_redo_restores_them(hub: Hub, clock: Clock) -> None:
    p = await pair(url(hub))
    try:
        await typed(p.da, 0, "hello world")
        await settle(p.da, p.db)
        clock.later()
        # Bob types before, inside and after Ada's text
        await typed(p.db, 0, "[B1]")
        await typed(p.db, len("[B1]hello"), "[B2]")
        await typed(p.db, len(p.db.text), "[B3]")
        await settle(p.da, p.db)
        clock.later()
        await typed(p.da, len(p.da.text), " again")
        await settle(p.da, p.db)
        assert p.da.text == "[B1]hello[B2] world[B3] again"
        clock.later()

        rev = await undo(p.ada)
        await settle(p.da, p.db)
        assert p.da.rev == rev
        assert p.da.text == p.db.text == "[B1]hello[B2] world[B3]"
        await undo(p.ada)
        await settle(p.da, p.db)
        assert p.da.text == p.db.text == "[B1][B2][B3]"
        assert await hub_text(url(hub), p.room) == (p.da.text, p.da.rev)
        err = await refused(p.ada, press("undo"))
        assert (err["code"], err["path"]) == ("nothing_to_undo", DOC)

        await undo(p.ada, "redo")
        await settle(p.da, p.db)
        assert p.da.text == p.db.text == "[B1]hello[B2] world[B3]"
        await undo(p.ada, "redo")
        await settle(p.da, p.db)
        assert p.da.text == p.db.text == "[B1]hello[B2] world[B3] again"
        err = await refused(p.ada, press("redo"))
        assert err["code"] == "nothing_to_redo"
        assert await hub_text(url(hub), p.room) == (p.da.text, p.da.rev)
        # Bob's undo is Bob's: his three places, one change each (he jumped between them)
        for want in ("[B1]hello[B2] world again", "[B1]hello world again", "hello world again"):
            await undo(p.bob)
            await settle(p.da, p.db)
            assert p.db.text == p.da.text == want
    finally:
        await p.close()


# -- an independent reading of the log ------------------------------------------------------

GAP = 1.0


def author_of(room: str, user: str) -> str:
    if not user:
        return ""
    return base64.urlsafe_b64encode(hashlib.sha256(f"{room}\x00{user}".encode()).digest()).decode()[:12]


def iso(stamp: datetime) -> str:
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


@dataclass
class Char:
    ch: str
    change: int
    dels: set[int]
    rev: int  # the rev that last changed its visibility
    vis: bool = True


@dataclass
class Entry:
    """A history entry as the log shows it."""

    rev: int
    first_rev: int
    user: str
    time: datetime
    inserted: int = 0
    deleted: int = 0
    line: int = 0
    kind: str = "edit"
    toggles: int | None = None
    active: bool = True


class LogModel:
    """The document's history replayed from the ops table, one character at a time.

    Every character ever inserted stays in the list (deleted ones hidden), an insert goes
    right after the visible character before it; a change is the one the log names (or
    the user's current one within GAP seconds); undo and redo flip a change and must
    commit exactly the difference in what is visible.
    """

    def __init__(self, text: str, creator: str, created: datetime) -> None:
        self.chars = [Char(c, 0, set(), 0) for c in text]
        self.users: dict[int, tuple[str, datetime]] = {0: (creator, created)}
        self.entries: dict[int, Entry] = {}
        self.undo: dict[str, list[int]] = {}
        self.redo: dict[str, list[int]] = {}
        self.current: dict[str, tuple[int, datetime]] = {}
        self.rev = 0

    def visible(self) -> list[Char]:
        return [c for c in self.chars if c.vis]

    @property
    def text(self) -> str:
        return "".join(c.ch for c in self.visible())

    def apply(
        self, rev: int, op: ops.Op, user: str, at: datetime, change: int | None, toggles: int | None
    ) -> None:
        assert rev == self.rev + 1
        self.users[rev] = (user, at)
        if toggles is None:
            self._edit(rev, op, user, at, change)
        else:
            self._toggle(rev, op, user, at, toggles)
        self.rev = rev

    def _edit(self, rev: int, op: ops.Op, user: str, at: datetime, change: int | None) -> None:
        cur = self.current.get(user)
        continues = cur is not None and (at - cur[1]).total_seconds() <= GAP
        if change is None:
            change = cur[0] if continues and cur is not None else rev
        if change == rev:
            lo = _first_place(op)
            line = self.text[:lo].count("\n")
            self.entries[rev] = Entry(rev, rev, user, at, line=line)
            self.undo.setdefault(user, []).append(rev)
        else:
            # joins the user's current change, which must still be open
            assert continues and cur is not None and cur[0] == change, (rev, change, cur)
            entry = self.entries[change]
            assert entry.active and entry.user == user
            entry.rev, entry.time = rev, at
        self.redo.pop(user, None)
        self.current[user] = (change, at)
        entry = self.entries[change]
        vis = [i for i, c in enumerate(self.chars) if c.vis]
        pos = 0  # in the visible text before the op
        inserted: list[tuple[int, list[Char]]] = []  # (list index, chars)
        for comp in op:
            if type(comp) is str:
                at_index = 0 if pos == 0 else vis[pos - 1] + 1
                inserted.append((at_index, [Char(ch, change, set(), rev) for ch in comp]))
                entry.inserted += len(comp)
            elif comp > 0:  # type: ignore[operator]
                pos += comp  # type: ignore[operator]
            else:
                for i in vis[pos : pos - comp]:  # type: ignore[operator]
                    c = self.chars[i]
                    c.vis, c.rev = False, rev
                    c.dels.add(change)
                    if c.change == change:
                        entry.inserted -= 1
                    else:
                        entry.deleted += 1
                pos -= comp  # type: ignore[operator]
        for index, chars in reversed(inserted):
            self.chars[index:index] = chars

    def _shown(self, c: Char, state: dict[int, bool]) -> bool:
        def active(k: int) -> bool:
            return state.get(k, k == 0 or self.entries[k].active)

        return active(c.change) and not any(active(d) for d in c.dels)

    def _toggle(self, rev: int, op: ops.Op, user: str, at: datetime, toggles: int) -> None:
        undo = self.entries[toggles].active
        stack = (self.undo if undo else self.redo).get(user, [])
        state: dict[int, bool] = {}
        flipped: list[int] = []
        for k in reversed(stack):
            state[k] = not undo
            flipped.append(k)
            if any(self._shown(c, state) != c.vis for c in self.chars):
                break
        assert flipped and flipped[-1] == toggles, ("not the change an undo/redo takes", toggles, stack)
        before = self.text
        line = 0
        changed = [i for i, c in enumerate(self.chars) if self._shown(c, state) != c.vis]
        vis_before = sum(1 for c in self.chars[: changed[0]] if c.vis)
        line = before[:vis_before].count("\n")
        entry = Entry(rev, rev, user, at, line=line, kind="undo" if undo else "redo", toggles=toggles)
        for i in changed:
            c = self.chars[i]
            c.vis, c.rev = not c.vis, rev
            if c.vis:
                entry.inserted += 1
            else:
                entry.deleted += 1
        assert ops.apply(before, op) == self.text, "the undo's op is not the difference it makes"
        for k in flipped:
            self.entries[k].active = not undo
            (self.undo if undo else self.redo)[user].remove(k)
            (self.redo if undo else self.undo).setdefault(user, []).append(k)
        self.entries[rev] = entry
        self.current.pop(user, None)

    def blame(self) -> list[int]:
        """The rev of every line (see collab_core.history.DocumentHistory.blame)."""
        out: list[int] = []
        best = lead = prev_nl = -1
        seen = False
        for c in self.chars:
            if c.vis:
                if not seen:
                    seen, best = True, max(best, lead)
                best = max(best, c.rev)
                if c.ch == "\n":
                    out.append(best)
                    prev_nl, best, lead, seen = c.rev, -1, -1, False
            elif seen:
                best = max(best, c.rev)
            elif c.ch == "\n":
                lead = -1
            else:
                lead = max(lead, c.rev)
        out.append(best if seen else max(lead, prev_nl))
        return out

    def changes(self) -> list[Entry]:
        """Newest first, by the rev of each change's last op."""
        return sorted((e for k, e in self.entries.items() if k), key=lambda e: -e.rev)


def _first_place(op: ops.Op) -> int:
    pos = 0
    for comp in op:
        if type(comp) is str or (type(comp) is int and comp < 0):
            return pos
        pos += comp  # type: ignore[operator]
    return 0


async def read_log(
    database_url: str, room_id: str, path: str = DOC, upto: int | None = None
) -> tuple[LogModel, list[Any]]:
    """The document's log (up to revision *upto*) read with asyncpg and replayed into a
    :class:`LogModel`."""
    db = await asyncpg.connect(database_url)
    try:
        doc = await db.fetchrow(
            "SELECT id, created_by, created_at FROM documents WHERE room_id = $1 AND path = $2", room_id, path
        )
        text = await db.fetchval("SELECT text FROM snapshots WHERE document_id = $1 AND rev = 0", doc["id"])
        rows = await db.fetch(
            "SELECT rev, op, user_id, created_at, change_rev, toggles FROM ops"
            " WHERE document_id = $1 AND rev <= $2 ORDER BY rev",
            doc["id"],
            2**62 if upto is None else upto,
        )
    finally:
        await db.close()
    model = LogModel(text, doc["created_by"], doc["created_at"])
    for r in rows:
        model.apply(
            r["rev"], json.loads(r["op"]), r["user_id"], r["created_at"], r["change_rev"], r["toggles"]
        )
    return model, list(rows)


def expected_blame(model: LogModel, room_id: str, names: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for rev in model.blame():
        if rev < 0:
            user, at, rev = "", model.users[0][1], 0
        else:
            user, at = model.users[rev]
        out.append(
            {"author": author_of(room_id, user), "name": names.get(user, ""), "time": iso(at), "rev": rev}
        )
    return out


def expected_history(model: LogModel, room_id: str, names: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for e in model.changes():
        entry: dict[str, Any] = {
            "rev": e.rev,
            "firstRev": e.first_rev,
            "author": author_of(room_id, e.user),
            "name": names.get(e.user, ""),
            "time": iso(e.time),
            "inserted": e.inserted,
            "deleted": e.deleted,
            "line": e.line,
        }
        if e.kind != "edit":
            entry.update(kind=e.kind, toggles=e.toggles)
        out.append(entry)
    return out


async def whole_history(peer: Peer, limit: int = 7) -> list[dict[str, Any]]:
    """Every page of the history, *limit* at a time."""
    out: list[dict[str, Any]] = []
    before = None
    while True:
        msg: dict[str, Any] = {"type": "history", "path": DOC, "limit": limit}
        if before is not None:
            msg["before"] = before
        page = await peer.request(msg)
        assert len(page["changes"]) <= limit
        out += page["changes"]
        if not page["more"]:
            return out
        before = page["changes"][-1]["rev"]


NAMES = {"ada-user-0001": "Ada", "bob-user-0001": "Bob"}


async def random_session(p: Pair, clock: Clock, rng: random.Random, steps: int) -> dict[str, int]:
    """Ada and Bob take turns at random: typing (newlines too), deleting, undoing, redoing."""
    counts = {"edit": 0, "undo": 0, "redo": 0, "nothing": 0}
    again: tuple[Peer, SharedDoc] | None = None
    for _ in range(steps):
        peer, doc = (p.ada, p.da) if rng.random() < 0.5 else (p.bob, p.db)
        r = rng.random()
        if again is not None and r < 0.5:
            (peer, doc), r = again, 0.12  # a redo right after one's undo, now and then
        again = None
        if r < 0.15:
            kind = "undo" if r < 0.1 else "redo"
            try:
                await undo(peer, kind)
                counts[kind] += 1
                again = (peer, doc) if kind == "undo" else None
            except HubError as exc:
                assert exc.code == f"nothing_to_{kind}"
                counts["nothing"] += 1
        else:
            n = len(doc.text)
            pos = rng.randrange(n + 1)
            if n and r < 0.4:
                await doc.splice(min(pos, n - 1), min(rng.randint(1, 4), n - min(pos, n - 1)), "")
            else:
                await doc.splice(pos, 0, rng.choice(["x", "yz", "\n", "ab\ncd", "é😀", " "]))
            counts["edit"] += 1
        await settle(p.da, p.db)
        clock.later(rng.choice([0.1, 0.4, 0.9, 3.0]))
    return counts


async def check_against_log(peer: Peer, database_url: str, room_id: str) -> LogModel:
    model, rows = await read_log(database_url, room_id)
    blame = await peer.request({"type": "blame", "path": DOC})
    assert blame["rev"] == model.rev
    want = expected_blame(model, room_id, NAMES)
    assert blame["lines"] == want
    lines = len(want)
    for start, end in ((0, 1), (lines // 2, lines // 2 + 3), (lines - 1, lines + 10), (lines + 5, None)):
        msg: dict[str, Any] = {"type": "blame", "path": DOC, "start": start}
        if end is not None:
            msg["end"] = end
        part = await peer.request(msg)
        assert part["lines"] == want[start:end]
    assert await whole_history(peer) == expected_history(model, room_id, NAMES)
    return model


async def test_blame_and_history_match_the_log_read_directly(
    hub: Hub, clock: Clock, database_url: str
) -> None:
    rng = random.Random(int(os.environ.get("HISTORY_SEED", "1")))
    p = await pair(url(hub), "first line\nsecond\n")
    try:
        # the index first: every op after it is sequenced with the index at the head, so
        # each carries the change it joins
        await p.ada.request({"type": "history", "path": DOC})
        counts = await random_session(p, clock, rng, 150)
        assert counts["undo"] >= 5 and counts["redo"] >= 2, counts
        model = await check_against_log(p.bob, database_url, p.room["room"])
        assert model.text == p.da.text == p.db.text
        _, rows = await read_log(database_url, p.room["room"])
        assert all(r["change_rev"] is not None for r in rows if r["toggles"] is None)
    finally:
        await p.close()


async def test_viewers_read_the_history_but_cannot_undo(hub: Hub, clock: Clock) -> None:
    p = await pair(url(hub), "abc\n")
    viewer = await Peer(url(hub), "Vic", user="vic-user-0001").connect()
    lobby = await Peer(url(hub), "Lou").connect()
    try:
        await typed(p.da, 0, "x")
        await settle(p.da, p.db)
        await viewer.join(p.room["room"], p.room["viewerSecret"])
        await lobby.join(p.room["room"], p.room["editorSecret"])
        await viewer.open(DOC)
        for kind in ("undo", "redo"):
            err = await refused(viewer, press(kind))
            assert (err["code"], err["id"]) == ("forbidden", err["id"])
            # a document this connection has not opened
            err = await refused(lobby, press(kind))
            assert (err["code"], err["path"]) == ("not_open", DOC)
        for msg in (
            {"type": "history", "path": DOC},
            {"type": "blame", "path": DOC},
            {"type": "revision", "path": DOC, "rev": 0},
        ):
            assert (await refused(lobby, msg))["code"] == "not_open"
            reply = await viewer.request(msg)
            assert reply["type"] == msg["type"]
        assert (await viewer.request({"type": "revision", "path": DOC, "rev": 0}))["text"] == "abc\n"
        blame = await viewer.request({"type": "blame", "path": DOC})
        assert [line["name"] for line in blame["lines"]] == ["Ada", "Ada"]
        # the viewer's refused undo changed nothing: Ada's still works
        await undo(p.ada)
        await settle(p.da, p.db)
        assert p.da.text == "abc\n"
    finally:
        for peer in (viewer, lobby):
            await peer.close()
        await p.close()


async def test_undo_reaches_what_the_same_user_did_in_an_earlier_room_entry(
    hub: Hub, clock: Clock, database_url: str
) -> None:
    p = await pair(url(hub))
    carl = await Peer(url(hub), "Carl").connect()  # no user: each room entry is someone new
    try:
        await carl.join(p.room["room"], p.room["editorSecret"])
        dc = await carl.open(DOC)
        await typed(p.da, 0, "one")
        await settle(p.da, p.db, dc)
        clock.later()
        await typed(dc, len(dc.text), " carl")
        await settle(p.da, p.db, dc)
        clock.later()
        await typed(p.da, len(p.da.text), " two")
        await settle(p.da, p.db, dc)
        await p.ada.close()
        await carl.close()
        clock.later()
        # the same people enter the room again: new client ids (and Ada a new name)
        ada = await Peer(url(hub), "Ada L.", user="ada-user-0001").connect()
        carl = await Peer(url(hub), "Carl").connect()
        joined = [await peer.join(p.room["room"], p.room["editorSecret"]) for peer in (ada, carl)]
        # each is told who the history and blame say they are: Ada the same as before
        author = author_of(p.room["room"], "ada-user-0001")
        assert p.room["author"] == joined[0]["author"] == author
        assert joined[1]["author"] == author_of(p.room["room"], carl.client_id) != author
        da, dc = await ada.open(DOC), await carl.open(DOC)
        assert (await refused(carl, press("undo")))["code"] == "nothing_to_undo"
        await undo(ada)
        await settle(da, p.db, dc)
        assert da.text == p.db.text == "one carl"
        await undo(ada)
        await settle(da, p.db, dc)
        assert da.text == dc.text == " carl"
        assert (await refused(ada, press("undo")))["code"] == "nothing_to_undo"
        # the history names Ada by the name she joined with last
        history = (await p.bob.request({"type": "history", "path": DOC}))["changes"]
        names = [c["name"] for c in history]
        assert names == ["Ada L.", "Ada L.", "Ada L.", "Carl", "Ada L."]
        assert [c.get("kind", "edit") for c in history] == ["undo", "undo", "edit", "edit", "edit"]
        assert {c["author"] for c in history if c["name"] == "Ada L."} == {author}
        await ada.close()
    finally:
        await carl.close()
        await p.close()


async def replayed(database_url: str, room_id: str, rev: int) -> str:
    """The text at *rev* from the initial text and the ops table, read directly."""
    db = await asyncpg.connect(database_url)
    try:
        doc_id = await db.fetchval("SELECT id FROM documents WHERE room_id = $1 AND path = $2", room_id, DOC)
        text = await db.fetchval("SELECT text FROM snapshots WHERE document_id = $1 AND rev = 0", doc_id)
        rows = await db.fetch(
            "SELECT op FROM ops WHERE document_id = $1 AND rev <= $2 ORDER BY rev", doc_id, rev
        )
    finally:
        await db.close()
    assert len(rows) == rev
    for r in rows:
        text = ops.apply(text, json.loads(r[0]))
    return str(text)


async def test_revisions_are_the_log_replayed_to_them(store: Store, clock: Clock, database_url: str) -> None:
    hub = Hub(store, HubConfig(snapshot_every=7), clock=clock)
    await hub.start("127.0.0.1", 0)
    p = await pair(url(hub), "start\n")
    try:
        await random_session(p, clock, random.Random(3), 60)
        head = p.da.rev
        rng = random.Random(4)
        for rev in [0, head, *rng.sample(range(1, head), 15)]:
            reply = await p.bob.request({"type": "revision", "path": DOC, "rev": rev})
            assert (reply["path"], reply["rev"]) == (DOC, rev)
            assert reply["text"] == await replayed(database_url, p.room["room"], rev), rev
        assert (await p.bob.request({"type": "revision", "path": DOC, "rev": head}))["text"] == p.db.text
        for bad in (head + 1, 2**53, -1):
            err = await refused(p.bob, {"type": "revision", "path": DOC, "rev": bad})
            assert err["code"] == "bad_message"
    finally:
        await p.close()
        await hub.close()


async def test_the_history_survives_a_hub_restart(store: Store, clock: Clock, database_url: str) -> None:
    """A new hub process on the same database builds the same history from the log."""
    hub = Hub(store, HubConfig(), clock=clock)
    await hub.start("127.0.0.1", 0)
    p = await pair(url(hub), "base\n")
    try:
        await p.ada.request({"type": "history", "path": DOC})
        await random_session(p, clock, random.Random(5), 80)
        clock.later()
        await typed(p.da, 0, "ADA")
        await settle(p.da, p.db)
        clock.later()
        await undo(p.ada)
        await settle(p.da, p.db)
        undone = p.da.text
        assert "ADA" not in undone
        await undo(p.ada, "redo")
        await settle(p.da, p.db)
        blame = await p.bob.request({"type": "blame", "path": DOC})
        history = await whole_history(p.bob)
        text = p.db.text
    finally:
        await p.close()
        await hub.close()
    assert hub.stats.index_builds == 1
    proc = await start_hub(database_url)
    try:
        ada = await Peer(proc.url, "Ada", user="ada-user-0001").connect()
        bob = await Peer(proc.url, "Bob", user="bob-user-0001").connect()
        for peer in (ada, bob):
            await peer.join(p.room["room"], p.room["editorSecret"])
        da, db = await ada.open(DOC), await bob.open(DOC)
        assert da.text == text
        again = await bob.request({"type": "blame", "path": DOC})
        assert (again["rev"], again["lines"]) == (blame["rev"], blame["lines"])
        assert await whole_history(bob) == history
        await undo(ada)
        await settle(da, db)
        assert da.text == db.text == undone
        await check_against_log(bob, database_url, p.room["room"])
        await ada.close()
        await bob.close()
    finally:
        await asyncio.to_thread(proc.terminate)


@pytest.fixture
async def two_hubs(database_url: str, clock: Clock) -> AsyncIterator[tuple[Hub, Hub]]:
    stores: list[Store] = []
    hubs: list[Hub] = []
    try:
        for name in ("hub-a", "hub-b"):
            s = await open_store(database_url, hub_id=name)
            stores.append(s)
            h = Hub(s, HubConfig(), clock=clock)
            await h.start("127.0.0.1", 0)
            hubs.append(h)
        yield hubs[0], hubs[1]
    finally:
        for h in hubs:
            await h.close()
        for s in stores:
            await s.close()


async def test_undo_on_one_hub_while_bob_types_on_another_converges(
    two_hubs: tuple[Hub, Hub], clock: Clock, database_url: str
) -> None:
    hub_a, hub_b = two_hubs
    p = await pair(url(hub_a), "\n", bob_url=url(hub_b))
    try:
        for word in ("one ", "two ", "three "):
            await typed(p.da, 0, word)
            clock.later()
        await settle(p.da, p.db)
        assert p.db.text == "three two one \n"
        bob_typed: list[str] = []

        async def bob_types() -> None:
            for i in range(60):
                ch = "abcdefghij"[i % 10]
                await p.db.splice(len(p.db.text), 0, ch)
                bob_typed.append(ch)
                await asyncio.sleep(0.005)

        typing = asyncio.create_task(bob_types())
        for _ in range(3):
            await undo(p.ada)
            await asyncio.sleep(0.02)
        await typing
        await settle(p.da, p.db)
        assert p.da.text == p.db.text == "\n" + "".join(bob_typed)
        assert (await refused(p.ada, press("undo")))["code"] == "nothing_to_undo"
        assert (
            await hub_text(url(hub_a), p.room) == await hub_text(url(hub_b), p.room) == (p.da.text, p.da.rev)
        )
        # both hubs tell the same history, and it is the log's
        for peer in (p.ada, p.bob):
            await check_against_log(peer, database_url, p.room["room"])
        # a redo on hub A brings back what Ada undid last, "one ", where it was: before Bob's text
        await undo(p.ada, "redo")
        await settle(p.da, p.db)
        assert p.db.text == "one \n" + "".join(bob_typed)
        conflicts = hub_a.store.stats.conflicts + hub_b.store.stats.conflicts
        print(
            f"\ntwo hubs: {conflicts} commits lost to the other hub, "
            f"{hub_a.stats.remade_toggles} undos made again from the new head"
        )
    finally:
        await p.close()


async def test_an_undo_that_loses_the_race_to_another_hub_is_made_again(
    hub: Hub, clock: Clock, database_url: str
) -> None:
    """Another hub commits first (here a second store on the database, as a hub would, right
    before our commit of the undo): the undo is made again from the new head, not transformed."""
    other = await open_store(database_url, hub_id="other-hub")
    p = await pair(url(hub), "\n")
    store = hub.store
    append = store.append
    raced: list[int] = []

    async def racing(doc_id: int, expected_rev: int, batch: list[Sequenced]) -> None:
        if not raced and any(s.toggles is not None for s in batch):
            raced.append(expected_rev + 1)
            theirs = Sequenced(Rev(expected_rev + 1), ["Z"], ClientId("zed-client"), 1, "zed", "zed-user")
            await other.append(doc_id, expected_rev, [theirs])
        await append(doc_id, expected_rev, batch)

    try:
        await typed(p.da, 0, "hello")
        await settle(p.da, p.db)
        clock.later()
        store.append = racing  # type: ignore[method-assign]
        rev = await undo(p.ada)
        await settle(p.da, p.db)
        assert raced and rev == raced[0] + 1
        assert p.da.text == p.db.text == "Z\n"
        assert hub.stats.remade_toggles == 1 and store.stats.conflicts == 1
        model = await check_against_log(p.bob, database_url, p.room["room"])
        assert model.text == "Z\n"
    finally:
        store.append = append  # type: ignore[method-assign]
        await p.close()
        await other.close()


# -- an undo is done once, however often it is asked for (its key) ------------------------------


async def toggles_in_log(database_url: str, room_id: str) -> list[tuple[int, str, int]]:
    """(rev, client_id, client_seq) of every undo and redo in the document's log, read directly."""
    db = await asyncpg.connect(database_url)
    try:
        rows = await db.fetch(
            "SELECT o.rev, o.client_id, o.client_seq FROM ops o JOIN documents d ON d.id = o.document_id"
            " WHERE d.room_id = $1 AND d.path = $2 AND o.toggles IS NOT NULL ORDER BY o.rev",
            room_id,
            DOC,
        )
    finally:
        await db.close()
    return [(r[0], r[1], r[2]) for r in rows]


async def two_words(p: Pair, clock: Clock) -> None:
    """Ada types "one " then "two ": two changes."""
    for word in ("one ", "two "):
        await typed(p.da, len(p.da.text), word)
        clock.later()
    await settle(p.da, p.db)


async def test_an_undo_sent_again_with_its_key_is_answered_not_done_again(
    hub: Hub, clock: Clock, database_url: str
) -> None:
    p = await pair(url(hub))
    try:
        await two_words(p, clock)
        # the same press twice at once: the second arrives before the first is committed
        msg = press("undo")
        first, second = await asyncio.gather(p.ada.request(dict(msg)), p.ada.request(dict(msg)))
        assert first["type"] == second["type"] == "undone"
        assert first["id"] != second["id"] and first["rev"] == second["rev"]
        await settle(p.da, p.db)
        assert p.da.text == p.db.text == "one "
        # and again later, after Bob typed: the same answer, nothing more undone
        await typed(p.db, 0, "B")
        await settle(p.da, p.db)
        assert (await p.ada.request(dict(msg)))["rev"] == first["rev"]
        clock.later()
        redone = await undo(p.ada, "redo")
        await settle(p.da, p.db)
        assert p.da.text == "Bone two "
        # a key older than Ada's last one (the redo's): the log knows it, the redo stays
        assert (await p.ada.request(dict(msg)))["rev"] == first["rev"]
        await settle(p.da, p.db)
        assert p.da.text == p.db.text == "Bone two "
        # a new press is a new undo
        again = await undo(p.ada)
        await settle(p.da, p.db)
        assert p.da.text == p.db.text == "Bone "
        assert hub.stats.repeated_toggles == 3
        mine = "undo:" + p.ada.client_id
        assert await toggles_in_log(database_url, p.room["room"]) == [
            (first["rev"], mine, msg["key"]),
            (redone, mine, msg["key"] + 1),
            (again, mine, msg["key"] + 2),
        ]
        # Bob's keys are his: the same number is his own undo
        bob = await p.bob.request({**msg, "id": "b"})
        await settle(p.da, p.db)
        assert bob["rev"] == again + 1 and p.da.text == p.db.text == "one "
    finally:
        await p.close()


@pytest.mark.parametrize("back_to", ["the same hub", "another hub"])
async def test_an_undo_whose_answer_was_lost_with_the_connection_is_answered_after_the_reconnect(
    two_hubs: tuple[Hub, Hub], clock: Clock, database_url: str, back_to: str
) -> None:
    """The hub commits the undo, and the connection is cut before its op or its answer reaches
    Ada: asked again with the same key after the reconnect, it is answered with the revision
    of that undo (its op came in the catch-up), and nothing more is undone."""
    hub_a, hub_b = two_hubs
    proxy = await TcpProxy("127.0.0.1", hub_a.port).start()
    p = await pair(proxy.url, bob_url=url(hub_a))
    ada = p.ada
    store = hub_a.store
    append = store.append
    cut: list[int] = []

    async def cutting(doc_id: int, expected_rev: int, batch: list[Sequenced]) -> None:
        await append(doc_id, expected_rev, batch)
        if not cut and any(s.toggles is not None for s in batch):
            cut.append(batch[-1].rev)
            proxy.cut()  # committed: what the hub sends Ada now is lost

    try:
        await two_words(p, clock)
        store.append = cutting  # type: ignore[method-assign]
        msg = press("undo")
        with pytest.raises(ConnectionError):
            await ada.request(dict(msg))
        store.append = append  # type: ignore[method-assign]
        assert cut and p.da.text == "one two "  # neither the op nor the answer came
        await p.db.wait_rev(cut[0])
        assert p.db.text == "one "
        # Ada's language server reconnects as the same client and asks again, same key
        proxy.restore()
        target = proxy.url if back_to == "the same hub" else url(hub_b)
        ada = await Peer(target, "Ada", client_id=p.ada.client_id, user="ada-user-0001").connect()
        await ada.join(p.room["room"], p.room["ownerSecret"])
        await ada.reopen(p.da)
        assert p.da.rev == cut[0] and p.da.text == "one "  # the undo's op, in the catch-up
        reply = await ada.request(dict(msg))
        assert (reply["type"], reply["path"], reply["rev"]) == ("undone", DOC, cut[0])
        await settle(p.da, p.db)
        assert p.da.text == p.db.text == "one "
        answering = hub_a if back_to == "the same hub" else hub_b
        assert answering.stats.repeated_toggles == 1
        assert await toggles_in_log(database_url, p.room["room"]) == [
            (cut[0], "undo:" + ada.client_id, msg["key"])
        ]
        # the next press undoes the change before
        await undo(ada)
        await settle(p.da, p.db)
        assert p.da.text == p.db.text == ""
    finally:
        store.append = append  # type: ignore[method-assign]
        await ada.close()
        await p.close()
        await proxy.close()


async def test_an_undo_asked_again_after_a_hub_restart_is_answered_from_the_log(
    store: Store, clock: Clock, database_url: str
) -> None:
    hub = Hub(store, HubConfig(), clock=clock)
    await hub.start("127.0.0.1", 0)
    p = await pair(url(hub))
    try:
        await two_words(p, clock)
        msg = press("undo")
        rev = (await p.ada.request(dict(msg)))["rev"]
        await settle(p.da, p.db)
        assert p.da.text == "one "
    finally:
        await p.close()
        await hub.close()
    proc = await start_hub(database_url)
    ada = await Peer(proc.url, "Ada", client_id=p.ada.client_id, user="ada-user-0001").connect()
    try:
        await ada.join(p.room["room"], p.room["ownerSecret"])
        da = await ada.open(DOC)
        reply = await ada.request(dict(msg))
        assert (reply["type"], reply["rev"]) == ("undone", rev)
        # (from the log at once: not made again and refused by its uniqueness, then found)
        assert "store failed" not in proc.log
        assert await hub_text(proc.url, p.room) == ("one ", rev)
        assert await toggles_in_log(database_url, p.room["room"]) == [
            (rev, "undo:" + ada.client_id, msg["key"])
        ]
        assert await undo(ada) == rev + 1  # a new press: the change before
        await da.wait_rev(rev + 1)
        assert da.text == ""
    finally:
        await ada.close()
        await asyncio.to_thread(proc.terminate)


async def test_indexes_past_the_budget_are_dropped_and_built_again(store: Store, clock: Clock) -> None:
    hub = Hub(store, HubConfig(max_index_bytes=1), clock=clock)  # room for one index at most
    await hub.start("127.0.0.1", 0)
    p = await pair(url(hub), "one\n")
    try:
        await p.ada.create_document("other.txt", "two\n")
        other = await p.ada.open("other.txt")
        await typed(p.da, 0, "x")
        await typed(other, 0, "y")
        first = await p.ada.request({"type": "blame", "path": DOC})
        await p.ada.request({"type": "blame", "path": "other.txt"})
        assert hub.stats.index_evictions == 1 and len(hub.indexes) == 1
        again = await p.ada.request({"type": "blame", "path": DOC})
        assert again["lines"] == first["lines"]
        assert hub.stats.index_builds == 3 and hub.stats.index_evictions == 2
        # an evicted index is built again for an undo too
        reply = await p.ada.request(press("undo", "other.txt"))
        await other.wait_rev(reply["rev"])
        assert other.text == "two\n"
        assert hub.stats.index_builds == 4 and hub.stats.index_evictions == 3
    finally:
        await p.close()
        await hub.close()


async def test_the_index_is_built_while_the_document_goes_on(
    store: Store, clock: Clock, database_url: str
) -> None:
    """A long log is read a page at a time while Bob types; what he typed meanwhile is in it."""
    secret = "s" * 43
    await store.create_room("room-1", "long", {"editor": hashlib.sha256(secret.encode()).digest()})
    record = await store.create_document("room-1", DOC, "", created_by="old-user-0001")
    assert record is not None
    text, batch = "", []
    rng = random.Random(6)
    for rev in range(1, 12_001):
        pos = rng.randrange(len(text) + 1)
        if text and rng.random() < 0.3:
            op: ops.Op = ops.normalize([min(pos, len(text) - 1), -1])
        else:
            op = ops.normalize([pos, rng.choice("ab\n")])
        text = ops.apply(text, op)
        # stored as a hub without the index stores them (the change undecided), 2 s apart:
        # each op a change of its own, whatever the rule for places
        batch.append(
            Sequenced(Rev(rev), op, ClientId("old-client"), rev, "old", "old-user-0001", T0 + 2.0 * rev)
        )
        if len(batch) == 2000:
            await store.append(record.id, rev - 2000, batch)
            batch = []
    hub = Hub(store, HubConfig(), clock=clock)
    await hub.start("127.0.0.1", 0)
    ada = await Peer(url(hub), "Ada", user="ada-user-0001").connect()
    bob = await Peer(url(hub), "Bob", user="bob-user-0001").connect()
    try:
        for peer in (ada, bob):
            await peer.join("room-1", secret)
        da, db = await ada.open(DOC), await bob.open(DOC)
        assert da.text == text

        async def bob_types() -> None:
            for _ in range(40):
                await db.splice(0, 0, "B")
                await db.wait_synced()

        typing = asyncio.create_task(bob_types())
        await asyncio.sleep(0.01)
        blame = await ada.request({"type": "blame", "path": DOC})
        await typing
        await settle(da, db)
        assert hub.stats.index_builds == 1 and hub.stats.failed_index_builds == 0
        assert blame["rev"] >= 12_000
        model, _ = await read_log(database_url, "room-1", upto=blame["rev"])
        assert blame["lines"] == expected_blame(model, "room-1", NAMES)
        await check_against_log(bob, database_url, "room-1")
    finally:
        await ada.close()
        await bob.close()
        await hub.close()
