"""Two hub processes on one PostgreSQL: clients on both type into one document at once.

This drives the multi-hub path for real: each hub sequences its own clients' ops and commits them
with a compare-and-set on the document's head; the loser of a race rolls back, reads the winner's
ops from the store, transforms its own and retries; NOTIFY tells each hub about the other's commits
so it forwards them to its clients.  One client also moves from hub A to hub B in the middle, with
an op in flight (its op may be committed by the hub it left, and acknowledged by the other).
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import asyncpg
import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.http import scrape
from tests.support.hubclient import Peer, SharedDoc
from tests.support.hubproc import HubProcess, start_hub
from tests.support.oplog import check_op_log
from tests.support.proxy import TcpProxy, database_proxy

pytestmark = pytest.mark.slow

SNIPPETS = ["a", "bc", " ", "\r\n", "\n", "😀", "👩‍💻", "é", "x = 1\r\n", "line1\nline2\n", "\t", "»"]
PATH = "team/notes.md"


async def random_splice(doc: SharedDoc, rng: random.Random) -> None:
    n = len(doc.text)
    pos = rng.randint(0, n)
    roll = rng.random()
    if roll < 0.25 and pos < n:
        await doc.splice(pos, rng.randint(1, min(5, n - pos)), "")
    elif roll < 0.35 and pos < n:
        await doc.splice(pos, rng.randint(1, min(3, n - pos)), rng.choice(SNIPPETS))
    else:
        await doc.splice(pos, 0, rng.choice(SNIPPETS))


async def head_rev(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT rev FROM documents WHERE path = $1", PATH))
    finally:
        await conn.close()


@pytest.mark.parametrize("db_lag", [None, (0.05, 0.01)], ids=["near", "slow-database"])
async def test_two_hubs_one_database_converge(
    database_url: str, hubs: list[HubProcess], db_lag: tuple[float, float] | None
) -> None:
    """*slow-database*: hub A's every byte to and from PostgreSQL is held 50 ms each way, hub
    B's 10 ms: a commit takes longer than the typing between two, so each client's keys
    compose while its op is in flight, and each hub hears of the other's commits late."""
    proxies: list[TcpProxy] = []
    try:
        await _two_hubs_converge(database_url, hubs, db_lag, proxies)
    finally:
        for proxy in proxies:
            await proxy.close()


async def _two_hubs_converge(
    database_url: str, hubs: list[HubProcess], db_lag: tuple[float, float] | None, proxies: list[TcpProxy]
) -> None:
    urls = [database_url] * 2
    for i, lag in enumerate(db_lag or ()):
        proxy, urls[i] = await database_proxy(database_url)
        proxy.lag(lag)
        proxies.append(proxy)
    hub_a = await start_hub(urls[0])
    hubs.append(hub_a)
    hub_b = await start_hub(urls[1])
    hubs.append(hub_b)
    owner = await Peer(hub_a.url, "a1").connect()
    created = await owner.create_room("two hubs")
    room, secret = created["room"], created["editorSecret"]
    await owner.create_document(PATH, "# notes\r\n")
    peers = [owner]
    for name, hub in (("a2", hub_a), ("b1", hub_b), ("b2", hub_b)):
        p = await Peer(hub.url, name).connect()
        await p.join(room, secret)
        peers.append(p)
    docs = [await p.open(PATH) for p in peers]
    edits_each = 250
    mover = 1  # a2 moves from hub A to hub B halfway

    async def typist(i: int) -> None:
        rng = random.Random(1000 + i)
        for k in range(edits_each):
            if i == mover and k == edits_each // 2:
                await peers[i].close()
                for _ in range(3):  # typed while disconnected
                    await random_splice(docs[i], rng)
                p = await Peer(hub_b.url, "a2", client_id=peers[i].client_id).connect()
                await p.join(room, secret)
                await p.reopen(docs[i])
                peers[i] = p
            await random_splice(docs[i], rng)
            await asyncio.sleep(rng.uniform(0, 0.008))

    await asyncio.gather(*(typist(i) for i in range(len(docs))))

    head = -1
    for _ in range(600):
        head = await head_rev(database_url)
        if all(d.synced() and d.rev == head for d in docs):
            break
        await asyncio.sleep(0.05)
    state = [(d.rev, d.client.outstanding, d.client.buffer is not None, d.errors[:2]) for d in docs]
    assert all(d.synced() and d.rev == head for d in docs), (
        head,
        state,
        hub_a.log[-2000:],
        hub_b.log[-2000:],
    )
    text = docs[0].text
    assert all(d.text == text for d in docs)
    assert all(not d.errors for d in docs)

    log = await check_op_log(database_url, room, PATH)
    assert (log.text, log.head) == (text, head)
    # every op each client sent is in the log exactly once
    for p, d in zip(peers, docs, strict=True):
        assert sorted(seq for cid, seq in log.by_client if cid == p.client_id) == list(
            range(1, d.client.next_seq)
        )
    for hub in (hub_a, hub_b):
        fresh = await Peer(hub.url, "fresh").connect()
        await fresh.join(room, created["viewerSecret"])
        opened = await fresh.open(PATH)
        assert (opened.text, opened.rev) == (text, head)
        await fresh.close()
    conflicts = [
        (await scrape(hub.url.replace("ws://", "http://")))["pairls_revision_conflicts_total"]
        for hub in (hub_a, hub_b)
    ]
    for p in peers:
        await p.close()
    for hub in (hub_a, hub_b):
        assert await asyncio.to_thread(hub.terminate) == 0
        assert not [line for line in hub.stderr if " ERROR " in line or "Traceback" in line], hub.log
    print(f"\ntwo hubs: {len(docs)} clients x {edits_each} edits -> {head} revisions, {conflicts} conflicts")


async def test_op_failed_over_to_the_other_hub_is_acked_once(
    database_url: str, hubs: list[HubProcess]
) -> None:
    """A client sends an op to hub A, gives up on A and re-sends it (same seq) to hub B at once.

    B sequences it while A commits it: whoever loses the compare-and-set
    finds it in the log.  When B loses, its catch-up acks the client (its
    own op, committed by the other hub) and the re-sequenced duplicate must
    not be acked again.  Several rounds, since who wins is up to timing.
    (Joining B replaces the client's connection to A, which A closes: as on
    one hub, the newer connection of a client takes over.)
    """
    hub_a = await start_hub(database_url)
    hubs.append(hub_a)
    hub_b = await start_hub(database_url)
    hubs.append(hub_b)
    owner = await Peer(hub_a.url, "owner").connect()
    created = await owner.create_room()
    room, secret = created["room"], created["editorSecret"]
    await owner.create_document("t.txt", "")
    watcher = await Peer(hub_b.url, "watcher").connect()  # keeps the document loaded on B
    await watcher.join(room, secret)
    await watcher.request({"type": "open", "path": "t.txt"})
    first = await Peer(hub_a.url, "c").connect()
    client = first.client_id
    await first.join(room, secret)
    await first.request({"type": "open", "path": "t.txt"})
    await first.send({"type": "op", "path": "t.txt", "rev": 0, "seq": 1, "op": ["a"]})
    rev = (await first.next_event("ack"))["rev"]
    await first.close()
    seq = 1
    for _ in range(8):
        on_a = await Peer(hub_a.url, "c", client_id=client).connect()
        await on_a.join(room, secret)
        await on_a.request({"type": "open", "path": "t.txt", "since": rev})
        on_b = await Peer(hub_b.url, "c", client_id=client).connect()
        seq += 1
        op = {"type": "op", "path": "t.txt", "seq": seq, "op": ["é😀\r\n"]}
        joining = asyncio.ensure_future(on_b.join(room, secret))
        with contextlib.suppress(ConnectionClosed):
            await on_a.send(dict(op, rev=rev))
        await joining
        opened = await on_b.request({"type": "open", "path": "t.txt", "since": rev})
        if not any(e.get("seq") == seq for e in opened["ops"]):
            await on_b.send(dict(op, rev=opened["rev"]))
        # the next op: any second ack for `seq` would come before its ack
        await on_b.send(dict(op, rev=opened["rev"], seq=seq + 1, op=["z"]))
        acks = []
        while not acks or acks[-1]["seq"] != seq + 1:
            acks.append(await on_b.next_event("ack"))
        mine = [e for e in opened["ops"] if e.get("seq") == seq]
        assert [a["seq"] for a in acks] == ([seq + 1] if mine else [seq, seq + 1]), acks
        assert not on_b.events["error"]
        rev = acks[-1]["rev"]
        seq += 1
        await on_b.close()
        await on_a.close()
    log = await check_op_log(database_url, room, "t.txt")
    assert sorted(s for c, s in log.by_client if c == client) == list(range(1, seq + 1))
    assert log.text == "zé😀\r\n" * 8 + "a"
    for p in (owner, watcher):
        await p.close()
