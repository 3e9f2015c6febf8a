"""The hub's short way for a client's messages (``collab_server/hub.py``, ``_ShortWay``),
over real websockets on 127.0.0.1 with a real PostgreSQL.

While a connection's reader waits with nothing queued, a message whose handling never
waits is handled as it is read; anything else goes through the reader.  What must hold:
messages are handled in the order they came, also when several arrive in one write and the
first must wait for the store; each is counted once; pacing holds on both ways.  (The limit
on bad messages across both ways: ``test_hub_bad_input``, "51-not-open-in-a-row".)
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from collab_server.hub import Connection, Hub, HubConfig
from tests.support.hubclient import Peer

pytestmark = pytest.mark.timeout(120)


def connection_of(hub: Hub, peer: Peer) -> Connection:
    return next(c for c in hub.connections if c.id == peer.participant)


def send_in_one_write(peer: Peer, *msgs: dict[str, Any]) -> None:
    """*msgs* as text frames in one write to the socket: the hub reads them at one go."""
    ws = peer.ws
    assert ws is not None
    for msg in msgs:
        ws.protocol.send_text(json.dumps(msg).encode())
    ws.send_data()


async def paid_up(peer: Peer, conn: Connection) -> None:
    """Ping until a message leaves the connection nothing to wait for: what its earlier
    requests cost the hub is waited out."""
    while True:
        await peer.request({"type": "ping"})
        now = time.monotonic()
        if conn.resume_at <= now:
            return
        await asyncio.sleep(conn.resume_at - now)


async def test_messages_in_one_write_are_handled_in_order(hub: Hub, url: str) -> None:
    """An ``open`` waits for the store; the ops and the ping that came with it wait for it
    too (taken as read, an op would find the document not open)."""
    ada = await Peer(url, "Ada").connect()
    await ada.create_room()
    await ada.create_document("a.txt", "abc")
    before = hub.stats.frames_received
    send_in_one_write(
        ada,
        {"type": "open", "path": "a.txt", "id": "o1"},
        {"type": "op", "path": "a.txt", "rev": 0, "seq": 1, "op": [3, "d"]},
        {"type": "op", "path": "a.txt", "rev": 1, "seq": 2, "op": ["_"]},
        {"type": "ping", "id": "p1"},
    )
    acks = [await ada.next_event("ack"), await ada.next_event("ack")]
    assert [(a["seq"], a["rev"]) for a in acks] == [(1, 1), (2, 2)]
    assert not ada.events["error"], list(ada.events["error"])
    assert hub.stats.frames_received - before == 4
    # once the reader has taken what was queued it waits again, and the next message is
    # handled as read
    taken = hub.stats.frames_taken_as_read
    assert (await ada.request({"type": "ping"}))["type"] == "pong"
    assert hub.stats.frames_taken_as_read == taken + 1
    await ada.close()


async def test_typing_is_handled_as_read_and_counted_once(hub: Hub, url: str) -> None:
    ada = await Peer(url, "Ada").connect()
    room = await ada.create_room()
    await ada.create_document("a.txt", "")
    bob = await Peer(url, "Bob").connect()
    await bob.join(room["room"], room["editorSecret"])
    ada_doc = await ada.open("a.txt")
    bob_doc = await bob.open("a.txt")
    received, taken = hub.stats.frames_received, hub.stats.frames_taken_as_read
    for i in range(30):
        await ada_doc.splice(i, 0, "x")
        await ada_doc.wait_synced()
    await bob_doc.wait_rev(30)
    assert bob_doc.text == ada_doc.text == "x" * 30
    # one op a keystroke, each counted once, each handled as read (nothing else was queued)
    assert hub.stats.frames_received - received == 30
    assert hub.stats.frames_taken_as_read - taken == 30
    await ada.close()
    await bob.close()


@pytest.fixture
def hub_config() -> HubConfig:
    # a document large enough for its digest to cost the hub milliseconds, and a small share
    # of the event loop per connection: the digest's cost makes the connection wait
    return HubConfig(max_message_bytes=16 << 20, connection_share=0.01)


async def test_a_costly_request_paces_the_connection_on_the_short_way_too(hub: Hub, url: str) -> None:
    ada = await Peer(url, "Ada").connect()
    await ada.create_room()
    await ada.create_document("big.txt", "0123456789abcdef" * (1 << 18))  # 4 MiB
    await ada.open("big.txt")
    conn = connection_of(hub, ada)
    await paid_up(ada, conn)  # (sending the text was costly already)
    digest = await ada.request({"type": "digest", "path": "big.txt"})
    assert len(digest["sha256"]) == 64
    assert hub.stats.digests_hashed == 1
    paced, taken = hub.stats.paced_messages, hub.stats.frames_taken_as_read
    # the first ping is handled as read, and the digest's cost (charged since) makes the
    # connection wait before its next message: the second ping goes to the reader, which waits
    send_in_one_write(ada, {"type": "ping", "id": "p1"}, {"type": "ping", "id": "p2"})
    await ada.next_event("pong")
    resume_at = conn.resume_at
    assert hub.stats.paced_messages == paced + 1
    assert resume_at > 0.0
    await ada.next_event("pong")
    assert time.monotonic() >= resume_at  # (the hub runs in this process: one clock)
    assert hub.stats.frames_taken_as_read == taken + 1
    await ada.close()
