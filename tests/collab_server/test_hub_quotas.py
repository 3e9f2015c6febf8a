"""Admission and quotas of the hub, over real websockets on 127.0.0.1 with a real PostgreSQL.

One test per limit: the create-room token, rooms per hub, documents per
room, connections per address, bytes per second per connection and per
address, the hub-wide history budget, and the send buffer of a client that
does not read (closed with 4408 while the hub holds no more for it).  Every
refusal is a coded answer on a connection that stays open.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from websockets.exceptions import InvalidStatus

from collab_core.errors import MESSAGES, ErrorCode
from collab_server.hub import Connection, Hub, HubConfig
from collab_server.store import Store
from tests.support.http import get, scrape
from tests.support.hubclient import HubError, Peer, until

pytestmark = pytest.mark.timeout(180)

TOKEN = "t0ken-" + "k" * 40


@pytest.fixture
async def start(store: Store) -> AsyncIterator[Callable[..., Awaitable[Hub]]]:
    hubs: list[Hub] = []

    async def start_hub(**config: Any) -> Hub:
        hub = Hub(store, HubConfig(**config))
        await hub.start("127.0.0.1", 0)
        hubs.append(hub)
        return hub

    yield start_hub
    for hub in hubs:
        await hub.close()


def url_of(hub: Hub) -> str:
    return f"ws://127.0.0.1:{hub.port}"


async def metrics(hub: Hub) -> dict[str, float]:
    """The hub's /metrics, as Prometheus reads them."""
    return await scrape(f"http://127.0.0.1:{hub.port}")


async def count(database_url: str, table: str) -> int:
    db = await asyncpg.connect(database_url)
    try:
        return int(await db.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await db.close()


async def still_served(p: Peer) -> None:
    """The connection is open and answers (a refusal never drops it)."""
    assert p.closed is not None and not p.closed.done()
    assert (await p.request({"type": "ping"}))["type"] == "pong"


# -- the create-room token ------------------------------------------------------------------------


async def test_create_room_needs_the_token(start: Callable[..., Awaitable[Hub]], database_url: str) -> None:
    hub = await start(create_token=TOKEN)
    p = await Peer(url_of(hub), "Ada").connect()
    try:
        for token in (None, "", TOKEN[:-1], TOKEN + "x", TOKEN.upper()):
            with pytest.raises(HubError) as info:
                await p.create_room("r", token=token)
            assert info.value.code == "bad_token"
            assert info.value.msg["message"] == MESSAGES[ErrorCode.BAD_TOKEN]
            assert TOKEN not in str(info.value.msg)
        assert hub.stats.bad_tokens == 5
        assert await count(database_url, "rooms") == 0
        await still_served(p)
        created = await p.create_room("r", token=TOKEN)
        assert created["role"] == "owner"
        assert await count(database_url, "rooms") == 1
        # joining needs an invite, not the token
        q = await Peer(url_of(hub), "Bob").connect()
        assert (await q.join(created["room"], created["editorSecret"]))["role"] == "editor"
        await q.close()
    finally:
        await p.close()


async def test_without_a_token_anyone_creates_rooms(start: Callable[..., Awaitable[Hub]]) -> None:
    hub = await start()
    p = await Peer(url_of(hub), "Ada").connect()
    assert (await p.create_room("r", token="ignored"))["role"] == "owner"
    await p.close()


# -- rooms per hub, documents per room --------------------------------------------------------------


async def test_rooms_per_hub(start: Callable[..., Awaitable[Hub]], database_url: str) -> None:
    hub = await start(max_rooms=3)
    peers = [await Peer(url_of(hub), f"p{i}").connect() for i in range(6)]
    try:
        # concurrent creations are counted one at a time: exactly 3 rooms
        results = await asyncio.gather(
            *(p.create_room(f"r{i}") for i, p in enumerate(peers[:5])), return_exceptions=True
        )
        created = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if isinstance(r, HubError)]
        assert len(created) == 3 and len(refused) == 2, results
        assert {e.code for e in refused} == {"quota_exceeded"}
        assert all(e.msg["id"] is not None for e in refused)
        assert await count(database_url, "rooms") == 3
        assert hub.stats.quota_refusals == 2
        with pytest.raises(HubError) as info:
            await peers[5].create_room("one more")
        assert info.value.code == "quota_exceeded"
        for p, r in zip(peers, results, strict=False):
            if isinstance(r, HubError):
                await still_served(p)
        # members of the full hub's rooms still get in and work
        room = created[0]
        await peers[5].join(room["room"], room["editorSecret"])
        await peers[5].create_document("a.txt", "ok")
    finally:
        for p in peers:
            await p.close()
    # a second hub on the same database counts the same rooms
    other = await start(max_rooms=3)
    q = await Peer(url_of(other), "q").connect()
    with pytest.raises(HubError) as info:
        await q.create_room()
    assert info.value.code == "quota_exceeded"
    await q.close()


async def test_documents_per_room(start: Callable[..., Awaitable[Hub]], database_url: str) -> None:
    hub = await start(max_documents_per_room=3)
    a = await Peer(url_of(hub), "Ada").connect()
    b = await Peer(url_of(hub), "Bob").connect()
    try:
        room = await a.create_room()
        await b.join(room["room"], room["editorSecret"])
        results = await asyncio.gather(
            *((a, b)[i % 2].create_document(f"d{i}.txt", "x") for i in range(5)),
            return_exceptions=True,
        )
        made = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if isinstance(r, HubError)]
        assert len(made) == 3 and [e.code for e in refused] == ["quota_exceeded"] * 2, results
        assert len((await a.request({"type": "list_documents"}))["documents"]) == 3
        # an existing path is still answered document_exists (the client opens it instead)
        with pytest.raises(HubError) as info:
            await a.create_document(made[0]["path"], "again")
        assert info.value.code == "document_exists"
        with pytest.raises(HubError) as info:
            await b.create_document("new.txt")
        assert info.value.code == "quota_exceeded"
        await still_served(a)
        await still_served(b)
        # the documents there are edited as usual, and another room has its own quota
        doc = await a.open(made[0]["path"])
        await doc.splice(0, 0, "edit ")
        await doc.wait_synced()
        c = await Peer(url_of(hub), "Cy").connect()
        await c.create_room()
        for i in range(3):
            await c.create_document(f"c{i}.txt")
        await c.close()
        assert await count(database_url, "documents") == 6
    finally:
        await a.close()
        await b.close()


# -- connections per address ----------------------------------------------------------------------


async def test_connections_per_address_are_refused_at_the_handshake(
    start: Callable[..., Awaitable[Hub]],
) -> None:
    hub = await start(max_connections_per_address=3)
    url = url_of(hub)
    # handshakes that fail after the count (a plain GET is answered 426) give their place back
    for _ in range(5):
        assert (await get(f"http://127.0.0.1:{hub.port}/not-a-websocket"))[0] == 426
    await until(lambda: hub.addresses.connections("127.0.0.1") == 0)
    peers = [await Peer(url, f"p{i}").connect() for i in range(3)]
    try:
        with pytest.raises(InvalidStatus) as info:
            await Peer(url, "one too many").connect()
        assert info.value.response.status_code == 429
        assert b"too many connections" in info.value.response.body
        assert hub.stats.refused_connections == 1
        for p in peers:
            await still_served(p)
        # operators' plain HTTP requests are not connections: answered at the limit
        assert (await get(f"http://127.0.0.1:{hub.port}/healthz"))[0] == 200
        assert (await metrics(hub))["pairls_refused_connections_total"] == 1
        # once one leaves, another gets in
        await peers.pop().close()
        await until(lambda: hub.addresses.connections("127.0.0.1") == 2)
        peers.append(await Peer(url, "next").connect())
        await still_served(peers[-1])
        assert hub.addresses.connections("127.0.0.1") == 3
    finally:
        for p in peers:
            await p.close()
    await until(lambda: hub.addresses.connections("127.0.0.1") == 0)


# -- bytes per second -------------------------------------------------------------------------------

RATE = 200_000  # bytes per second
BURST = 50_000
FRAME = 60_000
FRAMES = 20  # 1.2 MB: at least (1.2 MB - burst) / rate = 5.75 s to get through


def padded_ping(i: int) -> dict[str, Any]:
    return {"type": "ping", "id": f"p{i}", "pad": "x" * (FRAME - 40)}


@pytest.mark.parametrize("scope", ["connection", "address"])
async def test_bytes_per_second_hold_a_sender_back_without_refusing(
    start: Callable[..., Awaitable[Hub]], scope: str
) -> None:
    if scope == "connection":
        hub = await start(bytes_per_second=RATE, burst_bytes=BURST, address_bytes_per_second=0)
        senders = 1
    else:  # two connections of one address share its rate
        hub = await start(bytes_per_second=0, address_bytes_per_second=RATE, address_burst_bytes=BURST)
        senders = 2
    url = url_of(hub)
    peers = [await Peer(url, f"s{i}").connect() for i in range(senders)]
    try:
        await asyncio.sleep(0.3)  # the hellos' bytes refill
        t0 = time.monotonic()
        for i in range(FRAMES):
            await peers[i % senders].send(padded_ping(i))
        for i in range(FRAMES):
            pong = await peers[i % senders].next_event("pong", timeout=60)
            assert pong["id"] is not None
        elapsed = time.monotonic() - t0
        total = FRAMES * FRAME
        # a lower bound only: a slower machine takes longer, never shorter
        assert elapsed >= (total - BURST) / RATE * 0.95, elapsed
        assert hub.stats.throttled_frames > 0
        scraped = await metrics(hub)
        assert scraped["pairls_throttled_frames_total"] == hub.stats.throttled_frames
        assert scraped["pairls_throttled_seconds_total"] == pytest.approx(hub.stats.throttled_seconds)
        assert hub.stats.throttled_seconds >= (total - BURST) / RATE * 0.9 / senders
        for p in peers:
            assert not p.events["error"], p.events["error"]  # held back, never refused
            await still_served(p)
    finally:
        for p in peers:
            await p.close()


# -- the history budget -----------------------------------------------------------------------------


async def test_history_budget_evicts_the_oldest_ops_hub_wide(start: Callable[..., Awaitable[Hub]]) -> None:
    limit = 40_000
    hub = await start(max_history_bytes=limit, history=2000)
    url = url_of(hub)
    a = await Peer(url, "Ada").connect()
    c = await Peer(url, "Cy").connect()
    try:
        await a.create_room()
        await a.create_document("one.txt")
        await c.create_room()
        await c.create_document("two.txt")
        one = await a.open("one.txt")
        for i in range(10):  # about 10 * 1.3 kB of history
            await one.splice(len(one.text), 0, f"{i}" * 1000)
            await one.wait_synced()
        assert hub.stats.history_evictions == 0
        # an op on an old base is still transformed
        del a.docs["one.txt"]  # by hand from now on: acks and errors land in a.events
        await a.send({"type": "op", "path": "one.txt", "rev": 1, "seq": 100, "op": ["<"]})
        assert (await a.next_event_of(("ack", "error")))["type"] == "ack"
        # another room's document fills the budget: one.txt's history goes first
        two = await c.open("two.txt")
        for _ in range(40):
            await two.splice(0, 0, "y" * 1000)
            await two.wait_synced()
        assert hub.stats.history_evictions > 0
        assert hub.history.used <= limit
        assert hub.stats.history_evictions == hub.history.evicted
        scraped = await metrics(hub)
        assert scraped["pairls_history_evictions_total"] == hub.stats.history_evictions
        assert 0 < scraped["pairls_history_bytes"] <= limit
        # an op based on an evicted revision is refused, with its seq, and changes nothing
        await a.send({"type": "op", "path": "one.txt", "rev": 2, "seq": 101, "op": [">"]})
        err = await a.next_event_of(("ack", "error"))
        assert (err["type"], err["code"], err["seq"]) == ("error", "revision_too_old", 101)
        await still_served(a)
        # the client catches up from the store and sends it again on the new head
        reply = await a.request({"type": "open", "path": "one.txt", "since": 2})
        head = reply["rev"]
        assert head == 11 and [e["rev"] for e in reply["ops"]] == list(range(3, 12))
        await a.send({"type": "op", "path": "one.txt", "rev": head, "seq": 101, "op": [">"]})
        assert (await a.next_event_of(("ack", "error")))["type"] == "ack"
    finally:
        await a.close()
        await c.close()
    # documents nobody has open leave the budget
    await until(lambda: hub.history.used == 0 and not hub.docs_by_id)


# -- a client that does not read ------------------------------------------------------------------

SEND_BUFFER = 256 * 1024
CHUNK = 32 * 1024


def hub_side(hub: Hub, peer: Peer) -> Connection:
    return next(c for c in hub.connections if c.id == peer.participant)


async def small_window_peer(url: str, name: str) -> Peer:
    """A peer whose socket takes little data unread (a small receive buffer), so that the
    hub's own send buffer is what fills when it stops reading."""
    host, port = url.removeprefix("ws://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    return await Peer(url, name).connect(sock=sock)


@pytest.mark.parametrize("reads_later", [True, False], ids=["reads-later", "never-reads"])
async def test_a_client_that_does_not_read_is_closed_4408_before_it_costs_memory(
    start: Callable[..., Awaitable[Hub]], reads_later: bool
) -> None:
    hub = await start(max_send_buffer=SEND_BUFFER, slow_close_timeout=60 if reads_later else 0.5)
    url = url_of(hub)
    a = await Peer(url, "Ada").connect()
    b = await Peer(url, "Bob").connect()
    slow = await small_window_peer(url, "Slow")
    try:
        room = await a.create_room()
        await a.create_document("chat.txt")
        for p in (b, slow):
            await p.join(room["room"], room["editorSecret"])
        da = await a.open("chat.txt")
        db = await b.open("chat.txt")
        await slow.open("chat.txt")
        conn = hub_side(hub, slow)
        assert slow.ws is not None
        slow.ws.transport.pause_reading()  # from now on it reads nothing

        largest = 0
        peak = 0
        after = 0  # messages the room sent after the hub gave up on it
        sent = 0
        while after < 100:
            assert sent < 3000, "the hub never found the client too slow"
            # ops (a chunk in, a chunk out: the document stays small), presence, people coming and going
            if sent % 2 == 0:
                await da.splice(0, 0, "z" * CHUNK)
            else:
                await da.splice(0, CHUNK, "")
            await da.wait_synced()
            await a.send({"type": "presence", "path": "chat.txt", "rev": da.rev, "ranges": [[0, sent % 7]]})
            if sent % 25 == 0:
                visitor = await Peer(url, "Visitor").connect()
                await visitor.join(room["room"], room["viewerSecret"])
                await visitor.close()
            largest = max(largest, CHUNK + 200)
            sent += 1
            if conn.too_slow:
                after += 1
            peak = max(peak, conn.ws.transport.get_write_buffer_size())
        assert hub.stats.slow_consumers == 1
        assert (await metrics(hub))["pairls_slow_consumers_total"] == 1
        # what the hub holds for it never passed the limit by more than one message and the close frame
        assert peak <= SEND_BUFFER + largest + 256, (peak, SEND_BUFFER)
        await db.wait_rev(da.rev)
        assert db.text == da.text  # the others were served throughout

        assert slow.closed is not None
        if reads_later:
            # it reads what was queued before the hub gave up, then the close
            slow.ws.transport.resume_reading()
            code, reason = await asyncio.wait_for(slow.closed, 60)
            assert (code, reason) == (4408, "too slow: not reading")
            await until(lambda: conn not in hub.connections and conn.room is None)
        else:
            # cut once slow_close_timeout passed: the hub lets go of it and of what it held
            await until(lambda: conn not in hub.connections and conn.room is None)
            assert conn.ws.transport.get_write_buffer_size() == 0
            slow.ws.transport.resume_reading()  # (and the client learns of it)
            await asyncio.wait_for(slow.closed, 60)
        await until(lambda: slow.participant in [e["participant"] for e in b.events["participant_left"]])
        await still_served(a)
        await still_served(b)
    finally:
        for p in (a, b, slow):
            await p.close()


async def test_welcome_advertises_the_limits_a_client_needs(start: Callable[..., Awaitable[Hub]]) -> None:
    hub = await start(max_documents_per_room=7, bytes_per_second=1234, burst_bytes=5678)
    p = await Peer(url_of(hub), "Ada").connect(hello=False)
    try:
        welcome = await p.request({"type": "hello", "protocol": 1, "name": "Ada", "clientId": "ada-client-1"})
        limits = welcome["limits"]
        assert limits["maxDocumentsPerRoom"] == 7
        assert (limits["bytesPerSecond"], limits["burstBytes"]) == (1234, 5678)
        assert limits["maxDocumentBytes"] == HubConfig().max_document_bytes
    finally:
        await p.close()
