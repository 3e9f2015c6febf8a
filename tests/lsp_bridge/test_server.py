"""``pairls-lsp`` as its users run it: a subprocess over stdio, a hub subprocess, real PostgreSQL.

Each editor is a :class:`~tests.support.lsp_editor.TestEditor` (pytest-lsp
client with VS Code's, Neovim 0.7's or eglot's capabilities and boundary
behaviour).  Every command of the contract is driven through
``workspace/executeCommand``, with its errors; behaviours where the editor
boundary matters (versions, encodings, debounce) run once per editor kind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as T

from lsp_bridge.carries import taker
from lsp_bridge.invite import parse_invite
from tests.lsp_bridge.editors import Notification
from tests.support.hubclient import Peer, hub_text, room_paths
from tests.support.hubproc import HubProcess
from tests.support.lsp_editor import ALL_KINDS, KINDS, TestEditor, settle, sha256, stop_checked
from tests.support.proxy import TcpProxy, database_proxy

pytestmark = pytest.mark.timeout(180)

MakeEditor = Callable[..., Awaitable[TestEditor]]


@pytest.fixture(scope="module")
async def hub(pg_server: Any) -> AsyncIterator[HubProcess]:
    """One hub for the module (each test makes its own rooms)."""
    name = await pg_server.create_database()
    with HubProcess(database_url=pg_server.dsn_for(name)) as h:
        yield h
    await pg_server.drop_database(name)


@pytest.fixture
async def make_editor(tmp_path: Path, hub: HubProcess) -> AsyncIterator[MakeEditor]:
    started: list[TestEditor] = []

    async def make(
        kind: str, name: str, *, workspace: Path | None | str = "auto", hub_url: str | None = None, **kw: Any
    ) -> TestEditor:
        if workspace == "auto":
            workspace = tmp_path / f"ws-{name}"
            workspace.mkdir()
        ed = TestEditor(kind, name, workspace, hub_url or hub.url, seed=len(started), **kw)  # type: ignore[arg-type]
        started.append(ed)
        return await ed.start()

    yield make
    await stop_checked(started, resyncs=True)


async def _room(a: TestEditor, name: str = "r") -> dict[str, Any]:
    return await a.command("pairls.createRoom", {"name": name})


async def _pair(
    make_editor: MakeEditor,
    kind: str,
    path: str,
    text: str,
    *,
    bob_via: TcpProxy | None = None,
    bob_env: dict[str, str] | None = None,
) -> tuple[TestEditor, TestEditor, str, str, dict[str, Any]]:
    """Ada (VS Code) shares *path* with *text* in a new room; Bob (*kind*) joins and opens it; settled.
    Bob reaches the hub through *bob_via*, if given (his server and his invite name it); his
    server runs with *bob_env* added to its environment."""
    a = await make_editor("vscode", "Ada")
    b = await make_editor(
        kind, "Bob", **({"hub_url": bob_via.url} if bob_via is not None else {}), env=bob_env
    )
    ua, ub = a.uri(path), b.uri(path)
    a.open(ua, text, "plaintext")
    room = await _room(a)
    invite = room["invite"] if bob_via is None else bob_via.invite(room["invite"])
    await b.command("pairls.joinRoom", {"invite": invite})
    b.open(ub, "", "plaintext")
    await settle([(a, ua), (b, ub)], path)
    return a, b, ua, ub, room


async def _eventually(check: Callable[[], Awaitable[Any]], tries: int = 200, delay: float = 0.05) -> Any:
    """Ask *check* until it returns something truthy (bounded; asserts nothing about time)."""
    for _ in range(tries):
        got = await check()
        if got:
            return got
        await asyncio.sleep(delay)
    raise AssertionError("condition never held")


# -- commands ----------------------------------------------------------------------------------


async def test_create_join_status_participants_leave(make_editor: MakeEditor, hub: HubProcess) -> None:
    a = await make_editor("vscode", "Ada")
    b = await make_editor("neovim", "Bob")
    ua = a.uri("main.py")
    a.open(ua, "print('hi')\n")
    room = await _room(a)
    assert set(room) == {"roomId", "invite", "viewerInvite"}
    assert parse_invite(room["invite"]).room_id == room["roomId"]
    assert room["invite"] != room["viewerInvite"]

    st = await _eventually(
        lambda: _status_with(a, "main.py"),
    )
    assert st["connected"] and st["roomId"] == room["roomId"] and st["role"] == "owner"
    assert st["hubUrl"] == hub.url
    doc = st["documents"]["main.py"]
    assert doc["open"] and not doc["pending"] and doc["sha256"] == sha256("print('hi')\n")

    joined = await b.command("pairls.joinRoom", {"invite": room["invite"]})
    assert joined["roomId"] == room["roomId"] and joined["role"] == "editor"
    assert {"path": "main.py", "rev": doc["rev"]} in joined["documents"]
    assert "Ada" in {p["name"] for p in joined["participants"]}

    parts = await _eventually(lambda: _participants_named(a, {"Ada", "Bob"}))
    for p in parts:
        assert {"id", "name", "color", "role"} <= set(p)
    assert {p["name"]: p["role"] for p in parts} == {"Ada": "owner", "Bob": "editor"}
    assert len({p["color"] for p in parts}) == 2
    await a.wait_note("pairls/participants", lambda n: len(n["participants"]) == 2)
    # B follows every room document in the background: its status knows main.py, not open
    stb = await _eventually(lambda: _status_with(b, "main.py"))
    assert stb["documents"]["main.py"]["open"] is False
    assert stb["documents"]["main.py"]["sha256"] == doc["sha256"]

    assert await b.command("pairls.leaveRoom", {}) == {}
    stb = await b.status()
    assert stb["roomId"] is None and stb["documents"] == {}
    await _eventually(lambda: _participants_named(a, {"Ada"}))
    # joining again after leaving works
    again = await b.command("pairls.joinRoom", {"invite": room["invite"]})
    assert again["roomId"] == room["roomId"]


async def test_the_server_keeps_what_it_holds_at_start_out_of_full_collections(
    make_editor: MakeEditor, hub: HubProcess
) -> None:
    """pygls, lsprotocol and the handlers are frozen before the server serves: a full collection
    walks only what came after (docs/benchmarks.md, "The history and the garbage collector")."""
    a = await make_editor("vscode", "Ada")
    a.open(a.uri("main.py"), "print('hi')\n")
    await _room(a)
    gc_status = (await a.status())["gc"]
    assert gc_status["frozen"] > 20_000
    assert len(gc_status["collections"]) == 3


async def _status_with(ed: TestEditor, path: str) -> dict[str, Any] | None:
    st = await ed.status()
    d = st["documents"].get(path)
    return st if d is not None and d["sha256"] is not None and not d["pending"] else None


async def _participants_named(ed: TestEditor, names: set[str]) -> list[dict[str, Any]] | None:
    parts = (await ed.command("pairls.participants", {}))["participants"]
    return parts if {p["name"] for p in parts} == names else None


async def test_join_errors_and_hub_down(make_editor: MakeEditor, hub: HubProcess) -> None:
    a = await make_editor("vscode", "Ada")
    with pytest.raises(Exception, match="not a pairls invite"):
        await a.command("pairls.joinRoom", {"invite": "hello there"})
    with pytest.raises(Exception, match="invite"):
        await a.command("pairls.joinRoom", {})
    room = await _room(a)
    inv = parse_invite(room["invite"])
    b = await make_editor("emacs", "Bob")
    with pytest.raises(Exception, match="not valid for this room"):
        await b.command("pairls.joinRoom", {"invite": f"{hub.url}/room/{inv.room_id}#wrongsecret"})
    with pytest.raises(Exception, match="does not exist"):
        await b.command("pairls.joinRoom", {"invite": f"{hub.url}/room/NoSuchRoom123#{inv.secret}"})
    assert any("does not exist" in m.message for m in b.client.messages)
    # still usable after the errors
    assert (await b.command("pairls.joinRoom", {"invite": room["invite"]}))["role"] == "editor"
    with pytest.raises(Exception, match="already in a room"):
        await b.command("pairls.createRoom", {})
    # commands that need a room
    c = await make_editor("neovim", "Cy")
    with pytest.raises(Exception, match="room first"):
        await c.command("pairls.openDocument", {"path": "x.py"})
    with pytest.raises(Exception, match="open the document"):
        await c.command("pairls.shareDocument", {"uri": c.uri("nope.py")})
    with pytest.raises(Exception, match="no such participant"):
        await a.command("pairls.follow", {"participantId": "nobody"})
    with pytest.raises(Exception, match="no such document"):
        await a.command("pairls.openDocument", {"path": "nope.py"})

    # a hub nobody listens on: a clear error, and the server stays alive
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = await make_editor("vscode", "Dee", hub_url=f"ws://127.0.0.1:{port}")
    with pytest.raises(Exception, match="cannot reach the hub"):
        await d.command("pairls.createRoom", {})
    assert any("cannot reach the hub" in m.message for m in d.client.messages)
    assert d.alive
    st = await d.status()
    assert st["connected"] is False and st["roomId"] is None


async def test_share_document(make_editor: MakeEditor, hub: HubProcess) -> None:
    a = await make_editor("vscode", "Ada", auto_share=False)
    room = await _room(a)
    u = a.uri("src/tool.py")
    a.open(u, "x = 1\n")
    assert (await a.status())["documents"] == {}  # autoShare off: nothing shared by itself
    shared = await a.command("pairls.shareDocument", {"uri": u})
    assert shared["path"] == "src/tool.py" and isinstance(shared["rev"], int)
    assert await hub_text(hub.url, room["invite"], "src/tool.py") == "x = 1\n"
    # sharing again is harmless
    assert (await a.command("pairls.shareDocument", {"uri": u}))["path"] == "src/tool.py"


# -- typing through the editor boundary ------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_typing_converges(make_editor: MakeEditor, hub: HubProcess, kind: str) -> None:
    a, b, ua, ub, room = await _pair(make_editor, kind, "t.txt", "one\r\ntwo 😀\nthree\n")
    assert b.text(ub) == "one\r\ntwo 😀\nthree\n"
    for i in range(12):
        a.insert(ua, a.text(ua).index("two") + 4, f"<a{i}🎉>")
        b.insert(ub, len(b.text(ub)), f"[b{i}é]")
        if i % 4 == 0:
            b.paste(ub, 0, [f"p{i}", "中文", ""], eol="\r\n")
        await asyncio.sleep(0.01 * (i % 3))
    await settle([(a, ua), (b, ub)], "t.txt")
    text = a.text(ua)
    assert b.text(ub) == text == await hub_text(hub.url, room["invite"], "t.txt")
    for i in range(12):
        assert text.count(f"<a{i}🎉>") == 1 and text.count(f"[b{i}é]") == 1
    st = await b.status()
    assert st["heals"] == 0
    # the keystroke path took the short way (lsp_bridge/rpc.py): didChange and the editor's
    # answers in, applyEdit and the cursors out; nothing failed to reach the editor
    stats = st["stats"]
    assert stats["shortIn"] > 0 and stats["shortOut"] > 0 and stats["editorWritesFailed"] == 0


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_leave_and_join_again_keeps_syncing(
    make_editor: MakeEditor, hub: HubProcess, kind: str
) -> None:
    """The same server leaves and joins the same room again: what it types after still syncs
    (every room entry has its own client id, so seq numbers from 1 again are not old duplicates)."""
    a = await make_editor("vscode", "Ada")
    b = await make_editor(kind, "Bob")
    ua, ub = a.uri("r.txt"), b.uri("r.txt")
    a.open(ua, "start\n", "plaintext")
    room = await _room(a)
    for round_ in range(3):
        await b.command("pairls.joinRoom", {"invite": room["invite"]})
        b.open(ub, "", "plaintext")
        await settle([(a, ua), (b, ub)], "r.txt")
        b.append(ub, f"B{round_}\n")
        a.insert(ua, 0, f"A{round_} ")
        await settle([(a, ua), (b, ub)], "r.txt")
        b.close(ub)
        assert await b.command("pairls.leaveRoom", {}) == {}
    text = await hub_text(hub.url, room["invite"], "r.txt")
    assert a.text(ua) == text
    for r in range(3):
        assert text.count(f"B{r}\n") == 1 and text.count(f"A{r} ") == 1, text


async def test_two_buffers_of_one_room_path_are_one_document(
    make_editor: MakeEditor, hub: HubProcess
) -> None:
    """Two buffers that map to one room path (here a file and a symlink to it) show one document."""
    a = await make_editor("vscode", "Ada")
    b = await make_editor("neovim", "Bob")
    assert b.workspace is not None
    (b.workspace / "real.txt").write_text("shared\n")
    (b.workspace / "link.txt").symlink_to(b.workspace / "real.txt")
    ua = a.uri("real.txt")
    a.open(ua, "shared\n", "plaintext")
    room = await _room(a)
    await b.command("pairls.joinRoom", {"invite": room["invite"]})
    u1, u2 = b.uri("real.txt"), b.uri("link.txt")
    b.open(u1, "shared\n", "plaintext")
    b.open(u2, "shared\n", "plaintext")
    await settle([(a, ua), (b, u1), (b, u2)], "real.txt")
    b.append(u1, "one\n")
    b.append(u2, "two\n")
    a.insert(ua, 0, "> ")
    await settle([(a, ua), (b, u1), (b, u2)], "real.txt")
    text = await hub_text(hub.url, room["invite"], "real.txt")
    assert a.text(ua) == b.text(u1) == b.text(u2) == text
    assert text.count("one\n") == 1 and text.count("two\n") == 1 and text.startswith("> ")
    st = await b.status()
    assert set(st["documents"]) == {"real.txt"} and len(st["documents"]["real.txt"]["views"]) == 2


async def test_joining_a_big_room_follows_every_document_with_progress(
    make_editor: MakeEditor, hub: HubProcess
) -> None:
    owner = await Peer(hub.url, "Owner").connect()
    try:
        created = await owner.create_room("big")
        for i in range(300):
            await owner.create_document(f"pkg/m{i:03}.py", f"value_{i} = {i}\n")
        b = await make_editor("vscode", "Bob")
        joined = await b.command(
            "pairls.joinRoom", {"invite": f"{hub.url}/room/{created['room']}#{created['editorSecret']}"}
        )
        assert len(joined["documents"]) == 300

        async def all_open() -> bool:
            st = await b.status()
            return st["following"] == {"open": 300, "total": 300}

        await _eventually(all_open, tries=600)
        # the words of every document reach the completion menu
        ub = b.uri("pkg/new.py")
        b.open(ub, "value_29", "python")
        items = await b.complete(ub, len("value_29"))
        assert {"value_299", "value_290"} <= {i.label for i in items}
        # $/progress on a token the server created first (pytest-lsp checks that)
        (reports,) = [r for t, r in b.client.progress_reports.items() if str(t).startswith("pairls/")]
        kinds = [r.kind for r in reports]
        assert kinds[0] == "begin" and kinds[-1] == "end"
    finally:
        await owner.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_autoshare_room_text_wins(make_editor: MakeEditor, hub: HubProcess, kind: str) -> None:
    a = await make_editor("vscode", "Ada")
    ua = a.uri("pkg/a.py")
    a.open(ua, "room = 'text'\n")
    room = await _room(a)
    b = await make_editor(kind, "Bob")
    ub = b.uri("pkg/a.py")
    b.open(ub, "stale = 'local copy'\n")  # opened before joining
    outside = b.workspace.parent / f"outside-{kind}.py"  # type: ignore[union-attr]
    b.open(outside.as_uri(), "not shared\n")
    await b.command("pairls.joinRoom", {"invite": room["invite"]})
    await settle([(a, ua), (b, ub)], "pkg/a.py")
    assert b.text(ub) == "room = 'text'\n"
    assert b.edits_received >= 1
    st = await b.status()
    assert set(st["documents"]) == {"pkg/a.py"}  # not the document outside the workspace
    # a document opened later in the room: shared at its relative path, room text wins again
    ua2 = a.uri("b.py")
    a.open(ua2, "second = 2\n")
    await _eventually(lambda: _status_with(b, "b.py"))
    ub2 = b.uri("b.py")
    b.open(ub2, "old\n")
    await settle([(a, ua2), (b, ub2)], "b.py")
    assert b.text(ub2) == "second = 2\n"
    b.append(ub2, "third = 3\n")
    await settle([(a, ua2), (b, ub2)], "b.py")
    assert a.text(ua2) == "second = 2\nthird = 3\n"


@pytest.mark.parametrize("kind", KINDS)
async def test_viewer_edit_restored(make_editor: MakeEditor, hub: HubProcess, kind: str) -> None:
    a = await make_editor("vscode", "Ada")
    ua = a.uri("v.py")
    a.open(ua, "keep = 1\n")
    room = await _room(a)
    b = await make_editor(kind, "Vic")
    joined = await b.command("pairls.joinRoom", {"invite": room["viewerInvite"]})
    assert joined["role"] == "viewer"
    ub = b.uri("v.py")
    b.open(ub, "keep = 1\n")
    await settle([(a, ua), (b, ub)], "v.py")
    b.insert(ub, 0, "# mine\n")
    b.flush(ub)
    await settle([(a, ua), (b, ub)], "v.py")
    assert b.text(ub) == "keep = 1\n"
    assert any("viewer" in m.message for m in b.client.messages)
    assert await hub_text(hub.url, room["invite"], "v.py") == "keep = 1\n"
    # the viewer still sees the others' edits
    a.append(ua, "more = 2\n")
    await settle([(a, ua), (b, ub)], "v.py")
    assert b.text(ub) == "keep = 1\nmore = 2\n"
    with pytest.raises(Exception, match="viewer"):
        b.open(b.uri("new.py"), "x\n")
        await b.command("pairls.shareDocument", {"uri": b.uri("new.py")})


# -- presence -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_cursors_and_inlay_hints(make_editor: MakeEditor, hub: HubProcess, kind: str) -> None:
    a = await make_editor("vscode", "Ada")
    ua = a.uri("c.py")
    text = "héllo = '😀😀'  # 中\nsecond_line = 2\n"
    a.open(ua, text)
    room = await _room(a)
    b = await make_editor(kind, "Bob")
    await b.command("pairls.joinRoom", {"invite": room["invite"]})
    ub = b.uri("c.py")
    b.open(ub, text)
    await settle([(a, ua), (b, ub)], "c.py")
    offset = text.index("'  #") + 1  # after the two emoji
    short_in = (await a.status())["stats"]["shortIn"]
    a.send_cursor(ua, offset)
    want = b.position(ub, offset)
    assert want.line == 0 and want.character == {"utf-16": 14, "utf-32": 12, "utf-8": 18}[b.encoding]

    def has_ada(n: dict[str, Any]) -> bool:
        return n["uri"] == ub and any(
            c["name"] == "Ada"
            and c["ranges"]
            and c["ranges"][0]["end"] == {"line": 0, "character": want.character}
            for c in n["cursors"]
        )

    note = await b.wait_note("pairls/cursors", has_ada)
    cur = next(c for c in note["cursors"] if c["name"] == "Ada")
    assert cur["color"].startswith("#") and cur["participantId"]
    # the cursor's params were read as the JSON they came as, not made into namedtuple types
    assert (await a.status())["stats"]["shortIn"] == short_in + 1
    hints = await b.inlay_hints(ub)
    assert [(h.position.line, h.position.character) for h in hints] == [(0, want.character)]
    label = hints[0].label
    assert "Ada" in (label if isinstance(label, str) else "".join(p.value for p in label))
    if kind == "vscode":  # only VS Code's capabilities offer refresh (one per burst of moves)

        async def refreshed() -> bool:
            return b.inlay_refreshes >= 1

        await _eventually(refreshed)
    # participants carries the path and the ranges in code points
    parts = (await b.command("pairls.participants", {}))["participants"]
    ada = next(p for p in parts if p["name"] == "Ada")
    assert ada["path"] == "c.py" and ada["ranges"] == [[offset, offset]]


async def test_cursor_hints_off(make_editor: MakeEditor, hub: HubProcess) -> None:
    """A client that draws peers' cursors itself (the VS Code extension: ``cursorHints: false``)
    gets ``pairls/cursors`` as a peer types, and no inlay hints of them nor a refresh for them;
    Cy, a VS Code without it in the same room, gets both."""
    a = await make_editor("vscode", "Ada")
    ua = a.uri("m.py")
    text = "x = 1\n"
    a.open(ua, text)
    room = await _room(a)
    b = await make_editor("vscode", "Bob", init_options={"cursorNotifications": True, "cursorHints": False})
    c = await make_editor("vscode", "Cy")
    pairs = [(a, ua)]
    for ed in (b, c):
        await ed.command("pairls.joinRoom", {"invite": room["invite"]})
        ed.open(ed.uri("m.py"), text)
        pairs.append((ed, ed.uri("m.py")))
    await settle(pairs, "m.py")
    a.send_cursor(ua, 0)
    for i, ch in enumerate("y = 2\n"):
        a.type(ua, i, ch)
        await asyncio.sleep(0.02)
    # (where offset 6 is in Bob's text once all of it arrived: part of it would put it elsewhere)
    await settle(pairs, "m.py")
    end = b.position(b.uri("m.py"), 6)

    def ada_at_end(n: dict[str, Any]) -> bool:
        return any(
            c["name"] == "Ada"
            and c["ranges"]
            and c["ranges"][0]["end"] == {"line": end.line, "character": end.character}
            for c in n["cursors"]
        )

    await b.wait_note("pairls/cursors", ada_at_end)
    await c.wait_note("pairls/cursors", ada_at_end)

    async def cy_refreshed() -> bool:
        return c.inlay_refreshes >= 1

    await _eventually(cy_refreshed)
    assert [h.label for h in await c.inlay_hints(c.uri("m.py"))]
    await asyncio.sleep(0.3)  # (a refresh waits 50 ms at most)
    assert b.inlay_refreshes == 0
    assert await b.inlay_hints(b.uri("m.py")) == []


async def test_a_peers_cursor_moves_with_what_we_type_before_it(
    make_editor: MakeEditor, hub: HubProcess
) -> None:
    """Bob types before Ada's cursor: his server shows her cursor pushed on by his text, after
    his keystrokes are acknowledged too (it once went back to where it was, and stayed)."""
    a = await make_editor("vscode", "Ada")
    ua = a.uri("w.py")
    text = "hello world\n"
    a.open(ua, text)
    room = await _room(a)
    b = await make_editor("vscode", "Bob")
    await b.command("pairls.joinRoom", {"invite": room["invite"]})
    ub = b.uri("w.py")
    b.open(ub, text)
    pairs = [(a, ua), (b, ub)]
    await settle(pairs, "w.py")
    a.send_cursor(ua, 6)

    async def hints_at(character: int) -> bool:
        hints = await b.inlay_hints(ub)
        return [(h.position.line, h.position.character) for h in hints] == [(0, character)]

    await _eventually(lambda: hints_at(6))
    for i, ch in enumerate("> "):
        b.type(ub, i, ch)
        await asyncio.sleep(0.02)
    await settle(pairs, "w.py")  # (Bob's keystrokes acknowledged)
    await _eventually(lambda: hints_at(8))
    await asyncio.sleep(0.3)  # and there it stays
    assert await hints_at(8)
    parts = (await b.command("pairls.participants", {}))["participants"]
    assert next(p for p in parts if p["name"] == "Ada")["ranges"] == [[8, 8]]


@pytest.mark.parametrize("kind", KINDS)
async def test_open_document_and_follow(make_editor: MakeEditor, hub: HubProcess, kind: str) -> None:
    a = await make_editor("vscode", "Ada")
    ua = a.uri("lib/util.py")
    a.open(ua, "def util():\n    return 42\n")
    room = await _room(a)
    b = await make_editor(kind, "Bob")
    await b.command("pairls.joinRoom", {"invite": room["invite"]})
    res = await b.command("pairls.openDocument", {"path": "lib/util.py"})
    local = b.workspace / "lib" / "util.py"  # type: ignore[operator]
    assert res["uri"] == local.as_uri()
    assert local.read_text() == "def util():\n    return 42\n"
    # VS Code shows it (window/showDocument); Neovim 0.7 and eglot 1.9 cannot, and their pairls
    # set-up opens the uri of the reply, as an editor does here
    can_show = kind in ("vscode", "blind")
    if can_show:
        assert b.client.shown_documents[-1].uri == res["uri"]
    else:
        assert not b.client.shown_documents
        assert not any("is at" in m.message for m in b.client.messages)  # nothing to say: it opens
        b.open(res["uri"], local.read_text())
    # the editor opened what it was shown (TestEditor does, as editors do): it is now shared
    await settle([(a, ua), (b, res["uri"])], "lib/util.py")
    a.append(ua, "# from Ada\n")  # still subscribed: Ada's edits reach Bob's editor
    b.append(res["uri"], "# from Bob\n")
    await settle([(a, ua), (b, res["uri"])], "lib/util.py")
    assert b.text(res["uri"]).count("# from Ada\n") == 1 and a.text(ua).count("# from Bob\n") == 1

    # follow: B is shown the file and place A is at, after A moves there
    parts = (await b.command("pairls.participants", {}))["participants"]
    ada = next(p for p in parts if p["name"] == "Ada")
    assert await b.command("pairls.follow", {"participantId": ada["id"]}) == {}
    ua2 = a.uri("other.py")
    a.open(ua2, "x = 1\ny = 2\n")
    await _eventually(lambda: _status_with(b, "other.py"))
    shown = len(b.client.shown_documents)
    a.send_cursor(ua2, len("x = 1\ny"))
    want = (b.workspace / "other.py").as_uri()  # type: ignore[operator]
    if can_show:
        await _eventually(lambda: _shown(b, shown, want))
    else:  # told where Ada is instead
        await _eventually(lambda: _told(b, "pairls: Ada is at other.py:2"))
        b.open(want, (b.workspace / "other.py").read_text())  # type: ignore[operator]
    await settle([(a, ua2), (b, want)], "other.py")
    assert b.text(want) == "x = 1\ny = 2\n"
    # stop following: no more showDocument
    assert await b.command("pairls.follow", {"participantId": None}) == {}
    n = len(b.client.shown_documents)
    a.send_cursor(ua, 3)
    await b.wait_note("pairls/cursors", lambda m: m["uri"] == res["uri"] and m["cursors"])
    assert len(b.client.shown_documents) == n


async def _shown(ed: TestEditor, since: int, uri: str) -> bool:
    return any(d.uri == uri for d in ed.client.shown_documents[since:])


async def _told(ed: TestEditor, text: str) -> bool:
    return any(m.message == text for m in ed.client.messages)


async def test_open_document_without_workspace(
    make_editor: MakeEditor, hub: HubProcess, tmp_path: Path
) -> None:
    a = await make_editor("vscode", "Ada")
    ua = a.uri("n.md")
    a.open(ua, "# notes\n", "markdown")
    room = await _room(a)
    cache = tmp_path / "cache"
    b = await make_editor("emacs", "Bob", workspace=None, env={"XDG_CACHE_HOME": str(cache)})
    await b.command("pairls.joinRoom", {"invite": room["invite"]})
    res = await b.command("pairls.openDocument", {"path": "n.md"})
    local = cache / "pairls" / "rooms" / room["roomId"] / "n.md"
    assert res["uri"] == local.as_uri() and local.read_text() == "# notes\n"
    assert not b.client.shown_documents  # eglot 1.9 cannot: pairls.el opens the reply's uri


# -- completions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_completions(make_editor: MakeEditor, hub: HubProcess, kind: str) -> None:
    a = await make_editor("vscode", "Ada")
    ua = a.uri("comp.py")
    a.open(ua, "")
    room = await _room(a)
    b = await make_editor(kind, "Bob")
    await b.command("pairls.joinRoom", {"invite": room["invite"]})
    ub = b.uri("comp.py")
    b.open(ub, "")
    await settle([(a, ua), (b, ub)], "comp.py")
    a.type(ua, 0, "frobnicate_widget = '😀'\n")
    await settle([(a, ua), (b, ub)], "comp.py")
    b.append(ub, "frob")
    items = await b.complete(ub, len(b.text(ub)))
    item = next(i for i in items if i.label == "frobnicate_widget")
    assert "Ada" in (item.detail or "")
    # the replace range starts where the word starts, in B's encoding
    assert item.text_edit is not None and item.text_edit.range.start == b.position(ub, len(b.text(ub)) - 4)
    b.append(ub, "\nwhi")
    assert "while" in {i.label for i in await b.complete(ub, len(b.text(ub)))}
    # keywords follow the language: a JavaScript document offers 'function'
    uj = b.uri("x.js")
    b.open(uj, "func", "javascript")
    assert "function" in {i.label for i in await b.complete(uj, 4)}
    # jedi (its first answer may be skipped under the budget: ask again, bounded)
    b.append(ub, "\nimport os\nos.pa")

    async def jedi() -> bool:
        return "path" in {i.label for i in await b.complete(ub, len(b.text(ub)))}

    await _eventually(jedi, tries=60, delay=0.25)


# -- the hub goes away and comes back ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_hub_restart_keeps_offline_edits(pg_server: Any, tmp_path: Path, kind: str) -> None:
    name = await pg_server.create_database()
    dsn = pg_server.dsn_for(name)
    eds: list[TestEditor] = []
    hub = HubProcess(database_url=dsn).__enter__()
    hub2 = None
    try:
        port = int(hub.url.rsplit(":", 1)[1])
        for who, k in (("Ada", "vscode"), ("Bob", kind)):
            ws = tmp_path / who
            ws.mkdir()
            eds.append(await TestEditor(k, who, ws, hub.url, seed=len(eds)).start())
        a, b = eds
        ua, ub = a.uri("r.txt"), b.uri("r.txt")
        a.open(ua, "start\n", "plaintext")
        room = await _room(a)
        await b.command("pairls.joinRoom", {"invite": room["invite"]})
        b.open(ub, "", "plaintext")
        await settle([(a, ua), (b, ub)], "r.txt")

        hub.terminate()
        await a.wait_note("pairls/status", lambda n: n["connected"] is False and n["roomId"])
        await b.wait_note("pairls/status", lambda n: n["connected"] is False and n["roomId"])
        for i in range(8):  # typed while the hub is down
            a.insert(ua, 0, f"A{i}😀 ")
            b.append(ub, f"B{i}\r\n")
            await asyncio.sleep(0.02)
        b.flush(ub)
        assert (await a.status())["connected"] is False
        n_a = len(a.notes["pairls/status"])
        hub2 = HubProcess("--port", str(port), database_url=dsn).__enter__()
        assert hub2.url == hub.url
        await settle([(a, ua), (b, ub)], "r.txt", timeout=90)
        assert any(n["connected"] for n in a.notes["pairls/status"][n_a:])
        text = a.text(ua)
        assert text == b.text(ub) == await hub_text(hub2.url, room["invite"], "r.txt")
        for i in range(8):
            assert text.count(f"A{i}😀 ") == 1 and text.count(f"B{i}\r\n") == 1, text
        assert "start\n" in text
    finally:
        await asyncio.gather(*(e.stop() for e in eds))
        for h in (hub, hub2):
            if h is not None:
                h.__exit__(None, None, None)
        await pg_server.drop_database(name)


async def test_completions_setting_room_all_off(make_editor: MakeEditor, hub: HubProcess) -> None:
    """``completions``: the room's words only where another language server serves the language."""
    ed = await make_editor(
        "vscode", "Ada", init_options={"completions": {"*": "all", "python": "room", "markdown": "off"}}
    )
    room_doc = ed.uri("words.txt")
    ed.open(room_doc, "frobnicate_widget = 1\n", "plaintext")
    await _room(ed)
    await _eventually(lambda: _status_with(ed, "words.txt"))
    py, md, js = ed.uri("a.py"), ed.uri("b.md"), ed.uri("c.js")
    ed.open(py, "fro", "python")
    ed.open(md, "fro", "markdown")
    ed.open(js, "fu", "javascript")
    assert "frobnicate_widget" in {i.label for i in await ed.complete(py, 3)}
    ed.replace(py, 0, 3, "whi")
    assert "while" not in {
        i.label for i in await ed.complete(py, 3)
    }  # no keywords: the other server has them
    assert await ed.complete(md, 3) == []
    assert "function" in {i.label for i in await ed.complete(js, 2)}  # all: keywords too


async def test_share_a_folder_with_progress_leaving_secrets_out(
    make_editor: MakeEditor, hub: HubProcess
) -> None:
    a = await make_editor("vscode", "Ada", auto_share=False)
    assert a.workspace is not None
    for i in range(40):
        (a.workspace / "src" / f"m{i:02}.py").parent.mkdir(exist_ok=True)
        (a.workspace / "src" / f"m{i:02}.py").write_text(f"name_{i} = {i}\n")
    (a.workspace / ".env").write_text("TOKEN=hunter2\n")
    (a.workspace / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (a.workspace / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    (a.workspace / "node_modules" / "x").mkdir(parents=True)
    (a.workspace / "node_modules" / "x" / "i.js").write_text("module.exports = 1\n")
    room = await _room(a)
    out = await a.command("pairls.shareFolder", {})
    assert out["shared"] == 40 and not out["failed"]
    assert {s.split(":")[0] for s in out["skipped"]} == {".env", "id_ed25519", "logo.png"}
    peer = await Peer(hub.url, "checker").connect()
    try:
        inv = parse_invite(room["invite"])
        await peer.join(inv.room_id, inv.secret)
        docs = {d["path"] for d in (await peer.request({"type": "list_documents"}))["documents"]}
        assert docs == {f"src/m{i:02}.py" for i in range(40)}
        assert (await peer.open("src/m07.py")).text == "name_7 = 7\n"
    finally:
        await peer.close()
    (reports,) = [r for t, r in a.client.progress_reports.items() if str(t).startswith("pairls/")]
    assert reports[0].kind == "begin" and reports[-1].kind == "end"


async def test_autoshare_leaves_out_secrets_and_ignored_files_and_asks_before_sharing_one(
    make_editor: MakeEditor, hub: HubProcess
) -> None:
    a = await make_editor("vscode", "Ada")
    ws = a.workspace
    assert ws is not None
    files = {
        "main.py": "x = 1\n",
        ".gitignore": "*.log\nbuild/\n",
        ".pairlsignore": "notes/private.md\n",
        ".env": "TOKEN=hunter2\n",
        ".env.production": "TOKEN=hunter3\n",
        "deploy/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
        "certs/server.pem": "-----BEGIN CERTIFICATE-----\n",
        ".npmrc": "//registry/:_authToken=abc\n",
        "debug.log": "log line\n",
        "build/gen.py": "generated = 1\n",
        "notes/private.md": "private\n",
        "notes/public.md": "public\n",
        ".git/COMMIT_EDITMSG": "wip\n",
    }
    for rel, text in files.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(text)
    room = await _room(a)
    for rel, text in files.items():
        a.open(a.uri(rel), text, "plaintext")
    outside = ws.parent / "outside-notes.txt"
    outside.write_text("far away\n")
    a.open(outside.as_uri(), "far away\n", "plaintext")
    for _ in range(200):
        if {"main.py", "notes/public.md"} <= set((await a.status())["documents"]):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # what would have gone, has
    shared = {"main.py", ".gitignore", ".pairlsignore", "notes/public.md"}
    assert set((await a.status())["documents"]) == shared
    assert set(await room_paths(hub.url, room["invite"])) == shared
    assert not a.questions  # autoShare never asks: it leaves out

    # sharing one of them by hand asks first; no answer (dismissed) is no
    with pytest.raises(Exception, match="not shared: its name says it may hold a secret"):
        await a.command("pairls.shareDocument", {"uri": a.uri(".env")})
    (q,) = a.questions
    assert ".env" in q.message and [i.title for i in q.actions or []] == ["Share", "Cancel"]
    a.answer = "Cancel"
    with pytest.raises(Exception, match="not shared: git ignores it"):
        await a.command("pairls.shareDocument", {"uri": a.uri("debug.log")})
    with pytest.raises(Exception, match="outside the workspace"):
        await a.command("pairls.shareDocument", {"uri": outside.as_uri()})
    assert set(await room_paths(hub.url, room["invite"])) == shared
    # yes shares it
    a.answer = "Share"
    assert (await a.command("pairls.shareDocument", {"uri": a.uri(".env")}))["path"] == ".env"
    assert (await a.command("pairls.shareDocument", {"uri": outside.as_uri()}))["path"] == "outside-notes.txt"
    # a script says yes with confirmed: true (nothing asked)
    asked = len(a.questions)
    assert (await a.command("pairls.shareDocument", {"uri": a.uri("notes/private.md"), "confirmed": True}))[
        "path"
    ] == "notes/private.md"
    assert len(a.questions) == asked
    assert set(await room_paths(hub.url, room["invite"])) == shared | {
        ".env",
        "outside-notes.txt",
        "notes/private.md",
    }


async def test_a_peer_already_in_the_document_shows_when_it_opens_and_stays_put(
    make_editor: MakeEditor, hub: HubProcess
) -> None:
    """Ada's cursor is on line 3 before Bob opens the file: Bob's buffer shows it there at once
    (pairls/cursors and inlay hints), and typing at the end leaves it there."""
    a = await make_editor("vscode", "Ada")
    ua = a.uri("c.py")
    text = "".join(f"line {i}\n" for i in range(15))
    a.open(ua, text)
    room = await _room(a)
    await _eventually(lambda: _status_with(a, "c.py"))
    a.send_cursor(ua, text.index("line 3"))
    b = await make_editor("vscode", "Bob")
    await b.command("pairls.joinRoom", {"invite": room["invite"]})

    async def ada_known() -> bool:
        parts = (await b.command("pairls.participants", {}))["participants"]
        return any(p["name"] == "Ada" and p.get("ranges") for p in parts)

    await _eventually(ada_known)
    ub = (await b.command("pairls.openDocument", {"path": "c.py"}))["uri"]
    at_line_3 = [{"start": {"line": 3, "character": 0}, "end": {"line": 3, "character": 0}}]

    def ada_on_line_3(n: dict[str, Any]) -> bool:
        return n["uri"] == ub and [c["ranges"] for c in n["cursors"] if c["name"] == "Ada"] == [at_line_3]

    await b.wait_note("pairls/cursors", ada_on_line_3)
    for ch in "typed at the end":
        b.insert(ub, len(b.text(ub)), ch)
        b.flush(ub)
    await settle([(a, ua), (b, ub)], "c.py")
    last = [n for n in b.notes["pairls/cursors"] if n["uri"] == ub][-1]
    assert ada_on_line_3(last), last
    assert [(h.position.line, h.position.character) for h in await b.inlay_hints(ub)] == [(3, 0)]


@pytest.mark.parametrize("kind", ["vscode", "neovim"])
async def test_typing_right_after_opening_a_file_is_shared(
    make_editor: MakeEditor, hub: HubProcess, kind: str
) -> None:
    """didOpen and the first keystrokes arrive together: the keystrokes are the room's too."""
    a = await make_editor(kind, "Ada")
    room = await _room(a)
    u = a.uri("quick.py")
    a.open(u, "start\n")
    a.append(u, "typed at once\n")
    a.flush(u)  # sent right behind didOpen, before the server could start the share
    await _eventually(lambda: _status_with(a, "quick.py"))
    assert await hub_text(hub.url, room["invite"], "quick.py") == "start\ntyped at once\n"


# -- impatient users: leaving right after typing, typing right after joining -----------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_typing_then_leaving_at_once_loses_nothing(
    make_editor: MakeEditor, hub: HubProcess, kind: str
) -> None:
    """The user types and leaves at once: the leave answers once the hub has the typing."""
    a, b, ua, ub, room = await _pair(make_editor, kind, "r.txt", "start\n")
    for i in range(5):
        b.append(ub, f"typed {i}\n")
    # (Neovim and eglot send what is pending before a request, as the test editors do)
    assert await b.command("pairls.leaveRoom", {}) == {}
    typed = "".join(f"typed {i}\n" for i in range(5))
    assert await hub_text(hub.url, room["invite"], "r.txt") == "start\n" + typed
    assert not [m for m in b.client.messages if "before the hub had" in m.message]
    assert (await b.status())["stats"]["left_unsent"] == 0


@pytest.mark.parametrize(
    ("kind", "how"),
    [
        ("vscode", "shutdown"),
        ("neovim", "shutdown"),
        ("emacs", "shutdown"),
        ("vscode", "exit"),
        ("neovim", "SIGTERM"),
        ("emacs", "end of stdin"),
        ("emacs", "SIGHUP, end of stdin"),  # (as Emacs exits)
    ],
)
async def test_typing_then_closing_the_editor_loses_nothing(
    make_editor: MakeEditor, hub: HubProcess, kind: str, how: str
) -> None:
    """Bob, on a slow route (every byte held 0.2 s each way), types a line a key at a time and
    closes his editor at once: it asks the server to shut down and exit (or only to exit, or
    ends it with SIGTERM, or closes its stdin, or sends SIGHUP and closes its stdin as Emacs
    does when it exits).  Every key reaches the room before the server ends, and he leaves it
    as ``pairls.leaveRoom`` would: when he opens the file again, the room's text wins over his
    saved copy, so a key lost here would be lost for good."""
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        a, b, ua, ub, room = await _pair(make_editor, kind, "r.txt", "start\n", bob_via=proxy)
        proxy.lag(0.2)
        typed = "typed, saved and quit"
        for ch in typed:
            b.append(ub, ch)
            b.flush(ub)
            await asyncio.sleep(0.01)  # faster than the route: keys wait behind the first
        server = b.client._server
        assert server is not None
        a.notes.pop("pairls/participants", None)  # (from here on: Ada alone at the start counts not)
        if how == "shutdown":
            await asyncio.wait_for(b.client.shutdown_session(), 30)  # shutdown, exit
        else:
            await b.status()  # (every key has reached the server)
            if how == "exit":
                b.client.exit(None)
            elif how == "SIGTERM":
                server.terminate()
            elif how == "SIGHUP, end of stdin":
                server.send_signal(signal.SIGHUP)
                b.close_stdin()
            else:
                b.close_stdin()
        code = await asyncio.wait_for(server.wait(), 30)
        assert code == (1 if how == "exit" else 0) or how == "SIGTERM", code  # (LSP's exit codes)
        proxy.lag(0)
        want = "start\n" + typed
        assert await hub_text(hub.url, room["invite"], "r.txt") == want
        await settle([(a, ua)], "r.txt")
        assert a.text(ua) == want
        # he left the room: the others' lists no longer show him
        await a.wait_note("pairls/participants", lambda p: [x["name"] for x in p["participants"]] == ["Ada"])
    finally:
        await proxy.close()


async def _bob_types_offline(
    make_editor: MakeEditor, proxy: TcpProxy, tmp_path: Path, kind: str
) -> tuple[TestEditor, TestEditor, str, str, dict[str, Any], dict[str, str]]:
    """Ada and Bob (*kind*, through *proxy*, his state folder under *tmp_path*) in a room on
    r.txt ("start\\n"); the route cut, Bob types "typed offline\\n".  Returns the pair as
    :func:`_pair` does, and Bob's environment."""
    bob_env = {"XDG_STATE_HOME": str(tmp_path / "bob-state")}
    a, b, ua, ub, room = await _pair(make_editor, kind, "r.txt", "start\n", bob_via=proxy, bob_env=bob_env)
    proxy.cut()
    b.append(ub, "typed offline\n")
    b.flush(ub)
    return a, b, ua, ub, room, bob_env


async def _held_by(ed: TestEditor, carries: Path) -> tuple[Path, asyncio.subprocess.Process]:
    """The one carry in *carries*, once written whole, claimed by *ed*'s running server; and that
    server's process."""
    server = ed.client._server
    assert server is not None
    (held,) = await _eventually(lambda: _written(carries))
    assert held.name.endswith(f".json.taking-{taker(server.pid)}")
    return held, server


async def _files(folder: Path) -> list[Path]:
    return await asyncio.to_thread(lambda: list(folder.iterdir()) if folder.exists() else [])


async def _written(folder: Path) -> list[Path]:
    """The files in *folder* (:func:`_files`) without one being written (``.<name>.<hex>``, renamed
    into place once whole)."""
    return [p for p in await _files(folder) if not p.name.startswith(".")]


@pytest.mark.parametrize(
    ("saved", "then"),
    [(True, "emacs"), (False, "neovim")],
    ids=["saved,then-emacs", "not-saved,then-neovim"],
)
async def test_typing_offline_then_closing_the_editor_keeps_it_for_the_next_session(
    make_editor: MakeEditor,
    hub: HubProcess,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    saved: bool,
    then: str,
) -> None:
    """Bob's connection is cut; he types and closes his editor (VS Code).  His server waits for
    the hub (2 s at most), says nothing to an editor that is going, and keeps what the hub never
    had in his state folder (0600; the log says so, without the text).  Later he starts an
    editor of his again (another kind: they share the folder) and joins: the typing reaches the
    room once, after what Ada wrote meanwhile, and his buffer shows it, whether the file he
    opened was saved with it or not (the room's text wins at a join: without the kept copy, it
    would have been lost).  Older files of the same room that hold no carry this version can
    take (cut short; a version it does not know) are set aside and do not hide his."""
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        a, b, ua, ub, room, bob_env = await _bob_types_offline(make_editor, proxy, tmp_path, "vscode")
        invite = proxy.invite(room["invite"])
        server = b.client._server
        assert server is not None
        await asyncio.wait_for(b.client.shutdown_session(), 30)
        assert await asyncio.wait_for(server.wait(), 30) == 0
        err = capsys.readouterr().err
        assert err.count("exiting before the hub had the last edits to 1 document(s): kept") == 1, err
        assert "typed offline" not in err
        assert not [m for m in b.client.messages if "before the hub had" in m.message]
        carries = tmp_path / "bob-state" / "pairls" / "carries"
        (kept,) = carries.iterdir()
        assert kept.stat().st_mode & 0o777 == 0o600
        room_hash = kept.name.partition("-")[0]
        cut, unknown = (carries / f"{room_hash}-{c * 32}.json" for c in "01")
        cut.write_bytes(b'{"version": 1, "roomId": ')
        unknown.write_text(json.dumps({"version": 99}))
        os.utime(cut, (1, 1))
        os.utime(unknown, (2, 2))
        a.insert(ua, 0, "meanwhile\n")  # the room goes on without him
        await _eventually(lambda: _hub_has(hub, room, "meanwhile\nstart\n"))
        proxy.restore()

        # an editor of his, started again
        b2 = await make_editor(then, "Bob", hub_url=proxy.url, workspace=b.workspace, env=bob_env)
        await b2.command("pairls.joinRoom", {"invite": invite})
        ub2 = b2.uri("r.txt")
        b2.open(ub2, "start\ntyped offline\n" if saved else "start\n", "plaintext")
        await settle([(a, ua), (b2, ub2)], "r.txt")
        want = "meanwhile\nstart\ntyped offline\n"
        assert await hub_text(hub.url, room["invite"], "r.txt") == want == a.text(ua) == b2.text(ub2)
        st = await b2.status()
        assert st["stats"]["carried"] == 1 and st["heals"] == 0
        assert st["stats"]["carries_unreadable"] == 1  # (the unknown version: caused here)
        assert sorted(p.name for p in carries.iterdir()) == [
            f"{cut.name}.unreadable",
            f"{unknown.name}.unreadable",
        ]
        await b2.stop()  # (its count of unreadable carries is this test's doing)
    finally:
        await proxy.close()


async def test_typing_offline_then_a_server_killed_without_a_word_keeps_it_for_the_next_session(
    make_editor: MakeEditor, hub: HubProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kill -9 (or the OOM killer) gives Bob's server no time to keep anything at exit.  His
    connection is cut and he types: what the hub has not acknowledged for a second is already on
    disk, claimed by his running server (0600; no text in the log).  The server is killed; Ada
    writes meanwhile; an editor of his started again joins: the typing reaches the room once,
    after Ada's line, and nothing is left in his state folder."""
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        a, b, ua, ub, room, bob_env = await _bob_types_offline(make_editor, proxy, tmp_path, "neovim")
        carries = tmp_path / "bob-state" / "pairls" / "carries"
        kept, server = await _held_by(b, carries)
        assert kept.stat().st_mode & 0o777 == 0o600
        assert (await b.status())["stats"]["held"] >= 1
        server.kill()
        assert await asyncio.wait_for(server.wait(), 30) == -signal.SIGKILL
        assert "typed offline" not in capsys.readouterr().err
        await _bob_again_brings_it(make_editor, "emacs", hub, proxy, a, ua, b, room, bob_env)
        assert list(carries.iterdir()) == []
    finally:
        await proxy.close()


async def _bob_again_brings_it(
    make_editor: MakeEditor,
    kind: str,
    hub: HubProcess,
    proxy: TcpProxy,
    a: TestEditor,
    ua: str,
    b: TestEditor,
    room: dict[str, Any],
    bob_env: dict[str, str],
) -> None:
    """After :func:`_bob_types_offline` and the end of Bob's server: Ada writes meanwhile, the
    route comes back, and an editor of his (*kind*) started again joins: "typed offline" reaches
    the room once, after Ada's line, taken back from what his server kept."""
    a.insert(ua, 0, "meanwhile\n")  # the room goes on without him
    await _eventually(lambda: _hub_has(hub, room, "meanwhile\nstart\n"))
    proxy.restore()
    b2 = await make_editor(kind, "Bob", hub_url=proxy.url, workspace=b.workspace, env=bob_env)
    await b2.command("pairls.joinRoom", {"invite": proxy.invite(room["invite"])})
    ub2 = b2.uri("r.txt")
    b2.open(ub2, "start\ntyped offline\n", "plaintext")  # (the editor had it; the room's text wins)
    await settle([(a, ua), (b2, ub2)], "r.txt")
    want = "meanwhile\nstart\ntyped offline\n"
    assert await hub_text(hub.url, room["invite"], "r.txt") == want == a.text(ua) == b2.text(ub2)
    st = await b2.status()
    assert st["stats"]["carried"] == 1 and st["heals"] == 0


async def test_an_editor_reloaded_offline_joins_with_what_its_last_server_keeps_as_it_ends(
    make_editor: MakeEditor, hub: HubProcess, tmp_path: Path
) -> None:
    """Bob's route to the hub is cut; he types and reloads his editor (VS Code's Reload Window
    ends the old server and starts a new one at once).  The old server is still in its exit's
    wait (2 s), holding the typing on disk, when the new one joins by a route that works: the
    new one waits for the old one to keep the typing, takes it, and the room gets it once.
    Without the wait the new server joined before the typing was kept: the room's text won over
    his buffer, and the typing waited on disk for a later entry.  (That the exit holds the
    typing as its wait begins, not ``hold_after`` on, is ``test_room``'s.)"""
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        bob_env = {"XDG_STATE_HOME": str(tmp_path / "bob-state")}
        carries = tmp_path / "bob-state" / "pairls" / "carries"
        a, b, ua, ub, room = await _pair(
            make_editor, "vscode", "r.txt", "start\n", bob_via=proxy, bob_env=bob_env
        )
        # the new window's server, running before the old one goes (a reload may start them in
        # either order; this one puts the join inside the old server's wait)
        b2 = await make_editor("vscode", "Bob", workspace=b.workspace, env=bob_env)
        server = b.client._server
        assert server is not None
        proxy.cut()
        b.append(ub, "typed offline\n")
        b.flush(ub)
        await b.status()  # (the key has reached the server)
        ending = asyncio.ensure_future(b.client.shutdown_session())
        (held,) = await _eventually(lambda: _written(carries))
        assert held.name.endswith(f".json.taking-{taker(server.pid)}")
        await b2.command("pairls.joinRoom", {"invite": room["invite"]})
        await asyncio.wait_for(ending, 30)
        assert server.returncode == 0
        ub2 = b2.uri("r.txt")
        b2.open(ub2, "start\ntyped offline\n", "plaintext")  # (saved before the reload)
        await settle([(a, ua), (b2, ub2)], "r.txt")
        want = "start\ntyped offline\n"
        assert await hub_text(hub.url, room["invite"], "r.txt") == want == a.text(ua) == b2.text(ub2)
        st = await b2.status()
        assert (st["stats"]["carry_waits"], st["stats"]["carried"], st["heals"]) == (1, 1, 0), st["stats"]
        assert await _files(carries) == []
    finally:
        await proxy.close()


async def test_an_entry_goes_on_without_a_carry_another_running_editor_keeps_holding(
    make_editor: MakeEditor, hub: HubProcess, tmp_path: Path
) -> None:
    """Bob's VS Code is offline in the room and holds his typing on disk; it keeps running.  He
    joins the room from Neovim too (same state folder, a route that works): its server waits for
    the holder as it would for a reloaded editor, the exit's wait and a second, then joins
    without the typing, which stays with VS Code.  VS Code's route comes back and the room gets
    the line once."""
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        a, b, ua, ub, room, bob_env = await _bob_types_offline(make_editor, proxy, tmp_path, "vscode")
        carries = tmp_path / "bob-state" / "pairls" / "carries"
        held, _ = await _held_by(b, carries)
        n = await make_editor("neovim", "Bob2", env={**bob_env, "PAIRLS_USER_ID": "user-of-bob"})
        await n.command("pairls.joinRoom", {"invite": room["invite"]})
        st = (await n.status())["stats"]
        assert (st["carry_waits"], st["carry_waits_given_up"], st["carried"]) == (1, 1, 0), st
        assert [p.name for p in await _written(carries)] == [held.name]
        un = n.uri("r.txt")
        n.open(un, "", "plaintext")
        await settle([(a, ua), (n, un)], "r.txt")
        assert n.text(un) == "start\n"
        proxy.restore()
        await settle([(a, ua), (b, ub), (n, un)], "r.txt")
        want = "start\ntyped offline\n"
        assert await hub_text(hub.url, room["invite"], "r.txt") == want == a.text(ua) == n.text(un)
        assert (await b.status())["heals"] == (await n.status())["heals"] == 0
    finally:
        await proxy.close()


@pytest.mark.parametrize("end", ["kill -9", "exit"])
async def test_leaving_offline_then_a_server_ended_before_it_joins_again_keeps_it_for_the_next_session(
    make_editor: MakeEditor, hub: HubProcess, tmp_path: Path, end: str
) -> None:
    """Bob's connection is cut; he types and leaves the room (``pairls.leaveRoom``): after the
    leave's wait he is told what was kept for his next entry.  His server holds it on disk too,
    not in memory only: killed before he joins again, it leaves the typing to his next editor,
    which brings it to the room once, after what Ada wrote meanwhile.  An exit keeps it in place
    of the held copy: one file, which the next editor takes."""
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        a, b, ua, ub, room, bob_env = await _bob_types_offline(make_editor, proxy, tmp_path, "vscode")
        carries = tmp_path / "bob-state" / "pairls" / "carries"
        await _eventually(lambda: _files(carries))
        assert await b.command("pairls.leaveRoom", {}) == {"unsent": ["r.txt"]}
        server = b.client._server
        assert server is not None
        (held,) = await _files(carries)
        assert held.name.endswith(f".json.taking-{taker(server.pid)}")
        if end == "kill -9":
            server.kill()
            assert await asyncio.wait_for(server.wait(), 30) == -signal.SIGKILL
        else:
            b.client.exit(None)
            assert await asyncio.wait_for(server.wait(), 30) == 1  # (exit without shutdown)
            assert [p.name for p in await _files(carries)] == [held.name.partition(".taking-")[0]]
        await _bob_again_brings_it(make_editor, "neovim", hub, proxy, a, ua, b, room, bob_env)
        assert await _files(carries) == []
    finally:
        await proxy.close()


async def test_what_was_held_while_offline_is_removed_once_the_hub_has_it(
    make_editor: MakeEditor, hub: HubProcess, tmp_path: Path
) -> None:
    """The route is cut and Bob types: a copy goes to his state folder while his server runs.
    The route comes back, the hub acknowledges the line, and the copy goes: nothing is left for
    a later entry to take back."""
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        a, b, ua, ub, room, _ = await _bob_types_offline(make_editor, proxy, tmp_path, "vscode")
        carries = tmp_path / "bob-state" / "pairls" / "carries"
        await _eventually(lambda: _files(carries))
        proxy.restore()
        await settle([(a, ua), (b, ub)], "r.txt")
        assert await hub_text(hub.url, room["invite"], "r.txt") == "start\ntyped offline\n" == a.text(ua)

        async def none() -> bool:
            return not await _files(carries)

        await _eventually(none)
        assert (await b.status())["stats"]["held"] == 1
    finally:
        await proxy.close()


async def test_two_editors_of_one_user_closed_offline_keep_two_carries_and_two_entries_take_one_each(
    make_editor: MakeEditor, hub: HubProcess, tmp_path: Path
) -> None:
    """Bob has the room open in VS Code and in Neovim (one state folder); the route is cut, he
    types a line in each and closes both: two files.  Two editors of his join again at the same
    moment: each claims one (never the same: they would enter as one client), and the room gets
    both lines once each."""
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        env = {"XDG_STATE_HOME": str(tmp_path / "bob-state")}
        a = await make_editor("vscode", "Ada")
        ua = a.uri("r.txt")
        a.open(ua, "start\n", "plaintext")
        room = await _room(a)
        invite = proxy.invite(room["invite"])
        bobs = []
        for kind in ("vscode", "neovim"):
            ed = await make_editor(kind, f"Bob-{kind}", hub_url=proxy.url, env=env)
            await ed.command("pairls.joinRoom", {"invite": invite})
            ed.open(ed.uri("r.txt"), "", "plaintext")
            bobs.append(ed)
        await settle([(a, ua), *((ed, ed.uri("r.txt")) for ed in bobs)], "r.txt")
        proxy.cut()
        for ed in bobs:
            ub = ed.uri("r.txt")
            ed.append(ub, f"offline in {ed.kind}\n")
            ed.flush(ub)
        for ed in bobs:
            server = ed.client._server
            assert server is not None
            await asyncio.wait_for(ed.client.shutdown_session(), 30)
            assert await asyncio.wait_for(server.wait(), 30) == 0
        carries = tmp_path / "bob-state" / "pairls" / "carries"
        assert len(list(carries.iterdir())) == 2
        proxy.restore()

        again = [
            await make_editor(kind, f"Bob-{kind}-again", hub_url=proxy.url, env=env)
            for kind in ("emacs", "vscode")
        ]
        await asyncio.gather(*(ed.command("pairls.joinRoom", {"invite": invite}) for ed in again))
        for ed in again:
            ed.open(ed.uri("r.txt"), "start\n", "plaintext")
        await settle([(a, ua), *((ed, ed.uri("r.txt")) for ed in again)], "r.txt")
        text = await hub_text(hub.url, room["invite"], "r.txt")
        assert text.startswith("start\n") and sorted(text.splitlines()[1:]) == [
            "offline in neovim",
            "offline in vscode",
        ], text
        assert [(await ed.status())["stats"]["carried"] for ed in again] == [1, 1]
        assert not any(carries.iterdir())  # (both taken)
    finally:
        await proxy.close()


async def _hub_has(hub: HubProcess, room: dict[str, Any], text: str) -> bool:
    return await hub_text(hub.url, room["invite"], "r.txt") == text


@pytest.mark.parametrize("kind", ["vscode", "neovim"])
async def test_leaving_while_the_hub_is_unreachable_keeps_the_typing_for_the_next_entry(
    make_editor: MakeEditor, hub: HubProcess, kind: str
) -> None:
    """Bob's connection is cut, he types and leaves: after a few seconds he is out, told once
    that his last edits were not shared yet; when he joins again they are, exactly once."""
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        a, b, ua, ub, room = await _pair(make_editor, kind, "r.txt", "start\n", bob_via=proxy)
        invite = proxy.invite(room["invite"])  # Bob reaches the hub through it

        proxy.cut()
        b.append(ub, "typed offline\n")
        assert await b.command("pairls.leaveRoom", {}) == {"unsent": ["r.txt"]}
        said = [m.message for m in b.client.messages if "before the hub had" in m.message]
        assert said == [
            "pairls: left the room before the hub had your last edits to r.txt; "
            "they stay in your editor and go to the room when you join it again"
        ]
        assert (await b.status())["roomId"] is None
        a.insert(ua, 0, "meanwhile\n")  # the room goes on without him
        proxy.restore()

        await b.command("pairls.joinRoom", {"invite": invite})
        await settle([(a, ua), (b, ub)], "r.txt")
        text = await hub_text(hub.url, room["invite"], "r.txt")
        assert text == "meanwhile\nstart\ntyped offline\n" == a.text(ua) == b.text(ub)
        st = await b.status()
        assert st["stats"]["left_unsent"] == 1 and st["stats"]["carried"] == 1
        assert len([m for m in b.client.messages if "before the hub had" in m.message]) == 1
    finally:
        await proxy.close()


async def test_typing_offline_while_the_invites_change_goes_in_with_the_new_invite(
    make_editor: MakeEditor, hub: HubProcess
) -> None:
    """Bob's connection is cut and he types; meanwhile Ada changes the invites.  His reconnect
    cannot get back in: he is out, told why and that his last edits are kept.  With the new
    invite he joins again, as the same client, and his typing reaches the room exactly once,
    after what Ada wrote meanwhile (without the carry, the room's text would have replaced
    it in his buffer)."""
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        a, b, ua, ub, room = await _pair(make_editor, "neovim", "r.txt", "start\n", bob_via=proxy)
        proxy.cut()
        b.append(ub, "typed offline\n")
        b.flush(ub)
        rotated = await a.command("pairls.rotateInvites", {})
        a.insert(ua, 0, "meanwhile\n")  # the room goes on without him
        await _eventually(lambda: _hub_has(hub, room | rotated, "meanwhile\nstart\n"))
        proxy.restore()

        async def out() -> bool:
            return (await b.status())["roomId"] is None

        await _eventually(out)
        said = [m.message for m in b.client.messages if m.message.startswith("pairls: ")]
        assert any("could not rejoin the room" in m for m in said), said
        assert [m for m in said if "before the hub had" in m] == [
            "pairls: left the room before the hub had your last edits to r.txt; "
            "they stay in your editor and go to the room when you join it again"
        ]
        await b.command("pairls.joinRoom", {"invite": proxy.invite(rotated["invite"])})
        await settle([(a, ua), (b, ub)], "r.txt")
        text = await hub_text(hub.url, rotated["invite"], "r.txt")
        assert text == "meanwhile\nstart\ntyped offline\n" == a.text(ua) == b.text(ub)
        st = await b.status()
        assert st["stats"]["left_unsent"] == 1 and st["stats"]["carried"] == 1 and st["heals"] == 0
    finally:
        await proxy.close()


async def _type_while_joining(
    b: TestEditor, room: dict[str, Any], ub: str, opened: str | None = None
) -> None:
    """Bob's join request and, right behind it (the server reads them at one go), the opening of
    *ub* with the text *opened* (if given) and his typing into it; then the join's answer."""
    join = b.client.workspace_execute_command(
        T.ExecuteCommandParams(command="pairls.joinRoom", arguments=[{"invite": room["invite"]}])
    )
    if opened is not None:
        b.open(ub, opened, "plaintext")
    b.insert(ub, 0, "typed while joining\n")
    b.flush(ub)
    await asyncio.wrap_future(join)


@pytest.mark.parametrize("kind", KINDS)
async def test_typing_while_joining_again_is_kept_on_top_of_the_rooms_text(
    make_editor: MakeEditor, hub: HubProcess, kind: str
) -> None:
    """Bob left, the room moved on; he joins again and types into the buffer he kept open
    before the join has answered: the room's text wins, his typing stays on top of it."""
    a, b, ua, ub, room = await _pair(make_editor, kind, "r.txt", "start\n")
    assert await b.command("pairls.leaveRoom", {}) == {}
    a.append(ua, "while Bob was out\n")
    await settle([(a, ua)], "r.txt")

    await _type_while_joining(b, room, ub)
    await settle([(a, ua), (b, ub)], "r.txt")
    text = await hub_text(hub.url, room["invite"], "r.txt")
    assert text == "typed while joining\nstart\nwhile Bob was out\n" == b.text(ub) == a.text(ua)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_file_whose_name_is_percent_encoded_in_its_uri_takes_keystrokes_once_shared(
    make_editor: MakeEditor, hub: HubProcess, kind: str
) -> None:
    """A space or a letter outside ASCII in a file's name is percent-encoded in its URI, and
    pygls keys its documents by the URI decoded: a buffer open when its room was created (or
    joined) was shared under that key, so the editor's didChange, which names the URI as the
    editor writes it, found no buffer in the room and the typing went nowhere."""
    path = "my notes é.txt"
    a = await make_editor("vscode", "Ada")
    b = await make_editor(kind, "Bob")
    ua, ub = a.uri(path), b.uri(path)
    assert "%20" in ua and "%C3%A9" in ua
    a.open(ua, "start\n", "plaintext")
    b.open(ub, "", "plaintext")  # open before the join: shared by the join
    room = await _room(a)
    await b.command("pairls.joinRoom", {"invite": room["invite"]})
    await settle([(a, ua), (b, ub)], path)
    a.append(ua, "from Ada\n")
    b.insert(ub, 0, "from Bob\n")
    await settle([(a, ua), (b, ub)], path)
    text = await hub_text(hub.url, room["invite"], path)
    assert text == "from Bob\nstart\nfrom Ada\n" == a.text(ua) == b.text(ub)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_buffer_opened_while_joining_keeps_what_is_typed_into_it_before_the_answer(
    make_editor: MakeEditor, hub: HubProcess, kind: str
) -> None:
    """Bob left and closed his buffer, the room moved on; he joins again, and before the join
    has answered he opens the file (his copy on disk is old) and types into it: the room's
    text wins over the copy, his typing stays on top of it (the convergence test, seed 4489,
    under load: the buffer was shared from its text with the typing, and that was replaced).
    (A name with a space: its URI is percent-encoded, the workspace's key is not.)"""
    a, b, ua, ub, room = await _pair(make_editor, kind, "my notes.txt", "start\n")
    assert await b.command("pairls.leaveRoom", {}) == {}
    b.close(ub)
    a.append(ua, "while Bob was out\n")
    await settle([(a, ua)], "my notes.txt")

    await _type_while_joining(b, room, ub, opened="start\n")
    await settle([(a, ua), (b, ub)], "my notes.txt")
    text = await hub_text(hub.url, room["invite"], "my notes.txt")
    assert text == "typed while joining\nstart\nwhile Bob was out\n" == b.text(ub) == a.text(ua)


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_a_buffer_reopened_with_other_line_endings_takes_the_rooms_text(
    make_editor: MakeEditor, hub: HubProcess, kind: str
) -> None:
    """Bob closes the room's file and opens it again from a copy whose line endings are LF
    where the room's are CRLF: the room's text wins, unchanged, and his buffer shows it (the
    room's "é\\r\\n" became "é\\n\\r" for everyone: the convergence test, seed 6383)."""
    text = " 中\n\nba\n\n\né\r\n \na\n\n中"
    a = await make_editor("vscode", "Ada")
    b = await make_editor(kind, "Bob")
    ua, ub = a.uri("r.txt"), b.uri("r.txt")
    a.open(ua, text, "plaintext")
    room = await _room(a)
    await b.command("pairls.joinRoom", {"invite": room["invite"]})
    b.open(ub, text, "plaintext")
    await settle([(a, ua), (b, ub)], "r.txt")
    b.close(ub)
    await asyncio.sleep(0.2)
    b.open(ub, text.replace("\r\n", "\n"), "plaintext")
    await settle([(a, ua), (b, ub)], "r.txt")
    assert await hub_text(hub.url, room["invite"], "r.txt") == text == b.text(ub) == a.text(ua)


async def test_a_join_while_the_hubs_database_is_down_says_so_and_works_once_it_is_back(
    make_editor: MakeEditor, database_url: str
) -> None:
    """The hub runs but cannot reach PostgreSQL: Bob's join is refused for now again and again,
    and after the join's 10 s he is told that the hub is running and cannot serve it (it said
    "cannot reach the hub ...; is pairls-hub running?", which sends the user to the wrong
    place).  Once the database is back, the same join works."""
    db, url = await database_proxy(database_url)
    own = HubProcess(database_url=url)
    try:
        await asyncio.to_thread(own.wait_ready)
        a = await make_editor("vscode", "Ada", hub_url=own.url)
        b = await make_editor("vscode", "Bob", hub_url=own.url)
        ua, ub = a.uri("r.txt"), b.uri("r.txt")
        a.open(ua, "start\n", "plaintext")
        room = await _room(a)
        db.cut()  # the hub's connections to PostgreSQL drop, and no new one gets through
        with pytest.raises(Exception, match="is running but could not serve the request") as failed:
            await b.command("pairls.joinRoom", {"invite": room["invite"]})
        assert "cannot reach its database" in str(failed.value)
        assert [m.message for m in b.client.messages if "could not serve" in m.message] == [
            f"pairls: the hub at {own.url} is running but could not serve the request for 10 s "
            "(it is busy, shutting down, or cannot reach its database); try again"
        ]
        assert (await b.status())["roomId"] is None

        db.restore()
        await b.command("pairls.joinRoom", {"invite": room["invite"]})
        b.open(ub, "", "plaintext")
        await settle([(a, ua), (b, ub)], "r.txt")
        assert b.text(ub) == "start\n"
    finally:
        await asyncio.to_thread(own.__exit__, None, None, None)
        await db.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_join_over_a_slow_route_keeps_what_is_typed_opened_and_closed_while_it_answers(
    make_editor: MakeEditor, hub: HubProcess, kind: str
) -> None:
    """Bob left with one of the room's two files open, the room moved on, and his route to the
    hub is slow (every byte held 0.3 s each way).  While his join answers he types twice into
    the open buffer, opens the other file (his copy is old) and types into it, opens a file the
    room does not have and types into it, and opens a scratch file, types and closes it unsaved.
    The room's texts win, with all of his typing on top; the new file is shared with his typing;
    the scratch file, which he threw away, is not shared."""
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        a = await make_editor("vscode", "Ada")
        b = await make_editor(kind, "Bob", hub_url=proxy.url)
        ua, ub, una, unb = a.uri("r.txt"), b.uri("r.txt"), a.uri("notes.txt"), b.uri("notes.txt")
        uo, us = b.uri("other.txt"), b.uri("scratch.txt")
        a.open(ua, "start\n", "plaintext")
        a.open(una, "notes\n", "plaintext")
        room = await _room(a)
        invite = proxy.invite(room["invite"])  # Bob reaches the hub through it
        await b.command("pairls.joinRoom", {"invite": invite})
        b.open(ub, "", "plaintext")
        b.open(unb, "", "plaintext")
        await settle([(a, ua), (b, ub)], "r.txt")
        await settle([(a, una), (b, unb)], "notes.txt")
        assert await b.command("pairls.leaveRoom", {}) == {}
        b.close(unb)
        a.append(ua, "while Bob was out\n")
        a.append(una, "by Ada\n")
        await settle([(a, ua)], "r.txt")
        await settle([(a, una)], "notes.txt")

        proxy.lag(0.3)
        join = asyncio.wrap_future(
            b.client.workspace_execute_command(
                T.ExecuteCommandParams(command="pairls.joinRoom", arguments=[{"invite": invite}])
            )
        )
        b.insert(ub, 0, "one\n")
        b.flush(ub)
        await asyncio.sleep(0.2)
        b.open(unb, "notes\n", "plaintext")  # from disk: older than the room's
        b.insert(unb, 0, "by Bob\n")
        b.flush(unb)
        b.open(uo, "other\n", "plaintext")
        b.insert(uo, 0, "typed\n")
        b.flush(uo)
        b.open(us, "", "plaintext")
        b.insert(us, 0, "thrown away\n")
        b.flush(us)
        await asyncio.sleep(0.2)
        b.close(us)
        b.insert(ub, 0, "two\n")
        b.flush(ub)
        await b.status()  # every notification above has reached the server
        assert not join.done()  # all of it while the join was under way
        await join
        proxy.lag(0)

        await settle([(a, ua), (b, ub)], "r.txt")
        await settle([(a, una), (b, unb)], "notes.txt")
        await settle([(b, uo)], "other.txt")
        texts = {p: await hub_text(hub.url, room["invite"], p) for p in ("r.txt", "notes.txt", "other.txt")}
        assert texts == {
            "r.txt": "two\none\nstart\nwhile Bob was out\n",
            "notes.txt": "by Bob\nnotes\nby Ada\n",
            "other.txt": "typed\nother\n",
        }
        assert a.text(ua) == b.text(ub) == texts["r.txt"]
        assert a.text(una) == b.text(unb) == texts["notes.txt"]
        assert b.text(uo) == texts["other.txt"]
        assert sorted(await room_paths(hub.url, room["invite"])) == ["notes.txt", "other.txt", "r.txt"]
    finally:
        await proxy.close()


async def test_an_edit_refused_while_the_editors_change_is_late_goes_once_more_then_waits(
    make_editor: MakeEditor, hub: HubProcess
) -> None:
    """VS Code refuses an edit at a version it has left, and (held back here) reports the
    change that moved it only much later: the edit goes once more, then waits for that change,
    never again and again; it is recomputed against it then."""
    a = await make_editor("vscode", "Ada")
    b = await make_editor("vscode", "Bob")
    ua, ub = a.uri("r.txt"), b.uri("r.txt")
    a.open(ua, "start\n", "plaintext")
    room = await _room(a)
    await b.command("pairls.joinRoom", {"invite": room["invite"]})
    b.open(ub, "", "plaintext")
    await settle([(a, ua), (b, ub)], "r.txt")

    buf = b.buffers[ub]
    buf.user_edit(0, 0, "late ")
    late = buf.outbox.popleft()  # its didChange, held back
    assert isinstance(late, Notification)
    a.append(ua, "peer\n")

    async def held() -> dict[str, Any] | None:
        st = (await b.status())["stats"]
        return st if st["edits_held"] else None

    st = await _eventually(held, tries=400)
    assert st["edit_retries"] == 1 and st["edits_held"] == 1 and st["edits_refused"] == 2
    b.notify_change(ub, late)
    await settle([(a, ua), (b, ub)], "r.txt")
    assert b.text(ub) == "late start\npeer\n" == await hub_text(hub.url, room["invite"], "r.txt")
    st = (await b.status())["stats"]
    assert st["edit_retries"] == 1 and st["edits_held"] == 1 and st["resyncs"] == 0


# -- a hub with a create-room token and quotas ------------------------------------------------------

TOKEN = "lsp-token-" + "q" * 32


@pytest.fixture
async def guarded_hub(pg_server: Any) -> AsyncIterator[HubProcess]:
    """A hub that needs a create-room token (from its environment) and allows 1 document per room."""
    name = await pg_server.create_database()
    with HubProcess(
        "--max-documents-per-room",
        "1",
        database_url=pg_server.dsn_for(name),
        env={"PAIRLS_CREATE_TOKEN": TOKEN},
    ) as h:
        yield h
    await pg_server.drop_database(name)


async def test_create_token_from_each_place_and_a_full_room_said_in_plain_words(
    make_editor: MakeEditor, guarded_hub: HubProcess
) -> None:
    url = guarded_hub.url
    a = await make_editor("vscode", "Ada", hub_url=url, env={"PAIRLS_CREATE_TOKEN": ""})
    with pytest.raises(Exception, match="create-room token"):
        await a.command("pairls.createRoom", {})
    said = [m.message for m in a.client.messages]
    assert any("createToken" in m and "PAIRLS_CREATE_TOKEN" in m for m in said), said
    assert not any(TOKEN in m for m in said)
    # the token as the command's argument, as an initializationOption, from the environment
    room = await a.command("pairls.createRoom", {"name": "r", "token": TOKEN})
    b = await make_editor("neovim", "Bob", hub_url=url, init_options={"createToken": TOKEN})
    assert (await b.command("pairls.createRoom", {}))["roomId"]
    c = await make_editor("emacs", "Cy", hub_url=url, env={"PAIRLS_CREATE_TOKEN": TOKEN})
    assert (await c.command("pairls.createRoom", {}))["roomId"]

    # the room holds as many documents as the hub allows: the second file stays unshared, said once
    a.open(a.uri("one.py"), "x = 1\n")
    await _eventually(lambda: _status_with(a, "one.py"))
    a.open(a.uri("two.py"), "y = 2\n")
    a.open(a.uri("three.py"), "z = 3\n")

    async def told() -> list[str]:
        return [m.message for m in a.client.messages if "as many documents as the hub allows" in m.message]

    (msg,) = await _eventually(told)
    assert ("two.py" in msg or "three.py" in msg) and "quota_exceeded" not in msg
    with pytest.raises(Exception, match="as many documents as the hub allows"):
        await a.command("pairls.shareDocument", {"uri": a.uri("two.py")})
    docs = (await a.status())["documents"]
    assert {p: d["state"] for p, d in docs.items()} == {
        "one.py": "open",
        "two.py": "failed",
        "three.py": "failed",
    }
    # what is shared goes on working
    j = await make_editor("vscode", "Joy", hub_url=url)
    await j.command("pairls.joinRoom", {"invite": room["invite"]})
    j.open(j.uri("one.py"), "")
    await settle([(a, a.uri("one.py")), (j, j.uri("one.py"))], "one.py")
    assert len(await told()) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_a_line_typed_at_the_end_of_a_text_without_a_final_newline_stays_put(
    make_editor: MakeEditor, hub: HubProcess, kind: str
) -> None:
    """B presses Enter at the very end and types on. A's VS Code answers the applyEdit of
    the newline before it reports it: A's server waits for that report and sends the hub
    nothing. (It took the text without the newline for A deleting it, and the report for
    A typing it again, so B's next characters could land before the newline.)"""
    a = await make_editor("vscode", "Ada")
    b = await make_editor(kind, "Bob")
    ua, ub = a.uri("end.py"), b.uri("end.py")
    a.open(ua, "x = 1")
    room = await _room(a)
    await b.command("pairls.joinRoom", {"invite": room["invite"]})
    b.open(ub, "")
    start = (await settle([(a, ua), (b, ub)], "end.py"))["rev"]
    b.append(ub, "\n")
    b.flush(ub)
    doc = await settle([(a, ua), (b, ub)], "end.py")
    assert doc["rev"] == start + 1, "a revision that B did not send"
    assert doc["views"][ua]["stats"]["confirmed"] == 1 and doc["views"][ua]["stats"]["missed"] == 0
    b.append(ub, "import os")
    await settle([(a, ua), (b, ub)], "end.py")
    for ch in "\nprint(os.getcw":  # keystrokes, each sent as B's editor sends it
        b.append(ub, ch)
        b.flush(ub)
    await settle([(a, ua), (b, ub)], "end.py")
    text = "x = 1\nimport os\nprint(os.getcw"
    assert a.text(ua) == b.text(ub) == text == await hub_text(hub.url, room["invite"], "end.py")
