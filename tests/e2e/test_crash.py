"""kill -9 of the hub process mid-replay: the client reconnects to a new hub process on the same
PostgreSQL (hello with the same clientId, join, ``open`` with ``since``, re-send its op in flight with
the same seq) and nothing is lost or applied twice.

kill -9 of the hub's own embedded PostgreSQL while a client types: the hub restarts it by itself, the
client keeps its connection (re-sending an op refused as ``unavailable``) and nothing is lost."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped,unused-ignore]
import pytest

from collab_server.database import start_embedded
from tests.support.hubclient import Peer, SharedDoc
from tests.support.hubproc import HubProcess, start_hub
from tests.support.oplog import check_op_log
from tests.support.traces import load

pytestmark = pytest.mark.slow

SNIPPETS = ["a", "b", " ", "x = 1", "\r\n", "\n", "😀", "🎉🎉", "é", "日本語", "def f():\r\n  pass\r\n", "\t"]


def generated_edits(seed: int, count: int) -> Iterator[tuple[int, int, str]]:
    """(pos, deleted, inserted) splices with emoji, CRLF and multi-line text, each valid in turn."""
    rng = random.Random(seed)
    length = 0
    for _ in range(count):
        pos = rng.randint(0, length)
        deleted = rng.randint(0, min(6, length - pos)) if rng.random() < 0.3 else 0
        inserted = rng.choice(SNIPPETS) if deleted == 0 or rng.random() < 0.5 else ""
        if not deleted and not inserted:
            inserted = "z"
        length += len(inserted) - deleted
        yield pos, deleted, inserted


def trace_edits(name: str) -> Iterator[tuple[int, int, str]]:
    for txn in load(name)["txns"]:
        yield from (tuple(p) for p in txn["patches"])  # type: ignore[misc]


async def reconnect(old: Peer, url: str, room: str, secret: str, doc: SharedDoc) -> Peer:
    """A new connection for the same client: hello (same clientId), join, reopen with ``since``."""
    await old.close()
    peer = await Peer(url, old.name, client_id=old.client_id).connect()
    await peer.join(room, secret)
    await peer.reopen(doc)
    return peer


@pytest.mark.parametrize("source", ["generated", "sveltecomponent"])
async def test_kill9_mid_replay_then_reconnect(
    source: str, database_url: str, hubs: list[HubProcess]
) -> None:
    edits = list(generated_edits(7, 4000) if source == "generated" else trace_edits(f"{source}.json.gz"))
    kills = {len(edits) // 3, 2 * len(edits) // 3}
    offline = 200  # edits typed while no hub is running
    expected = ""
    hub = await start_hub(database_url)
    hubs.append(hub)
    peer = await Peer(hub.url, "writer").connect()
    created = await peer.create_room("crash")
    room, secret = created["room"], created["ownerSecret"]
    await peer.create_document("a.txt")
    doc = await peer.open("a.txt")
    down_until = -1
    in_flight_at_kill = []
    for i, (pos, deleted, inserted) in enumerate(edits):
        if i in kills:
            in_flight_at_kill.append(doc.client.outstanding is not None)
            await asyncio.to_thread(hub.kill)
            down_until = i + offline
        if i == down_until:
            hub = await start_hub(database_url)
            hubs.append(hub)
            peer = await reconnect(peer, hub.url, room, secret, doc)
        expected = expected[:pos] + inserted + expected[pos + deleted :]
        await doc.splice(pos, deleted, inserted)
        assert doc.text == expected
        await asyncio.sleep(0)
    try:
        await doc.wait_synced(20)
    except TimeoutError:
        c = doc.client
        raise AssertionError(
            f"not synced: rev {c.rev} outstanding {c.outstanding} buffer {c.buffer is not None}"
            f" errors {doc.errors[:3]} reader ended {peer.closed}\n{hub.log[-3000:]}"
        ) from None
    assert doc.text == expected
    assert doc.errors == []
    # the client never lost its place: every op it sent reached the log exactly once
    log = await check_op_log(database_url, room, "a.txt")
    assert (log.text, log.head) == (expected, doc.rev)
    assert sorted(seq for _, seq in log.by_client) == list(range(1, doc.client.next_seq))
    fresh = await Peer(hub.url, "fresh").connect()
    await fresh.join(room, created["viewerSecret"])
    opened = await fresh.open("a.txt")
    assert (opened.text, opened.rev) == (expected, log.head)
    await fresh.close()
    await peer.close()
    print(f"\n{source}: {len(edits)} edits, 2 kills (op in flight: {in_flight_at_kill}), {log.head} hub ops")


async def test_committed_op_resent_after_kill9_is_acked_with_its_original_rev(
    database_url: str, hubs: list[HubProcess]
) -> None:
    hub = await start_hub(database_url)
    hubs.append(hub)
    peer = await Peer(hub.url, "writer").connect()
    created = await peer.create_room("resend")
    room, secret = created["room"], created["ownerSecret"]
    await peer.create_document("a.txt", "hello\r\n")
    # acks stay in the inbox: the client has not processed them when the hub dies
    doc = await peer.open("a.txt", auto_deliver=False)
    await doc.splice(5, 0, " 😀")  # seq 1
    while not doc.inbox:
        doc.changed.clear()
        await asyncio.wait_for(doc.changed.wait(), 10)
    assert doc.inbox[0] == {"type": "ack", "path": "a.txt", "seq": 1, "rev": 1}
    await asyncio.to_thread(hub.kill)  # committed (acked on the wire), but the client never saw the ack
    doc.inbox.clear()
    assert doc.client.outstanding is not None and doc.client.outstanding.seq == 1
    doc.auto_deliver = True
    await doc.splice(0, 0, "«")  # typed while offline: buffered behind seq 1

    hub = await start_hub(database_url)
    hubs.append(hub)
    # 1. re-send the committed op as it was, without catching up: its original ack, nothing applied
    raw = await Peer(hub.url, "writer", client_id=peer.client_id).connect()
    await raw.join(room, secret)
    opened = await raw.request({"type": "open", "path": "a.txt"})
    assert (opened["rev"], opened["text"]) == (1, "hello 😀\r\n")
    await raw.send({"type": "op", "path": "a.txt", "rev": 0, "seq": 1, "op": [5, " 😀"]})
    assert await raw.next_event("ack") == {"type": "ack", "path": "a.txt", "seq": 1, "rev": 1}
    # again, now that the hub has it in memory
    await raw.send({"type": "op", "path": "a.txt", "rev": 0, "seq": 1, "op": [5, " 😀"]})
    assert await raw.next_event("ack") == {"type": "ack", "path": "a.txt", "seq": 1, "rev": 1}
    again = await raw.request({"type": "open", "path": "a.txt", "since": 0})
    assert again["rev"] == 1 and [e["seq"] for e in again["ops"]] == [1]

    # 2. the protocol's way: reopen with since; the own op in the list is the ack, the buffer goes out
    peer = await reconnect(peer, hub.url, room, secret, doc)  # replaces `raw` (same clientId)
    await doc.wait_synced()
    assert doc.text == "«hello 😀\r\n" and doc.rev == 2
    assert doc.acked_ops == 1  # seq 2, once: the catch-up answered seq 1
    await peer.close()
    # 3. an older seq re-sent once a newer one is committed (the store answers): its original rev
    raw = await Peer(hub.url, "writer", client_id=peer.client_id).connect()
    await raw.join(room, secret)
    await raw.request({"type": "open", "path": "a.txt", "since": 2})
    await raw.send({"type": "op", "path": "a.txt", "rev": 0, "seq": 1, "op": [5, " 😀"]})
    assert await raw.next_event("ack") == {"type": "ack", "path": "a.txt", "seq": 1, "rev": 1}
    await raw.send({"type": "op", "path": "a.txt", "rev": 1, "seq": 2, "op": ["«"]})
    assert await raw.next_event("ack") == {"type": "ack", "path": "a.txt", "seq": 2, "rev": 2}
    await raw.close()
    log = await check_op_log(database_url, room, "a.txt")
    assert (log.head, log.text) == (2, "«hello 😀\r\n")
    assert log.by_client == {(peer.client_id, 1): 1, (peer.client_id, 2): 2}
    fresh = await Peer(hub.url, "fresh").connect()
    await fresh.join(room, created["viewerSecret"])
    assert (await fresh.open("a.txt")).text == "«hello 😀\r\n"
    await fresh.close()


# -- the hub's own PostgreSQL dies -------------------------------------------------


def postmaster(pg_dir: Path) -> tuple[int, str]:
    """(pid, DSN of the pairls database) of the server running on *pg_dir*, from postmaster.pid."""
    lines = (pg_dir / "postmaster.pid").read_text().splitlines()
    socket_dir = urllib.parse.quote(lines[4].strip(), safe="")
    return int(lines[0]), f"postgresql://postgres@/pairls?host={socket_dir}&port={int(lines[3])}"


def live_postmaster(pg_dir: Path) -> int | None:
    try:
        pid, _ = postmaster(pg_dir)
        proc = psutil.Process(pid)
        if proc.name() == "postgres" and proc.status() != psutil.STATUS_ZOMBIE:
            return pid
    except (OSError, IndexError, ValueError, psutil.Error):
        pass
    return None


@pytest.fixture
def hub_data_dir(pg_tmp: Path) -> Iterator[Path]:
    """A data dir for a hub's embedded PostgreSQL; a server left running on it is stopped at the end."""
    data = pg_tmp / "hub"
    yield data
    if live_postmaster(data / "postgres") is not None:
        start_embedded(data / "postgres").stop()  # adopts it, then stops it


@pytest.mark.parametrize(
    "hub_args",
    [(), ("--store-attempts", "2", "--store-retry-delay", "0.05")],
    ids=["retries-cover-the-outage", "ops-refused-and-sent-again"],
)
async def test_sigkill_of_the_embedded_postgres_is_survived_without_a_manual_restart(
    hub_args: tuple[str, ...], hub_data_dir: Path, hubs: list[HubProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    pg_dir = hub_data_dir / "postgres"
    hub = HubProcess("--data-dir", str(hub_data_dir), *hub_args)
    hubs.append(hub)
    url = await asyncio.to_thread(hub.wait_ready, 120)
    peer = await Peer(url, "writer").connect()
    created = await peer.create_room("pg crash")
    room, secret = created["room"], created["ownerSecret"]
    await peer.create_document("a.txt")
    doc = await peer.open("a.txt")
    doc.resend_after = 0.3  # an op refused as unavailable goes out again, as the protocol says
    first_pid, dsn = postmaster(pg_dir)
    edits = list(generated_edits(11, 1200))
    kill_at = 200
    expected = ""
    killed = 0.0
    back = None
    for i, (pos, deleted, inserted) in enumerate(edits):
        if i == kill_at:
            os.kill(first_pid, signal.SIGKILL)
            killed = time.monotonic()
        expected = expected[:pos] + inserted + expected[pos + deleted :]
        await doc.splice(pos, deleted, inserted)
        assert doc.text == expected
        # keep typing through the outage, a few seconds of it
        await asyncio.sleep(0.01 if i >= kill_at else 0.002)
        if back is None and i > kill_at and live_postmaster(pg_dir) not in (None, first_pid):
            back = time.monotonic() - killed
    try:
        await doc.wait_synced(90)
    except TimeoutError:
        c = doc.client
        raise AssertionError(
            f"not synced: rev {c.rev} outstanding {c.outstanding} errors {doc.errors[:3]}\n{hub.log[-3000:]}"
        ) from None
    assert doc.text == expected
    # refused ops were only ever "unavailable", and each was sent again
    assert {e["code"] for e in doc.errors} <= {"unavailable"}
    if hub_args:
        assert doc.errors, "with one retry the outage should have refused an op"
    new_pid = live_postmaster(pg_dir)
    assert new_pid is not None and new_pid != first_pid, "the hub did not restart PostgreSQL"
    assert hub.proc.poll() is None
    assert len([line for line in hub.stderr if "is gone; restarting" in line]) == 1, hub.log

    # reconnect, then compare with what the hub serves a newcomer
    peer = await reconnect(peer, url, room, secret, doc)
    await doc.wait_synced(30)
    assert doc.text == expected
    fresh = await Peer(url, "fresh").connect()
    await fresh.join(room, created["viewerSecret"])
    opened = await fresh.open("a.txt")
    assert (opened.text, opened.rev) == (expected, doc.rev)
    await fresh.close()
    await peer.close()
    log = await check_op_log(dsn, room, "a.txt")
    assert (log.text, log.head) == (expected, doc.rev)
    assert sorted(seq for _, seq in log.by_client) == list(range(1, doc.client.next_seq))

    assert await asyncio.to_thread(hub.terminate, 60) == 0, hub.log
    assert live_postmaster(pg_dir) is None, "PostgreSQL outlived the hub"
    assert "Traceback" not in hub.log, hub.log
    print(
        f"\nPostgreSQL back after {back}s; {len(doc.errors)} ops refused and sent again; {log.head} hub ops"
    )
