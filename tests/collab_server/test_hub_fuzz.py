"""Hostile clients: fuzzed messages from many connections against a real hub process.

While two well-behaved clients edit a document in their room, 16 hostile
connections send fuzzed frames (seeded, so a failure can be replayed):
random JSON, every message type with wrong or random field values, huge
and non-finite numbers, deep nesting, frames at and over the frame limit,
ops past the end of their document and against invalid revisions, lone
surrogates and bidi overrides in every string, binary frames and invalid
UTF-8.  A hostile connection the hub closes (4400, 4429, 1007, 1009)
connects again.  Afterwards:

* the hub process still serves and its log has no traceback, no error and
  none of its own faults (``HubProcess``);
* the well-behaved clients had no op refused, and their documents hold
  exactly what they typed;
* the hub's RSS is within 20% of what it was after a warm-up;
* PostgreSQL holds nothing from the hostile connections beyond what they may
  make: their own rooms, members with clean names, documents with valid paths
  within the size limit, ops that apply; the well-behaved room is untouched.

10,000 messages here; 100,000 in the ``slow`` variant.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import psutil
import pytest
from websockets.exceptions import ConnectionClosed

from collab_core import ops, wire
from collab_server.store import ROLES
from tests.conftest import PgServer
from tests.support.hubclient import Peer, SharedDoc
from tests.support.hubproc import HubProcess, start_hub

MAX_BYTES = 64 << 10
MAX_DOC = 256 << 10
CONNECTIONS = 16
SEED = int(os.environ.get("PAIRLS_FUZZ_SEED", "20261129"))
TYPES = sorted(wire.SCHEMA)
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"
NASTY_STRINGS = [
    "\\ud800",  # these are JSON escapes, spliced into raw frames
    "a\\udfffb",
    "\\u0000",
    "\\u202eevil",
    "..",
    "../../etc/passwd",
    "a//b",
    "C:\\\\x",
    "\\u0007\\u001b[2J",
    "😀" * 3,
    "x" * 70,
]


# -- fuzzed frames --------------------------------------------------------------------


def random_json(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(9 if depth < 5 else 6)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False])
    if pick == 2:
        return rng.choice([0, -1, 1, 2**31, 2**53, 2**53 + 1, -(2**63), 10**30, rng.randrange(-100, 100)])
    if pick == 3:
        return rng.choice([0.5, -0.0, 1e308, -1e-300, 3.0])
    if pick in (4, 5):
        return "".join(rng.choice('ab \n\t😀é\u202e\x00\x1b\\"') for _ in range(rng.randrange(8)))
    if pick in (6, 7):
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["type", "path", "op", "id", "x"]): random_json(rng, depth + 1) for _ in range(3)}


def raw(obj: dict[str, Any], *, splice: dict[str, str] | None = None) -> str:
    """JSON of *obj*, with string fields replaced by raw JSON escapes from *splice*."""
    text = json.dumps(obj)
    for key, escaped in (splice or {}).items():
        text = text.replace(json.dumps(f"@{key}@"), '"' + escaped + '"')
    return text


@dataclass
class Fuzzer:
    rng: random.Random
    #: documents this connection created (in its own room), and their length as far as it knows
    docs: dict[str, int] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)

    def path(self) -> str:
        if self.docs and self.rng.random() < 0.7:
            return self.rng.choice(sorted(self.docs))
        return self.rng.choice(["a.txt", "src/x.py", "missing.md", "d/" * 20 + "deep"])

    def frame(self) -> str | bytes:
        rng = self.rng
        kind = rng.choice(
            [
                "random-json",
                "random-fields",
                "random-fields",
                "numbers",
                "nesting",
                "at-limit",
                "op",
                "op",
                "op",
                "surrogates",
                "binary",
                "request",
                "request",
                "presence",
                "history",
            ]
        )
        self.counts[kind] += 1
        if kind == "random-json":
            return json.dumps(random_json(rng))
        if kind == "random-fields":
            msg = {"type": rng.choice(TYPES)}
            for name in rng.sample(["path", "rev", "seq", "op", "ranges", "name", "id", "text", "since",
                                    "room", "secret", "protocol", "clientId", "user", "before", "limit",
                                    "start", "end"], 4):  # fmt: skip
                msg[name] = random_json(rng, 3)
            return json.dumps(msg)
        if kind == "numbers":
            number = rng.choice(["1" + "0" * 5000, "1e999", "-1e999", "NaN", "Infinity", "-0", "1" * 4000])
            field_ = rng.choice(["rev", "seq", "since", "id", "protocol"])
            return '{"type":"%s","path":"a.txt","%s":%s}' % (rng.choice(TYPES), field_, number)  # noqa: UP031
        if kind == "nesting":
            depth = rng.choice([50, 1000, 20_000])
            inner = "[" * depth + "]" * depth
            return '{"type":"op","path":"a.txt","rev":0,"seq":1,"op":%s}' % inner  # noqa: UP031
        if kind == "at-limit":
            envelope = '{"type":"ping","id":1,"pad":""}'
            return envelope.replace('"pad":""', '"pad":"' + "p" * (MAX_BYTES - len(envelope)) + '"')
        if kind == "op":
            return self.op()
        if kind == "surrogates":
            nasty = rng.choice(NASTY_STRINGS)
            where = rng.choice(["id", "path", "text", "name", "insert", "room"])
            if where == "insert":
                return raw(
                    {"type": "op", "path": self.path(), "rev": 0, "seq": 1, "op": ["@x@"]},
                    splice={"x": nasty},
                )
            if where == "name":
                return raw({"type": "create_room", "name": "@x@"}, splice={"x": nasty})
            if where == "text":
                return raw({"type": "create_document", "path": "t.txt", "text": "@x@"}, splice={"x": nasty})
            if where == "room":
                return raw({"type": "join", "room": "@x@", "secret": "s"}, splice={"x": nasty})
            msg = {"type": rng.choice(["open", "digest", "close", "ping"]), "path": "@p@", "id": "@i@"}
            return raw(
                msg, splice={"p": nasty if where == "path" else "a.txt", "i": nasty if where == "id" else "1"}
            )
        if kind == "binary":
            if rng.random() < 0.5:
                return json.dumps({"type": "ping", "id": 3}).encode()
            return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        if kind == "presence":
            ranges = [
                [rng.randrange(-5, 10**6), rng.choice([0, 2**60, -1])] for _ in range(rng.choice([1, 2, 70]))
            ]
            return json.dumps(
                {"type": "presence", "path": self.path(), "rev": rng.randrange(-1, 50), "ranges": ranges}
            )
        if kind == "history":
            return self.history()
        return self.request()

    def history(self) -> str:
        """undo, redo, history, blame, revision: valid, out of range, or of the wrong type."""
        rng = self.rng
        kind = rng.choice(["undo", "redo", "history", "blame", "revision"])
        msg: dict[str, Any] = {"type": kind, "path": self.path(), "id": rng.randrange(99)}
        odd = [-1, 0, 1, 3, 2**53, 2**53 + 1, 10**9, "7", None, 1.5, True, [1]]
        if kind == "history":
            for name in rng.sample(["before", "limit"], rng.randrange(3)):
                msg[name] = rng.choice(odd)
        elif kind == "blame":
            for name in rng.sample(["start", "end"], rng.randrange(3)):
                msg[name] = rng.choice(odd)
        elif kind == "revision":
            msg["rev"] = rng.choice(odd)
        else:
            msg["key"] = rng.choice(odd)
        return json.dumps(msg)

    def fatal(self, kind: str) -> str | bytes:
        """A frame of *kind* (one of :data:`FATAL_KINDS`) after which the hub closes the connection."""
        self.counts[kind] += 1
        if kind == "over-limit":
            envelope = '{"type":"ping","id":1,"pad":""}'
            pad = MAX_BYTES - len(envelope) + self.rng.randrange(1, 100)
            return envelope.replace('"pad":""', '"pad":"' + "p" * pad + '"')
        if kind == "bad-utf8":
            return b'{"type":"ping","id":"\xff\xfe"}'
        return '{"type":"launch"}'

    def op(self) -> str:
        rng = self.rng
        path = self.path()
        length = self.docs.get(path, 0)
        shape = rng.choice(["valid", "past-end", "bad-rev", "future-rev", "bad-seq", "garbage", "many"])
        pos = rng.randrange(length + 1)
        op: Any = [pos, "f"] if pos else ["f"]
        rev: Any = 0
        seq: Any = rng.randrange(1, 10**6)
        if shape == "past-end":
            op = [length + rng.randrange(1, 100), "x"]
        elif shape == "bad-rev":
            rev = rng.choice([-1, 2**60, "3", None, 1.5])
        elif shape == "future-rev":
            rev = 10**9
        elif shape == "bad-seq":
            seq = rng.choice([0, -5, 2**53 + 1, "1", True])
        elif shape == "garbage":
            op = rng.choice([[0], [""], [None], ["x", 0.5], {"retain": 1}, "abc", [[1]], [True]])
        elif shape == "many":
            op = ["c"] * rng.choice([10, 6000])  # past the hub's component limit at 6000
        elif shape == "valid" and path in self.docs:
            self.docs[path] = length + 1  # if it is taken
        return json.dumps({"type": "op", "path": path, "rev": rev, "seq": seq, "op": op})

    def request(self) -> str:
        rng = self.rng
        kind = rng.choice(["create_document", "open", "open-since", "close", "digest", "list_documents",
                           "leave", "join", "create_room", "ping", "hello"])  # fmt: skip
        if kind == "create_document":
            path = rng.choice(["a.txt", "src/x.py", f"n{rng.randrange(5)}.md"])
            text = "".join(rng.choice("ab\n😀é") for _ in range(rng.randrange(50)))
            self.docs.setdefault(path, len(text))
            return json.dumps(
                {"type": "create_document", "path": path, "text": text, "id": rng.randrange(99)}
            )
        if kind == "open-since":
            since = rng.choice([0, -1, 3, 10**9])
            return json.dumps({"type": "open", "path": self.path(), "since": since, "id": "o"})
        if kind == "join":
            return json.dumps({"type": "join", "room": "r" * rng.randrange(1, 70), "secret": "s" * 43})
        if kind == "create_room":
            return json.dumps({"type": "create_room", "name": rng.choice(["", "x" * 300, f"r{BIDI}\x1b"])})
        if kind == "hello":
            return json.dumps({"type": "hello", "protocol": 1, "name": "again", "clientId": "abcdefgh"})
        if kind in ("list_documents", "leave", "ping"):
            return json.dumps({"type": kind, "id": rng.randrange(99)})
        return json.dumps({"type": kind, "path": self.path(), "id": rng.randrange(99)})


def hello(rng: random.Random) -> str:
    name = rng.choice(["Mallory", f"{BIDI}Eve\x1b[31m", "\u202e", "x" * 65, "ok 😀", "\\ud800"])
    if name == "\\ud800":
        return raw(
            {"type": "hello", "protocol": 1, "name": "@n@", "clientId": "hostile-1"}, splice={"n": name}
        )
    if rng.random() < 0.05:
        return json.dumps(
            {"type": "hello", "protocol": rng.choice([0, 2, "1"]), "name": "v", "clientId": "hostile-2"}
        )
    return json.dumps(
        {"type": "hello", "protocol": 1, "name": name, "clientId": f"hostile-{rng.randrange(10**9)}"}
    )


# -- the run -----------------------------------------------------------------------------


#: the frames after which the hub closes the connection (:meth:`Fuzzer.fatal`)
FATAL_KINDS = ("over-limit", "bad-utf8", "strikes", "flood")


@dataclass
class Hostile:
    """One hostile client: connects again whenever the hub closes it, until *quota* frames were
    handled.  Frames go in bursts that a ping ends: its pong shows the hub read them all.  It
    sends a frame the hub closes it for now and then, and at least once (by half its quota);
    the kind of that frame comes from *fatal_kinds*, which the clients of a run share, so that
    every kind is tried whatever the seed."""

    url: str
    rng: random.Random
    quota: int
    fatal_kinds: Iterator[str] = field(default_factory=lambda: itertools.cycle(FATAL_KINDS))
    ends: int = 0
    handled: int = 0
    connections: int = 0
    closes: Counter[int | None] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    syncs: int = 0

    async def run(self) -> None:
        while self.handled < self.quota:
            p = Peer(self.url, "hostile")
            await p.connect(hello=False)
            self.connections += 1
            fuzzer = Fuzzer(random.Random(self.rng.random()), counts=self.counts)
            try:
                await p.send_raw(hello(self.rng))
                if self.rng.random() < 0.7:
                    await p.send_raw(json.dumps({"type": "create_room", "name": "hostile"}))
                await self.sync(p)
                self.handled += 1
                while self.handled < self.quota:
                    if self.rng.random() < 0.03 or (not self.ends and self.handled >= self.quota // 2):
                        self.ends += 1
                        await self.end(p, fuzzer, next(self.fatal_kinds))
                        break
                    burst = min(self.rng.randrange(1, 40), self.quota - self.handled)
                    for _ in range(burst):
                        await p.send_raw(fuzzer.frame())
                    # fewer than 50 bad messages in a row: the ping's answer resets the strikes
                    await self.sync(p)
                    self.handled += burst + 1
                    for q in p.events.values():
                        q.clear()
            except (ConnectionClosed, ConnectionError):
                pass  # closed by the hub: a hello it refused, say
            await p.close()
            assert p.closed is not None
            self.closes[(await p.closed)[0]] += 1

    async def sync(self, p: Peer) -> None:
        """A ping (with an id no fuzzed frame has): its pong comes after every frame before it."""
        self.syncs += 1
        await p.request({"type": "ping"}, timeout=60, rid=f"sync-{self.syncs}")

    async def end(self, p: Peer, fuzzer: Fuzzer, kind: str) -> None:
        """A frame of *kind* that the hub closes the connection for, then wait for the close."""
        frame = fuzzer.fatal(kind)
        assert p.ws is not None
        if kind == "strikes":
            for _ in range(60):
                await p.send_raw(frame)
        elif kind == "flood":
            # past the burst, and as many refusals again, faster than the rate refills it
            assert p.closed is not None
            for _ in range(40):
                if p.closed.done():
                    break
                for _ in range(500):
                    await p.send_raw('{"type":"ping"}')
        elif kind == "bad-utf8":
            await p.ws.send(frame, text=True)  # a text frame that is not UTF-8
        else:
            await p.send_raw(frame)
        self.handled += 1
        assert p.closed is not None
        await asyncio.wait_for(asyncio.shield(p.closed), 60)


async def typist(doc: SharedDoc, char: str, stop: asyncio.Event) -> int:
    typed = 0
    while not stop.is_set():
        await doc.splice(len(doc.text) // 2, 0, char)
        typed += 1
        await asyncio.sleep(0.02)
    return typed


async def hostile_run(pg_server: PgServer, messages: int) -> None:
    name = await pg_server.create_database()
    dsn = pg_server.dsn_for(name)
    hub: HubProcess | None = None
    try:
        hub = await start_hub(
            dsn, "--max-message-bytes", str(MAX_BYTES), "--max-document-bytes", str(MAX_DOC)
        )
        url = hub.url
        a, b = await Peer(url, "Ada").connect(), await Peer(url, "Bob").connect()
        room = await a.create_room("good")
        await a.create_document("good.txt", "start\n")
        await b.join(room["room"], room["editorSecret"])
        da, db = await a.open("good.txt"), await b.open("good.txt")
        proc = psutil.Process(hub.proc.pid)
        rng = random.Random(SEED)

        # warm-up: a tenth of the messages, then the RSS to compare with
        warm = [
            Hostile(url, random.Random(rng.random()), messages // 10 // CONNECTIONS)
            for _ in range(CONNECTIONS)
        ]
        await asyncio.gather(*(h.run() for h in warm))
        await asyncio.sleep(1.0)
        rss_start = proc.memory_info().rss

        stop = asyncio.Event()
        typing = [asyncio.create_task(typist(da, "A", stop)), asyncio.create_task(typist(db, "B", stop))]
        started = time.monotonic()
        fatal_kinds = itertools.cycle(FATAL_KINDS)
        hostiles = [
            Hostile(url, random.Random(rng.random()), messages // CONNECTIONS, fatal_kinds)
            for _ in range(CONNECTIONS)
        ]
        await asyncio.gather(*(h.run() for h in hostiles))
        elapsed = time.monotonic() - started
        stop.set()
        typed_a, typed_b = await asyncio.gather(*typing)
        for d in (da, db):
            await d.wait_synced()
        await da.wait_rev(db.rev)
        await db.wait_rev(da.rev)
        await asyncio.sleep(1.0)
        rss_end = proc.memory_info().rss

        counts: Counter[str] = Counter()
        closes: Counter[int | None] = Counter()
        for h in (*warm, *hostiles):
            closes.update(h.closes)
        for h in hostiles:
            counts.update(h.counts)
        sent = sum(h.handled for h in hostiles)
        print(
            f"\n{sent} hostile messages in {elapsed:.1f} s over {sum(h.connections for h in hostiles)} "
            f"connections; closes {dict(closes)}; kinds {dict(counts)}; typed {typed_a}+{typed_b}; "
            f"RSS {rss_start / 2**20:.1f} -> {rss_end / 2**20:.1f} MiB"
        )
        assert sent >= messages - CONNECTIONS
        assert {1007, 1009, 4400, 4429} <= set(closes), "every way to be closed was tried"

        # the well-behaved clients: nothing refused, nothing lost
        assert da.errors == db.errors == []
        assert da.text == db.text
        assert da.text.count("A") == typed_a and da.text.count("B") == typed_b
        assert da.text.replace("A", "").replace("B", "") == "start\n"
        assert abs(rss_end - rss_start) <= 0.2 * rss_start, (rss_start, rss_end)

        # the hub still serves
        fresh = await Peer(url, "Fresh").connect()
        await fresh.join(room["room"], room["viewerSecret"])
        assert (await fresh.request({"type": "open", "path": "good.txt"}))["text"] == da.text
        await fresh.close()
        await a.close()
        await b.close()

        await check_database(dsn, room["room"], {a.client_id, b.client_id}, {fresh.client_id}, da.rev)
        assert hub.proc.poll() is None, "the hub is still running"
        assert await asyncio.to_thread(hub.terminate, 60) == 0  # fails on the hub's own faults
        assert "Traceback" not in hub.log, hub.log[-3000:]
        assert not [line for line in hub.stderr if " ERROR " in line or " CRITICAL " in line], hub.log[-3000:]
    finally:
        if hub is not None:
            hub.kill()
        await pg_server.drop_database(name)


async def check_database(
    dsn: str, good_room: str, good_clients: set[str], viewers: set[str], good_rev: int
) -> None:
    db = await asyncpg.connect(dsn)
    try:
        rooms = await db.fetch("SELECT id, name FROM rooms")
        for r in rooms:
            assert wire.display_name(r["name"], wire.MAX_ROOM_NAME) == r["name"], r
        assert len(await db.fetch("SELECT 1 FROM invites WHERE room_id = $1", good_room)) == 3
        invites = await db.fetch("SELECT room_id, role FROM invites")
        assert {i["role"] for i in invites} <= set(ROLES)
        assert Counter(i["room_id"] for i in invites) == {r["id"]: 3 for r in rooms}, "3 invites a room"
        members = await db.fetch("SELECT room_id, client_id, name FROM members")
        assert {m["client_id"] for m in members if m["room_id"] == good_room} == good_clients | viewers
        for m in members:
            assert m["name"] and wire.display_name(m["name"]) == m["name"], m
        documents = await db.fetch("SELECT id, room_id, path, rev FROM documents")
        good_docs = [d for d in documents if d["room_id"] == good_room]
        assert [(d["path"], d["rev"]) for d in good_docs] == [("good.txt", good_rev)]
        for d in documents:
            assert wire.valid_path(d["path"]), d
            rows = await db.fetch(
                "SELECT rev, client_id, op FROM ops WHERE document_id = $1 ORDER BY rev", d["id"]
            )
            assert [r["rev"] for r in rows] == list(range(1, d["rev"] + 1)), "contiguous revisions"
            if d["room_id"] == good_room:
                assert {r["client_id"] for r in rows} <= good_clients
            start = await db.fetchval(
                "SELECT text FROM snapshots WHERE document_id = $1 AND rev = 0", d["id"]
            )
            text = start or ""
            for r in rows:
                text = ops.apply(text, ops.check(json.loads(r["op"])))
            assert len(text.encode()) <= MAX_DOC
        n_ops = await db.fetchval("SELECT count(*) FROM ops")
        print(
            f"database: {len(rooms)} rooms, {len(members)} members, {len(documents)} documents, {n_ops} ops"
        )
    finally:
        await db.close()


@pytest.mark.timeout(600)
async def test_hostile_clients_break_nothing(pg_server: PgServer) -> None:
    await hostile_run(pg_server, 10_000)


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_hostile_clients_break_nothing_100k(pg_server: PgServer) -> None:
    await hostile_run(pg_server, 100_000)
