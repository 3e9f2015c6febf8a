"""History through real language servers: pairls.undoMine, redoMine, history, blame,
openRevision, and the blame hover.

Each editor is a :class:`~tests.support.lsp_editor.TestEditor` driving ``python -m lsp_bridge``
over stdio against a real ``pairls-hub`` on a real PostgreSQL.  Every answer is checked
against an independent replay of the hub's op log read with asyncpg
(tests/support/history_ref.py): the text at each revision, which change each op belongs
to, the undos and redos as toggles of changes (each checked against the op the hub
logged), who last changed each line.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from lsprotocol import types as T

from collab_core import ops
from lsp_bridge.features.history import parse_revision_uri
from tests.support.history_ref import RefHistory
from tests.support.hubproc import HubProcess
from tests.support.lsp_editor import TestEditor, settle
from tests.support.proxy import TcpProxy

pytestmark = pytest.mark.timeout(240)

MakeEditor = Callable[..., Awaitable[TestEditor]]


async def enter(
    make_editor: MakeEditor, text: str, **ada_options: Any
) -> tuple[TestEditor, TestEditor, str, str]:
    """Ada shares h.py holding *text* in a new room; Bob joins and opens it."""
    ada = await make_editor("vscode", "Ada", **ada_options)
    ua = ada.uri("h.py")
    ada.open(ua, text)
    created = await ada.command("pairls.createRoom", {"name": "history"})
    bob = await make_editor("neovim", "Bob")
    await bob.command("pairls.joinRoom", {"invite": created["invite"]})
    ub = bob.uri("h.py")
    bob.open(ub, text)
    await settle([(ada, ua), (bob, ub)], "h.py")
    return ada, bob, ua, ub


class Log:
    """A document's op log as PostgreSQL holds it."""

    def __init__(self, doc: asyncpg.Record, first: str, rows: list[asyncpg.Record], names: dict[str, str]):
        #: revision 0: the text it was created with, by whom, when
        self.first = first
        self.creator = doc["created_by"]
        self.created = doc["created_at"]
        self.rows = rows
        #: each user's newest name in the room
        self.names = names

    def replay(self, upto: int | None = None) -> RefHistory:
        """The independent history of the log, up to revision *upto*."""
        ref = RefHistory.start(self.first, self.creator, self.created)
        for r in self.rows:
            if upto is not None and r["rev"] > upto:
                break
            op = ops.check(json.loads(r["op"]))
            ref.apply(r["rev"], op, r["user_id"], r["created_at"], r["change_rev"], r["toggles"])
        return ref


async def oplog(module_database_url: str, path: str) -> Log:
    """The log of the room document *path* (the newest room's)."""
    db = await asyncpg.connect(module_database_url)
    try:
        doc = await db.fetchrow(
            "SELECT id, room_id, created_by, created_at FROM documents"
            " WHERE path = $1 ORDER BY id DESC LIMIT 1",
            path,
        )
        first = await db.fetchval("SELECT text FROM snapshots WHERE document_id = $1 AND rev = 0", doc["id"])
        rows = await db.fetch(
            "SELECT rev, op, user_id, change_rev, toggles, created_at FROM ops"
            " WHERE document_id = $1 ORDER BY rev",
            doc["id"],
        )
        names = {
            r["user_id"]: r["name"]
            for r in await db.fetch(
                "SELECT user_id, name FROM members WHERE room_id = $1 ORDER BY last_seen", doc["room_id"]
            )
        }
    finally:
        await db.close()
    return Log(doc, first, list(rows), names)


def iso(when: dt.datetime) -> dt.datetime:
    return when.astimezone(dt.UTC)


def same_time(wire: str, db: dt.datetime) -> bool:
    got = dt.datetime.fromisoformat(wire.replace("Z", "+00:00"))
    return abs((got - iso(db)).total_seconds()) < 0.001


def read(path: Path) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


async def hover(ed: TestEditor, uri: str, line: int) -> str | None:
    ed.flush(uri)
    res = await ed.client.text_document_hover_async(
        T.HoverParams(
            text_document=T.TextDocumentIdentifier(uri=uri), position=T.Position(line=line, character=0)
        )
    )
    if res is None:
        return None
    assert isinstance(res.contents, T.MarkupContent) and res.contents.kind == T.MarkupKind.Markdown
    return res.contents.value


async def test_undo_takes_back_only_my_changes_in_both_editors_and_on_the_hub(
    make_editor: MakeEditor, module_database_url: str
) -> None:
    ada, bob, ua, ub = await enter(make_editor, "def f():\n    return 1\n")
    # (the hub's history of h.py is loaded from here on, so every op's change is in the log)
    assert (await ada.command("pairls.history", {"uri": ua}))["changes"] == []

    # Ada's first change: a line typed inside the function
    ada.type(ua, len("def f():\n"), "    x = 41\n")
    await settle([(ada, ua), (bob, ub)], "h.py")
    await asyncio.sleep(1.2)  # a pause: what Ada types next is another change
    # her second: a comment at the top
    ada.type(ua, 0, "# ada\n")
    await settle([(ada, ua), (bob, ub)], "h.py")
    assert ada.text(ua) == "# ada\ndef f():\n    x = 41\n    return 1\n"
    # Bob types around and inside Ada's text: in her line, on a line after it, at the very top
    inside = bob.text(ub).index("41")
    bob.type(ub, inside, "BOB+")
    after = bob.text(ub).index("    return")
    bob.type(ub, after, "    bob()\n")
    bob.type(ub, 0, "#!bob\n")
    await settle([(ada, ua), (bob, ub)], "h.py")
    both = "#!bob\n# ada\ndef f():\n    x = BOB+41\n    bob()\n    return 1\n"
    assert ada.text(ua) == bob.text(ub) == both

    # Ada's last change goes: her comment, nothing of Bob's
    first = await ada.command("pairls.undoMine", {"uri": ua})
    await settle([(ada, ua), (bob, ub)], "h.py")
    assert ada.text(ua) == bob.text(ub) == "#!bob\ndef f():\n    x = BOB+41\n    bob()\n    return 1\n"
    # then the one before: her line, but what Bob typed inside it stays
    second = await ada.command("pairls.undoMine", {"uri": ua})
    await settle([(ada, ua), (bob, ub)], "h.py")
    only_bob = "#!bob\ndef f():\nBOB+    bob()\n    return 1\n"
    assert ada.text(ua) == bob.text(ub) == only_bob
    assert second["rev"] == first["rev"] + 1
    # Bob has nothing of his own undone, and Ada has nothing more of hers
    with pytest.raises(Exception, match="Nothing of yours to redo in this document"):
        await bob.command("pairls.redoMine", {"uri": ub})
    with pytest.raises(Exception, match="Nothing of yours to undo in this document"):
        await ada.command("pairls.undoMine", {"uri": ua})
    # redo brings her line back around Bob's text
    redone = await ada.command("pairls.redoMine", {"uri": ua})
    await settle([(ada, ua), (bob, ub)], "h.py")
    assert ada.text(ua) == bob.text(ub) == "#!bob\ndef f():\n    x = BOB+41\n    bob()\n    return 1\n"

    # the hub's log: every op is what the independent history says, the undos and redo
    # toggles of Ada's changes whose ops are exactly their effect; its text is the editors'
    log = await oplog(module_database_url, "h.py")
    rows, names = log.rows, log.names
    ref = log.replay()
    assert ref.text == ada.text(ua)
    toggles = {r["rev"]: r["toggles"] for r in rows if r["toggles"] is not None}
    assert set(toggles) == {first["rev"], second["rev"], redone["rev"]}
    assert all(rows[rev - 1]["user_id"] == "user-of-ada" for rev in toggles)

    # history: every change, newest first, as the log says
    hist = await ada.command("pairls.history", {"uri": ua, "limit": 500})
    assert hist["more"] is False
    want = reference_history(log)
    got = [
        {k: c[k] for k in ("rev", "firstRev", "name", "inserted", "deleted", "line")} for c in hist["changes"]
    ]
    assert got == [
        {k: c[k] for k in ("rev", "firstRev", "name", "inserted", "deleted", "line")} for c in want
    ]
    for c, w in zip(hist["changes"], want, strict=True):
        assert same_time(c["time"], w["time"]), (c, w)
        assert c.get("kind", "edit") == w["kind"] and c.get("toggles") == w["toggles"]
    authors = {c["name"]: c["author"] for c in hist["changes"]}
    assert len(set(authors.values())) == 2 and all(authors.values())  # one per person, opaque
    assert "user-of-ada" not in json.dumps(hist)  # the user id never leaves the hub
    # paging: two at a time, the same list
    paged: list[dict[str, Any]] = []
    before = None
    while True:
        page = await bob.command(
            "pairls.history", {"uri": ub, "limit": 2, **({"before": before} if before else {})}
        )
        paged += page["changes"]
        if not page["more"]:
            break
        before = page["changes"][-1]["rev"]
    assert paged == hist["changes"]

    # blame: one entry per line of the editor's text, as the log says
    blame = (await ada.command("pairls.blame", {"uri": ua}))["lines"]
    assert len(blame) == ada.text(ua).count("\n") + 1
    revs = ref.blame_revs()
    assert [b["rev"] for b in blame] == revs
    for b in blame:
        user, when = ref.who[b["rev"]]
        assert b["name"] == names.get(user, "")
        assert b["author"] == authors.get(b["name"], b["author"])
        if b["rev"] > 0:
            assert same_time(b["time"], when)
    # Bob sees the same
    assert (await bob.command("pairls.blame", {"uri": ub}))["lines"] == blame

    # the hover says it too: Bob's line
    bob_line = ada.text(ua).split("\n").index("    bob()")
    said = await hover(ada, ua, bob_line)
    assert said is not None and said.startswith("**Bob**, just now · rev ")
    assert said == f"**Bob**, just now · rev {blame[bob_line]['rev']}"


async def shows(ed: TestEditor, uri: str, text: str, timeout: float = 60) -> None:
    """Wait until *ed*'s buffer *uri* holds *text* (the timeout only bounds a hang)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while ed.text(uri) != text:
        assert loop.time() < deadline, f"{ed.name} shows {ed.text(uri)!r}, not {text!r}"
        await asyncio.sleep(0.05)


def hub_address(hub: HubProcess) -> tuple[str, int]:
    target = urlsplit(hub.url)
    return target.hostname or "127.0.0.1", target.port or 0


async def enter_through(
    proxy: TcpProxy, make_editor: MakeEditor, hub: HubProcess
) -> tuple[TestEditor, TestEditor, str, str]:
    """Ada, whose connection goes through *proxy*, shares h.py ("one\\n"); Bob (straight to
    the hub) joins and opens it; the hub's history of it is loaded."""
    ada = await make_editor("vscode", "Ada", hub_url=proxy.url)
    ua = ada.uri("h.py")
    ada.open(ua, "one\n")
    created = await ada.command("pairls.createRoom", {"name": "through"})
    invite = urlsplit(created["invite"])._replace(netloc=urlsplit(hub.url).netloc).geturl()
    bob = await make_editor("neovim", "Bob")
    await bob.command("pairls.joinRoom", {"invite": invite})
    ub = bob.uri("h.py")
    bob.open(ub, "one\n")
    await settle([(ada, ua), (bob, ub)], "h.py")
    # (the hub's history of h.py is loaded from here on, so every op's change is in the log)
    await ada.command("pairls.history", {"uri": ua})
    return ada, bob, ua, ub


async def test_an_undo_whose_answer_is_lost_with_the_connection_is_done_once(
    make_editor: MakeEditor, module_database_url: str, hub: HubProcess
) -> None:
    """Ada presses undo; the hub commits it, but its op and answer never reach her language
    server (the connection fails right after): after the reconnect the same press goes again
    with its key, the hub answers with the undo it did, and one change is undone, once."""
    proxy = await TcpProxy(*hub_address(hub)).start()
    try:
        ada, bob, ua, ub = await enter_through(proxy, make_editor, hub)
        for word in ("two ", "three "):
            await asyncio.sleep(1.2)  # a pause: each word a change of its own
            ada.type(ua, 0, word)
            await settle([(ada, ua), (bob, ub)], "h.py")
        assert ada.text(ua) == "three two one\n"

        proxy.drop_replies()
        press = asyncio.create_task(ada.command("pairls.undoMine", {"uri": ua}))
        # the hub commits it (Bob gets it); nothing of it reaches Ada
        await shows(bob, ub, "two one\n")
        assert not press.done() and ada.text(ua) == "three two one\n"
        proxy.cut()
        proxy.restore()
        result = await asyncio.wait_for(press, 60)
        await settle([(ada, ua), (bob, ub)], "h.py")
        assert ada.text(ua) == bob.text(ub) == "two one\n"
        log = await oplog(module_database_url, "h.py")
        assert [r["rev"] for r in log.rows if r["toggles"] is not None] == [result["rev"]]
        assert log.replay().text == "two one\n"
        status = await ada.status()
        assert status["stats"]["presses_again"] == 1 and proxy.live_cuts == 1

        # the next press takes back the change before, once
        await ada.command("pairls.undoMine", {"uri": ua})
        await settle([(ada, ua), (bob, ub)], "h.py")
        assert ada.text(ua) == bob.text(ub) == "one\n"
    finally:
        await proxy.close()


async def test_lines_typed_here_and_not_committed_yet_carry_the_users_own_author(
    make_editor: MakeEditor, hub: HubProcess
) -> None:
    proxy = await TcpProxy(*hub_address(hub)).start()
    try:
        ada, bob, ua, ub = await enter_through(proxy, make_editor, hub)
        # the hub's blame: "one" is Ada's (she created the document), under her author
        before = (await bob.command("pairls.blame", {"uri": ub}))["lines"]
        hers = before[0]
        assert hers["name"] == "Ada" and hers["author"]
        assert (await ada.command("pairls.blame", {"uri": ua}))["lines"] == before
        # what Ada types now reaches the hub, but no acknowledgement reaches her: not committed
        # as far as her language server knows (the first keystroke in flight, the rest held)
        proxy.drop_replies()
        ada.type(ua, 3, " more")
        ada.flush(ua)
        await shows(bob, ub, "one \n")
        lines = (await ada.command("pairls.blame", {"uri": ua}))["lines"]  # (its answer is lost)
        assert lines[0] == {"author": hers["author"], "name": "Ada", "time": None, "rev": None}
        assert lines[1] == before[1]
        proxy.cut()
        proxy.restore()
        await settle([(ada, ua), (bob, ub)], "h.py")
        blame = (await ada.command("pairls.blame", {"uri": ua}))["lines"]
        assert blame == (await bob.command("pairls.blame", {"uri": ub}))["lines"]
        assert blame[0]["author"] == hers["author"] and blame[0]["rev"] > 0
    finally:
        await proxy.close()


def reference_history(log: Log) -> list[dict[str, Any]]:
    """The history entries the log implies, newest first (by each change's last op)."""
    ref = RefHistory.start(log.first)
    names = log.names
    entries: dict[int, dict[str, Any]] = {}
    for r in log.rows:
        op = ops.check(json.loads(r["op"]))
        text = ref.text
        ref.apply(r["rev"], op, r["user_id"], r["created_at"], r["change_rev"], r["toggles"])
        inserted = sum(len(c) for c in op if isinstance(c, str))
        deleted = sum(-c for c in op if isinstance(c, int) and c < 0)
        lo = op[0] if op and isinstance(op[0], int) and op[0] > 0 else 0
        if r["toggles"] is not None:
            kind = "undo" if not ref.active[r["toggles"]] else "redo"
            entries[r["rev"]] = {
                "rev": r["rev"],
                "firstRev": r["rev"],
                "name": names.get(r["user_id"], ""),
                "time": r["created_at"],
                "inserted": inserted,
                "deleted": deleted,
                "line": text.count("\n", 0, lo),
                "kind": kind,
                "toggles": r["toggles"],
            }
            continue
        change = r["change_rev"] if r["change_rev"] is not None else r["rev"]
        entry = entries.get(change)
        if entry is None:
            entry = entries[change] = {
                "firstRev": change,
                "line": text.count("\n", 0, lo),
                "kind": "edit",
                "toggles": None,
            }
        entry.update(rev=r["rev"], time=r["created_at"], name=names.get(r["user_id"], ""))
    # net of the change's own ops: what it inserted that it did not delete itself, and what
    # it deleted that it had not inserted
    for e in entries.values():
        if e["kind"] == "edit":
            c = e["firstRev"]
            e["inserted"] = sum(1 for ch in ref.chars if ch.change == c and c not in ch.deleted_by)
            e["deleted"] = sum(1 for ch in ref.chars if c in ch.deleted_by and ch.change != c)
    return sorted(entries.values(), key=lambda e: -e["rev"])


async def test_an_earlier_revision_opens_read_only_outside_the_workspace(
    make_editor: MakeEditor, module_database_url: str, tmp_path: Path
) -> None:
    ada, bob, ua, ub = await enter(make_editor, "one\n")
    for i in range(3):
        bob.append(ub, f"line {i}\n")
        await settle([(ada, ua), (bob, ub)], "h.py")
    log = await oplog(module_database_url, "h.py")
    rev = log.rows[1]["rev"]
    result = await ada.command("pairls.openRevision", {"uri": ua, "rev": rev})
    shown = ada.client.shown_documents[-1]
    assert shown.uri == result["uri"]
    local = Path(result["uri"].removeprefix("file://"))
    cache = (tmp_path / "home-Ada" / "cache" / "pairls" / "revisions").resolve()
    room = (await ada.status())["roomId"]
    assert local == cache / room / str(rev) / "h.py"
    assert read(local) == log.replay(rev).text == "one\nline 0\nline 1\n"
    assert stat.S_IMODE(os.stat(local).st_mode) == 0o444
    assert not local.is_relative_to(ada.workspace)  # type: ignore[arg-type]
    # opened in the editor, it is not shared, and has no blame hover
    assert await hover(ada, local.as_uri(), 0) is None
    assert "h.py" in (await ada.status())["documents"] and len((await ada.status())["documents"]) == 1
    # revision 0 is the text the document was created with; a revision to come is refused
    zero = await bob.command("pairls.openRevision", {"uri": ub, "rev": 0})
    assert read(Path(zero["uri"].removeprefix("file://"))) == "one\n"
    with pytest.raises(Exception, match="has no revision 999 yet"):
        await ada.command("pairls.openRevision", {"uri": ua, "rev": 999})
    with pytest.raises(Exception, match="not shared in the room"):
        await ada.command("pairls.openRevision", {"uri": local.as_uri(), "rev": 0})


async def test_a_client_that_shows_revisions_itself_gets_a_virtual_document(
    make_editor: MakeEditor, module_database_url: str
) -> None:
    ada, bob, ua, ub = await enter(make_editor, "v1\n", virtualRevisions=True, cursorNotifications=True)
    bob.append(ub, "v2\n")
    await settle([(ada, ua), (bob, ub)], "h.py")
    result = await ada.command("pairls.openRevision", {"uri": ua, "rev": 0})
    room = (await ada.status())["roomId"]
    assert parse_revision_uri(result["uri"]) == (room, "h.py", 0)
    assert not ada.client.shown_documents
    assert (await ada.command("pairls.revisionText", {"uri": result["uri"]}))["text"] == "v1\n"
    # as an editor may spell it back (percent-encoded)
    encoded = result["uri"].replace("?", "%3F", 0).replace("=", "%3D").replace("&", "%26")
    assert (await ada.command("pairls.revisionText", {"uri": encoded}))["text"] == "v1\n"
    with pytest.raises(Exception, match="not a pairls revision"):
        await ada.command("pairls.revisionText", {"uri": "pairls-rev:/../etc/passwd?room=x&rev=0"})


async def test_hover_shows_the_lines_author_only_in_shared_documents(
    make_editor: MakeEditor, tmp_path: Path
) -> None:
    ada, bob, ua, ub = await enter(make_editor, "shared = 1\n")
    bob.append(ub, "bob = 2\n")
    await settle([(ada, ua), (bob, ub)], "h.py")
    said = await hover(ada, ua, 1)
    assert said is not None and said.startswith("**Bob**, just now · rev ")
    assert (await hover(ada, ua, 0) or "").startswith("**Ada**, ")
    # typed here, not acknowledged yet: the user's own, "not yet committed" (best effort:
    # the hub may be quick enough to have it by then)
    ada.append(ua, "mine = 3\n")
    mine = await hover(ada, ua, 2)
    assert mine is not None and (
        mine == "**Ada** (you), not yet committed" or mine.startswith("**Ada**, just now")
    )
    # a file outside the room: no hover of ours (other servers' hovers show alone)
    other = tmp_path / "elsewhere.txt"
    other.write_text("x\n")
    ada.open(other.as_uri(), "x\n")
    assert await hover(ada, other.as_uri(), 0) is None
