"""The deployment example, run: HAProxy (docs/deploy/haproxy.cfg) in front of three hubs on one
PostgreSQL, one of them SIGKILLed while everyone types.

Six protocol clients (``Peer``) and one ``pairls-lsp`` (driven as VS Code) reach the hubs only
through HAProxy and type into one document continuously.  The hub holding the most connections
is killed with SIGKILL mid-typing: its clients' connections drop (HAProxy's health checks take
it out of service), they reconnect through HAProxy to the other two, catch up and send again
what was not acknowledged.  Afterwards every op any client saw acknowledged is in the op log at
the revision it was acknowledged with, every op sent is there exactly once, and everyone has
the same text.

HAProxy is installed by the project (``make sysdeps``, Debian's ``haproxy``); without it this
test fails and says so, it does not skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidHandshake, InvalidStatus

from tests.support.haproxy import HAProxy
from tests.support.http import scrape
from tests.support.hubclient import HubError, Peer, SharedDoc
from tests.support.hubproc import HubProcess, start_hub
from tests.support.lsp_editor import TestEditor, settle, stop_checked
from tests.support.oplog import check_op_log

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PATH = "shared.md"
SNIPPETS = ["a", "bc", " ", "\n", "é", "😀", "x = 1\n", "\t"]


class Typist:
    """One protocol client typing through the proxy; reconnects (same client id) when cut off."""

    def __init__(self, url: str, name: str, room: str, secret: str, seed: int) -> None:
        self.url, self.name, self.room, self.secret = url, name, room, secret
        self.rng = random.Random(seed)
        self.peer = Peer(url, name)
        self.client_id = self.peer.client_id
        self.doc: SharedDoc | None = None
        #: (seq, rev) of every op of ours the hub acknowledged: an ack, or our op in a catch-up
        self.acked: list[tuple[int, int]] = []
        self.reconnects = 0
        self.failed_attempts = 0
        self._again: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.peer.connect()
        await self.peer.join(self.room, self.secret)
        self.doc = await self.peer.open(PATH)
        self._watch(self.doc)

    def _watch(self, doc: SharedDoc) -> None:
        received, catch_up = doc.received, doc.catch_up

        def on_received(msg: dict[str, Any]) -> None:
            if msg["type"] == "ack":
                self.acked.append((msg["seq"], msg["rev"]))
            received(msg)

        def on_catch_up(entry: dict[str, Any]) -> None:
            if entry.get("seq") is not None:
                self.acked.append((entry["seq"], entry["rev"]))
            catch_up(entry)

        doc.received = on_received  # type: ignore[method-assign]
        doc.catch_up = on_catch_up  # type: ignore[method-assign]

    async def type(self, stop: asyncio.Event) -> None:
        doc = self.doc
        assert doc is not None
        while not stop.is_set():
            if self.peer.closed is not None and self.peer.closed.done() and self._again is None:
                self._again = asyncio.create_task(self._reconnect())
            n = len(doc.text)
            pos = self.rng.randint(0, n)
            if self.rng.random() < 0.2 and pos < n:
                await doc.splice(pos, self.rng.randint(1, min(3, n - pos)), "")
            else:
                await doc.splice(pos, 0, self.rng.choice(SNIPPETS))
            await asyncio.sleep(self.rng.uniform(0.02, 0.08))
        if self._again is not None:
            await self._again

    async def _reconnect(self) -> None:
        assert self.doc is not None
        while True:
            peer = Peer(self.url, self.name, client_id=self.client_id)
            try:
                await peer.connect()
                await peer.join(self.room, self.secret)
                self.peer = peer
                await peer.reopen(self.doc)
            except (OSError, ConnectionError, TimeoutError, HubError, InvalidHandshake, InvalidStatus):
                self.failed_attempts += 1
                with contextlib.suppress(Exception):
                    await peer.close()
                await asyncio.sleep(0.2)
                continue
            self.reconnects += 1
            self._again = None
            return


async def test_haproxy_in_front_of_three_hubs_one_killed_mid_typing_loses_no_acked_op(
    database_url: str, hubs: list[HubProcess], tmp_path: Path
) -> None:
    h = list(await asyncio.gather(*(start_hub(database_url, "--hub-expiry", "2") for _ in range(3))))
    hubs.extend(h)
    proxy = HAProxy([int(x.url.rsplit(":", 1)[1]) for x in h], tmp_path)
    (workspace := tmp_path / "ws").mkdir()
    editor = TestEditor("vscode", "Vic", workspace, None)
    typists: list[Typist] = []
    try:
        await asyncio.to_thread(proxy.wait_ready)
        owner = await Peer(proxy.url, "Owner").connect()
        created = await owner.create_room("behind haproxy")
        await owner.create_document(PATH, "# shared\n")
        await owner.close()
        room, secret = created["room"], created["editorSecret"]
        typists = [Typist(proxy.url, f"T{i}", room, secret, 100 + i) for i in range(6)]
        for t in typists:
            await t.start()
        await editor.start()
        invite = f"{proxy.url.replace('ws://', 'http://', 1)}/room/{room}#{secret}"
        await editor.command("pairls.joinRoom", {"invite": invite})
        uri = editor.uri(PATH)
        editor.open(uri, "")
        await settle([(editor, uri)], PATH)

        stop = asyncio.Event()
        typing = [asyncio.create_task(t.type(stop)) for t in typists]

        async def editor_types() -> None:
            k = 0
            while not stop.is_set():
                editor.insert(uri, len(editor.text(uri)), "vic"[k % 3])
                editor.flush(uri)
                k += 1
                await asyncio.sleep(0.1)

        typing.append(asyncio.create_task(editor_types()))
        await asyncio.sleep(3)
        # the hub holding the most connections dies mid-typing
        counts = [(await scrape(x.url.replace("ws://", "http://", 1)))["pairls_connections"] for x in h]
        victim = h[counts.index(max(counts))]
        await asyncio.to_thread(victim.kill)
        await asyncio.sleep(5)
        stop.set()
        await asyncio.gather(*typing)

        # everyone catches up and agrees
        for _ in range(1200):
            heads = {t.doc.rev for t in typists if t.doc is not None}
            if all(t.doc is not None and t.doc.synced() for t in typists) and len(heads) == 1:
                break
            await asyncio.sleep(0.05)
        docs = [t.doc for t in typists if t.doc is not None]
        assert all(d.synced() for d in docs) and len({d.rev for d in docs}) == 1, [
            (t.name, t.doc.rev if t.doc else None, t.reconnects, t.failed_attempts) for t in typists
        ]
        await settle([(editor, uri)], PATH, timeout=120)
        log = await check_op_log(database_url, room, PATH)
        await asyncio.sleep(0.5)  # (anything still on its way from the hub to the editor)
        st = await settle([(editor, uri)], PATH, timeout=60)
        assert st["rev"] == log.head
        assert all(d.text == log.text for d in docs)
        assert editor.text(uri) == log.text
        # no acknowledged op lost, none applied twice: each ack names the revision it has in the log
        for t in typists:
            for seq, rev in t.acked:
                assert log.by_client.get((t.client_id, seq)) == rev, (t.name, seq, rev)
            assert t.doc is not None
            assert sorted(s for c, s in log.by_client if c == t.client_id) == list(
                range(1, t.doc.client.next_seq)
            )
        status = await editor.status()
        assert status["documents"][PATH]["heals"] == 0
        moved = [t.name for t in typists if t.reconnects]
        assert moved, "nobody was on the killed hub"
        print(
            f"\nhaproxy: {log.head} revisions; {len(moved)} of {len(typists)} clients moved to the other hubs"
            f" ({sum(t.failed_attempts for t in typists)} failed attempts on the way),"
            f" {sum(len(t.acked) for t in typists)} acks checked against the log"
        )
    finally:
        await stop_checked([editor])  # a hub killed under it is this test's doing; its own errors are not
        for t in typists:
            await t.peer.close()
        await asyncio.to_thread(proxy.stop)
    for x in h:
        if x.proc.poll() is None:
            assert await asyncio.to_thread(x.terminate) == 0
