"""History, blame, revisions and per-person undo over real websockets, on a real PostgreSQL.

The hubs run in this process with a clock the tests move (``Hub(clock=...)``): a
change is a run of one user's ops within a second of each other, so the tests
say where one change ends by moving the clock on.  What blame and history
answer is checked against an independent reading of the ``ops`` table with
asyncpg (:func:`log_changes`, :func:`log_blame`), not against the index.
"""

from __future__ import annotations

import base64
import hashlib
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
from collab_server.hub import Hub, HubConfig
from collab_server.store import Store
from tests.support.hubclient import HubError, Peer, SharedDoc

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


async def undo(peer: Peer, kind: str = "undo") -> int:
    reply = await peer.request({"type": kind, "path": DOC})
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
        err = await refused(p.ada, {"type": "undo", "path": DOC})
        assert (err["code"], err["path"]) == ("nothing_to_undo", DOC)

        await undo(p.ada, "redo")
        await settle(p.da, p.db)
        assert p.da.text == p.db.text == "[B1]hello[B2] world[B3]"
        await undo(p.ada, "redo")
        await settle(p.da, p.db)
        assert p.da.text == p.db.text == "[B1]hello[B2] world[B3] again"
        err = await refused(p.ada, {"type": "redo", "path": DOC})
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


async def read_log(database_url: str, room_id: str, path: str = DOC) -> tuple[LogModel, list[Any]]:
    """The document's log read with asyncpg and replayed into a :class:`LogModel`."""
    db = await asyncpg.connect(database_url)
    try:
        doc = await db.fetchrow(
            "SELECT id, created_by, created_at FROM documents WHERE room_id = $1 AND path = $2", room_id, path
        )
        text = await db.fetchval("SELECT text FROM snapshots WHERE document_id = $1 AND rev = 0", doc["id"])
        rows = await db.fetch(
            "SELECT rev, op, user_id, created_at, change_rev, toggles FROM ops"
            " WHERE document_id = $1 ORDER BY rev",
            doc["id"],
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
