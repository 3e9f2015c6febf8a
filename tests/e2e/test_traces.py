"""Real editing traces through a real hub process over real websockets and a real PostgreSQL.

* the sequential traces: one writer, every patch applied locally through
  the core client (one op in flight, the rest composed), then a fresh
  opener, then a hub restart on the same database;
* the concurrent trace: one connection per agent, the README's delivery
  rule followed with :class:`~collab_core.view.LaggingView` (see
  ``tests/support/traces.py``) while hub messages arrive when they arrive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from collab_core.view import LaggingView
from tests.support.hubclient import Peer, SharedDoc
from tests.support.hubproc import HubProcess, start_hub
from tests.support.oplog import check_op_log
from tests.support.traces import causal_counts, cut_points, load, txn_op

pytestmark = pytest.mark.slow


async def until(event: asyncio.Event, pred: Callable[[], bool], timeout: float = 30) -> None:
    async def wait() -> None:
        while not pred():
            event.clear()
            await event.wait()

    await asyncio.wait_for(wait(), timeout)


@pytest.mark.parametrize("name", ["sveltecomponent.json.gz", "automerge-paper.json.gz"])
async def test_sequential_trace_through_a_hub_process(
    name: str, database_url: str, hubs: list[HubProcess]
) -> None:
    d = load(name)
    path = "trace/" + name.removesuffix(".json.gz") + ".txt"
    hub = await start_hub(database_url)
    hubs.append(hub)
    writer = await Peer(hub.url, "writer").connect()
    created = await writer.create_room("trace")
    await writer.create_document(path, d["startContent"])
    doc = await writer.open(path)
    t0 = time.monotonic()
    for i, txn in enumerate(d["txns"]):
        for pos, deleted, inserted in txn["patches"]:
            await doc.splice(pos, deleted, inserted)
        if i % 4 == 0:
            await asyncio.sleep(0)  # let the reader take acks, so the buffer goes out
    await doc.wait_synced()
    elapsed = time.monotonic() - t0
    assert doc.text == d["endContent"]
    revs = doc.rev
    assert doc.acked_ops == revs and doc.remote_ops == 0
    print(f"\n{name}: {len(d['txns'])} txns -> {revs} hub ops in {elapsed:.1f}s over a real websocket")

    reader = await Peer(hub.url, "reader").connect()
    await reader.join(created["room"], created["viewerSecret"])
    fresh = await reader.open(path)
    assert (fresh.text, fresh.rev) == (d["endContent"], revs)
    await reader.close()
    await writer.close()

    assert await asyncio.to_thread(hub.terminate) == 0
    hub2 = await start_hub(database_url)
    hubs.append(hub2)
    again = await Peer(hub2.url, "again").connect()
    await again.join(created["room"], created["editorSecret"])
    reopened = await again.open(path)
    assert (reopened.text, reopened.rev) == (d["endContent"], revs)
    await again.close()
    log = await check_op_log(database_url, created["room"], path)
    assert (log.text, log.head) == (d["endContent"], revs)


class AgentDoc(SharedDoc):
    """An agent's document: the client takes every hub message at once, the view lags."""

    def __init__(self, peer: Peer, path: str, text: str, rev: int, replay: ConcurrentReplay, agent: int):
        super().__init__(peer, path, text, rev)
        self.replay = replay
        self.agent = agent
        self.view = LaggingView(text)
        self.applied = 0  # own txns applied
        self.covers: dict[int, int] = {}  # seq -> own txn count the op covers
        self.shown = [0] * replay.n  # per author: txns of theirs the view shows

    def received(self, msg: dict[str, Any]) -> None:
        super().received(msg)
        self.replay.changed.set()

    def deliver_one(self) -> dict[str, Any]:
        msg = self.inbox.popleft()
        c = self.client
        if msg["type"] == "ack":
            assert c.outstanding is not None and c.outstanding.seq == msg["seq"]
            self.acked_ops += 1
            covered = self.covers.pop(msg["seq"])
            out = c.receive_ack(msg["rev"])
            # what the author learnt from its ack, for everyone's views
            self.replay.tags[msg["rev"]] = (self.agent, covered)
        else:
            self.remote_ops += 1
            op, out = c.receive_op(msg["rev"], msg["op"])
            self.view.receive_remote(op, msg["rev"])
        if out is not None:
            self.covers[out.seq] = self.applied
            self._send_soon(out)
        return msg

    def show(self, need: list[int]) -> None:
        view = self.view
        while view.pending:
            tag = self.replay.tags.get(view.pending[0][0])
            if tag is None or tag[1] > need[tag[0]]:
                return
            view.show_next()
            self.shown[tag[0]] = tag[1]

    async def apply_txn(self, patches: list[list[Any]]) -> None:
        self.applied += 1
        op = self.view.local(txn_op(patches))
        out = self.client.apply_local(op)
        if out is not None:
            self.covers[out.seq] = self.applied
            await self.submit(out)


class ConcurrentReplay:
    def __init__(self, d: dict[str, Any]) -> None:
        self.txns = d["txns"]
        self.n = d["numAgents"]
        self.seen = causal_counts(self.txns, self.n)
        self.cuts = cut_points(self.txns, self.seen, self.n)
        self.tags: dict[int, tuple[int, int]] = {}
        self.changed = asyncio.Event()
        self.docs: list[AgentDoc] = []

    async def run(self) -> None:
        for i, t in enumerate(self.txns):
            a = t["agent"]
            doc = self.docs[a]
            need = self.seen[i]
            assert doc.applied == need[a]
            if doc.applied in self.cuts[a] and doc.client.buffer is not None:
                # someone cuts here: our op must end here, so wait for the ack that sends the buffer
                await until(self.changed, lambda doc=doc: doc.client.buffer is None)  # type: ignore[misc]

            def ready(doc: AgentDoc = doc, need: list[int] = need, a: int = a) -> bool:
                doc.show(need)
                return all(doc.shown[b] >= need[b] for b in range(self.n) if b != a)

            if not ready():
                await until(self.changed, ready)
            for b in range(self.n):
                if b != a:
                    assert doc.shown[b] == need[b], (i, a, b, doc.shown[b], need[b])
            await doc.apply_txn(t["patches"])
            await asyncio.sleep(0)


async def test_friendsforever_over_websockets(database_url: str, hubs: list[HubProcess]) -> None:
    d = load("friendsforever.json.gz")
    replay = ConcurrentReplay(d)
    hub = await start_hub(database_url)
    hubs.append(hub)
    path = "friendsforever.txt"
    peers = [await Peer(hub.url, f"agent{a}").connect() for a in range(replay.n)]
    created = await peers[0].create_room("friends")
    await peers[0].create_document(path, "")
    for p in peers[1:]:
        await p.join(created["room"], created["editorSecret"])
    for a, p in enumerate(peers):
        reply = await p.request({"type": "open", "path": path})
        doc = AgentDoc(p, path, reply["text"], reply["rev"], replay, a)
        p.docs[path] = doc
        replay.docs.append(doc)
    t0 = time.monotonic()
    await replay.run()

    def settled() -> bool:
        revs = {doc.rev for doc in replay.docs}
        return len(revs) == 1 and all(doc.synced() for doc in replay.docs)

    await until(replay.changed, settled)
    elapsed = time.monotonic() - t0
    head = replay.docs[0].rev
    for doc in replay.docs:
        while doc.view.pending:
            doc.view.show_next()
        assert doc.client.text == doc.view.text == d["endContent"]
    print(f"\nfriendsforever: {len(replay.txns)} txns -> {head} hub ops in {elapsed:.1f}s, 2 connections")
    assert head < len(replay.txns)  # the clients composed, yet every needed boundary survived

    fresh = await Peer(hub.url, "fresh").connect()
    await fresh.join(created["room"], created["viewerSecret"])
    opened = await fresh.open(path)
    assert (opened.text, opened.rev) == (d["endContent"], head)
    for p in [*peers, fresh]:
        await p.close()
    log = await check_op_log(database_url, created["room"], path)
    assert (log.text, log.head) == (d["endContent"], head)
