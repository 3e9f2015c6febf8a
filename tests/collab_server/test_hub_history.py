"""History, blame, revisions and per-person undo over real websockets, on a real PostgreSQL.

The hubs run in this process with a clock the tests move (``Hub(clock=...)``): a
change is a run of one user's ops within a second of each other, so the tests
say where one change ends by moving the clock on.  What blame and history
answer is checked against an independent reading of the ``ops`` table with
asyncpg (:func:`log_changes`, :func:`log_blame`), not against the index.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

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
