"""``GET /metrics`` of a real hub: ops sent through real websockets move the counters.

Every number is read the way Prometheus reads it: an HTTP GET of the hub's
own port, parsed with prometheus_client's parser.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client import REGISTRY
from websockets.asyncio.client import connect

from collab_core.errors import ErrorCode
from collab_server.hub import Hub, HubConfig
from collab_server.store import open_store
from tests.support.http import get, samples, scrape
from tests.support.hubclient import HubError, Peer

pytestmark = pytest.mark.timeout(120)


def ws_url(hub: Hub) -> str:
    return f"ws://127.0.0.1:{hub.port}"


def http_url(hub: Hub) -> str:
    return f"http://127.0.0.1:{hub.port}"


def moved(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after[name] - before.get(name, 0.0)


async def until(hub: Hub, check: str, value: float, timeout: float = 10) -> dict[str, float]:
    """Scrape until the sample *check* equals *value*; returns that scrape."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        now = await scrape(http_url(hub))
        if now[check] == value or asyncio.get_running_loop().time() > deadline:
            assert now[check] == value, (check, now[check])
            return now
        await asyncio.sleep(0.05)


async def test_counters_and_gauges_move_when_ops_are_committed(hub: Hub) -> None:
    url = ws_url(hub)
    before = await scrape(http_url(hub))
    assert before["pairls_ops_committed_total"] == 0
    assert (before["pairls_connections"], before["pairls_rooms"], before["pairls_documents"]) == (0, 0, 0)
    assert before["pairls_commit_seconds_count"] == 0
    # the garbage collector's collections, by generation (a full one is a pause of the hub)
    assert {f'python_gc_collections_total{{generation="{g}"}}' for g in "012"} <= set(before)

    a = await Peer(url, "Ada").connect()
    b = await Peer(url, "Bob").connect()
    created = await a.create_room()
    await a.create_document("m.txt", "")
    await b.join(created["room"], created["editorSecret"])
    da = await a.open("m.txt")
    db = await b.open("m.txt")
    for _ in range(20):
        await da.splice(len(da.text), 0, "x")
        await da.wait_synced()
    # both typing at once: batches of several ops per commit
    for _ in range(15):
        await da.splice(0, 0, "a")
        await db.splice(0, 0, "b")
    await da.wait_synced()
    await db.wait_synced()
    await db.wait_rev(da.rev)
    committed = da.rev
    assert committed >= 21  # the concurrent edits may have been composed in the clients' buffers

    during = await scrape(http_url(hub))
    assert moved(before, during, "pairls_ops_committed_total") == committed
    # the histograms are measured around the store's group commit: one observation per transaction
    transactions = during["pairls_commit_seconds_count"]
    assert transactions == during["pairls_commit_batch_ops_count"] == hub.store.stats.transactions
    assert 1 <= transactions <= committed
    assert during["pairls_commit_batch_ops_sum"] == committed  # one hub: no lost compare-and-set
    assert 0 < during["pairls_commit_seconds_sum"] < 60
    assert during['pairls_commit_seconds_bucket{le="+Inf"}'] == transactions
    assert (during["pairls_connections"], during["pairls_rooms"], during["pairls_documents"]) == (2, 1, 1)
    # a frame per op and per request (2 hellos, create_room, create_document, join, 2 opens)
    assert moved(before, during, "pairls_received_frames_total") == committed + 7
    # the replies, then the acks and broadcasts: a frame per connection per commit, at least
    assert moved(before, during, "pairls_sent_frames_total") >= 8 + transactions
    assert moved(before, during, "pairls_received_bytes_total") > moved(
        before, during, "pairls_received_frames_total"
    )
    assert moved(before, during, "pairls_sent_bytes_total") > moved(
        before, during, "pairls_sent_frames_total"
    )
    # nothing was refused
    assert all(during[f'pairls_refusals_total{{code="{c.value}"}}'] == 0 for c in ErrorCode)
    assert during["process_resident_memory_bytes"] > 0

    await a.close()
    await b.close()
    after = await until(hub, "pairls_connections", 0)
    assert (after["pairls_rooms"], after["pairls_documents"]) == (0, 0)
    assert after["pairls_ops_committed_total"] == during["pairls_ops_committed_total"]


async def test_refusals_are_counted_by_code(hub: Hub) -> None:
    url = ws_url(hub)
    before = await scrape(http_url(hub))
    for code in ErrorCode:  # every code is a series from the start
        assert before[f'pairls_refusals_total{{code="{code.value}"}}'] == 0

    a = await Peer(url, "Ada").connect()
    created = await a.create_room()
    await a.create_document("d.txt", "hello")
    with pytest.raises(HubError):
        await a.request({"type": "open", "path": "missing.txt"})  # no_such_document
    with pytest.raises(HubError):
        await a.request({"type": "create_document", "path": "d.txt"})  # document_exists
    await a.send_raw("{not json")  # bad_json
    await a.send_raw("{not json either")  # bad_json
    await a.next_event("error")
    await a.next_event("error")
    v = await Peer(url, "Vi").connect()
    await v.join(created["room"], created["viewerSecret"])
    dv = await v.open("d.txt")
    await dv.splice(0, 0, "no")
    await v.next_event("error")  # forbidden: viewers do not edit
    c = await Peer(url, "Cy").connect()
    with pytest.raises(HubError):
        await c.join(created["room"], "W" * 43)  # bad_invite
    with pytest.raises(HubError):
        await c.join("NoSuchRoom", "W" * 43)  # no_such_room
    with pytest.raises(HubError):
        await c.request({"type": "list_documents"})  # not_in_room

    after = await scrape(http_url(hub))
    counts = {
        code.value: moved(before, after, f'pairls_refusals_total{{code="{code.value}"}}')
        for code in ErrorCode
    }
    assert {k: n for k, n in counts.items() if n} == {
        "no_such_document": 1,
        "document_exists": 1,
        "bad_json": 2,
        "forbidden": 1,
        "bad_invite": 1,
        "no_such_room": 1,
        "not_in_room": 1,
    }
    assert {k: n for k, n in hub.stats.refusals.items() if n} == {k: n for k, n in counts.items() if n}
    for p in (a, v, c):
        await p.close()


async def test_bytes_are_counted_per_message_as_utf8(hub: Hub) -> None:
    before = await scrape(http_url(hub))
    sent = [
        json.dumps(
            {"type": "hello", "protocol": 1, "name": "Zoë 😀", "clientId": "bytes-client-1"},
            ensure_ascii=False,
        ),
        json.dumps({"type": "ping", "id": "é😀"}, ensure_ascii=False),
        json.dumps({"type": "ping", "id": 7}),
    ]
    got: list[str] = []
    async with connect(ws_url(hub), compression=None) as ws:
        for frame in sent:
            await ws.send(frame)
            reply = await ws.recv()
            assert isinstance(reply, str)
            got.append(reply)
    assert [json.loads(g)["type"] for g in got] == ["welcome", "pong", "pong"]
    after = await scrape(http_url(hub))
    assert moved(before, after, "pairls_received_frames_total") == len(sent)
    assert moved(before, after, "pairls_received_bytes_total") == sum(len(f.encode()) for f in sent)
    assert moved(before, after, "pairls_sent_frames_total") == len(got)
    assert moved(before, after, "pairls_sent_bytes_total") == sum(len(g.encode()) for g in got)


async def test_each_hub_has_its_own_registry(hub: Hub, database_url: str) -> None:
    other_store = await open_store(database_url, hub_id="metrics-other")
    other = Hub(other_store, HubConfig())
    await other.start("127.0.0.1", 0)
    try:
        a = await Peer(ws_url(hub), "Ada").connect()
        await a.create_room()
        await a.create_document("x.txt", "")
        doc = await a.open("x.txt")
        for _ in range(3):
            await doc.splice(0, 0, "x")
            await doc.wait_synced()
        mine, theirs = await scrape(http_url(hub)), await scrape(http_url(other))
        assert (mine["pairls_ops_committed_total"], theirs["pairls_ops_committed_total"]) == (3, 0)
        assert (mine["pairls_connections"], theirs["pairls_connections"]) == (1, 0)
        assert theirs["pairls_commit_seconds_count"] == 0
        assert hub.metrics.registry is not other.metrics.registry
        # nothing of ours in the process-wide registry
        assert not [m.name for m in REGISTRY.collect() if m.name.startswith("pairls")]
        await a.close()
    finally:
        await other.close()
        await other_store.close()


async def test_openmetrics_is_served_when_asked_for(hub: Hub) -> None:
    status, headers, body = await get(
        http_url(hub) + "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert status == 200 and headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")
    assert "pairls_ops_committed_total 0" in body
    plain = samples((await get(http_url(hub) + "/metrics"))[2])
    assert plain["pairls_connections"] == 0
