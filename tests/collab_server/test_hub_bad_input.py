"""Bad input over real websockets against a real PostgreSQL: a clear answer, and nothing changes.

One hub (small limits) and one "world" serve the whole module: room 1 with
two editors on a shared document, room 2 with two more.  Each case connects
a fresh attacker in the state the case needs, sends its frames, and checks:

* the exact error codes, with the request ``id`` / op ``seq`` echoed where
  the frame carried valid ones (and nothing echoed where they were invalid);
* the close code, for the cases that end the connection;
* nothing changed: the row counts of every table, and a fresh peer that
  opens each document sees the same text and revision as before;
* the rest of the hub still works: in both rooms the two members edit and
  each sees the other's edit;
* no reply anywhere contains the marker planted in the bad fields, or any
  exception text, and the hub logged no error.

The flood test runs on a second hub (same database) with a tiny rate limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from collab_core.errors import MESSAGES
from collab_server.hub import Hub, HubConfig
from collab_server.store import Store, open_store
from tests.support.hubclient import Peer, SharedDoc

pytestmark = pytest.mark.timeout(120)

MARK = "Zq" + uuid.uuid4().hex[:12] + "Qz"  # planted in bad fields; must never come back
DOC = "src/shared.txt"
DOC2 = "notes.md"
MAX_BYTES = 4096
HISTORY = 5
TABLES = ("rooms", "invites", "members", "documents", "ops", "snapshots", "removals")
# what exception text looks like, should any leak to a client
LEAK = re.compile(r"Traceback|Error\b|Exception|File \"|line \d+|asyncpg|psycopg|\.py\b")


# -- the module's database, hub and world -----------------------------------


@pytest.fixture(scope="module")
async def module_store(module_database_url: str) -> AsyncIterator[Store]:
    s = await open_store(module_database_url, hub_id="bad-input")
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(scope="module")
async def db(module_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(module_database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def start_hub(store: Store, config: HubConfig) -> Hub:
    hub = Hub(store, config)
    await hub.start("127.0.0.1", 0)
    return hub


@dataclass
class World:
    """Two rooms with two members each, every member with the room's document open."""

    url: str
    room1: dict[str, Any]
    room2: dict[str, Any]
    a: Peer
    b: Peer
    c: Peer
    d: Peer
    da: SharedDoc
    db: SharedDoc
    dc: SharedDoc
    dd: SharedDoc
    peers: list[Peer] = field(default_factory=list)

    async def close(self) -> None:
        for p in self.peers:
            await p.close()


async def make_world(url: str, edits: int = 0) -> World:
    a, b, c, d = [await Peer(url, n).connect() for n in ("Ada", "Bob", "Cy", "Di")]
    room1 = await a.create_room("one")
    await a.create_document(DOC, "hello world\n")
    await b.join(room1["room"], room1["editorSecret"])
    room2 = await c.create_room("two")
    await c.create_document(DOC2, "# notes\n")
    await d.join(room2["room"], room2["editorSecret"])
    da, db_, dc, dd = await a.open(DOC), await b.open(DOC), await c.open(DOC2), await d.open(DOC2)
    for i in range(edits):
        await da.splice(len(da.text), 0, f"{i}")
        await da.wait_synced()
    await db_.wait_rev(da.rev)
    w = World(url, room1, room2, a, b, c, d, da, db_, dc, dd)
    w.peers = [a, b, c, d]
    return w


@pytest.fixture(scope="module")
async def hub(module_store: Store) -> AsyncIterator[Hub]:
    h = await start_hub(
        module_store, HubConfig(max_message_bytes=MAX_BYTES, history=HISTORY, rate=10_000, burst=10_000)
    )
    try:
        yield h
    finally:
        await h.close()


@pytest.fixture(scope="module")
async def world(hub: Hub) -> AsyncIterator[World]:
    # enough revisions that a base of 0 is older than the hub keeps
    w = await make_world(f"ws://127.0.0.1:{hub.port}", edits=HISTORY + 5)
    try:
        yield w
    finally:
        await w.close()


# -- checks ---------------------------------------------------------------


async def table_counts(db: asyncpg.Connection) -> dict[str, int]:
    return {t: await db.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}


@dataclass
class Before:
    counts: dict[str, int]
    doc1: tuple[str, int]
    doc2: tuple[str, int]


async def snapshot(world: World, db: asyncpg.Connection) -> Before:
    for d in (world.da, world.db, world.dc, world.dd):
        await d.wait_synced()
    await world.db.wait_rev(world.da.rev)
    await world.dd.wait_rev(world.dc.rev)
    assert world.da.text == world.db.text and world.dc.text == world.dd.text
    return Before(await table_counts(db), (world.da.text, world.da.rev), (world.dc.text, world.dc.rev))


async def fresh_view(url: str, room: dict[str, Any], path: str) -> tuple[str, int]:
    p = await Peer(url, "Fresh").connect()
    try:
        await p.join(room["room"], room["viewerSecret"])
        reply = await p.request({"type": "open", "path": path})
        return reply["text"], reply["rev"]
    finally:
        await p.close()


async def edit_and_see(x: SharedDoc, y: SharedDoc, text: str) -> None:
    """x inserts *text*; y sees it; then the other way round."""
    for src, dst in ((x, y), (y, x)):
        await src.splice(0, 0, text)
        await src.wait_synced()
        await dst.wait_rev(src.rev)
        assert dst.text == src.text
        assert dst.text.startswith(text)


async def assert_unchanged_and_alive(world: World, db: asyncpg.Connection, before: Before) -> None:
    assert await table_counts(db) == before.counts
    assert await fresh_view(world.url, world.room1, DOC) == before.doc1
    assert await fresh_view(world.url, world.room2, DOC2) == before.doc2
    await edit_and_see(world.da, world.db, "r1 ")
    await edit_and_see(world.dc, world.dd, "r2 ")


def all_received(peers: list[Peer]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in peers:
        for q in p.events.values():
            out.extend(q)
        for d in p.docs.values():
            out.extend(d.errors)
    return out


def assert_nothing_leaked(msgs: list[dict[str, Any]]) -> None:
    for m in msgs:
        raw = json.dumps(m, ensure_ascii=False)
        assert MARK not in raw, m
        if m.get("type") == "error":
            assert m["message"] in set(MESSAGES.values()) or not LEAK.search(m["message"]), m
            assert not LEAK.search(raw), m
            assert set(m) <= {"type", "code", "message", "id", "path", "seq"}, m


def hub_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("collab")
    ]


# -- the cases --------------------------------------------------------------


@dataclass
class Ctx:
    """What a case's frames may refer to."""

    room1: dict[str, Any]
    room2: dict[str, Any]
    rev: int
    length: int


Frames = Callable[[Ctx], list[str | bytes]]


@dataclass(frozen=True)
class Case:
    id: str
    #: attacker's state: "raw" (connected, no hello), "lobby" (hello, no room),
    #: "editor" (room 1 editor with DOC open), "viewer" (room 1 viewer with DOC open)
    state: str
    frames: Frames
    #: expected error codes, in order
    codes: tuple[str, ...]
    #: fields every error must carry (and None: must not carry)
    echo: dict[str, Any] = field(default_factory=dict)
    close: int | None = None


def j(**msg: Any) -> str:
    # ASCII-only JSON: lone surrogates travel as \\uXXXX escapes, as a client could send them
    return json.dumps(msg)


def op(ctx: Ctx, o: Any, rev: Any = None, seq: Any = 1, **extra: Any) -> str:
    return j(type="op", path=DOC, rev=ctx.rev if rev is None else rev, seq=seq, op=o, **extra)


NO_ECHO = {"id": None, "seq": None}
BAD_PATHS = [
    "../" + MARK,
    "/" + MARK,
    MARK + "//b",
    "a/./" + MARK,
    "a/../" + MARK,
    ".",
    "..",
    MARK + "/",
    "a\\" + MARK,
    "c:" + MARK,
    "a\t" + MARK,
    MARK + "\x00",
    "\ud800" + MARK,
    "",
    MARK * (1025 // len(MARK) + 1),
]

CASES: list[Case] = [
    # -- before hello ------------------------------------------------------
    Case(
        "first-not-hello",
        "raw",
        lambda c: [j(type="ping", id="p1")],
        ("not_hello",),
        {"id": "p1"},
        close=4400,
    ),
    Case("first-is-op", "raw", lambda c: [op(c, ["x"])], ("not_hello",), close=4400),
    Case("first-malformed", "raw", lambda c: ["{" + MARK], ("bad_json",), close=4400),
    Case(
        "hello-wrong-version",
        "raw",
        lambda c: [j(type="hello", protocol=2, name="v2", clientId="abcdefgh12", id="h1")],
        ("unsupported_version",),
        {"id": "h1"},
        close=4400,
    ),
    Case(
        "hello-version-string",
        "raw",
        lambda c: [j(type="hello", protocol="1" + MARK, name="x", clientId="abcdefgh12")],
        ("bad_message",),
        close=4400,
    ),
    Case(
        "hello-bad-client-id",
        "raw",
        lambda c: [j(type="hello", protocol=1, name="x", clientId="../" + MARK)],
        ("bad_message",),
        close=4400,
    ),
    Case(
        "hello-nul-name",
        "raw",
        lambda c: [j(type="hello", protocol=1, name="a\x00" + MARK[:8], clientId="abcdefgh12")],
        ("bad_message",),
        close=4400,
    ),
    Case(
        "hello-invisible-name",
        "raw",
        # bidi override, zero width space, line separator, escape: nothing left to show
        lambda c: [j(type="hello", protocol=1, name="\u202e\u200b\u2028\x1b ", clientId="abcdefgh12")],
        ("bad_message",),
        close=4400,
    ),
    # -- malformed frames --------------------------------------------------
    Case(
        "malformed-json",
        "editor",
        lambda c: ["{" + MARK, "{'type': 'ping'}", '{"type":"ping",}'],
        ("bad_json",) * 3,
    ),
    Case(
        "not-utf8",  # (a binary frame: the hub reads it as text, and fails the connection alike)
        "editor",
        lambda c: [b'{"type":"ping","x":"\xff\xfe' + MARK.encode() + b'"}'],
        (),
        close=1007,
    ),
    Case("deep-nesting", "editor", lambda c: ["[" * 2000 + "]" * 2000], ("bad_json",)),
    Case("deep-nesting-unclosed", "editor", lambda c: ['{"a":' + "[" * 3000], ("bad_json",)),
    Case(
        "non-object",
        "editor",
        lambda c: ["[1, 2]", json.dumps(MARK), "42", "null", "true", "[]"],
        ("bad_message",) * 6,
    ),
    Case(
        "no-or-bad-type",
        "editor",
        lambda c: [j(id="t1", text=MARK), j(type=7, id="t1"), j(type=None, id="t1"), j(type=[MARK], id="t1")],
        ("bad_message",) * 4,
        {"id": "t1"},
    ),
    Case("unknown-type", "editor", lambda c: [j(type=MARK, id=5)], ("unknown_type",), {"id": 5}),
    Case(
        "unknown-type-dunder", "editor", lambda c: [j(type="__class__", id=5)], ("unknown_type",), {"id": 5}
    ),
    Case(
        "bad-id",
        "editor",
        lambda c: [
            j(type="ping", id="x" * 65 + MARK),
            j(type="ping", id={"k": MARK}),
            j(type="ping", id=[MARK]),
            j(type="ping", id=1.5),
            j(type="ping", id=True),
            j(type="ping", id=2**60),
            '{"type":"ping","id":' + "9" * 3000 + "}",
        ],
        ("bad_message",) * 7,
        NO_ECHO,
    ),
    # -- wrong field types in an op ----------------------------------------
    Case(
        "rev-string",
        "editor",
        lambda c: [op(c, ["x"], rev=str(c.rev) + MARK, id="o1")],
        ("bad_message",),
        {"id": "o1", "seq": 1},
    ),
    Case(
        "rev-float",
        "editor",
        lambda c: [op(c, ["x"], rev=float(c.rev), id="o1")],
        ("bad_message",),
        {"id": "o1", "seq": 1},
    ),
    Case(
        "rev-bool",
        "editor",
        lambda c: [op(c, ["x"], rev=True, id="o1")],
        ("bad_message",),
        {"id": "o1", "seq": 1},
    ),
    Case(
        "rev-negative",
        "editor",
        lambda c: [op(c, ["x"], rev=-1, id="o1")],
        ("bad_message",),
        {"id": "o1", "seq": 1},
    ),
    Case(
        "rev-huge",
        "editor",
        lambda c: [op(c, ["x"], rev=2**63, id="o1")],
        ("bad_message",),
        {"id": "o1", "seq": 1},
    ),
    Case(
        "rev-missing",
        "editor",
        lambda c: [j(type="op", path=DOC, seq=1, op=["x"], id="o1")],
        ("bad_message",),
        {"id": "o1", "seq": 1},
    ),
    Case(
        "seq-bool",
        "editor",
        lambda c: [op(c, ["x"], seq=True, id="o1")],
        ("bad_message",),
        {"id": "o1", "seq": None},
    ),
    Case(
        "seq-zero",
        "editor",
        lambda c: [op(c, ["x"], seq=0, id="o1")],
        ("bad_message",),
        {"id": "o1", "seq": 0},
    ),
    Case(
        "seq-string",
        "editor",
        lambda c: [op(c, ["x"], seq=MARK, id="o1")],
        ("bad_message",),
        {"id": "o1", "seq": None},
    ),
    Case(
        "seq-float",
        "editor",
        lambda c: [op(c, ["x"], seq=1.0, id="o1")],
        ("bad_message",),
        {"id": "o1", "seq": None},
    ),
    Case(
        "rev-nan-infinity",
        "editor",
        lambda c: [
            f'{{"type":"op","path":"{DOC}","rev":NaN,"seq":1,"op":["x"]}}',
            f'{{"type":"op","path":"{DOC}","rev":Infinity,"seq":1,"op":["x"]}}',
        ],
        ("bad_message",) * 2,
        {"seq": 1},
    ),
    Case(
        "op-dict",
        "editor",
        lambda c: [op(c, {"insert": MARK}, id="o1")],
        ("bad_message",),
        {"id": "o1", "seq": 1},
    ),
    Case("op-string", "editor", lambda c: [op(c, MARK, id="o1")], ("bad_message",), {"id": "o1", "seq": 1}),
    Case(
        "op-components",
        "editor",
        lambda c: [
            op(c, [1.5, MARK]),
            op(c, [True, MARK]),
            op(c, [[MARK]]),
            op(c, [{"i": MARK}]),
            op(c, [None, MARK]),
            op(c, [0, MARK]),
            op(c, ["", MARK]),
            op(c, [2**60, MARK]),
            op(c, [-(2**60), MARK]),
            op(c, [1, [2, [3, [MARK]]]]),
        ],
        ("invalid_op",) * 10,
        {"seq": 1},
    ),
    Case(
        "op-nul-and-surrogate",
        "editor",
        lambda c: [
            op(c, ["a\x00" + MARK]),
            op(c, ["\ud800" + MARK]),
            op(c, [MARK + "\udfff"]),
            op(c, ["\udc00\ud800" + MARK]),
            op(c, [3, "ok", 1, "\x00"]),
        ],
        ("invalid_op",) * 5,
        {"seq": 1, "path": DOC},
    ),
    # -- ops that do not fit the document ----------------------------------
    Case(
        "retain-past-end",
        "editor",
        lambda c: [op(c, [c.length + 1, MARK], id="e1")],
        ("invalid_op",),
        {"seq": 1, "path": DOC},
    ),
    Case("delete-past-end", "editor", lambda c: [op(c, [c.length, -1], seq=2)], ("invalid_op",), {"seq": 2}),
    Case(
        "delete-all-plus-one",
        "editor",
        lambda c: [op(c, [-(c.length + 1)], seq=3)],
        ("invalid_op",),
        {"seq": 3},
    ),
    Case(
        "past-end-of-old-base",
        "editor",
        # revision 1 was shorter than the head: a retain of the head's length overruns it
        lambda c: [op(c, [c.length, MARK], rev=c.rev - 1, seq=4)],
        ("invalid_op",),
        {"seq": 4},
    ),
    Case(
        "future-revision",
        "editor",
        lambda c: [op(c, [MARK], rev=c.rev + 1, seq=7, id="f1")],
        ("future_revision",),
        {"seq": 7, "path": DOC},
    ),
    Case(
        "far-future-revision",
        "editor",
        lambda c: [op(c, [MARK], rev=2**53, seq=7)],
        ("future_revision",),
        {"seq": 7},
    ),
    Case(
        "revision-too-old",
        "editor",
        lambda c: [op(c, [MARK], rev=0, seq=9)],
        ("revision_too_old",),
        {"seq": 9},
    ),
    Case(
        "revision-just-too-old",
        "editor",
        lambda c: [op(c, [MARK], rev=c.rev - HISTORY - 1, seq=9)],
        ("revision_too_old",),
        {"seq": 9},
    ),
    Case(
        "open-since-future",
        "editor",
        lambda c: [j(type="open", path=DOC, since=c.rev + 1, id="s1")],
        ("future_revision",),
        {"id": "s1"},
    ),
    Case(
        "open-since-negative",
        "editor",
        lambda c: [j(type="open", path=DOC, since=-1, id="s1")],
        ("bad_message",),
        {"id": "s1"},
    ),
    # -- rooms -------------------------------------------------------------
    Case(
        "op-not-in-room",
        "lobby",
        lambda c: [op(c, [MARK], id="n1")],
        ("not_in_room",),
        {"id": "n1", "seq": 1},
    ),
    Case(
        "requests-not-in-room",
        "lobby",
        lambda c: [
            j(type="list_documents", id="n2"),
            j(type="create_document", path="new.txt", text=MARK, id="n2"),
            j(type="open", path=DOC, id="n2"),
            j(type="presence", path=DOC, rev=0, ranges=[[0, 0]], id="n2"),
        ],
        ("not_in_room",) * 4,
        {"id": "n2"},
    ),
    Case(
        "bad-invite",
        "lobby",
        lambda c: [
            j(type="join", room=c.room1["room"], secret="A" * 43, id="i1"),
            j(type="join", room=c.room1["room"], secret=c.room2["ownerSecret"], id="i1"),
            j(type="join", room=c.room1["room"], secret=MARK + "$%", id="i1"),
            j(type="join", room=c.room1["room"], secret="x" * 200 + MARK, id="i1"),
            j(type="join", room=c.room1["room"], secret="", id="i1"),
        ],
        ("bad_invite",) * 5,
        {"id": "i1"},
    ),
    Case(
        "unknown-room",
        "lobby",
        lambda c: [
            j(type="join", room="A" * 22, secret=c.room1["editorSecret"], id="u1"),
            j(type="join", room="../" + MARK, secret=c.room1["editorSecret"], id="u1"),
            j(type="join", room="", secret=c.room1["editorSecret"], id="u1"),
        ],
        ("no_such_room",) * 3,
        {"id": "u1"},
    ),
    Case(
        "join-wrong-types",
        "lobby",
        lambda c: [
            j(type="join", room=[c.room1["room"]], secret=c.room1["editorSecret"], id="w1"),
            j(type="join", room=c.room1["room"], secret={"s": MARK}, id="w1"),
            j(type="join", room=c.room1["room"], id="w1"),
        ],
        ("bad_message",) * 3,
        {"id": "w1"},
    ),
    Case(
        "room-name-surrogate",
        "lobby",
        lambda c: [j(type="create_room", name=MARK + "\ud800", id="r1")],
        ("bad_message",),
        {"id": "r1"},
    ),
    Case(
        "room-name-long",
        "lobby",
        lambda c: [j(type="create_room", name=MARK * 20, id="r1")],
        ("bad_message",),
        {"id": "r1"},
    ),
    Case(
        "already-in-room",
        "editor",
        lambda c: [
            j(type="join", room=c.room2["room"], secret=c.room2["editorSecret"], id="a1"),
            j(type="create_room", id="a1"),
        ],
        ("already_in_room",) * 2,
        {"id": "a1"},
    ),
    Case(
        "hello-again",
        "editor",
        lambda c: [j(type="hello", protocol=1, name="again", clientId="abcdefgh12", id="h2")],
        ("bad_message",),
        {"id": "h2"},
    ),
    # -- roles -------------------------------------------------------------
    Case(
        "viewer-op",
        "viewer",
        lambda c: [op(c, [MARK], seq=3, id="v1")],
        ("forbidden",),
        {"id": "v1", "seq": 3},
    ),
    Case(
        "viewer-create-document",
        "viewer",
        lambda c: [j(type="create_document", path="v.txt", text=MARK, id="v2")],
        ("forbidden",),
        {"id": "v2"},
    ),
    Case(
        "not-owner-controls",
        "editor",
        lambda c: [
            j(type="kick", participant="abcdefgh", id="k1"),
            j(type="set_role", participant="abcdefgh", role="viewer", id="k1"),
            j(type="rotate_invites", id="k1"),
            j(type="delete_room", id="k1"),
        ],
        ("forbidden",) * 4,
        {"id": "k1"},
    ),
    Case(
        "viewer-owner-controls",
        "viewer",
        lambda c: [j(type="delete_room", id="k2"), j(type="rotate_invites", id="k2")],
        ("forbidden",) * 2,
        {"id": "k2"},
    ),
    Case(
        "owner-controls-malformed",
        "editor",
        lambda c: [
            j(type="kick", id="k3"),
            j(type="kick", participant=7, id="k3"),
            j(type="kick", participant="../" + MARK, id="k3"),
            j(type="set_role", participant="abcdefgh", role="owner", id="k3"),
            j(type="set_role", participant="abcdefgh", role=MARK, id="k3"),
            j(type="set_role", participant="abcdefgh", id="k3"),
        ],
        ("bad_message", "bad_message", "no_such_participant", "bad_message", "bad_message", "bad_message"),
        {"id": "k3"},
    ),
    Case(
        "owner-controls-outside-a-room",
        "lobby",
        lambda c: [j(type="delete_room", id="k4"), j(type="kick", participant="abcdefgh", id="k4")],
        ("not_in_room",) * 2,
        {"id": "k4"},
    ),
    # -- documents -----------------------------------------------------------
    Case(
        "op-unopened-document",
        "lobby-room",
        lambda c: [op(c, [MARK], seq=5, id="u2")],
        ("not_open",),
        {"id": "u2", "seq": 5},
    ),
    Case(
        "op-unknown-document",
        "editor",
        lambda c: [j(type="op", path="nope.txt", rev=0, seq=5, op=[MARK], id="u3")],
        ("not_open",),
        {"id": "u3", "seq": 5},
    ),
    Case(
        "presence-unopened",
        "lobby-room",
        lambda c: [j(type="presence", path=DOC, rev=c.rev, ranges=[[0, 1]], id="u4")],
        ("not_open",),
        {"id": "u4"},
    ),
    Case(
        "presence-bad-ranges",
        "editor",
        lambda c: [
            j(type="presence", path=DOC, rev=c.rev, ranges=[[0]], id="p2"),
            j(type="presence", path=DOC, rev=c.rev, ranges=[[-1, 0]], id="p2"),
            j(type="presence", path=DOC, rev=c.rev, ranges=[[0, MARK]], id="p2"),
            j(type="presence", path=DOC, rev=c.rev, ranges=[[0, 0]] * 65, id="p2"),
            j(type="presence", path=DOC, rev=c.rev, ranges={"a": MARK}, id="p2"),
        ],
        ("bad_message",) * 5,
        {"id": "p2"},
    ),
    Case(
        "open-unknown-document",
        "editor",
        lambda c: [j(type="open", path="missing/x.txt", id="d1")],
        ("no_such_document",),
        {"id": "d1", "path": "missing/x.txt"},
    ),
    Case(
        "create-existing-document",
        "editor",
        lambda c: [j(type="create_document", path=DOC, text=MARK, id="d2")],
        ("document_exists",),
        {"id": "d2"},
    ),
    Case(
        "create-document-nul-text",
        "editor",
        lambda c: [j(type="create_document", path="n.txt", text="a\x00" + MARK, id="d3")],
        ("bad_message",),
        {"id": "d3"},
    ),
    Case(
        "create-document-surrogate-text",
        "editor",
        lambda c: [j(type="create_document", path="s.txt", text="\udfff" + MARK, id="d3")],
        ("bad_message",),
        {"id": "d3"},
    ),
    # two cases: more than 50 bad messages in a row would (rightly) close the connection
    *(
        Case(
            f"bad-paths-{i}",
            "editor",
            lambda c, paths=paths: [
                frame
                for p in paths
                for frame in (
                    j(type="open", path=p, id="bp"),
                    j(type="create_document", path=p, text=MARK, id="bp"),
                    j(type="op", path=p, rev=c.rev, seq=1, op=[MARK], id="bp"),
                    j(type="close", path=p, id="bp"),
                    j(type="presence", path=p, rev=c.rev, ranges=[], id="bp"),
                )
            ],
            ("bad_path",) * (5 * len(paths)),
            {"id": "bp", "path": None},
        )
        for i, paths in enumerate((BAD_PATHS[:8], BAD_PATHS[8:]))
    ),
    Case(
        "path-wrong-type",
        "editor",
        lambda c: [j(type="open", path=["a"], id="pt"), j(type="open", path=7, id="pt")],
        ("bad_message",) * 2,
        {"id": "pt"},
    ),
    # -- history (docs/protocol.md, "History") -----------------------------
    Case(
        "history-bad-fields",
        "editor",
        lambda c: [
            j(type="history", path=DOC, limit=10**9, id="h1"),
            j(type="history", path=DOC, limit=0, id="h1"),
            j(type="history", path=DOC, limit=-5, id="h1"),
            j(type="history", path=DOC, limit=MARK, id="h1"),
            j(type="history", path=DOC, before=-1, id="h1"),
            j(type="history", path=DOC, before=MARK, id="h1"),
            j(type="history", path=DOC, before=1.5, id="h1"),
            j(type="history", path=DOC, before=[c.rev], id="h1"),
            j(type="history", path=DOC, before=2**60, id="h1"),
        ],
        ("bad_message",) * 9,
        {"id": "h1", "path": DOC},
    ),
    Case(
        "undo-bad-keys",
        "editor",
        lambda c: [
            j(type="undo", path=DOC, id="k1"),
            j(type="undo", path=DOC, key=0, id="k1"),
            j(type="redo", path=DOC, key=-1, id="k1"),
            j(type="undo", path=DOC, key=MARK, id="k1"),
            j(type="redo", path=DOC, key=1.5, id="k1"),
            j(type="undo", path=DOC, key=2**53 + 1, id="k1"),
            j(type="redo", path=DOC, key=[1], id="k1"),
        ],
        ("bad_message",) * 7,
        {"id": "k1", "path": DOC},
    ),
    Case(
        "blame-bad-fields",
        "editor",
        lambda c: [
            j(type="blame", path=DOC, start=-1, id="b1"),
            j(type="blame", path=DOC, start=3, end=2, id="b1"),
            j(type="blame", path=DOC, end=-1, id="b1"),
            j(type="blame", path=DOC, start=MARK, id="b1"),
            j(type="blame", path=DOC, end=True, id="b1"),
        ],
        ("bad_message",) * 5,
        {"id": "b1", "path": DOC},
    ),
    Case(
        "revision-bad-rev",
        "editor",
        lambda c: [
            j(type="revision", path=DOC, rev=-1, id="v1"),
            j(type="revision", path=DOC, rev=c.rev + 1, id="v1"),
            j(type="revision", path=DOC, rev=2**53, id="v1"),
            j(type="revision", path=DOC, rev=2**63, id="v1"),
            j(type="revision", path=DOC, rev=MARK, id="v1"),
            j(type="revision", path=DOC, id="v1"),
        ],
        ("bad_message",) * 6,
        {"id": "v1", "path": DOC},
    ),
    Case(
        "history-requests-unopened",
        "lobby-room",
        lambda c: [
            j(type="undo", path=DOC, key=1, id="n3"),
            j(type="redo", path=DOC, key=1, id="n3"),
            j(type="history", path=DOC, id="n3"),
            j(type="blame", path=DOC, id="n3"),
            j(type="revision", path=DOC, rev=0, id="n3"),
            j(type="undo", path="nope.txt", key=1, id="n3"),
            j(type="revision", path="nope.txt", rev=0, id="n3"),
        ],
        ("not_open",) * 7,
        {"id": "n3"},
    ),
    Case(
        "history-requests-not-in-room",
        "lobby",
        lambda c: [
            j(type="undo", path=DOC, key=1, id="n4"),
            j(type="redo", path=DOC, key=1, id="n4"),
            j(type="history", path=DOC, id="n4"),
            j(type="blame", path=DOC, id="n4"),
            j(type="revision", path=DOC, rev=0, id="n4"),
        ],
        ("not_in_room",) * 5,
        {"id": "n4"},
    ),
    Case(
        "history-requests-bad-paths",
        "editor",
        lambda c: [
            frame
            for p in ("../" + MARK, MARK + "\x00", "")
            for frame in (
                j(type="undo", path=p, key=1, id="bq"),
                j(type="redo", path=p, key=1, id="bq"),
                j(type="history", path=p, id="bq"),
                j(type="blame", path=p, id="bq"),
                j(type="revision", path=p, rev=0, id="bq"),
            )
        ],
        ("bad_path",) * 15,
        {"id": "bq", "path": None},
    ),
    Case(
        "viewer-undo-redo",
        "viewer",
        lambda c: [j(type="undo", path=DOC, key=1, id="v3"), j(type="redo", path=DOC, key=1, id="v3")],
        ("forbidden",) * 2,
        {"id": "v3"},
    ),
    Case(
        "nothing-of-mine-to-undo",
        "editor",
        lambda c: [j(type="undo", path=DOC, key=1, id="m1"), j(type="redo", path=DOC, key=1, id="m1")],
        ("nothing_to_undo", "nothing_to_redo"),
        {"id": "m1", "path": DOC},
    ),
    # -- closing cases -----------------------------------------------------
    Case(
        "oversized",
        "editor",
        lambda c: [j(type="ping", pad=MARK * (MAX_BYTES // len(MARK) + 1))],
        (),
        close=1009,
    ),
    Case(
        "oversized-op",
        "editor",
        lambda c: [op(c, [MARK * (MAX_BYTES // len(MARK) + 1)], seq=1)],
        (),
        close=1009,
    ),
    Case("51-bad-in-a-row", "editor", lambda c: ["{" + MARK] * 51, ("bad_json",) * 50, close=4400),
    Case(
        "51-mixed-bad-in-a-row",
        "editor",
        lambda c: [
            [op(c, [0]), "[]", j(type=MARK), j(type="op", path="../x", rev=0, seq=1, op=[])][i % 4]
            for i in range(51)
        ],
        ("invalid_op", "bad_message", "unknown_type", "bad_path") * 12 + ("invalid_op", "bad_message"),
        close=4400,
    ),
]


async def attacker_in(state: str, world: World) -> tuple[Peer, SharedDoc | None]:
    p = Peer(world.url, "Mallory")
    await p.connect(hello=state != "raw")
    doc = None
    if state in ("editor", "lobby-room"):
        await p.join(world.room1["room"], world.room1["editorSecret"])
        if state == "editor":
            # opened by hand: the state machine must not see errors as acks
            await p.request({"type": "open", "path": DOC})
    elif state == "viewer":
        await p.join(world.room1["room"], world.room1["viewerSecret"])
        await p.request({"type": "open", "path": DOC})
    return p, doc


async def expect_errors(p: Peer, n: int) -> list[dict[str, Any]]:
    return [await p.next_event("error", timeout=10) for _ in range(n)]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input(
    case: Case, world: World, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    p, _ = await attacker_in(case.state, world)
    before = await snapshot(world, db)
    ctx = Ctx(world.room1, world.room2, before.doc1[1], len(before.doc1[0]))
    assert ctx.rev > HISTORY + 1
    try:
        for frame in case.frames(ctx):
            await p.send_raw(frame)
        errors = await expect_errors(p, len(case.codes))
        assert [e["code"] for e in errors] == list(case.codes)
        for e in errors:
            for key, want in case.echo.items():
                assert e.get(key) == want, (key, e)
            if "seq" not in case.echo and e["code"] not in ("bad_message", "bad_json"):
                pass
        assert p.closed is not None
        if case.close is not None:
            code, _reason = await asyncio.wait_for(p.closed, 10)
            assert code == case.close
        else:
            # still connected, and still served
            await p.send_raw(j(type="ping", id="after"))
            pong = await p.next_event("pong")
            assert pong["id"] == "after"
            assert not p.events["error"], p.events["error"]
            assert not p.closed.done()
        assert_nothing_leaked(errors)
    finally:
        await p.close()
    await assert_unchanged_and_alive(world, db, before)
    assert_nothing_leaked(errors + all_received([p, *world.peers]))
    assert hub_errors(caplog) == []


async def test_50_bad_then_one_good_keeps_the_connection(world: World) -> None:
    p, _ = await attacker_in("editor", world)
    try:
        for _ in range(2):
            for _ in range(50):
                await p.send_raw("{")
            await p.send_raw(j(type="ping", id="ok"))
            assert [e["code"] for e in await expect_errors(p, 50)] == ["bad_json"] * 50
            assert (await p.next_event("pong"))["id"] == "ok"
        assert p.closed is not None and not p.closed.done()
    finally:
        await p.close()


# -- flooding ---------------------------------------------------------------

RATE = 50.0
BURST = 20
FLOOD = 400


@pytest.fixture(scope="module")
async def slow_hub(module_store: Store) -> AsyncIterator[Hub]:
    h = await start_hub(module_store, HubConfig(rate=RATE, burst=BURST))
    try:
        yield h
    finally:
        await h.close()


async def test_flood_is_rate_limited_then_closed_4429(
    slow_hub: Hub, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    world = await make_world(f"ws://127.0.0.1:{slow_hub.port}")
    try:
        await asyncio.sleep(BURST / RATE)  # let the members' buckets refill
        before = await snapshot(world, db)
        p, _ = await attacker_in("editor", world)
        await asyncio.sleep(BURST / RATE)
        base = before.doc1[1]
        # each op inserts its own token at 0, all against the same base
        for seq in range(1, FLOOD + 1):
            await p.send_raw(op(Ctx({}, {}, base, 0), [f"<{seq}>"], seq=seq, id=f"f{seq}"))
        assert p.closed is not None
        # promptly: the hub drops what the flooder queued instead of waiting out the close timeout
        code, _ = await asyncio.wait_for(p.closed, 3)
        assert code == 4429
        errors = list(p.events["error"])
        acked = {a["seq"] for a in p.events["ack"]}
        refused = set()
        for e in errors:
            assert e["code"] == "rate_limited", e
            assert e["id"] == f"f{e['seq']}"  # both echoed, and matching
            refused.add(e["seq"])
        assert len(refused) >= BURST  # then the close, at the next refused one
        assert not acked & refused
        # Nothing refused reached the document; everything acked did (the
        # close may beat the acks of ops that passed the limit).  A member's
        # edit is sequenced after all of the flooder's ops: once it is acked,
        # they are committed too.
        await world.da.splice(0, 0, "S")
        await world.da.wait_synced()
        text, rev = await fresh_view(world.url, world.room1, DOC)
        assert text.startswith("S")
        applied = [int(s) for s in re.findall(r"<(\d+)>", text)]
        assert len(applied) == len(set(applied)) >= BURST // 2
        assert acked <= set(applied)
        assert not set(applied) & refused
        assert rev == before.doc1[1] + len(applied) + 1
        assert (await table_counts(db))["ops"] == before.counts["ops"] + len(applied) + 1
        await p.close()
        await asyncio.sleep(BURST / RATE)
        await edit_and_see(world.da, world.db, "r1 ")
        await edit_and_see(world.dc, world.dd, "r2 ")
        assert_nothing_leaked(all_received([p, *world.peers]))
        assert hub_errors(caplog) == []
    finally:
        await world.close()
