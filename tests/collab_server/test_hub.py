"""The hub over real websockets on 127.0.0.1 with a real PostgreSQL."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import pytest

from collab_core.errors import MESSAGES, ErrorCode
from collab_server.hub import Hub, HubConfig
from collab_server.store import Store
from tests.support.http import get
from tests.support.hubclient import HubError, Peer


async def test_two_peers_edit_one_document(url: str) -> None:
    a = await Peer(url, "Ada").connect()
    b = await Peer(url, "Bob").connect()
    created = await a.create_room("pair")
    await a.create_document("src/main.py", "print('hi')\n")
    joined = await b.join(created["room"], created["editorSecret"])
    assert joined["role"] == "editor"
    assert joined["documents"] == [{"path": "src/main.py", "rev": 0}]
    da = await a.open("src/main.py")
    db = await b.open("src/main.py")
    await da.splice(0, 0, "# 😀\r\n")
    await db.splice(len(db.text), 0, "x = 1\n")
    await da.wait_synced()
    await db.wait_synced()
    for _ in range(50):
        if da.rev == db.rev == 2:
            break
        await asyncio.sleep(0.02)
    assert da.text == db.text == "# 😀\r\nprint('hi')\nx = 1\n"
    await a.close()
    await b.close()


async def test_viewer_edits_are_refused(url: str) -> None:
    a = await Peer(url, "Ada").connect()
    v = await Peer(url, "Vic").connect()
    created = await a.create_room()
    await a.create_document("a.txt", "abc")
    joined = await v.join(created["room"], created["viewerSecret"])
    assert joined["role"] == "viewer"
    dv = await v.open("a.txt")
    await dv.splice(0, 0, "evil")
    err = await v.next_event("error")
    assert err["code"] == "forbidden"
    c = await Peer(url, "Cy").connect()
    await c.join(created["room"], created["editorSecret"])
    dc = await c.open("a.txt")
    assert dc.text == "abc"
    with pytest.raises(HubError) as info:
        await v.join(created["room"], "x" * 43)
    assert info.value.code == "already_in_room"
    for p in (a, v, c):
        await p.close()


async def test_digest_matches_the_text_in_stream_order(url: str) -> None:
    import hashlib

    a = await Peer(url, "Ada").connect()
    created = await a.create_room()
    await a.create_document("d.txt", "héllo 😀\r\n")
    da = await a.open("d.txt")
    await da.splice(0, 0, "x")
    first = await a.request({"type": "digest", "path": "d.txt"})
    assert first["rev"] in (0, 1)  # in stream order: before or after the op's ack
    await da.wait_synced()
    reply = await a.request({"type": "digest", "path": "d.txt"})
    assert reply["rev"] == 1
    assert reply["sha256"] == hashlib.sha256("xhéllo 😀\r\n".encode()).hexdigest()
    b = await Peer(url, "Bob").connect()
    await b.join(created["room"], created["editorSecret"])
    with pytest.raises(HubError) as info:
        await b.request({"type": "digest", "path": "d.txt"})
    assert info.value.code == "not_open"
    await a.close()
    await b.close()


async def test_document_size_limit_is_advertised_and_enforced(store: Store) -> None:
    limit = 64
    h = Hub(store, HubConfig(max_document_bytes=limit))
    await h.start("127.0.0.1", 0)
    url = f"ws://127.0.0.1:{h.port}"
    a = await Peer(url, "Ada").connect()
    b = await Peer(url, "Bob").connect()
    try:
        welcome = await Peer(url, "Cy").connect(hello=False)
        reply = await welcome.request(
            {"type": "hello", "protocol": 1, "name": "Cy", "clientId": "cy-client-1"}
        )
        assert reply["limits"]["maxDocumentBytes"] == limit
        assert reply["limits"]["maxMessageBytes"] == HubConfig().max_message_bytes
        await welcome.close()

        created = await a.create_room()
        # 16 emoji are 64 bytes of UTF-8 (16 code points): at the limit; one more byte is over
        with pytest.raises(HubError) as info:
            await a.request({"type": "create_document", "path": "big.txt", "text": "😀" * 16 + "x", "id": 7})
        assert info.value.code == "too_large" and info.value.msg["id"] is not None
        assert (await a.request({"type": "list_documents"}))["documents"] == []
        await a.create_document("big.txt", "😀" * 15)  # 60 bytes

        await b.join(created["room"], created["editorSecret"])
        # opened by hand: a's acks and errors land in a.events
        await a.request({"type": "open", "path": "big.txt"})
        db = await b.open("big.txt")
        await a.send({"type": "op", "path": "big.txt", "rev": 0, "seq": 1, "op": [15, "é", "é", "x"]})
        err = await a.next_event("error")
        assert err == {
            "type": "error",
            "code": "too_large",
            "message": MESSAGES[ErrorCode.TOO_LARGE],
            "path": "big.txt",
            "seq": 1,
        }
        # nothing was applied: the same seq, smaller, is taken (exactly at the limit)
        await a.send({"type": "op", "path": "big.txt", "rev": 0, "seq": 1, "op": [15, "é", "é"]})
        assert await a.next_event("ack", timeout=10) == {"type": "ack", "path": "big.txt", "seq": 1, "rev": 1}
        await db.wait_rev(1)
        assert db.text == "😀" * 15 + "éé"
        # a concurrent op that deletes as much as it inserts still fits
        await db.splice(0, 1, "abcd")
        await db.wait_synced()
        assert db.rev == 2 and len(db.text.encode()) == limit
        fresh = await Peer(url, "Fresh").connect()
        await fresh.join(created["room"], created["viewerSecret"])
        opened = await fresh.request({"type": "open", "path": "big.txt"})
        assert (opened["rev"], opened["text"]) == (2, "abcd" + "😀" * 14 + "éé")
        await fresh.close()
    finally:
        await a.close()
        await b.close()
        await h.close()


# -- plain HTTP on the hub's port ------------------------------------------------


async def test_healthz_answers_200_while_the_database_answers(hub: Hub) -> None:
    base = f"http://127.0.0.1:{hub.port}"
    status, headers, body = await get(base + "/healthz")
    assert (status, body) == (200, "ok\n")
    assert headers["Content-Type"].startswith("text/plain")
    # many probes at once share the check, and all get the answer
    answers = await asyncio.gather(*(get(base + "/healthz?probe=1") for _ in range(20)))
    assert {(s, b) for s, _, b in answers} == {(200, "ok\n")}


async def test_websocket_upgrades_work_on_every_path(hub: Hub) -> None:
    base = f"ws://127.0.0.1:{hub.port}"
    for path in ("", "/", "/healthz", "/metrics", "/room/abc"):
        p = await Peer(base + path, "Ada").connect()
        assert (await p.request({"type": "ping"}))["type"] == "pong"
        await p.close()
    # a plain GET of an invite's path is the web client's page (tests/collab_server/test_hub_web.py);
    # elsewhere it is not ours: websockets says a WebSocket is expected
    status, _, _ = await get(f"http://127.0.0.1:{hub.port}/elsewhere")
    assert status == 426


async def test_an_open_connection_keeps_none_of_its_handshake_headers(hub: Hub) -> None:
    """The handshake's headers are read at the handshake (``process_request``); websockets would
    keep the request and the response for as long as the connection lives, with their headers
    (about 2 KiB per idle connection, and more for a client that sends large ones)."""
    a = await Peer(f"ws://127.0.0.1:{hub.port}", "Ada").connect(additional_headers={"X-Padding": "x" * 4000})
    await a.create_room("pair")
    [conn] = hub.connections
    assert conn.ws.request is not None and conn.ws.response is not None
    assert list(conn.ws.request.headers.raw_items()) == list(conn.ws.response.headers.raw_items()) == []
    assert conn.ws.response.status_code == 101
    assert (await a.request({"type": "ping"}))["type"] == "pong"
    await a.close()


async def test_an_idle_connection_does_not_keep_what_it_sent_last(hub: Hub) -> None:
    """The text of a frame is freed once handled, not kept while its connection sits idle: here
    a 600 KB frame the hub refuses, so that nothing else keeps its text.  Neither the hub's
    reader nor websockets' parser (which keeps the last frame it read until the next one is
    whole, unless the hub releases it) keeps it."""
    a = await Peer(f"ws://127.0.0.1:{hub.port}", "Ada").connect()
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        with pytest.raises(HubError):
            await a.request({"type": "no such type", "padding": "x" * 600_000})
        await asyncio.sleep(0.1)  # (the hub's reader is past the frame: it answered)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 100_000, f"{kept} bytes kept"
    assert (await a.request({"type": "ping"}))["type"] == "pong"
    await a.close()


async def test_healthz_answers_head_without_a_body(hub: Hub) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
    writer.write(b"HEAD /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)  # the hub closes after answering
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 3" in head
    assert body == b""
