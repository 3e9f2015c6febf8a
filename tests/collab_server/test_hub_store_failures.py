"""The hub when its PostgreSQL fails, over real websockets against a real PostgreSQL.

The failures are real: the hub's own embedded PostgreSQL is stopped under
it, a trigger makes every insert into ``ops`` fail, a table the hub reads is
renamed away.  In every case the client gets ``unavailable`` (with the
request's ``id``, or the op's ``path`` and ``seq``) within a bounded time,
its connection stays open, and the same request succeeds on the same
connection once the failure is over; the op log stays contiguous with each
(client, seq) once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from collab_core.errors import MESSAGES, ErrorCode, StoreError
from collab_server.database import EmbeddedPostgres, start_embedded
from collab_server.document import Sequenced
from collab_server.hub import Hub, HubConfig
from collab_server.store import open_store
from tests.support.http import get
from tests.support.hubclient import HubError, Peer
from tests.support.oplog import check_op_log

pytestmark = pytest.mark.timeout(120)

# small retry settings keep the tests short: 4 attempts, 0.05 + 0.1 + 0.2 s of waiting
CONFIG = HubConfig(store_attempts=4, store_retry_delay=0.05, store_retry_max_delay=0.2)
# a refusal may wait out two retry budgets (the failing call, then the check of the log)
REFUSED_WITHIN = 2 * CONFIG.backoff().budget + 5.0
UNAVAILABLE = MESSAGES[ErrorCode.UNAVAILABLE]
MARK = "Tx" + uuid.uuid4().hex[:12] + "xT"  # document text; must never be logged


class OwnPostgres:
    """An embedded PostgreSQL the tests may stop and start again under a hub."""

    def __init__(self, server: EmbeddedPostgres) -> None:
        self.server = server
        self.dsn = server.dsn

    async def stop(self) -> None:
        await asyncio.to_thread(self.server.stop)

    async def start(self) -> None:
        self.server = await asyncio.to_thread(start_embedded, self.server.data_dir)
        assert self.server.dsn == self.dsn

    @contextlib.asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        await self.stop()
        try:
            yield
        finally:
            await self.start()


@pytest.fixture(scope="module")
def own_pg(reachable_tmp: Callable[[str], Path]) -> Iterator[OwnPostgres]:
    pg = OwnPostgres(start_embedded(reachable_tmp("outage") / "pg"))
    try:
        yield pg
    finally:
        pg.server.stop()


async def start_hub(dsn: str, config: HubConfig = CONFIG) -> Hub:
    store = await open_store(dsn, hub_id=f"failures-{uuid.uuid4().hex[:6]}")
    hub = Hub(store, config)
    await hub.start("127.0.0.1", 0)
    return hub


async def stop_hub(hub: Hub) -> None:
    await hub.close()
    await hub.store.close()


@pytest.fixture
async def hub_on_own_pg(own_pg: OwnPostgres) -> AsyncIterator[Hub]:
    hub = await start_hub(own_pg.dsn)
    try:
        yield hub
    finally:
        await stop_hub(hub)


@pytest.fixture
async def hub(database_url: str) -> AsyncIterator[Hub]:
    hub = await start_hub(database_url)
    try:
        yield hub
    finally:
        await stop_hub(hub)


def url(hub: Hub) -> str:
    return f"ws://127.0.0.1:{hub.port}"


async def refused(peer: Peer, msg: dict[str, Any]) -> dict[str, Any]:
    """Send a request that must be answered ``unavailable``; returns the error."""
    with pytest.raises(HubError) as info:
        await peer.request(msg, timeout=REFUSED_WITHIN)
    err = info.value.msg
    assert err["code"] == "unavailable" and err["message"] == UNAVAILABLE, err
    assert err.get("id") is not None
    return err


async def still_open(*peers: Peer) -> None:
    for p in peers:
        assert p.closed is not None and not p.closed.done()
        assert (await p.request({"type": "ping"}))["type"] == "pong"


async def send_op(peer: Peer, path: str, rev: int, seq: int, op: list[Any]) -> None:
    await peer.send({"type": "op", "path": path, "rev": rev, "seq": seq, "op": op})


async def answer_to_op(peer: Peer, timeout: float = REFUSED_WITHIN) -> dict[str, Any]:
    """The next ack or error for an op of *peer* (a document it opened by hand)."""
    return await peer.next_event_of(("ack", "error"), timeout)


def collab_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("collab")
    ]


def assert_no_text_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if MARK in r.getMessage()]


# -- 1. requests -----------------------------------------------------------------


async def test_requests_during_an_outage_get_unavailable_and_succeed_on_the_same_connection(
    own_pg: OwnPostgres, hub_on_own_pg: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    hub = hub_on_own_pg
    a = await Peer(url(hub), "Ada").connect()
    b = await Peer(url(hub), "Bob").connect()
    c = await Peer(url(hub), "Cy").connect()
    created = await a.create_room("outage")
    await a.create_document("kept.txt", MARK)
    join = {"type": "join", "room": created["room"], "secret": created["editorSecret"]}
    requests: list[tuple[Peer, dict[str, Any]]] = [
        (b, join),  # admission
        (a, {"type": "list_documents"}),
        (a, {"type": "create_document", "path": "new.txt", "text": MARK}),
        (a, {"type": "open", "path": "kept.txt"}),  # get_document: not loaded yet
        (c, {"type": "create_room", "name": "later"}),
    ]
    async with own_pg.down():
        for peer, msg in requests:
            err = await refused(peer, msg)
            assert err.get("path") == msg.get("path")
            await still_open(peer)
        assert hub.stats.unavailable_requests == len(requests)
    # the same requests, on the same connections
    joined = await b.request(join)
    assert joined["role"] == "editor" and joined["documents"] == [{"path": "kept.txt", "rev": 0}]
    assert (await a.request({"type": "list_documents"}))["documents"] == [{"path": "kept.txt", "rev": 0}]
    assert (await a.request(requests[2][1]))["type"] == "document_created"
    assert (await a.request({"type": "open", "path": "kept.txt"}))["text"] == MARK
    assert (await c.request(requests[4][1]))["type"] == "room_created"
    await still_open(a, b, c)
    assert hub.stats.unavailable_requests == len(requests)
    for p in (a, b, c):
        await p.close()
    assert collab_errors(caplog) == []
    assert_no_text_logged(caplog)


async def test_a_failing_table_on_a_join_path_gets_unavailable(
    hub: Hub, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The admission query and list_documents (after add_member committed) fail on their own."""
    a = await Peer(url(hub), "Ada").connect()
    b = await Peer(url(hub), "Bob").connect()
    created = await a.create_room("tables")
    join = {"type": "join", "room": created["room"], "secret": created["editorSecret"]}
    wrong = {"type": "join", "room": created["room"], "secret": "W" * 43}
    db = await asyncpg.connect(database_url)
    try:
        await db.execute("ALTER TABLE removals RENAME TO removals_away")
        try:
            await refused(b, wrong)
        finally:
            await db.execute("ALTER TABLE removals_away RENAME TO removals")
        await db.execute("ALTER TABLE documents RENAME TO documents_away")
        try:
            await refused(b, join)
        finally:
            await db.execute("ALTER TABLE documents_away RENAME TO documents")
    finally:
        await db.close()
    await still_open(b)
    with pytest.raises(HubError) as info:
        await b.request(wrong)
    assert info.value.code == "bad_invite"
    assert (await b.request(join))["role"] == "editor"
    assert hub.stats.unavailable_requests == 2
    await a.close()
    await b.close()
    assert collab_errors(caplog) == []


# -- 2. ops and loads ---------------------------------------------------------------


async def test_ops_during_an_outage_are_refused_in_bounded_time_then_commit(
    own_pg: OwnPostgres, hub_on_own_pg: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    hub = hub_on_own_pg
    a = await Peer(url(hub), "Ada").connect()
    b = await Peer(url(hub), "Bob").connect()
    created = await a.create_room("ops")
    await a.create_document("d.txt", "")
    await b.join(created["room"], created["editorSecret"])
    await a.request({"type": "open", "path": "d.txt"})  # by hand: acks and errors in a.events
    db = await b.open("d.txt")
    await send_op(a, "d.txt", 0, 1, ["one "])
    assert await answer_to_op(a) == {"type": "ack", "path": "d.txt", "seq": 1, "rev": 1}
    async with own_pg.down():
        t0 = time.monotonic()
        await send_op(a, "d.txt", 1, 2, [4, MARK])
        err = await answer_to_op(a)
        assert time.monotonic() - t0 < REFUSED_WITHIN
        assert err == {
            "type": "error",
            "code": "unavailable",
            "message": UNAVAILABLE,
            "path": "d.txt",
            "seq": 2,
        }
        await still_open(a, b)
        assert hub.stats.refused_ops == 1
    # the client sends it again, as the protocol says; the same document task takes it
    await send_op(a, "d.txt", 1, 2, [4, MARK])
    assert await answer_to_op(a, 30) == {"type": "ack", "path": "d.txt", "seq": 2, "rev": 2}
    await db.wait_rev(2)
    await db.splice(0, 0, "b ")
    await db.wait_synced()
    assert db.text == "b one " + MARK
    log = await check_op_log(own_pg.dsn, created["room"], "d.txt")
    assert (log.head, log.text) == (3, db.text)
    assert sorted(log.by_client.values()) == [1, 2, 3]
    assert hub.stats.refused_ops == 1 and hub.stats.document_failures >= 1
    for p in (a, b):
        await p.close()
    assert collab_errors(caplog) == []
    assert_no_text_logged(caplog)


REFUSE_OPS = """
CREATE FUNCTION refuse_ops() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'ops are refused by the test'; END $$;
CREATE TRIGGER refuse_ops BEFORE INSERT ON ops FOR EACH ROW EXECUTE FUNCTION refuse_ops();
"""
ACCEPT_OPS = "DROP TRIGGER refuse_ops ON ops; DROP FUNCTION refuse_ops();"


async def test_a_batch_that_can_never_commit_is_refused_and_the_document_goes_on(
    hub: Hub, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    a = await Peer(url(hub), "Ada").connect()
    b = await Peer(url(hub), "Bob").connect()
    created = await a.create_room("poison")
    await a.create_document("p.txt", "x")
    await b.join(created["room"], created["editorSecret"])
    await a.request({"type": "open", "path": "p.txt"})
    db = await b.open("p.txt")
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(REFUSE_OPS)
        caplog.set_level(logging.WARNING, logger="collab_server")
        t0 = time.monotonic()
        await send_op(a, "p.txt", 0, 1, [1, MARK])
        err = await answer_to_op(a)
        elapsed = time.monotonic() - t0
        assert err == {
            "type": "error",
            "code": "unavailable",
            "message": UNAVAILABLE,
            "path": "p.txt",
            "seq": 1,
        }
        assert CONFIG.backoff().budget <= elapsed < REFUSED_WITHIN
        assert hub.stats.refused_batches == 1 and hub.stats.refused_ops == 1
        assert hub.stats.commit_retries == CONFIG.store_attempts - 1
        gave_up = [r.getMessage() for r in caplog.records if "gave up on a batch" in r.getMessage()]
        doc_id = await admin.fetchval("SELECT id FROM documents WHERE room_id = $1", created["room"])
        assert (
            len(gave_up) == 1 and f"document {doc_id} " in gave_up[0] and "RaiseError (P0001)" in gave_up[0]
        )
        # refused again while the failure lasts; the peer saw nothing
        await send_op(a, "p.txt", 0, 1, [1, MARK])
        assert (await answer_to_op(a))["code"] == "unavailable"
        assert db.rev == 0 and db.text == "x"
    finally:
        await admin.execute(ACCEPT_OPS)
        await admin.close()
    await still_open(a, b)
    # the failure is over: the same op commits, once, and so do new ones
    await send_op(a, "p.txt", 0, 1, [1, MARK])
    assert await answer_to_op(a) == {"type": "ack", "path": "p.txt", "seq": 1, "rev": 1}
    await db.wait_rev(1)
    await db.splice(0, 0, ">")
    await db.wait_synced()
    await send_op(a, "p.txt", 2, 2, ["<"])
    assert await answer_to_op(a) == {"type": "ack", "path": "p.txt", "seq": 2, "rev": 3}
    await db.wait_rev(3)
    assert db.text == "<>x" + MARK
    log = await check_op_log(database_url, created["room"], "p.txt")
    assert (log.head, log.text) == (3, db.text)
    assert sorted(seq for _, seq in log.by_client) == [1, 1, 2]
    assert hub.stats.refused_batches == 2
    for p in (a, b):
        await p.close()
    assert collab_errors(caplog) == []
    assert_no_text_logged(caplog)


@pytest.mark.parametrize("attempts", [1, 4], ids=["refusal-path", "retry-path"])
async def test_a_commit_whose_answer_was_lost_is_acked_once_not_refused(
    database_url: str, attempts: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COMMIT goes through but the hub hears a failure, as when the connection drops during it."""
    hub = await start_hub(
        database_url, HubConfig(store_attempts=attempts, store_retry_delay=0.05, store_retry_max_delay=0.2)
    )
    try:
        store = hub.store
        real_append = store.append
        lost: list[int] = []

        async def append_then_lose_the_answer(doc_id: int, expected_rev: int, batch: list[Sequenced]) -> None:
            await real_append(doc_id, expected_rev, batch)
            if not lost:
                lost.append(batch[-1].rev)
                raise StoreError("append failed: ConnectionDoesNotExistError")

        monkeypatch.setattr(store, "append", append_then_lose_the_answer)
        a = await Peer(url(hub), "Ada").connect()
        created = await a.create_room("lost")
        await a.create_document("l.txt", "")
        await a.request({"type": "open", "path": "l.txt"})
        await send_op(a, "l.txt", 0, 1, ["a"])
        assert await answer_to_op(a) == {"type": "ack", "path": "l.txt", "seq": 1, "rev": 1}
        await send_op(a, "l.txt", 1, 2, ["b"])
        assert await answer_to_op(a) == {"type": "ack", "path": "l.txt", "seq": 2, "rev": 2}
        assert lost == [1]
        assert not a.events["ack"] and not a.events["error"]  # one answer per op
        assert hub.stats.refused_ops == 0
        log = await check_op_log(database_url, created["room"], "l.txt")
        assert (log.head, log.text) == (2, "ba")
        await a.close()
    finally:
        await stop_hub(hub)


async def test_a_document_that_cannot_load_refuses_its_opens_then_loads_later(
    hub: Hub, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    a = await Peer(url(hub), "Ada").connect()
    await a.create_room("load")
    await a.create_document("l.txt", MARK)
    db = await asyncpg.connect(database_url)
    try:
        # documents (get_document) still answer; the load reads snapshots
        await db.execute("ALTER TABLE snapshots RENAME TO snapshots_away")
        try:
            for n in (1, 2):
                t0 = time.monotonic()
                err = await refused(a, {"type": "open", "path": "l.txt"})
                assert time.monotonic() - t0 < REFUSED_WITHIN
                assert err["path"] == "l.txt"
                assert hub.stats.failed_loads == n  # each open tried the load again
                await still_open(a)
            with pytest.raises(HubError) as info:  # the refused open left the document closed
                await a.request({"type": "digest", "path": "l.txt"})
            assert info.value.code == "not_open"
        finally:
            await db.execute("ALTER TABLE snapshots_away RENAME TO snapshots")
    finally:
        await db.close()
    opened = await a.request({"type": "open", "path": "l.txt"})
    assert (opened["rev"], opened["text"]) == (0, MARK)
    assert hub.stats.failed_loads == 2 and hub.stats.unavailable_requests == 0
    await a.close()
    assert collab_errors(caplog) == []
    assert_no_text_logged(caplog)


def test_the_retry_budget_is_a_few_seconds_by_default() -> None:
    assert 1.0 <= HubConfig().backoff().budget <= 10.0
    with pytest.raises(ValueError):
        HubConfig(store_attempts=0)


# -- /healthz ---------------------------------------------------------------------


async def test_healthz_says_503_while_the_database_is_down_and_200_once_it_is_back(
    own_pg: OwnPostgres, hub_on_own_pg: Hub
) -> None:
    health = f"http://127.0.0.1:{hub_on_own_pg.port}/healthz"
    status, _, body = await get(health)
    assert (status, body) == (200, "ok\n")
    async with own_pg.down():
        started = time.monotonic()
        status, _, body = await get(health)
        assert (status, body) == (503, "database unavailable\n")
        # bounded by the check's timeout, however the database fails
        assert time.monotonic() - started < hub_on_own_pg.config.health_timeout + 2
        # a client's WebSocket is still served meanwhile
        p = await Peer(url(hub_on_own_pg), "Ada").connect()
        assert (await p.request({"type": "ping"}))["type"] == "pong"
        await p.close()
    # the pool reconnects by itself
    for _ in range(300):
        status, _, body = await get(health)
        if status == 200:
            break
        await asyncio.sleep(0.1)
    assert (status, body) == (200, "ok\n")
