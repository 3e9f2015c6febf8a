"""The web client in a real Chromium: an invite link opens the room in a browser.

Debian's chromium driven by playwright-core (``tests/e2e/web/driver.mjs``, through
``tests/support/browser.py``), a real hub process on a real PostgreSQL, and ``pairls-lsp``
test editors (``tests/support/lsp_editor.py``) in the same rooms:

* ``test_two_pages_and_an_editor_type_at_once``: two pages and a language server's editor type
  into one CRLF document at once, emoji included, Enter in a page too; all three end with the
  hub's text, every typed piece once, every line ending still CRLF, no heal, no policy
  violation, no page error.
* ``test_a_viewer_page_cannot_change_the_text``: a page opened with the viewer invite is
  read-only: what it types never reaches its text or the hub, while the room's changes reach it.
* ``test_a_page_cut_off_keeps_its_typing_and_sends_it_on_reconnect``: a TCP proxy between page
  and hub cuts the page's WebSocket and refuses new connections; the page says it is offline,
  keeps what is typed meanwhile, and sends it once the way is open again.
* ``test_a_page_on_a_slow_route_types_with_others_in_the_same_line``: the same proxy holds every
  byte 0.25 s each way; the page types at the end of a line while an editor types at its start
  and another page on the next line: all end with the hub's text, every piece in its place.
* ``test_the_secret_never_reaches_the_server``: every HTTP request the page makes, as the
  browser reports it and as its bytes cross a proxy, and the hub's access log lines, hold
  neither the secret nor the fragment; only the ``join`` message inside the WebSocket carries it.
* ``test_a_browser_and_vscode_see_each_others_cursors``: a page and a real VS Code
  (code-server, the extension built by ``make extension``, joined with the same http link)
  show each other's cursor with the other's name.

Screenshots go to ``artifacts/web/<test>/`` (printed).  Without chromium, node or
playwright-core (``make code-server`` installs it) these tests skip, except in CI.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lsp_bridge.invite import parse_invite
from tests.e2e import test_vscode as vs
from tests.e2e.test_vscode import vsix  # noqa: F401  (the fixture: make extension)
from tests.support import hubclient
from tests.support.browser import Browser, Page, missing
from tests.support.hubproc import HubProcess
from tests.support.lsp_editor import TestEditor, stop_checked
from tests.support.oplog import check_op_log
from tests.support.proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "web"
IN_CI = bool(os.environ.get("CI"))
MISSING = missing()
if not (ROOT / "collab_server" / "static" / "app.js").is_file():
    MISSING.append("the web client (make web)")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        bool(MISSING) and not IN_CI,
        reason=f"not installed: {', '.join(MISSING)} (make web, make code-server); in CI this fails instead",
    ),
]

FILE = "notes.txt"
START = "first line 😀\r\nsecond line\r\nthird line\r\n"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if MISSING:
        pytest.fail(f"not installed: {', '.join(MISSING)}")
    b = await Browser().start()
    try:
        yield b
    finally:
        await b.stop()


@pytest.fixture
async def hub(database_url: str) -> AsyncIterator[HubProcess]:
    h = HubProcess(database_url=database_url)
    try:
        await asyncio.to_thread(h.wait_ready)
        yield h
    finally:
        await asyncio.to_thread(h.__exit__, None, None, None)


def artifacts(request: pytest.FixtureRequest) -> Path:
    return ARTIFACTS / request.node.name.removeprefix("test_")


async def room_of(
    hub: HubProcess, tmp_path: Path, text: str = START
) -> tuple[TestEditor, str, dict[str, Any]]:
    """Ada's editor (VS Code at the LSP boundary) shares FILE and creates a room; her uri and
    the createRoom result (invites: http links)."""
    (tmp_path / "wa").mkdir()
    ada = TestEditor("vscode", "Ada", tmp_path / "wa", hub.url)
    await ada.start()
    uri = ada.uri(FILE)
    ada.open(uri, text, language_id="plaintext")
    room = await ada.command("pairls.createRoom", {"name": "web"})
    assert room["invite"].startswith("http://127.0.0.1:"), room
    return ada, uri, room


async def hub_text(hub_url: str, invite: str, path: str = FILE) -> str:
    return await hubclient.hub_text(hub_url, invite, path)


async def joined(page: Page, text: str | None = None, timeout: float = 60) -> dict[str, Any]:
    """Wait until *page* is in the room with FILE open (showing *text*, if given)."""
    st: dict[str, Any] = await page.wait(
        """(want) => {
          const s = window.pairls?.status();
          if (!s || s.conn !== "joined" || !s.open || s.current !== want.path) return null;
          if (want.text !== null && window.pairls.text() !== want.text) return null;
          return s;
        }""",
        {"path": FILE, "text": text},
        timeout,
    )
    return st


async def caret_at_line_end(page: Page, line: int) -> None:
    """Click into the editor, Ctrl+Home, then down to 1-based *line*, End."""
    await page.do("click", ".cm-content")
    await page.do("keyboard.press", "Control+Home")
    for _ in range(line - 1):
        await page.do("keyboard.press", "ArrowDown")
    await page.do("keyboard.press", "End")


async def settled(pages: list[Page], editors: list[tuple[TestEditor, str]], hub_url: str, invite: str) -> str:
    """Wait until every page and editor shows the same text, nothing unsent, equal to the hub's."""
    last: Any = None
    for _ in range(600):
        texts = [await p.text() for p in pages]
        statuses = [await p.status() for p in pages]
        for ed, uri in editors:
            ed.flush(uri)
        eds = [ed.text(uri) for ed, uri in editors]
        eds_idle = [not (await ed.status())["documents"][FILE]["pending"] for ed, _ in editors]
        if all(s["conn"] == "joined" and not s["unsent"] for s in statuses) and all(eds_idle):
            want = await hub_text(hub_url, invite)
            if all(t == want for t in texts + eds):
                return want
        last = (texts, eds, statuses)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no agreement: {last!r}")


async def clean(page: Page) -> None:
    """No Content-Security-Policy violation, no page error, no heal on *page*."""
    assert await page.csp_violations() == []
    log = await page.log()
    assert log["pageErrors"] == []
    errors = [e for e in log["consoleErrors"] if "WebSocket" not in e and "ERR_CONNECTION" not in e]
    assert errors == [], errors
    assert (await page.status())["stats"]["heals"] == 0


async def test_two_pages_and_an_editor_type_at_once(
    hub: HubProcess, browser: Browser, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ada, uri, room = await room_of(hub, tmp_path)
    try:
        bea = await browser.open("bea", room["invite"], "Bea")
        cy = await browser.open("cy", room["invite"], "Cy")
        for p in (bea, cy):
            await joined(p, START)
        await caret_at_line_end(bea, 1)
        await caret_at_line_end(cy, 2)
        bea_words = " bea🎉 typed"
        cy_words = " cy👍 wrote"

        async def ada_types() -> None:
            for i, ch in enumerate("Ada 👋 here "):
                ada.insert(uri, i, ch)
                await asyncio.sleep(0.03)

        async def cy_types() -> None:
            await cy.do("keyboard.type", cy_words, {"delay": 25})
            await cy.do("keyboard.press", "Enter")  # a new line in a CRLF file: "\r\n"
            await cy.do("keyboard.type", "new line", {"delay": 25})

        await asyncio.gather(bea.do("keyboard.type", bea_words, {"delay": 25}), cy_types(), ada_types())
        final = await settled([bea, cy], [(ada, uri)], hub.url, room["invite"])
        shots = artifacts(request)
        for p in (bea, cy):
            print(f"screenshot: {await p.screenshot(shots / f'{p.name}.png')}")
        for piece in (bea_words, cy_words, "new line", "Ada 👋 here "):
            assert final.count(piece) == 1, (piece, final)
        lines = final.split("\r\n")
        assert final.count("\n") == final.count("\r\n") == 4, final  # every line ending CRLF
        assert lines[0] == "Ada 👋 here first line 😀" + bea_words
        assert lines[1] == "second line" + cy_words and lines[2] == "new line", lines
        for p in (bea, cy):
            await clean(p)
        assert (await ada.status())["heals"] == 0
        # each page shows the other's caret, with the other's name
        await bea.wait("() => window.pairls.cursors().some((c) => c.name === 'Cy')")
        await cy.wait(
            "() => [...document.querySelectorAll('.pairls-caret')].some((e) => e.textContent === 'Bea')"
        )
    finally:
        await stop_checked([ada])


async def test_a_viewer_page_cannot_change_the_text(
    hub: HubProcess, browser: Browser, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ada, uri, room = await room_of(hub, tmp_path)
    try:
        vic = await browser.open("vic", room["viewerInvite"], "Vic")
        st = await joined(vic, START)
        assert st["role"] == "viewer"
        await vic.wait("() => document.getElementById('role').textContent.includes('read-only')")
        await caret_at_line_end(vic, 1)
        await vic.do("keyboard.type", "zzz", {"delay": 20})
        await vic.do("keyboard.press", "Enter")
        await vic.do("keyboard.press", "Backspace")
        await vic.do("keyboard.press", "Control+a")
        await vic.do("keyboard.press", "Delete")
        # the room's changes still reach it: once Ada's marker is there, the viewer's keys are
        # known to have been handled long before
        ada.insert(uri, 0, "marker ")
        await vic.wait("() => window.pairls.text().startsWith('marker ')")
        assert await vic.text() == "marker " + START
        assert await hub_text(hub.url, room["invite"]) == "marker " + START
        st = await vic.status()
        # the page itself kept the keys out (nothing was sent for the hub to refuse)
        assert st["unsent"] == [] and st["stats"]["refusedViewerEdits"] == 0, st
        print(f"screenshot: {await vic.screenshot(artifacts(request) / 'viewer.png')}")
        await clean(vic)
    finally:
        await stop_checked([ada])


async def test_text_the_hub_refuses_typed_in_a_page_goes_as_replacement_characters(
    hub: HubProcess, browser: Browser, tmp_path: Path
) -> None:
    """NUL and half of a UTF-16 pair put into the page's editor (a paste of odd text): the hub
    refuses both, so they go as U+FFFD, the page shows that, is told once, and typing goes on."""
    ada, uri, room = await room_of(hub, tmp_path)
    try:
        bea = await browser.open("bea", room["invite"], "Bea")
        await joined(bea, START)
        await caret_at_line_end(bea, 2)
        await bea.do("keyboard.insertText", " a\u0000b\ud800c")
        # (a warning shows for 6 s: read while it is up)
        notices = await bea.wait(
            """() => {
              const shown = [...document.querySelectorAll('#notices > *')].map((n) => n.textContent);
              return shown.some((t) => t.includes('cannot be shared')) ? shown : null;
            }"""
        )
        assert sum("cannot be shared" in n for n in notices) == 1, notices
        final = await settled([bea], [(ada, uri)], hub.url, room["invite"])
        assert final == START.replace("second line", "second line a\ufffdb\ufffdc")
        await bea.do("keyboard.type", " ok", {"delay": 10})
        final = await settled([bea], [(ada, uri)], hub.url, room["invite"])
        assert final == START.replace("second line", "second line a\ufffdb\ufffdc ok")
        await clean(bea)
    finally:
        await stop_checked([ada])


async def test_refused_text_in_the_first_of_two_transactions_dispatched_together(
    hub: HubProcess, browser: Browser, tmp_path: Path
) -> None:
    """CodeMirror may hand the page several transactions at once (an input method, an
    extension): the replacement of what the hub refuses in the first is mapped past the second."""
    ada, uri, room = await room_of(hub, tmp_path)
    try:
        bea = await browser.open("bea", room["invite"], "Bea")
        await joined(bea, START)
        await bea.eval(
            """() => {
              const view = document.querySelector(".cm-content").cmTile.root.view;  // (CodeMirror's own)
              const first = view.state.update({ changes: { from: 7, insert: "<\u0000>" } });
              const second = first.state.update({ changes: { from: 0, insert: "ab" } });
              view.dispatch([first, second]);  // (an array: several transactions at once)
            }"""
        )
        final = await settled([bea], [(ada, uri)], hub.url, room["invite"])
        assert final == "ab" + START[:7] + "<\ufffd>" + START[7:]
        await clean(bea)
    finally:
        await stop_checked([ada])


async def test_a_page_cut_off_keeps_its_typing_and_sends_it_on_reconnect(
    hub: HubProcess, browser: Browser, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ada, uri, room = await room_of(hub, tmp_path)
    port = int(hub.url.rsplit(":", 1)[1])
    proxy = await TcpProxy("127.0.0.1", port).start()
    try:
        link = room["invite"].replace(f":{port}/", f":{proxy.port}/")
        bea = await browser.open("bea", link, "Bea")
        await joined(bea, START)
        await caret_at_line_end(bea, 2)
        await bea.do("keyboard.type", " online", {"delay": 10})
        await bea.wait("() => window.pairls.status().unsent.length === 0")
        proxy.cut()  # the page's WebSocket is closed, and new connections are refused
        await bea.wait("() => window.pairls.status().conn !== 'joined'")
        await bea.do("keyboard.type", " offline 😀", {"delay": 10})
        await bea.do("keyboard.press", "Enter")
        await bea.do("keyboard.type", "still offline", {"delay": 10})
        ada.insert(uri, 0, "meanwhile ")  # the room moves on without the page
        st = await bea.status()
        assert st["unsent"] == [FILE] and st["conn"] in ("offline", "connecting"), st
        await bea.wait("() => !document.getElementById('unsent').hidden")
        print(f"screenshot: {await bea.screenshot(artifacts(request) / 'offline.png')}")
        proxy.restore()
        final = await settled([bea], [(ada, uri)], hub.url, room["invite"])
        assert (
            final
            == "meanwhile first line 😀\r\nsecond line online offline 😀\r\nstill offline\r\nthird line\r\n"
        )
        st = await bea.status()
        assert st["stats"]["reconnects"] >= 1 and st["stats"]["heals"] == 0, st
        print(f"screenshot: {await bea.screenshot(artifacts(request) / 'back.png')}")
        await clean(bea)
    finally:
        await proxy.close()
        await stop_checked([ada])


async def test_a_page_on_a_slow_route_types_with_others_in_the_same_line(
    hub: HubProcess, browser: Browser, tmp_path: Path, database_url: str
) -> None:
    """Bea's page reaches the hub over a slow route (every byte held 0.25 s each way, from
    before the page loads): she types at the end of the first line while Ada's editor types at
    its start and Cy's page at the end of the second, each key its own op.  Bea's edits go
    based on revisions the others left long ago and theirs reach her late, so every one is
    transformed in both places; all three end with the hub's text, every piece once, in its
    place."""
    ada, uri, room = await room_of(hub, tmp_path)
    port = int(hub.url.rsplit(":", 1)[1])
    proxy = await TcpProxy("127.0.0.1", port).start()
    proxy.lag(0.25)
    try:
        link = room["invite"].replace(f":{port}/", f":{proxy.port}/")
        bea = await browser.open("bea", link, "Bea")
        cy = await browser.open("cy", room["invite"], "Cy")
        for p in (bea, cy):
            await joined(p, START)
        await caret_at_line_end(bea, 1)
        await caret_at_line_end(cy, 2)
        bea_words = " bea typed on a slow line"
        cy_words = " cy wrote"
        ada_words = "Ada here, "

        async def ada_types() -> None:
            for i, ch in enumerate(ada_words):
                ada.insert(uri, i, ch)
                await asyncio.sleep(0.08)  # (as long as Bea types)

        await asyncio.gather(
            bea.do("keyboard.type", bea_words, {"delay": 30}),
            cy.do("keyboard.type", cy_words, {"delay": 30}),
            ada_types(),
        )
        final = await settled([bea, cy], [(ada, uri)], hub.url, room["invite"])
        assert final == (f"{ada_words}first line 😀{bea_words}\r\nsecond line{cy_words}\r\nthird line\r\n"), (
            final
        )
        log = await check_op_log(database_url, room["roomId"], FILE)
        assert log.text == final
        # Bea's keys wait while her op crosses the slow route (her ops are the fewest), and one
        # of hers went in while the others still typed
        revs: dict[str, list[int]] = {}
        for (client, _), rev in log.by_client.items():
            revs.setdefault(client, []).append(rev)
        assert len(revs) == 3, revs
        slow = min(revs, key=lambda c: len(revs[c]))
        assert len(revs[slow]) < len(bea_words) and min(revs[slow]) < max(
            rev for c in revs if c != slow for rev in revs[c]
        ), revs
        for p in (bea, cy):
            await clean(p)
        assert (await ada.status())["heals"] == 0
    finally:
        await proxy.close()
        await stop_checked([ada])


async def test_the_secret_never_reaches_the_server(
    hub: HubProcess, browser: Browser, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ada, _, room = await room_of(hub, tmp_path)
    port = int(hub.url.rsplit(":", 1)[1])
    proxy = await TcpProxy("127.0.0.1", port, record=True).start()
    try:
        secret = parse_invite(room["invite"]).secret
        room_id = room["roomId"]
        link = room["invite"].replace(f":{port}/", f":{proxy.port}/")
        bea = await browser.open("bea", link, "Bea")
        await joined(bea, START)
        await bea.do("reload")  # and once more, from the cache
        await joined(bea, START)
        log = await bea.log()
        # what the browser says it requested: the page, its files, the WebSocket; no fragment
        urls = [r["url"] for r in log["requests"]] + log["websockets"]
        assert any(u.endswith(f"/room/{room_id}") for u in urls), urls
        assert any("/assets/app.js" in u for u in urls) and any(u.startswith("ws://") for u in urls), urls
        for r in log["requests"]:
            assert secret not in json.dumps(r) and "#" not in r["url"], r
        # what crossed the wire: every request's head (the WebSocket frames after a handshake are
        # masked, and hold the join message with the secret: that is where it belongs)
        heads = [raw.split(b"\r\n\r\n", 1)[0] for raw in proxy.recorded if raw]
        assert len(heads) >= 4, heads
        lines = [h.split(b"\r\n", 1)[0].decode() for h in heads]
        assert f"GET /room/{room_id} HTTP/1.1" in lines, lines
        for head in heads:
            assert secret.encode() not in head and b"#" not in head.split(b"\r\n", 1)[0], head
            assert b"Referer" not in head or secret.encode() not in head
        # and the hub's log: its access lines name the page, never the secret
        assert any(re.search(rf"GET /room/{room_id[:8]}… 200", line) for line in hub.stderr), hub.log
        assert not any(secret in line for line in hub.stderr)
        await clean(bea)
    finally:
        await proxy.close()
        await stop_checked([ada])


# --- a browser and VS Code in one room ----------------------------------------------------

VS_NAME = "Vee Code"
ROW = '.quick-input-widget .quick-input-list .monaco-list-row[aria-label^="{}"]'
INPUT = ".quick-input-widget .quick-input-box input"
#: texts shown through CSS content in the active VS Code editor (peers' cursor labels), with
#: the 1-based line they are on (as tests/e2e/vscode/run.mjs reads them)
LABELS = """() => {
  const root = document.querySelector(".part.editor .editor-group-container.active .monaco-editor");
  if (!root) return [];
  const lines = [...root.querySelectorAll(".view-lines > .view-line")].sort(
    (a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
  const out = [];
  for (const el of root.querySelectorAll(".view-lines span, .view-overlays div, .contentWidgets div")) {
    for (const pseudo of ["::before", "::after"]) {
      const c = getComputedStyle(el, pseudo).content;
      if (c && c !== "none" && c !== "normal" && c !== '""') {
        out.push({ content: c, line: lines.indexOf(el.closest(".view-line")) + 1 || null });
      }
    }
  }
  return out;
}"""


async def _retry(what: str, attempt: Any, tries: int = 30) -> None:
    """Run *attempt* (an async callable returning True when it worked) until it does."""
    for _ in range(tries):
        try:
            if await attempt():
                return
        except Exception as exc:  # a workbench still loading: its widgets come and go
            print(f"{what}: {str(exc).splitlines()[0]}; again")
        await asyncio.sleep(1)
    raise AssertionError(f"{what} did not work in {tries} tries")


async def _vscode_command(page: Page, title: str) -> None:
    async def attempt() -> bool:
        if await page.do("isVisible", ".quick-input-widget"):
            await page.do("keyboard.press", "Escape")
        await page.do("keyboard.press", "F1")
        await page.do("waitForSelector", INPUT, {"state": "visible", "timeout": 5000})
        await page.do("keyboard.type", title)
        await page.do("click", ROW.format(title), {"timeout": 5000})
        return True

    await _retry(f'VS Code: "{title}"', attempt)


@pytest.fixture
def extension(request: pytest.FixtureRequest) -> Path:
    """The VS Code extension as test_vscode.py builds it (``make extension``), and code-server."""
    if vs.MISSING:
        if not IN_CI:
            pytest.skip(f"not installed: {', '.join(vs.MISSING)} (make code-server)")
        pytest.fail(f"not installed: {', '.join(vs.MISSING)}")
    return request.getfixturevalue("vsix")  # type: ignore[no-any-return]


@pytest.mark.timeout(900)
async def test_a_browser_and_vscode_see_each_others_cursors(
    hub: HubProcess, browser: Browser, tmp_path: Path, request: pytest.FixtureRequest, extension: Path
) -> None:
    text = "line one\nline two\nline three\n"
    ada, uri, room = await room_of(hub, tmp_path, text)
    ws = tmp_path / "ws-vscode"
    (ws / ".vscode").mkdir(parents=True)
    (ws / FILE).write_text("VS Code's stale copy\n")
    settings = {"pairls.hubUrl": hub.url, "pairls.displayName": VS_NAME, "pairls.autoShare": True}
    (ws / ".vscode" / "settings.json").write_text(json.dumps(settings))
    user = {
        "id": "V",
        "name": VS_NAME,
        "workspace": ws,
        "settings": dict(vs.SETTINGS, **{"pairls.pythonPath": sys.executable}),
    }
    servers = await asyncio.to_thread(vs._start, tmp_path, [user], extension)
    try:
        bea = await browser.open("bea", room["invite"], "Bea")
        await joined(bea, text)
        code = await browser.open(
            "vscode", f"{user['url']}/?folder={ws}", permissions=["clipboard-read", "clipboard-write"]
        )
        await code.do("waitForSelector", ".monaco-workbench .part.statusbar", {"timeout": 90000})
        await code.wait(
            """() => [...document.querySelectorAll(".part.statusbar .statusbar-item")]
                 .some((e) => /pairls/i.test(e.id) && e.querySelector(".codicon-broadcast"))""",
            timeout=90,
        )
        # Join Room with the http link, as it came from the room's creator
        await _vscode_command(code, "Pairls: Join Room")
        # the command's own input box (it has a prompt; the palette has none)
        await code.wait(
            """() => {
              const w = document.querySelector(".quick-input-widget");
              const input = w?.querySelector(".quick-input-box input");
              if (!w || !input || w.style.display === "none") return false;
              const prompt = w.querySelector(".quick-input-message")?.textContent?.trim() ?? "";
              return prompt !== "" && !input.value.startsWith(">");
            }""",
            timeout=60,
        )
        await code.do("fill", INPUT, room["invite"])
        await asyncio.sleep(0.3)  # (the box validates what was typed first)
        await code.do("keyboard.press", "Enter")
        try:
            await code.wait(
                """() => [...document.querySelectorAll(".part.statusbar .statusbar-item")]
                     .some((e) => /pairls/i.test(e.id) && e.querySelector(".codicon-person"))""",
                timeout=60,
            )
        finally:
            await code.screenshot(artifacts(request) / "vscode-join.png")

        async def open_file() -> bool:
            await code.do("keyboard.press", "Control+P")
            await code.do("waitForSelector", INPUT, {"state": "visible", "timeout": 5000})
            await code.do("keyboard.type", FILE)
            await code.do("click", ROW.format(FILE), {"timeout": 5000})
            return True

        await _retry("VS Code: quick open", open_file)
        # its stale copy becomes the room's text
        await code.screenshot(artifacts(request) / "vscode-opened.png")
        await code.wait(
            """(want) => {
              const v = document.querySelector(".part.editor .editor-group-container.active .view-lines");
              if (!v) return false;
              const lines = [...v.querySelectorAll(":scope > .view-line")]
                .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
                .map((l) => l.textContent.replace(/\\u00a0/g, " "));
              return lines.join("\\n") === want;
            }""",
            text,
            timeout=60,
        )
        # VS Code's caret at the end of line 2, the page's at the end of line 3
        await code.do("click", ".part.editor .editor-group-container.active .monaco-editor .view-lines")
        await code.do("keyboard.press", "Control+G")
        await code.do("waitForSelector", INPUT, {"state": "visible"})
        await code.do("keyboard.type", "2")
        await code.do("keyboard.press", "Enter")
        await code.do("keyboard.press", "End")
        await caret_at_line_end(bea, 3)
        # the page shows VS Code's caret, with its name, at the end of line 2 ("line one\nline two|")
        seen = await bea.wait(
            """(name) => window.pairls.cursors().find((c) => c.name === name
                 && c.ranges.some(([a, h]) => a === h && h === 17))""",
            VS_NAME,
            timeout=60,
        )
        assert seen["name"] == VS_NAME, seen
        await bea.wait(
            "(name) => [...document.querySelectorAll('.pairls-caret')].some((e) => e.textContent === name)",
            VS_NAME,
        )
        # and VS Code shows the page's, with its name, on line 3
        on_line_3 = "(l) => l.some((x) => x.content.includes('Bea') && x.line === 3) && l"
        labels = await code.wait(f"() => ({on_line_3})(({LABELS})())", timeout=60)
        assert any("Bea" in lb["content"] for lb in labels), labels
        shots = artifacts(request)
        print(f"screenshot: {await bea.screenshot(shots / 'browser.png')}")
        print(f"screenshot: {await code.screenshot(shots / 'vscode.png')}")
        await clean(bea)
    finally:
        for s in servers:
            await asyncio.to_thread(s.stop)
        await stop_checked([ada])
