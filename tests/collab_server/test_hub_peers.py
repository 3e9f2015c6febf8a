"""Room events across hubs (collab_server/roster.py, peers.py), over real websockets.

Two hubs in this process share one real PostgreSQL: participants, their
presence and new documents reach the members connected to the other hub as
if they were on one hub; a client that comes back through the other hub
replaces its old connection; a hub that stops beating drops out of the
other's lists, and comes back when it beats again.  Hostile notifications
change nothing and are counted.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from collab_core.errors import CloseCode
from collab_server.hub import Hub, HubConfig
from collab_server.lifecycle import REGISTER_RESYNC_DELAY
from collab_server.roster import CHANNEL, encode
from tests.support.hubclient import Peer, until

pytestmark = pytest.mark.timeout(120)

EXPIRY = 1.0


@pytest.fixture
def hub_config() -> HubConfig:
    return HubConfig(hub_expiry=EXPIRY)


def url(hub: Hub) -> str:
    return f"ws://127.0.0.1:{hub.port}"


async def in_room(hub: Hub, name: str, room: dict[str, Any], **kw: Any) -> tuple[Peer, dict[str, Any]]:
    peer = await Peer(url(hub), name, **kw).connect()
    return peer, await peer.join(room["room"], room["editorSecret"])


async def event_where(peer: Peer, kind: str, pred: Any, timeout: float = 20) -> dict[str, Any]:
    """The next event of *kind* that satisfies *pred* (earlier ones are dropped)."""
    while True:
        event = await peer.next_event(kind, timeout)
        if pred(event):
            return event


def ids(listed: list[dict[str, Any]]) -> set[str]:
    return {p["id"] for p in listed}


async def test_participants_presence_and_documents_cross_hubs(two_hubs: tuple[Hub, Hub]) -> None:
    a, b = two_hubs
    ada = await Peer(url(a), "Ada").connect()
    room = await ada.create_room("r")
    await ada.create_document("a.txt", "hello")
    bob, bob_joined = await in_room(b, "Bob", room)
    # Bob sees Ada (on the other hub) in his list; Ada is told Bob joined
    assert ids(bob_joined["participants"]) == {ada.participant, bob.participant}
    assert {"id": ada.participant, "name": "Ada", "role": "owner"} in bob_joined["participants"]
    told = await ada.next_event("participant_joined")
    assert told["participant"] == {"id": bob.participant, "name": "Bob", "role": "editor"}
    cy, cy_joined = await in_room(a, "Cy", room)
    assert ids(cy_joined["participants"]) == {ada.participant, bob.participant, cy.participant}
    assert (await bob.next_event("participant_joined"))["participant"]["id"] == cy.participant

    # cursors: Bob's reach both on hub A, and newcomers get the newest in their joined
    await bob.open("a.txt")
    await bob.send({"type": "presence", "path": "a.txt", "rev": 0, "ranges": [[1, 3]]})
    for peer in (ada, cy):
        got = await peer.next_event("presence")
        assert got == {
            "type": "presence",
            "participant": bob.participant,
            "name": "Bob",
            "path": "a.txt",
            "rev": 0,
            "ranges": [[1, 3]],
        }
    for k in range(20):  # moved fast: the newest wins
        await bob.send({"type": "presence", "path": "a.txt", "rev": 0, "ranges": [[k, k]]})
    await event_where(ada, "presence", lambda e: e["ranges"] == [[19, 19]])
    di, di_joined = await in_room(a, "Di", room)
    assert [(p["participant"], p["ranges"]) for p in di_joined["presence"]] == [(bob.participant, [[19, 19]])]
    await ada.open("a.txt")
    await ada.send({"type": "presence", "path": "a.txt", "rev": 0, "ranges": [[0, 5]]})
    await event_where(bob, "presence", lambda e: e["participant"] == ada.participant)

    # a document created on B is told on A, and opens there at once
    created = await bob.create_document("src/new.py", "x = 1\n")
    assert created["type"] == "document_created"
    for peer in (ada, cy, di):
        added = await peer.next_event("document_added")
        assert added == {"type": "document_added", "path": "src/new.py", "rev": 0, "by": bob.participant}
    assert (await cy.open("src/new.py")).text == "x = 1\n"

    # leaving is told across, and the cursor goes with it
    await bob.close()
    for peer in (ada, cy, di):
        left = await event_where(peer, "participant_left", lambda e: e["participant"] == bob.participant)
        assert left == {"type": "participant_left", "participant": bob.participant}
    eve, eve_joined = await in_room(b, "Eve", room)
    assert ids(eve_joined["participants"]) == {
        ada.participant,
        cy.participant,
        di.participant,
        eve.participant,
    }
    # (B had nobody in the room: it asked for the cursors of A's members, which come right
    # after joined, or already in it when A's answer overtook the join's own statement)
    resent = eve_joined["presence"] or [await eve.next_event("presence")]
    assert [(p["participant"], p["ranges"]) for p in resent] == [(ada.participant, [[0, 5]])]
    for p in (ada, cy, di, eve):
        await p.close()
    assert a.stats.malformed_notifications == b.stats.malformed_notifications == 0
    assert a.peers.outbox.coalesced + a.peers.presence_sent >= 1
    assert b.peers.presence_sent >= 1


async def test_cursors_of_a_room_on_one_hub_stay_there_until_it_has_a_member_elsewhere(
    two_hubs: tuple[Hub, Hub], database_url: str
) -> None:
    """Nobody on another hub would read them: a room whose members are all on one hub costs its
    cursor moves no notification.  Its first member elsewhere gets the newest of each."""
    a, b = two_hubs
    heard: list[str] = []
    db = await asyncpg.connect(database_url)
    await db.add_listener(CHANNEL, lambda _conn, _pid, _channel, payload: heard.append(payload))
    try:
        ada = await Peer(url(a), "Ada").connect()
        room = await ada.create_room("r")
        await ada.create_document("a.txt", "hello")
        await ada.open("a.txt")
        cy, _ = await in_room(a, "Cy", room)
        for k in range(5):
            await ada.send({"type": "presence", "path": "a.txt", "rev": 0, "ranges": [[k, k]]})
        await event_where(cy, "presence", lambda e: e["ranges"] == [[4, 4]])  # (on the hub, as ever)
        await asyncio.sleep(0.5)  # (a notification sent would be heard by now)
        assert (a.peers.presence_sent, a.peers.presence_unshared) == (0, 5)
        assert not [n for n in heard if " presence " in n]

        # Bob comes in through hub B: he gets Ada's newest cursor, and her moves from now on
        bob, bob_joined = await in_room(b, "Bob", room)
        resent = [p for p in bob_joined["presence"] if p["participant"] == ada.participant] or [
            await event_where(bob, "presence", lambda e: e["participant"] == ada.participant)
        ]
        assert [p["ranges"] for p in resent] == [[[4, 4]]]
        await ada.send({"type": "presence", "path": "a.txt", "rev": 0, "ranges": [[2, 3]]})
        await event_where(bob, "presence", lambda e: e["ranges"] == [[2, 3]])
        await until(lambda: any(n.startswith("hub-a ") and " presence " in n for n in heard))

        # Bob leaves: the room is on one hub again
        await bob.close()
        await event_where(ada, "participant_left", lambda e: e["participant"] == bob.participant)
        await until(lambda: a.peers._flusher is None)  # (what was on its way has gone)
        sent, told = a.peers.presence_sent, len(heard)
        await ada.send({"type": "presence", "path": "a.txt", "rev": 0, "ranges": [[1, 1]]})
        await event_where(cy, "presence", lambda e: e["ranges"] == [[1, 1]])
        await asyncio.sleep(0.5)
        assert a.peers.presence_sent == sent and a.peers.presence_unshared == 6
        assert not [n for n in heard[told:] if n.startswith("hub-a ") and " presence " in n]
        for p in (ada, cy):
            await p.close()
    finally:
        await db.close()


async def test_a_client_back_through_the_other_hub_replaces_its_old_connection(
    two_hubs: tuple[Hub, Hub],
) -> None:
    a, b = two_hubs
    ada = await Peer(url(a), "Ada").connect()
    room = await ada.create_room()
    bob, _ = await in_room(a, "Bob", room)
    await ada.next_event("participant_joined")
    # Bob's client comes back through hub B (say the load balancer moved it) before A noticed
    bob2, joined = await in_room(b, "Bob", room, client_id=bob.client_id)
    assert ids(joined["participants"]) == {ada.participant, bob2.participant}
    assert bob.closed is not None
    assert (await asyncio.wait_for(asyncio.shield(bob.closed), 10))[0] == CloseCode.REPLACED
    left = await event_where(ada, "participant_left", lambda e: e["participant"] == bob.participant)
    assert left["participant"] == bob.participant
    await event_where(ada, "participant_joined", lambda e: e["participant"]["id"] == bob2.participant)
    for p in (ada, bob2):
        await p.close()


async def test_a_hub_that_stops_beating_drops_out_and_comes_back(two_hubs: tuple[Hub, Hub]) -> None:
    a, b = two_hubs
    ada = await Peer(url(a), "Ada").connect()
    room = await ada.create_room()
    bob, _ = await in_room(b, "Bob", room)
    await ada.next_event("participant_joined")
    # B stops beating (as if its process were frozen or cut off): A drops Bob after the expiry
    task = b.peers._task
    assert task is not None
    task.cancel()
    left = await event_where(ada, "participant_left", lambda e: e["participant"] == bob.participant)
    assert left["participant"] == bob.participant
    assert a.peers.roster.stats.expired == 1
    # B beats again: Bob is back in A's list (his row never went)
    await b.peers.beat()
    back = await event_where(ada, "participant_joined", lambda e: e["participant"]["id"] == bob.participant)
    assert back["participant"] == {"id": bob.participant, "name": "Bob", "role": "editor"}
    for p in (ada, bob):
        await p.close()


async def test_a_hub_alone_on_its_database_reads_nobody_elses_participants(
    two_hubs: tuple[Hub, Hub],
) -> None:
    """A beat reads the participants of the hub's rooms on the other hubs only while another hub
    beats: alone, the read would find nobody, so it is not made, and what the roster held of the
    others goes as a read would take it."""
    a, b = two_hubs
    for hub in (a, b):
        task = hub.peers._task
        assert task is not None
        task.cancel()  # (the hubs beat when the test says)
    ada = await Peer(url(a), "Ada").connect()
    room = await ada.create_room()
    bob, _ = await in_room(b, "Bob", room)
    await ada.next_event("participant_joined")
    reads = a.peers.reads
    await a.peers.beat()
    assert a.peers.reads == reads + 1
    # B stops beating: past the expiry, A's beats read nothing, and Bob leaves A's list
    await asyncio.sleep(EXPIRY + 0.2)
    await a.peers.beat()
    await a.peers.beat()
    assert a.peers.reads == reads + 1
    left = await event_where(ada, "participant_left", lambda e: e["participant"] == bob.participant)
    assert left["participant"] == bob.participant
    assert a.peers.roster.participants(room["room"]) == []
    assert a.peers.roster.stats.expired == 1
    # B beats again: A reads again, and Bob is back
    await b.peers.beat()
    await a.peers.beat()
    assert a.peers.reads == reads + 2
    back = await event_where(ada, "participant_joined", lambda e: e["participant"]["id"] == bob.participant)
    assert back["participant"] == {"id": bob.participant, "name": "Bob", "role": "editor"}
    for p in (ada, bob):
        await p.close()


async def test_a_hub_whose_row_was_gone_reads_what_it_was_not_told(
    two_hubs: tuple[Hub, Hub], database_url: str
) -> None:
    """Commits notify only hubs with a row in ``hubs``: one whose row went (the database emptied
    its unlogged tables after a crash, say) misses what the others commit meanwhile, and reads
    its open documents' logs when its heartbeat writes the row again."""
    a, b = two_hubs
    await asyncio.sleep(REGISTER_RESYNC_DELAY)  # (past the hubs' second reading after they started)
    ada = await Peer(url(a), "Ada").connect()
    room = await ada.create_room()
    await ada.create_document("a.txt", "abc")
    ada_doc = await ada.open("a.txt")
    bob, _ = await in_room(b, "Bob", room)
    bob_doc = await bob.open("a.txt")
    task = b.peers._task
    assert task is not None
    task.cancel()  # (hub-b beats when the test says)
    db = await asyncpg.connect(database_url)
    try:
        await db.execute("DELETE FROM hubs WHERE id = 'hub-b'")
    finally:
        await db.close()
    await ada_doc.splice(3, 0, "XYZ")  # hub-a is alone on the database now: nobody is told
    await ada_doc.wait_synced()
    await asyncio.sleep(1.0)
    assert bob_doc.text == "abc"
    await b.peers.beat()  # finds its row gone, and writes it again
    await until(lambda: bob_doc.text == "abcXYZ")
    await ada_doc.splice(0, 0, ">")  # notified again
    await until(lambda: bob_doc.text == ">abcXYZ")
    assert a.stats.missed_notifications == b.stats.missed_notifications == 0
    for p in (ada, bob):
        await p.close()


async def test_a_hub_that_shuts_down_takes_its_participants_along_at_once(
    two_hubs: tuple[Hub, Hub], database_url: str
) -> None:
    a, b = two_hubs
    ada = await Peer(url(a), "Ada").connect()
    room = await ada.create_room()
    bob, _ = await in_room(b, "Bob", room)
    await ada.next_event("participant_joined")
    await b.close()
    left = await event_where(ada, "participant_left", lambda e: e["participant"] == bob.participant)
    assert left["participant"] == bob.participant
    assert a.peers.roster.stats.expired == 0  # told, not expired
    db = await asyncpg.connect(database_url)
    try:
        assert await db.fetchval("SELECT count(*) FROM participants WHERE hub_id = 'hub-b'") == 0
        assert await db.fetchval("SELECT count(*) FROM hubs WHERE id = 'hub-b'") == 0
    finally:
        await db.close()
    await ada.close()
    await bob.close()


async def test_hostile_notifications_change_nothing_and_are_counted(
    two_hubs: tuple[Hub, Hub], database_url: str
) -> None:
    a, _ = two_hubs
    ada = await Peer(url(a), "Ada").connect()
    room = await ada.create_room()
    rid = room["room"]
    hostile = [
        f"evil {rid} joined {{not json",
        f"evil {rid} joined " + '{"id":"x\\"}],\\"y","name":"n","role":"editor"}',
        f"evil {rid} presence " + '{"participant":"p1","name":"A","path":"../../x","rev":1,"ranges":[]}',
        f"evil {rid} document " + '{"path":"a\\u0000b","rev":0,"by":"p1"}',
        f"evil {rid} teleport {{}}",
        f"evil {rid} joined " + '{"id":"p1","name":"\\u202e\\u200b","role":"editor"}',
    ]
    db = await asyncpg.connect(database_url)
    try:
        for payload in hostile:
            await db.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
        # then a good one, which goes through
        good = encode("evil", rid, "joined", {"id": "p2", "name": "Mallory", "role": "viewer"})
        await db.execute("SELECT pg_notify($1, $2)", CHANNEL, good)
    finally:
        await db.close()
    told = await ada.next_event("participant_joined")
    assert told["participant"] == {"id": "p2", "name": "Mallory", "role": "viewer"}
    assert a.stats.malformed_notifications == len(hostile)
    assert not ada.events["presence"] and not ada.events["document_added"] and not ada.events["error"]
    await ada.request({"type": "ping"})
    await ada.close()
