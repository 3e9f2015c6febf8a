"""Room lifecycle: idle rooms are deleted with their data by the hubs' keepers (collab_server.lifecycle).

Two hubs in this process share one real PostgreSQL and both sweep, with a
time to live of a few seconds.  The waits are bounded polls; what is
asserted is the order of events (a busy room outlives an idle one made
after it), never how long something took.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from collab_server.hub import Hub, HubConfig
from collab_server.store import Store
from tests.support.hubclient import Peer

pytestmark = pytest.mark.timeout(120)

TTL = 2.0


@pytest.fixture
def hub_config() -> HubConfig:
    return HubConfig(room_ttl=TTL)


async def rows(database_url: str, room: str) -> int:
    """Rows of every table that belong to *room*."""
    db = await asyncpg.connect(database_url)
    try:
        docs = "(SELECT id FROM documents WHERE room_id = $1)"
        n = 0
        for sql in (
            "SELECT count(*) FROM rooms WHERE id = $1",
            "SELECT count(*) FROM invites WHERE room_id = $1",
            "SELECT count(*) FROM members WHERE room_id = $1",
            "SELECT count(*) FROM documents WHERE room_id = $1",
            f"SELECT count(*) FROM snapshots WHERE document_id IN {docs}",
            f"SELECT count(*) FROM ops WHERE document_id IN {docs}",
        ):
            n += await db.fetchval(sql, room)
        return int(n)
    finally:
        await db.close()


async def eventually(check: Callable[[], Awaitable[Any]], tries: int = 600, delay: float = 0.05) -> Any:
    for _ in range(tries):
        got = await check()
        if got:
            return got
        await asyncio.sleep(delay)
    raise AssertionError("condition never held")


async def room_with_text(url: str, name: str) -> tuple[Peer, dict[str, Any]]:
    owner = await Peer(url, "Ada").connect()
    room = await owner.create_room(name)
    await owner.create_document("a.txt", "abc")
    doc = await owner.open("a.txt")
    await doc.splice(3, 0, "def")
    await doc.wait_synced()
    return owner, room


async def test_idle_rooms_are_deleted_with_their_data_and_rooms_in_use_are_kept(
    two_hubs: tuple[Hub, Hub], database_url: str
) -> None:
    a, b = two_hubs
    busy_owner, busy = await room_with_text(f"ws://127.0.0.1:{a.port}", "busy")
    guest = await Peer(f"ws://127.0.0.1:{b.port}", "Bob").connect()
    await guest.join(busy["room"], busy["editorSecret"])
    idle_owner, idle = await room_with_text(f"ws://127.0.0.1:{b.port}", "idle")
    await idle_owner.close()
    assert await rows(database_url, idle["room"]) > 0

    await eventually(lambda: _gone(database_url, idle["room"]))
    # the busy room is older than the idle one, and someone is connected to it on each hub
    assert await rows(database_url, busy["room"]) > 0
    assert (await busy_owner.request({"type": "ping"}))["type"] == "pong"

    # with its owner gone, one member on the other hub is enough to keep it
    await busy_owner.close()
    await asyncio.sleep(TTL * 2)  # (nothing is asserted about time: only that it was kept)
    assert await rows(database_url, busy["room"]) > 0
    await guest.close()
    await eventually(lambda: _gone(database_url, busy["room"]))
    # each room was deleted once, by one of the two sweeping hubs, and nothing failed
    assert a.stats.idle_rooms_deleted + b.stats.idle_rooms_deleted == 2
    for hub in (a, b):
        assert hub.stats.sweep_failures == 0 and hub.stats.room_check_failures == 0


async def _gone(database_url: str, room: str) -> bool:
    return await rows(database_url, room) == 0


async def test_a_room_with_a_recent_op_is_not_idle(store: Store, database_url: str) -> None:
    """Idle means no member connected *and* no op for the time to live."""
    await store.create_room("r1", "one", {"owner": b"o" * 32})
    doc = await store.create_document("r1", "a.txt", "abc")
    assert doc is not None
    db = await asyncpg.connect(database_url)
    try:
        await db.execute("UPDATE rooms SET last_active = now() - interval '1 hour'")
        await db.execute(
            "INSERT INTO ops (document_id, rev, client_id, client_seq, op)"
            " VALUES ($1, 1, 'c', 1, '[3, \"d\"]')",
            doc.id,
        )
        await db.execute("UPDATE documents SET rev = 1")
        assert await store.delete_idle_rooms(60) == []
        assert await store.delete_idle_rooms(60, keep=["r1"]) == []
        await db.execute("UPDATE ops SET created_at = now() - interval '2 minutes'")
        assert await store.delete_idle_rooms(60, keep=["r1"]) == []  # kept: connected on this hub
        assert await store.delete_idle_rooms(60) == ["r1"]
        assert await db.fetchval("SELECT count(*) FROM ops") == 0
        assert await db.fetchval("SELECT count(*) FROM snapshots") == 0
    finally:
        await db.close()
