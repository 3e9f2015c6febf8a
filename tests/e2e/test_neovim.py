"""Two real Neovim 0.7+ instances pair-program through pairls-lsp and a real hub.

Each Neovim is headless, runs the user-facing config ``docs/editors/neovim.lua``
(``-u``) with its own workspace and its own ``pairls-lsp``; one hub
subprocess on a real PostgreSQL.  A creates the room with ``:PairlsCreate``
(the invite lands in the unnamed register), B joins with ``:PairlsJoin``;
B's stale local copy is replaced by the room's text.  Then both type at once
through Neovim's input queue (``nvim_input``: what a user's keystrokes do),
at several places, with emoji, accents and new lines, while the other's edits
arrive.  Neovim's didChange debounce is run at its default (150 ms) and at 0.

After quiescence (``pairls.status`` from each Neovim: nothing pending, same
revision) both buffers, as Neovim's LSP client sees them (lines joined by
``\\n`` plus the final ``\\n`` of 'eol'), must equal the hub's text, and
hold every typed character exactly once.  With the default debounce, B
types fast enough that some of A's edits reach B's Neovim with a version
older than its buffer: Neovim 0.7 skips them ("newer than edits") yet
answers ``applied: true``; the bridge must notice and send them again.
The test records what Neovim did with each edit (through a wrapper around
its ``workspace/applyEdit`` handler and its didChange notifications).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lsp_bridge.invite import parse_invite
from tests.support.hubclient import Peer
from tests.support.hubproc import HubProcess
from tests.support.nvim import Nvim

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("nvim") is None and not os.environ.get("CI"),
        reason="nvim is not installed (make sysdeps); in CI this fails instead",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "docs" / "editors" / "neovim.lua"
LSP = str(Path(sys.executable).with_name("pairls-lsp"))
PATH = "notes.txt"
INITIAL = "first line\nsecond line\nthird line\n# end\n"

# Records, in each Neovim, every workspace/applyEdit (its version, the buffer's
# version when it arrived, Neovim's answer) and every didChange it sends.
PROBE = r"""
_G.probe = { edits = {}, changes = {} }
local orig = vim.lsp.handlers['workspace/applyEdit']
vim.lsp.handlers['workspace/applyEdit'] = function(err, params, ctx)
  local td = params.edit.documentChanges[1].textDocument
  local before = vim.lsp.util.buf_versions[vim.uri_to_bufnr(td.uri)]
  local result = orig(err, params, ctx)
  table.insert(probe.edits, { version = td.version, buffer = before, applied = result.applied,
    after = vim.lsp.util.buf_versions[vim.uri_to_bufnr(td.uri)] })
  return result
end
local client = vim.lsp.get_client_by_id(...)
local notify = client.rpc.notify
client.rpc.notify = function(method, params)
  if method == 'textDocument/didChange' then
    table.insert(probe.changes, { version = params.textDocument.version, changes = params.contentChanges })
  end
  return notify(method, params)
end
"""

STATUS = (
    "local r = vim.lsp.buf_request_sync(0, 'workspace/executeCommand',"
    " { command = 'pairls.status', arguments = { vim.empty_dict() } }, 5000)"
    " for _, v in pairs(r or {}) do return v.result end"
)


class K(str):
    """Keys sent as they are (normal-mode commands, <CR>, <Esc>), not typed one by one."""


async def type_script(nv: Nvim, script: list[str], delay: float) -> None:
    """Type *script* like a user: text one character at a time, ``K`` keys as they are."""
    for part in script:
        if isinstance(part, K):
            await nv.input(part)
            await asyncio.sleep(delay)
            continue
        for ch in part:
            await nv.input("<lt>" if ch == "<" else ch)
            await asyncio.sleep(delay)


def typed_text(script: list[str]) -> str:
    """What *script* inserts (its ``K`` parts insert what is noted with them)."""
    return "".join(getattr(p, "inserts", "") if isinstance(p, K) else p for p in script)


def key(keys: str, inserts: str = "") -> K:
    k = K(keys)
    k.inserts = inserts  # type: ignore[attr-defined]
    return k


async def until(pred: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


async def start_nvim(ws: Path, name: str, hub_url: str, debounce: int, home: Path) -> Nvim:
    env = {
        "PAIRLS_LSP": LSP,
        "PAIRLS_HUB_URL": hub_url,
        "PAIRLS_NAME": name,
        "PAIRLS_DEBOUNCE_MS": str(debounce),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }
    nv = await Nvim.start(ws, ["-u", str(CONFIG), PATH], env)
    client = await until(
        lambda: nv.lua("local c = vim.lsp.get_active_clients()[1] return c and c.initialized and c.id"),
        15,
        f"{name}'s pairls-lsp to start",
    )
    await nv.lua(PROBE, client)
    return nv


@pytest.fixture
async def hub(database_url: str) -> AsyncIterator[HubProcess]:
    proc = HubProcess(database_url=database_url)
    try:
        await asyncio.to_thread(proc.wait_ready)
        yield proc
    finally:
        await asyncio.to_thread(proc.__exit__, None, None, None)


async def status(nv: Nvim) -> dict[str, Any]:
    return await nv.lua(STATUS) or {}  # type: ignore[no-any-return]


async def quiescent(a: Nvim, b: Nvim) -> bool:
    sa, sb = await status(a), await status(b)
    da, db = sa.get("documents", {}).get(PATH), sb.get("documents", {}).get(PATH)
    if not da or not db or da["pending"] or db["pending"] or da["rev"] != db["rev"]:
        return False
    return await a.text() == await b.text()


@pytest.mark.parametrize("debounce", [150, 0], ids=["debounce150", "debounce0"])
async def test_two_neovims_type_at_once(
    hub: HubProcess, tmp_path: Path, debounce: int, capsys: pytest.CaptureFixture[str]
) -> None:
    wa, wb = tmp_path / "ada", tmp_path / "bob"
    wa.mkdir()
    wb.mkdir()
    (wa / PATH).write_text(INITIAL)
    (wb / PATH).write_text("bob's stale copy\n")  # the room's text wins when B joins
    a = await start_nvim(wa, "Ada", hub.url, debounce, tmp_path / "home-ada")
    b = await start_nvim(wb, "Bob", hub.url, debounce, tmp_path / "home-bob")
    try:
        # -- A creates the room from Neovim, B joins from Neovim -----------------------------
        await a.call("nvim_command", "PairlsCreate demo")
        invite = await until(
            lambda: a.call("nvim_call_function", "getreg", ['"']), 15, "the invite in A's register"
        )
        assert str(invite).startswith("ws://"), invite
        await b.call("nvim_command", f"PairlsJoin {invite}")
        await until(lambda: _equals(b, INITIAL), 15, "B's buffer to become the room's text")
        await until(lambda: quiescent(a, b), 15, "quiet after join")
        assert (await status(b))["role"] == "editor"

        # -- both type at once ----------------------------------------------------------------
        script_a = [
            key("<Esc>ggA"),
            " 😀 from Ada",
            key("<CR>", "\n"),
            "ada = 'é'",
            key("<Esc>3GA"),
            " — ✓",
            key("<Esc>GA"),
            " (end)",
            key("<Esc>"),
        ]
        script_b = [
            key("<Esc>GI"),
            "B🎉 ",
            key("<Esc>ggI"),
            "# ",
            key("<Esc>2GI"),
            "<bob> ",
            key("<Esc>Go", "\n"),
            "bob = 2 👩‍💻",
            key("<Esc>"),
        ]
        # B types faster than its own debounce lets it report, while A's edits keep arriving
        await asyncio.gather(type_script(a, script_a, 0.03), type_script(b, script_b, 0.02))

        # -- quiescence, then everyone agrees with the hub ----------------------------------
        try:
            await until(lambda: quiescent(a, b), 20, "both Neovims and the hub to agree", interval=0.25)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await diagnose(a, b)}") from None
        text_a, text_b = await a.text(), await b.text()
        inv = parse_invite(str(invite))
        peer = await Peer(hub.url, "checker").connect()
        try:
            await peer.join(inv.room_id, inv.secret)
            hub_text = (await peer.open(PATH)).text
        finally:
            await peer.close()

        probe_a = await a.lua("return probe")
        probe_b = await b.lua("return probe")
        skipped = {
            who: [e for e in probe["edits"] if e["version"] > 0 and e["buffer"] > e["version"]]
            for who, probe in (("A", probe_a), ("B", probe_b))
        }
        with capsys.disabled():
            print(
                f"\n[neovim e2e debounce={debounce}]"
                + "".join(
                    f" {who}: {len(p['edits'])} applyEdit ({len(skipped[who])} skipped as 'newer than"
                    f" edits', answered applied={sorted({e['applied'] for e in p['edits']})}),"
                    f" {len(p['changes'])} didChange;"
                    for who, p in (("A", probe_a), ("B", probe_b))
                )
            )
            if os.environ.get("PAIRLS_NVIM_PROBE"):
                print(json.dumps({"a": probe_a, "b": probe_b}, ensure_ascii=False))

        assert text_a == hub_text, (text_a, hub_text)
        assert text_b == hub_text, (text_b, hub_text)
        assert hub_text.endswith("\n")
        # nothing typed was lost or doubled
        typed = typed_text(script_a) + typed_text(script_b)
        assert Counter(hub_text) == Counter(INITIAL + typed), hub_text
        for fragment in (" 😀 from Ada", "ada = 'é'", " — ✓", " (end)", "B🎉 ", "<bob> ", "bob = 2 👩‍💻"):
            assert hub_text.count(fragment) == 1, (fragment, hub_text)
        if debounce:
            # Neovim skipped at least one stale edit and still said applied: true; the
            # bridge sent it again (the texts agree and nothing is lost).
            stale = skipped["A"] + skipped["B"]
            assert stale, (probe_a["edits"], probe_b["edits"])
            assert all(e["applied"] and e["after"] == e["buffer"] for e in stale)
    finally:
        await asyncio.gather(a.close(), b.close())


async def diagnose(a: Nvim, b: Nvim) -> str:
    out = []
    for name, nv in (("A", a), ("B", b)):
        out.append(f"{name} status: {await status(nv)}")
        out.append(f"{name} text: {await nv.text()!r}")
        out.append(f"{name} probe: {json.dumps(await nv.lua('return probe'), ensure_ascii=False)}")
    return "\n".join(out)


async def _equals(nv: Nvim, text: str) -> bool:
    return await nv.text() == text


async def test_room_document_without_final_newline(hub: HubProcess, tmp_path: Path) -> None:
    """A document another editor made without a final newline, opened in Neovim ('eol' on).

    Neovim cannot show a text without a final newline while 'eol' is set: what is right is
    that its buffer shows the room's text, and that the room's text stays as it was or at most
    gains that one final newline; what must not happen is a loop.
    """
    text = "no newline at end"
    ws = tmp_path / "bob"
    ws.mkdir()
    owner = await Peer(hub.url, "other-editor").connect()
    b: Nvim | None = None
    try:
        room = await owner.create_room("eol")
        await owner.create_document("nonl.txt", text)
        shared = await owner.open("nonl.txt")
        b = await start_nvim(ws, "Bob", hub.url, 150, tmp_path / "home-bob")
        await b.call("nvim_command", f"PairlsJoin {hub.url}/room/{room['room']}#{room['editorSecret']}")
        await until(lambda: _joined(b), 10, "B to join")
        await b.call("nvim_command", "edit nonl.txt")
        await asyncio.sleep(3)
        assert shared.text in (text, text + "\n"), f"the room's text became {shared.text!r}"
        assert await b.text() == text + "\n"
    finally:
        if b is not None:
            await b.close()
        await owner.close()


async def _joined(nv: Nvim) -> bool:
    return bool((await status(nv)).get("roomId"))
