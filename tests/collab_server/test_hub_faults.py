"""Fault isolation and bounded work, over real websockets against a real PostgreSQL.

Nothing a client sends reaches a document task unchecked; a request whose
handling fails anyway is answered ``internal`` and the rest goes on; a
document task that dies tells its members enough to resume; a frame the hub
cannot send ends that one connection.  The hub's own failures are injected
here on purpose (``hub_faults``): elsewhere any of them fails the test
(``tests/conftest.py``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest

from collab_core import ops
from collab_server import hub as hub_module
from collab_server.document import Sequencer
from collab_server.hub import Hub, HubConfig
from collab_server.store import Store
from tests.support.http import scrape
from tests.support.hubclient import HubError, Peer, SharedDoc

pytestmark = pytest.mark.timeout(120)

DOC = "src/shared.txt"
SECRET_TEXT = "Tx" + "7f3a9c" + "xT"  # in the document; must never reach the log


@pytest.fixture
def hub_config() -> HubConfig:
    return HubConfig(max_op_components=50, transform_budget=200)


@dataclass
class Pair:
    room: dict[str, Any]
    a: Peer
    b: Peer
    da: SharedDoc
    db: SharedDoc

    async def close(self) -> None:
        await self.a.close()
        await self.b.close()


async def pair(url: str, text: str = SECRET_TEXT + "\n") -> Pair:
    a, b = await Peer(url, "Ada").connect(), await Peer(url, "Bob").connect()
    room = await a.create_room("faults")
    await a.create_document(DOC, text)
    await b.join(room["room"], room["editorSecret"])
    return Pair(room, a, b, await a.open(DOC), await b.open(DOC))


async def member(url: str, room: dict[str, Any], name: str = "Eve") -> Peer:
    p = await Peer(url, name).connect()
    await p.join(room["room"], room["editorSecret"])
    return p


async def converge(p: Pair) -> None:
    for d in (p.da, p.db):
        await d.wait_synced()
    await p.da.wait_rev(p.db.rev)
    await p.db.wait_rev(p.da.rev)
    assert p.da.text == p.db.text


def typed_everything(text: str, words: list[str]) -> bool:
    return all(w in text for w in words)


# -- echoed fields are checked at the edge -------------------------------------------


async def test_lone_surrogate_ids_on_a_shared_document_hurt_nobody(url: str, hub: Hub) -> None:
    p = await pair(url)
    eve = await member(url, p.room)
    await eve.request({"type": "open", "path": DOC})
    words_a, words_b = [], []
    for i in range(30):
        words_a.append(f"<a{i}>")
        words_b.append(f"<b{i}>")
        await p.da.splice(0, 0, words_a[-1])
        if i < 15:  # b stops typing halfway: it must still see everything
            await p.db.splice(len(p.db.text), 0, words_b[-1])
        if i % 3 == 0:
            # ASCII JSON: the surrogate travels as an escape, as any client could send it
            await eve.send_raw(json.dumps({"type": "open", "path": DOC, "id": "\ud800"}))
            await eve.send_raw(json.dumps({"type": "digest", "path": DOC, "id": "x\udfff"}))
    await converge(p)
    assert typed_everything(p.da.text, words_a + words_b[:15])
    assert p.da.errors == p.db.errors == []
    errors = [await eve.next_event("error") for _ in range(20)]
    assert {e["code"] for e in errors} == {"bad_message"}
    assert all("id" not in e and e["path"] == DOC for e in errors)
    # eve's connection and the document both still serve
    assert (await eve.request({"type": "digest", "path": DOC}))["rev"] == p.da.rev
    assert hub.stats.internal_errors == hub.stats.document_crashes == 0
    await eve.close()
    await p.close()


# -- a failing request is answered, the rest goes on ----------------------------------


@pytest.mark.hub_faults
async def test_a_request_that_fails_is_answered_internal_and_everything_else_goes_on(
    url: str, hub: Hub, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collab_server")
    submit = Sequencer.submit

    def failing_submit(self: Sequencer, sub: Any, *args: Any) -> Any:
        if any(type(c) is str and "BOOM" in c for c in sub.op):
            raise RuntimeError("injected fault")
        return submit(self, sub, *args)

    monkeypatch.setattr(Sequencer, "submit", failing_submit)

    def failing_presence(self: Hub, conn: Any, msg: Any) -> None:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(Hub, "_presence", failing_presence)
    p = await pair(url)
    eve = await member(url, p.room)
    opened = await eve.request({"type": "open", "path": DOC})
    await p.da.splice(0, 0, "before ")
    await eve.send({"type": "op", "path": DOC, "rev": opened["rev"], "seq": 1, "op": ["BOOM"]})
    err = await eve.next_event("error")
    assert (err["code"], err["path"], err["seq"]) == ("internal", DOC, 1)
    assert err["message"] == "internal error"
    with pytest.raises(HubError) as info:
        await eve.request({"type": "presence", "path": DOC, "rev": 0, "ranges": []})
    assert info.value.code == "internal" and info.value.msg["id"] is not None
    await eve.request({"type": "ping"})
    await p.db.splice(0, 0, "after ")
    await p.da.splice(len(p.da.text), 0, " end")
    await converge(p)
    assert typed_everything(p.da.text, ["before ", "after ", " end"])
    assert "BOOM" not in p.da.text
    assert hub.stats.internal_errors == 2 and hub.stats.document_crashes == 0
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 2 and all(r.exc_info for r in failures), "logged with the traceback"
    assert not [r for r in caplog.records if SECRET_TEXT in r.getMessage()]
    await eve.close()
    await p.close()


@pytest.mark.hub_faults
async def test_a_document_task_that_dies_tells_its_members_to_reopen(
    url: str, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await pair(url)
    await p.da.splice(0, 0, "one ")
    await converge(p)
    armed = [True]
    take = Sequencer.take_unsent

    def failing_take(self: Sequencer) -> Any:
        if armed[0]:
            armed[0] = False
            raise RuntimeError("injected fault")
        return take(self)

    monkeypatch.setattr(Sequencer, "take_unsent", failing_take)
    rev = p.da.rev
    await p.da.splice(0, 0, "two ")  # sequenced, then the task dies before committing it
    refused = await p.a.next_event("error")
    assert (refused["code"], refused["seq"]) == ("unavailable", p.da.client.outstanding.seq)  # type: ignore[union-attr]
    for peer in (p.a, p.b):
        closed = await peer.next_event("error")
        assert closed == {
            "type": "error",
            "code": "unavailable",
            "message": "the hub cannot serve this right now; retry",
            "path": DOC,
            "rev": rev,
        }
    assert hub.stats.document_crashes == 1
    # b typed meanwhile: not open any more, so refused (not_open), kept, resent after reopening
    await p.db.splice(len(p.db.text), 0, " three")
    assert (await p.b.next_event("error"))["code"] == "not_open"
    for peer, doc in ((p.a, p.da), (p.b, p.db)):
        await peer.reopen(doc)
    await p.da.splice(0, 0, "four ")
    await converge(p)
    assert typed_everything(p.da.text, ["one ", "two ", " three", "four "])
    fresh = await member(url, p.room, "Fresh")
    assert (await fresh.request({"type": "open", "path": DOC}))["text"] == p.da.text
    await fresh.close()
    await p.close()


@pytest.mark.hub_faults
async def test_a_frame_the_hub_cannot_send_closes_only_that_connection(url: str, hub: Hub) -> None:
    p = await pair(url)
    eve = await member(url, p.room)
    conn = next(c for c in hub.connections if c.id == eve.participant)
    conn.send('{"type":"x","id":"\ud800"}')  # what an unchecked id used to make
    assert eve.closed is not None
    assert (await eve.closed)[0] == 1011
    assert hub.stats.send_failures == 1
    await p.da.splice(0, 0, "still ")
    await converge(p)
    await p.close()


@pytest.mark.hub_faults
async def test_a_connection_whose_handling_fails_outside_a_request_ends_alone_and_is_counted(
    url: str, hub: Hub, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A fault in the connection's own reading (here its byte-rate charge), not in a request:
    that connection is closed with 1011, counted as the hub's failure (``connection_crashes``,
    served at ``/metrics``), and said in the log without the frame; the document and the
    other connections go on, and the client may come back."""
    p = await pair(url)
    eve = await member(url, p.room)
    eve_conn = next(c for c in hub.connections if c.id == eve.participant)
    charge = hub_module.Connection.charge

    def failing_charge(self: hub_module.Connection, frame: bytes, now: float) -> float:
        if self is eve_conn:
            raise RuntimeError("injected fault")
        return charge(self, frame, now)

    monkeypatch.setattr(hub_module.Connection, "charge", failing_charge)
    with caplog.at_level(logging.ERROR, logger="collab_server"):
        await eve.send({"type": "open", "path": DOC})
        assert eve.closed is not None
        assert (await eve.closed)[0] == 1011
    assert hub.stats.connection_crashes == 1
    assert (hub.stats.internal_errors, hub.stats.document_crashes, hub.stats.send_failures) == (0, 0, 0)
    assert "connection handler failed" in caplog.text
    assert SECRET_TEXT not in caplog.text
    assert (await scrape(f"http://127.0.0.1:{hub.port}"))["pairls_connection_crashes_total"] == 1
    await p.da.splice(0, 0, "still ")
    await converge(p)
    monkeypatch.undo()
    back = await member(url, p.room)
    assert (await back.request({"type": "open", "path": DOC}))["text"] == p.da.text
    await back.close()
    await p.close()


# -- bounded work --------------------------------------------------------------------


async def test_op_components_are_limited_and_the_limit_is_advertised(url: str, hub: Hub) -> None:
    p = await pair(url, "x" * 100)
    eve = await Peer(url, "Eve").connect(hello=False)
    welcome = await eve.request({"type": "hello", "protocol": 1, "name": "Eve", "clientId": "eve-client"})
    assert welcome["limits"]["maxOpComponents"] == hub.config.max_op_components == 50
    await eve.join(p.room["room"], p.room["editorSecret"])
    await eve.request({"type": "open", "path": DOC})
    await eve.send({"type": "op", "path": DOC, "rev": 0, "seq": 1, "op": [1, "y"] * 25 + [-1]})
    err = await eve.next_event("error")
    assert (err["code"], err["seq"], err["path"]) == ("too_large", 1, DOC)
    await eve.send({"type": "op", "path": DOC, "rev": 0, "seq": 1, "op": [1, "y"] * 25})
    assert (await eve.next_event("ack"))["seq"] == 1
    # a client that knows the limit sends a bigger change in pieces
    p.da.client.max_op_components = 50
    await p.da.wait_rev(1)
    await p.da.edit(ops.normalize([1, "z"] * 80))
    await converge(p)
    assert p.da.text.count("z") == 80 and p.da.acked_ops >= 4
    await eve.close()
    await p.close()


async def test_an_op_too_old_for_the_transform_budget_goes_through_after_catching_up(
    url: str, hub: Hub
) -> None:
    p = await pair(url, "abcdefghij")
    for i in range(20):
        await p.da.splice(0, 0, f"{i % 10}")
        await p.da.wait_synced()
    eve = await member(url, p.room)
    await eve.request({"type": "open", "path": DOC})
    op: ops.Op = [1, "E", 1, "V", 1, "E"]
    # against revision 0: 20 ops of one component to pass, 20 x (6 + 8) + 20 > 200
    await eve.send({"type": "op", "path": DOC, "rev": 0, "seq": 1, "op": op})
    err = await eve.next_event("error")
    assert (err["code"], err["seq"]) == ("revision_too_old", 1)
    # the client catches up and sends the same op (same seq) against the head
    caught = await eve.request({"type": "open", "path": DOC, "since": 0})
    for entry in caught["ops"]:
        op, _ = ops.transform(op, entry["op"])
    await eve.send({"type": "op", "path": DOC, "rev": caught["rev"], "seq": 1, "op": op})
    assert (await eve.next_event("ack"))["rev"] == caught["rev"] + 1
    await converge(p)
    assert p.da.text.endswith("aEbVcEdefghij")
    await eve.close()
    await p.close()


async def test_digests_are_cached_per_revision_and_large_texts_hashed_off_the_loop(
    url: str, hub: Hub
) -> None:
    text = ('héllo 😀 "q" \\ \x01\n' * 40_000)[: hub_module.DIGEST_INLINE_CHARS + 1000]
    p = await pair(url, text)
    assert p.db.text == text  # opened: the large text spliced into the reply as bytes
    want = hashlib.sha256(text.encode()).hexdigest()
    for _ in range(3):
        reply = await p.a.request({"type": "digest", "path": DOC})
        assert (reply["rev"], reply["sha256"]) == (0, want)
    assert hub.stats.digests_hashed == 1
    await p.da.splice(0, 0, "x")
    await p.da.wait_synced()
    reply = await p.a.request({"type": "digest", "path": DOC})
    assert reply["sha256"] == hashlib.sha256(("x" + text).encode()).hexdigest()
    assert hub.stats.digests_hashed == 2
    await p.close()


async def test_a_catch_up_older_than_memory_is_read_and_sent_a_page_at_a_time(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "OPS_PAGE", 3)
    h = Hub(store, HubConfig(history=2))
    await h.start("127.0.0.1", 0)
    try:
        p = await pair(f"ws://127.0.0.1:{h.port}", "")
        for i in range(10):
            await p.da.splice(i, 0, str(i))
            await p.da.wait_synced()
        caught = await p.b.request({"type": "open", "path": DOC, "since": 1})
        assert [e["rev"] for e in caught["ops"]] == list(range(2, 11))
        assert [e["op"] for e in caught["ops"]] == [[i, str(i)] for i in range(1, 10)]
        await p.close()
    finally:
        await h.close()


async def test_display_names_reach_the_others_cleaned(url: str) -> None:
    a = await Peer(url, "Ada").connect()
    room = await a.create_room()
    await a.create_document(DOC, "text")
    mallory = await member(url, room, "\u202eyroL\u202c\x1b[2J\u200b")
    joined = await a.next_event("participant_joined")
    assert joined["participant"]["name"] == "yroL[2J"
    await mallory.request({"type": "open", "path": DOC})
    await mallory.send({"type": "presence", "path": DOC, "rev": 0, "ranges": [[0, 1]]})
    assert (await a.next_event("presence"))["name"] == "yroL[2J"
    await a.close()
    await mallory.close()
