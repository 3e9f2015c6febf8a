"""Real Neovims pair-program through pairls-lsp and a real hub.

Every test runs twice, once per Neovim (:data:`tests.support.nvim.BINARIES`):
Debian's 0.7.2 (``make sysdeps``), through the ``vim.lsp.start_client``
branch of ``docs/editors/neovim.lua``, and a current one (0.12-dev, ``make
neovim``), through its ``vim.lsp.start{attach = false}`` branch.  A missing
Neovim skips its tests, except in CI (``CI`` set), where they fail.

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
older than its buffer: Neovim skips them ("newer than edits") yet answers
``applied: true``; the bridge must notice and send them again.  The test
records what Neovim did with each edit (through a wrapper around its
``workspace/applyEdit`` handler and its didChange notifications).

The same pair then takes the detours a user takes: a slow route to the hub
(every byte of Bob's held 0.15 s each way while both type), full-document sync
(``PAIRLS_INCREMENTAL_SYNC=0``: every didChange carries the whole text),
leaving and joining again (the same room, another room), a paste and a file
larger than the hub's 1 MiB frame limit (opened with ``:PairlsOpen``, which
lands in it on both Neovims).  A Neovim started with no file creates or joins
a room (the working directory is the workspace) and shares what it opens
afterwards.  ``test_lsp_boundary`` runs each
Neovim against a recording stand-in server (``tests/support/lsp_recorder.py``)
to pin down what it does at the LSP boundary (docs/editors/neovim-notes.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lsp_bridge.invite import parse_invite
from tests.support import hubclient
from tests.support.hubclient import HubError, Peer
from tests.support.hubproc import HubProcess
from tests.support.lsp_editor import end_checked
from tests.support.nvim import BINARIES, Nvim, NvimBinary
from tests.support.proxy import TcpProxy

IN_CI = bool(os.environ.get("CI"))

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "docs" / "editors" / "neovim.lua"
LSP = str(Path(sys.executable).with_name("pairls-lsp"))
PATH = "notes.txt"
INITIAL = "first line\nsecond line\nthird line\n# end\n"
#: the hub's default frame limit (HubConfig.max_message_bytes)
HUB_FRAME_LIMIT = 1 << 20


@pytest.fixture(
    params=[
        pytest.param(
            b,
            id=b.name,
            marks=pytest.mark.skipif(
                b.path is None and not IN_CI,
                reason=f"{b.name} is not installed ({b.install}); in CI this fails instead",
            ),
        )
        for b in BINARIES
    ]
)
def nvim_binary(request: pytest.FixtureRequest) -> NvimBinary:
    binary: NvimBinary = request.param
    if binary.path is None:  # only reached in CI: outside it the test skips
        pytest.fail(f"{binary.name} is not installed; run {binary.install}")
    return binary


# Records, in each Neovim, every workspace/applyEdit (its version, how many TextEdits, the
# buffer's version when it arrived and after, Neovim's answer), every didChange it sends
# (texts longer than 4096 characters only by length), every window/showMessage and every
# pairls/status notification.  Neovim 0.7 to 0.12 keep the LSP version of a buffer in
# vim.lsp.util.buf_versions (0.12: a table whose missing entries read 0); it is the
# buffer's b:changedtick as of its last change, which is what is read if the table goes.
PROBE = r"""
_G.probe = { edits = {}, changes = {}, messages = {}, states = {} }
local function buf_version(bufnr)
  local versions = vim.lsp.util.buf_versions
  if versions ~= nil and versions[bufnr] ~= nil then return versions[bufnr] end
  return vim.api.nvim_buf_get_var(bufnr, 'changedtick')
end
local orig = vim.lsp.handlers['workspace/applyEdit']
vim.lsp.handlers['workspace/applyEdit'] = function(err, params, ctx, ...)
  local change = params.edit.documentChanges[1]
  local bufnr = vim.uri_to_bufnr(change.textDocument.uri)
  local before = buf_version(bufnr)
  local result = orig(err, params, ctx, ...)
  table.insert(probe.edits, { version = change.textDocument.version, edits = #change.edits,
    buffer = before, applied = result.applied, after = buf_version(bufnr) })
  return result
end
local show = vim.lsp.handlers['window/showMessage']
vim.lsp.handlers['window/showMessage'] = function(err, params, ctx, ...)
  table.insert(probe.messages, params.message)
  return show(err, params, ctx, ...)
end
vim.lsp.handlers['pairls/status'] = function(_, params)
  table.insert(probe.states, { state = params.state, heals = params.heals })
end
local client = vim.lsp.get_client_by_id(...)
local notify = client.rpc.notify
client.rpc.notify = function(method, params)
  if method == 'textDocument/didChange' then
    local changes = {}
    for _, c in ipairs(params.contentChanges) do
      table.insert(changes, { range = c.range, length = #c.text, text = #c.text <= 4096 and c.text or nil })
    end
    table.insert(probe.changes, { version = params.textDocument.version, changes = changes })
  end
  return notify(method, params)
end
"""

CLIENT = (
    "local get = vim.lsp.get_clients or vim.lsp.get_active_clients"  # get_active_clients: 0.7 to 0.9
    " local c = get({ name = 'pairls' })[1] return c and c.initialized and c.id"
)


def status_lua(path: str | None = None) -> str:
    bufnr = "0" if path is None else f"vim.fn.bufnr({json.dumps(path)})"
    return (
        f"local r = vim.lsp.buf_request_sync({bufnr}, 'workspace/executeCommand',"
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


def fragments(script: list[str]) -> list[str]:
    """The text parts of *script* (each must end up in the room exactly once)."""
    return [p for p in script if not isinstance(p, K)]


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


def nvim_env(home: Path, **env: str) -> dict[str, str]:
    return {
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
        **env,
    }


async def start_nvim(
    ws: Path,
    name: str,
    hub_url: str,
    debounce: int,
    home: Path,
    binary: NvimBinary,
    *,
    incremental: bool = True,
) -> Nvim:
    env = nvim_env(
        home,
        PAIRLS_LSP=LSP,
        PAIRLS_HUB_URL=hub_url,
        PAIRLS_NAME=name,
        PAIRLS_DEBOUNCE_MS=str(debounce),
        PAIRLS_INCREMENTAL_SYNC="1" if incremental else "0",
    )
    nv = await Nvim.start(ws, ["-u", str(CONFIG), PATH], env, binary=binary.path)
    client = await until(lambda: nv.lua(CLIENT), 15, f"{name}'s pairls-lsp to start")
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


async def status(nv: Nvim, path: str | None = None) -> dict[str, Any]:
    return await nv.lua(status_lua(path)) or {}  # type: ignore[no-any-return]


async def quiescent(a: Nvim, b: Nvim, path: str = PATH) -> bool:
    sa, sb = await status(a, path), await status(b, path)
    da, db = sa.get("documents", {}).get(path), sb.get("documents", {}).get(path)
    if not da or not db or da["pending"] or db["pending"] or da["rev"] != db["rev"]:
        return False
    return await buffer_text(a, path) == await buffer_text(b, path)


async def buffer_text(nv: Nvim, path: str) -> str:
    """The text of the buffer of *path* as Neovim's LSP client sends it."""
    return str(
        await nv.lua(
            "local b = vim.fn.bufnr(...) if b == -1 then return '<no buffer>' end"
            " local t = table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, true), '\\n')"
            " if vim.bo[b].eol then t = t .. '\\n' end return t",
            path,
        )
    )


async def messages(nv: Nvim) -> str:
    return str(await nv.call("nvim_call_function", "execute", ["messages"]))


async def hub_text(hub: HubProcess, invite: str, path: str = PATH) -> str:
    return await hubclient.hub_text(hub.url, invite, path)


async def room_paths(hub: HubProcess, invite: str) -> list[str]:
    return await hubclient.room_paths(hub.url, invite)


async def pair(
    hub: HubProcess,
    tmp_path: Path,
    binary: NvimBinary,
    debounce: int = 150,
    *,
    incremental: tuple[bool, bool] = (True, True),
    bob_via: TcpProxy | None = None,
) -> tuple[Nvim, Nvim, str]:
    """Ada creates a room from Neovim with notes.txt (INITIAL); Bob joins from Neovim (through
    *bob_via*, if given: the invite he is given names the proxy)."""
    wa, wb = tmp_path / "ada", tmp_path / "bob"
    wa.mkdir()
    wb.mkdir()
    (wa / PATH).write_text(INITIAL)
    (wb / PATH).write_text("bob's stale copy\n")  # the room's text wins when B joins
    a = await start_nvim(
        wa, "Ada", hub.url, debounce, tmp_path / "home-ada", binary, incremental=incremental[0]
    )
    try:
        b = await start_nvim(
            wb, "Bob", hub.url, debounce, tmp_path / "home-bob", binary, incremental=incremental[1]
        )
    except BaseException:
        await a.close()
        raise
    try:
        await a.call("nvim_command", "PairlsCreate demo")
        invite = await until(
            lambda: a.call("nvim_call_function", "getreg", ['"']), 15, "the invite in A's register"
        )
        assert str(invite).startswith("http://"), invite
        bobs = str(invite) if bob_via is None else bob_via.invite(str(invite))
        await b.call("nvim_command", f"PairlsJoin {bobs}")
        await until(lambda: _equals(b, INITIAL), 15, "B's buffer to become the room's text")
        await until(lambda: quiescent(a, b), 15, "quiet after join")
        assert (await status(b))["role"] == "editor"
    except BaseException:
        await asyncio.gather(a.close(), b.close())
        raise
    return a, b, str(invite)


async def converged(a: Nvim, b: Nvim, hub: HubProcess, invite: str, timeout: float = 20) -> str:
    """Wait until both Neovims agree with each other and are quiet; both must equal the hub."""
    try:
        await until(lambda: quiescent(a, b), timeout, "both Neovims and the hub to agree", interval=0.25)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{await diagnose(a, b)}") from None
    text = await hub_text(hub, invite)
    assert await a.text() == text, (await a.text(), text)
    assert await b.text() == text, (await b.text(), text)
    return text


SCRIPT_A = [
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
SCRIPT_B = [
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


async def type_at_once_and_check(
    a: Nvim, b: Nvim, hub: HubProcess, invite: str, base: str
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Both type SCRIPT_A / SCRIPT_B at once; everyone must agree and hold each fragment once."""
    # B types faster than its own debounce lets it report, while A's edits keep arriving
    await asyncio.gather(type_script(a, SCRIPT_A, 0.03), type_script(b, SCRIPT_B, 0.02))
    text = await converged(a, b, hub, invite)
    probe_a = await a.lua("return probe")
    probe_b = await b.lua("return probe")
    try:
        assert text.endswith("\n")
        # nothing typed was lost or doubled
        assert Counter(text) == Counter(base + typed_text(SCRIPT_A) + typed_text(SCRIPT_B)), text
        for fragment in fragments(SCRIPT_A) + fragments(SCRIPT_B):
            assert text.count(fragment) == base.count(fragment) + 1, (fragment, text)
        # and each where it was typed (what timing cannot change: B's "<bob> " goes to the
        # start of line 2, which is A's new line once A's edits reached B)
        for place in ("# first line 😀 from Ada\nada = 'é'\n", "second line — ✓", "B🎉 # end"):
            assert place in text, (place, text)
        assert "<bob> second line" in text or "<bob> ada = 'é'" in text, text
    except AssertionError as exc:
        probes = json.dumps({"a": probe_a, "b": probe_b}, ensure_ascii=False)
        raise AssertionError(f"{exc}\nthe room's text: {text!r}\nprobes: {probes}") from None
    if os.environ.get("PAIRLS_NVIM_PROBE"):
        print(json.dumps({"text": text, "a": probe_a, "b": probe_b}, ensure_ascii=False))
    return text, probe_a, probe_b


def _lua_lines(text: str) -> str:
    """*text*'s lines as a Lua list of strings (for ``nvim_buf_set_lines``)."""
    return "{" + ", ".join(json.dumps(line, ensure_ascii=False) for line in text.splitlines()) + "}"


async def _room_is(hub: HubProcess, invite: str, text: str) -> bool:
    return await hub_text(hub, invite) == text


def skipped_edits(probe: dict[str, Any]) -> list[dict[str, Any]]:
    """The applyEdits Neovim skipped as 'newer than edits' (it checks only versions > 0)."""
    return [e for e in probe["edits"] if e["version"] > 0 and e["buffer"] > e["version"]]


@pytest.mark.parametrize("debounce", [150, 0], ids=["debounce150", "debounce0"])
async def test_two_neovims_type_at_once(
    hub: HubProcess,
    tmp_path: Path,
    nvim_binary: NvimBinary,
    debounce: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b, invite = await pair(hub, tmp_path, nvim_binary, debounce)
    try:
        version = await a.version()
        encoding = await a.lua(f"return vim.lsp.get_client_by_id({await a.lua(CLIENT)}).offset_encoding")
        text, probe_a, probe_b = await type_at_once_and_check(a, b, hub, invite, INITIAL)
        rounds = 1
        while debounce and not skipped_edits(probe_a) + skipped_edits(probe_b) and rounds < 3:
            # the race this case is for (Neovim skips an edit older than its buffer) comes of
            # timing, and a loaded machine can miss it: the room back to the start, both type
            # again, every round checked whole (the probes keep every round's edits)
            await a.lua(f"vim.api.nvim_buf_set_lines(0, 0, -1, false, {_lua_lines(INITIAL)})")
            await until(lambda: _room_is(hub, invite, INITIAL), 20, "the room's text back to the start")
            assert await converged(a, b, hub, invite) == INITIAL
            text, probe_a, probe_b = await type_at_once_and_check(a, b, hub, invite, INITIAL)
            rounds += 1
        skipped = {"A": skipped_edits(probe_a), "B": skipped_edits(probe_b)}
        with capsys.disabled():
            print(
                f"\n[neovim {version} e2e debounce={debounce}] encoding {encoding};"
                + "".join(
                    f" {who}: {len(p['edits'])} applyEdit ({len(skipped[who])} skipped as 'newer than"
                    f" edits', answered applied={sorted({e['applied'] for e in p['edits']})}),"
                    f" {len(p['changes'])} didChange;"
                    for who, p in (("A", probe_a), ("B", probe_b))
                )
                + f" {rounds} round(s)"
            )
        if debounce:
            # Neovim skipped at least one stale edit and still said applied: true; the
            # bridge sent it again (the texts agree and nothing is lost).
            stale = skipped["A"] + skipped["B"]
            assert stale, (probe_a["edits"], probe_b["edits"])
            assert all(e["applied"] and e["after"] == e["buffer"] for e in stale)
        for who, nv, probe in (("A", a, probe_a), ("B", b, probe_b)):
            # no reconnect, no heal, no message the user must act on; the config uses no
            # API this Neovim calls deprecated
            assert not probe["messages"], (who, probe["messages"])
            assert "disconnected" not in {s["state"] for s in probe["states"]}, (who, probe["states"])
            assert (await status(nv))["heals"] == 0, who
            assert "deprecated" not in await messages(nv), (who, await messages(nv))
    finally:
        await close_checked(a, b)


async def test_two_neovims_type_at_once_one_on_a_slow_route(
    hub: HubProcess, tmp_path: Path, nvim_binary: NvimBinary
) -> None:
    """Bob's route to the hub holds every byte 0.15 s each way while both type at once: Ada's
    edits reach his Neovim long after he typed past them, and his reach her late.  The same
    checks as above: one text everywhere, every fragment once and in its place, no reconnect,
    no heal, nothing the user must act on."""
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        a, b, invite = await pair(hub, tmp_path, nvim_binary, bob_via=proxy)
        try:
            proxy.lag(0.15)
            _, probe_a, probe_b = await type_at_once_and_check(a, b, hub, invite, INITIAL)
            for who, nv, probe in (("A", a, probe_a), ("B", b, probe_b)):
                assert not probe["messages"], (who, probe["messages"])
                assert "disconnected" not in {s["state"] for s in probe["states"]}, (who, probe["states"])
                assert (await status(nv))["heals"] == 0, who
        finally:
            await close_checked(a, b)
    finally:
        await proxy.close()


async def test_typing_then_wq_at_once_on_a_slow_route_loses_nothing(
    hub: HubProcess, tmp_path: Path, nvim_binary: NvimBinary
) -> None:
    """Bob's route to the hub holds every byte 0.2 s each way.  He types a line and ends with
    ``:wq`` at once: Neovim sends what is pending, asks his pairls-lsp to shut down, waits a
    little (Neovim 0.7: 500 ms, then SIGTERM) and is gone.  Every key reaches the room and Ada's
    buffer; his saved file has them too, but the room's text wins when he comes back, so a key
    lost here would be lost for good."""
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        a, b, invite = await pair(hub, tmp_path, nvim_binary, bob_via=proxy)
        try:
            # (Neovim gives its server a socket pair, not a pipe: read by the loop all the same)
            assert (await status(b))["stdioReader"] == "loop"
            proxy.lag(0.2)
            line = "typed, saved and quit"
            await type_script(b, [K("Go"), line, K("<Esc>")], 0.02)
            with contextlib.suppress(ConnectionError, TimeoutError):  # (Neovim leaves at once)
                await b.input(":wq<CR>")
            await asyncio.wait_for(b.proc.wait(), 15)
            want = INITIAL + line + "\n"
            assert (tmp_path / "bob" / PATH).read_text() == want
            await until(lambda: _equals(a, want), 20, "Ada's buffer to show Bob's last line")
            proxy.lag(0)
            assert await hub_text(hub, invite) == want
        finally:
            await close_checked(a, b)
    finally:
        await proxy.close()


@pytest.mark.parametrize("how", ["wq", "kill -9"])
async def test_typing_offline_then_quitting_keeps_it_for_the_next_session(
    hub: HubProcess, tmp_path: Path, nvim_binary: NvimBinary, how: str
) -> None:
    """Bob's network is down.  He types a line and ``:wq``s: his pairls-lsp waits for the hub a
    little, then keeps what the hub never had in his state folder.  Or (``kill -9``) his
    pairls-lsp is killed outright first, as the OOM killer does: no exit, no time to keep
    anything then; what the hub had not acknowledged for a second was on disk already, claimed
    by that server.  Ada goes on.  Later, the network back, Bob starts Neovim again and joins:
    his line reaches the room once, after Ada's, both buffers show it, and nothing is left in
    his state folder.  (The room's text wins at a join: without the kept copy, his saved line
    would have been replaced by the room's older text.)"""
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    b2: Nvim | None = None
    try:
        a, b, invite = await pair(hub, tmp_path, nvim_binary, bob_via=proxy)
        try:
            proxy.cut()
            line = "typed offline"
            await type_script(b, [K("Go"), line, K("<Esc>")], 0.02)
            carries = tmp_path / "home-bob" / "state" / "pairls" / "carries"
            if how == "kill -9":
                held = await until(lambda: _one_file(carries), 30, "Bob's pairls-lsp to hold his line")
                os.kill(
                    int(held.name.rpartition(".taking-")[2].partition("-")[0]), signal.SIGKILL
                )  # (its claimer)
            with contextlib.suppress(ConnectionError, TimeoutError):  # (Neovim leaves at once)
                await b.input(":wq<CR>")
            await asyncio.wait_for(b.proc.wait(), 15)
            assert (tmp_path / "bob" / PATH).read_text() == INITIAL + line + "\n"
            if how == "kill -9":
                assert [p.name for p in carries.iterdir()] == [held.name]
            else:
                # (kept at its exit: what it held on disk while it ran, claimed by it, is no longer)
                await until(lambda: _kept_a_file(carries), 30, "Bob's pairls-lsp to keep his line")
            await type_script(a, [K("ggO"), "meanwhile", K("<Esc>")], 0.02)
            await until(lambda: _hub_is(hub, invite, "meanwhile\n" + INITIAL), 20, "Ada's line in the room")
            proxy.restore()

            b2 = await start_nvim(tmp_path / "bob", "Bob", hub.url, 150, tmp_path / "home-bob", nvim_binary)
            await b2.call("nvim_command", f"PairlsJoin {proxy.invite(invite)}")
            want = "meanwhile\n" + INITIAL + line + "\n"
            try:
                await until(lambda: _equals(b2, want), 20, "Bob's buffer to show both lines")
            except AssertionError as e:  # (what is left in his state folder says why)
                left = sorted(p.name for p in carries.iterdir())
                raise AssertionError(f"{e}; his state folder: {left}") from e
            await until(lambda: _equals(a, want), 20, "Ada's buffer to show Bob's line")
            assert await hub_text(hub, invite) == want
            assert not await _holds_a_file(carries)  # (taken)
        finally:
            await close_checked(a, b, b2)
    finally:
        await proxy.close()


async def _one_file(folder: Path) -> Path | None:
    found = await asyncio.to_thread(lambda: list(folder.iterdir()) if folder.is_dir() else [])
    return found[0] if len(found) == 1 else None


async def _kept_a_file(folder: Path) -> bool:
    found = await asyncio.to_thread(lambda: [p.name for p in folder.iterdir()] if folder.is_dir() else [])
    return len(found) == 1 and found[0].endswith(".json")


async def _holds_a_file(folder: Path) -> bool:
    return await asyncio.to_thread(lambda: folder.is_dir() and any(folder.iterdir()))


async def _hub_is(hub: HubProcess, invite: str, text: str) -> bool:
    return await hub_text(hub, invite) == text


async def test_half_a_utf16_pair_in_a_buffer_goes_as_a_replacement_character(
    hub: HubProcess, tmp_path: Path, nvim_binary: NvimBinary
) -> None:
    """Bytes that decode to half of a UTF-16 pair (a file read as WTF-8 or CESU-8 holds them) in
    Ada's buffer: the hub refuses that character, so it goes as U+FFFD, Ada's buffer is brought
    to that, and she is told once; the room goes on."""
    a, b, invite = await pair(hub, tmp_path, nvim_binary)
    try:
        await a.lua("vim.api.nvim_buf_set_text(0, 0, 0, 0, 0, {'\\237\\160\\128'})")  # U+D800
        text = await converged(a, b, hub, invite)
        assert text == "\ufffd" + INITIAL
        # (probe.messages only: its record of the didChange holds the bytes, not UTF-8)
        said = [m for m in await a.lua("return probe.messages") if "cannot be shared" in m]
        assert len(said) == 1, said
        await type_script(b, [key("<Esc>GA"), "!", key("<Esc>")], 0.02)
        assert await converged(a, b, hub, invite) == "\ufffd" + INITIAL[:-1] + "!\n"
        assert (await status(a))["heals"] == 0 and (await status(b))["heals"] == 0
    finally:
        await close_checked(a, b)


async def diagnose(a: Nvim, b: Nvim, path: str = PATH) -> str:
    out = []
    for name, nv in (("A", a), ("B", b)):
        probe = await nv.lua("return probe")
        text = await buffer_text(nv, path)
        out.append(f"{name} status: {await status(nv, path)}")
        out.append(f"{name} text ({len(text)} characters): {text[:1500]!r}")
        out.append(
            f"{name}: {len(probe['edits'])} applyEdit, {len(probe['changes'])} didChange,"
            f" states {dict(Counter(s['state'] for s in probe['states']))},"
            f" {len(probe['messages'])} showMessage: {sorted(set(probe['messages']))}"
        )
        out.append(f"{name} probe: {json.dumps(probe, ensure_ascii=False)[:4000]}")
        out.append(f"{name} messages: {(await messages(nv))[-1000:]}")
    return "\n".join(out)


async def _equals(nv: Nvim, text: str) -> bool:
    return await nv.text() == text


async def test_room_document_without_final_newline(
    hub: HubProcess, tmp_path: Path, nvim_binary: NvimBinary
) -> None:
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
        b = await start_nvim(ws, "Bob", hub.url, 150, tmp_path / "home-bob", nvim_binary)
        await b.call("nvim_command", f"PairlsJoin {hub.url}/room/{room['room']}#{room['editorSecret']}")
        await until(lambda: _joined(b), 10, "B to join")
        await b.call("nvim_command", "edit nonl.txt")
        await asyncio.sleep(3)
        assert shared.text in (text, text + "\n"), f"the room's text became {shared.text!r}"
        assert await b.text() == text + "\n"
    finally:
        try:
            await close_checked(b)
        finally:
            await owner.close()


async def _joined(nv: Nvim) -> bool:
    return bool((await status(nv)).get("roomId"))


# -- full-document sync ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "incremental",
    [(False, False), (False, True), (True, False)],
    ids=["both-full", "full-and-incremental", "incremental-and-full"],
)
async def test_full_sync_neovims_type_at_once(
    hub: HubProcess,
    tmp_path: Path,
    nvim_binary: NvimBinary,
    incremental: tuple[bool, bool],
) -> None:
    """``allow_incremental_sync = false`` (``PAIRLS_INCREMENTAL_SYNC=0``) in A, or in both.

    Every didChange of a full-sync Neovim carries the whole text (one change, no range); the
    same typing as the pair test must give the same result.
    """
    a, b, invite = await pair(hub, tmp_path, nvim_binary, incremental=incremental)
    try:
        await type_at_once_and_check(a, b, hub, invite, INITIAL)
    finally:
        try:
            # the harness did what it says: a full-sync Neovim sent only whole texts
            for nv, inc in zip((a, b), incremental, strict=True):
                changes = [c for n in (await nv.lua("return probe"))["changes"] for c in n["changes"]]
                assert changes, "no didChange recorded"
                assert all((c.get("range") is not None) == inc for c in changes), changes
        finally:
            await close_checked(a, b)


# -- leave and join again ------------------------------------------------------------------------


async def type_both_and_check(a: Nvim, b: Nvim, hub: HubProcess, invite: str, tag: str) -> str:
    """A and B each append a line at once; both lines must reach the other and the hub, once."""
    line_a, line_b = f"ada {tag} ✓", f"bob {tag} é"
    await asyncio.gather(
        type_script(a, [key("<Esc>ggO", "\n"), line_a, key("<Esc>")], 0.03),
        type_script(b, [key("<Esc>Go", "\n"), line_b, key("<Esc>")], 0.03),
    )
    text = await converged(a, b, hub, invite)
    for line in (line_a, line_b):
        assert text.count(line) == 1, (line, text)
    return text


async def test_leave_and_join_the_same_room_again(
    hub: HubProcess, tmp_path: Path, nvim_binary: NvimBinary
) -> None:
    """B types, ``:PairlsLeave``, A types meanwhile, ``:PairlsJoin`` again; then both type."""
    a, b, invite = await pair(hub, tmp_path, nvim_binary)
    try:
        await type_both_and_check(a, b, hub, invite, "before leaving")
        await b.call("nvim_command", "PairlsLeave")
        await until(lambda: _left(b), 10, "B to leave")
        await type_script(a, [key("<Esc>GA"), " while Bob was out", key("<Esc>")], 0.03)
        await until(lambda: _hub_shows(hub, invite, a), 10, "A's typing to reach the hub")
        await b.call("nvim_command", f"PairlsJoin {invite}")
        await until(lambda: _joined(b), 10, "B to join again")
        await converged(a, b, hub, invite)  # B's buffer shows what A typed meanwhile
        text = await type_both_and_check(a, b, hub, invite, "after joining again")
        assert text.count(" while Bob was out") == 1, text
        assert text.count("bob before leaving é") == 1, text
    finally:
        await close_checked(a, b)


async def test_leave_and_join_another_room(hub: HubProcess, tmp_path: Path, nvim_binary: NvimBinary) -> None:
    """B types in A's room, leaves it and joins Cleo's room (a hub client) with a notes.txt."""
    a, b, invite = await pair(hub, tmp_path, nvim_binary)
    cleo = await Peer(hub.url, "Cleo").connect()
    try:
        await type_both_and_check(a, b, hub, invite, "in room one")
        room = await cleo.create_room("two")
        await cleo.create_document(PATH, "room two\n")
        shared = await cleo.open(PATH)
        await b.call("nvim_command", "PairlsLeave")
        await until(lambda: _left(b), 10, "B to leave")
        await b.call("nvim_command", f"PairlsJoin {hub.url}/room/{room['room']}#{room['editorSecret']}")
        await until(lambda: _equals(b, "room two\n"), 15, "B's buffer to become room two's text")
        await type_script(b, [key("<Esc>GA"), " — Bob in room two 😀", key("<Esc>")], 0.03)
        want = "room two — Bob in room two 😀\n"
        try:
            await until(lambda: _shows(shared, want), 15, "Cleo to see B's typing")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {shared.text!r}\n{await diagnose(a, b)}") from None
        await until(lambda: _equals(b, want), 5, "B's buffer to stay as typed")
        assert await a.text() == await hub_text(hub, invite), "room one changed"
        assert "room two" not in await a.text()
    finally:
        await cleo.close()
        await close_checked(a, b)


async def _shows(doc: Any, text: str) -> bool:
    return bool(doc.text == text)


async def _left(nv: Nvim) -> bool:
    return (await status(nv)).get("roomId") is None


async def _hub_shows(hub: HubProcess, invite: str, nv: Nvim) -> bool:
    return await hub_text(hub, invite) == await nv.text()


# -- the room's owner ------------------------------------------------------------------------------


async def participant_id(nv: Nvim) -> str:
    """The Neovim's own participant id, from pairls.participants."""
    parts = await nv.lua(
        "local r = vim.lsp.buf_request_sync(0, 'workspace/executeCommand',"
        " { command = 'pairls.participants', arguments = { vim.empty_dict() } }, 5000)"
        " for _, v in pairs(r or {}) do return v.result.participants end"
    )
    return str(next(p["id"] for p in parts if p.get("self")))


async def told(nv: Nvim, text: str) -> bool:
    return any(text in m for m in await nv.lua("return probe.messages") or [])


async def test_the_owners_commands(hub: HubProcess, tmp_path: Path, nvim_binary: NvimBinary) -> None:
    """:PairlsRole, :PairlsRotateInvites, :PairlsKick and :PairlsDeleteRoom from Ada's Neovim."""
    a, b, invite = await pair(hub, tmp_path, nvim_binary)
    try:
        bob = await participant_id(b)
        await a.call("nvim_command", f"PairlsRole viewer {bob}")
        await until(lambda: told(b, "made you a viewer"), 10, "B to be told it is a viewer")
        await type_script(b, [key("<Esc>ggI"), "viewer typing ", key("<Esc>")], 0.03)
        await until(lambda: _equals(b, INITIAL), 15, "B's typing to be undone")
        await a.call("nvim_command", f"PairlsRole editor {bob}")
        await until(lambda: told(b, "made you an editor"), 10, "B to be told it is an editor")
        await type_both_and_check(a, b, hub, invite, "as editors again")

        await a.call("nvim_command", "PairlsRotateInvites")
        new = await until(lambda: _changed_register(a, invite), 15, "the new invite in A's register")
        await until(lambda: _left(b), 10, "B to be out after the rotation")
        assert await told(b, "changed the invites")
        await b.call("nvim_command", f"PairlsJoin {new}")
        await until(lambda: _joined(b), 10, "B to join with the new invite")

        await a.call("nvim_command", f"PairlsKick {await participant_id(b)}")
        await until(lambda: _left(b), 10, "B to be removed")
        assert await told(b, "removed from the room by the owner")

        await a.call("nvim_command", "PairlsDeleteRoom!")
        await until(lambda: _left(a), 10, "A to be out of the deleted room")
        peer = await Peer(hub.url, "checker").connect()
        try:
            inv = parse_invite(str(new))
            with pytest.raises(HubError) as info:
                await peer.join(inv.room_id, inv.secret)
            assert info.value.code == "no_such_room"
        finally:
            await peer.close()
    finally:
        await close_checked(a, b)


async def _changed_register(nv: Nvim, old: str) -> str | None:
    reg = str(await nv.call("nvim_call_function", "getreg", ['"']))
    return reg if reg.startswith("http://") and reg != old else None


# -- history ---------------------------------------------------------------------------------------


async def shows(nv: Nvim, text: str) -> bool:
    return await buffer_text(nv, PATH) == text


async def test_undo_and_redo_my_changes_keep_the_others_text(
    hub: HubProcess, tmp_path: Path, nvim_binary: NvimBinary
) -> None:
    """Ada makes two changes, Bob types around and inside them; :PairlsUndo twice takes back
    Ada's only, in both Neovims and on the hub; :PairlsRedo brings the older back; then
    :PairlsHistory picks a change and opens the document as it was then, read-only, and
    :PairlsOpenRevision 0 the text it was created with."""
    a, b, invite = await pair(hub, tmp_path, nvim_binary)
    try:
        await type_script(a, [key("<Esc>2GA"), " [ada]", key("<Esc>")], 0.03)
        await until(lambda: quiescent(a, b), 15, "Ada's first change everywhere")
        await asyncio.sleep(1.2)  # a pause: what Ada types next is another change
        await type_script(a, [key("<Esc>ggO", "\n"), "ada top", key("<Esc>")], 0.03)
        await until(lambda: quiescent(a, b), 15, "Ada's second change everywhere")
        # Bob types inside Ada's first change, at the start of her second, and after all
        await type_script(
            b, [key("<Esc>/\\[ada<CR>a"), "BOB", key("<Esc>ggI"), "bob: ", key("<Esc>Go", "\n")], 0.03
        )
        await type_script(b, ["bob line", key("<Esc>")], 0.03)
        both = "bob: ada top\nfirst line\nsecond line [BOBada]\nthird line\n# end\nbob line\n"
        await until(lambda: shows(a, both), 15, "Bob's typing at Ada's")
        await until(lambda: quiescent(a, b), 15, "quiet before the undo")

        await a.call("nvim_command", "PairlsUndo")
        mine_gone = "bob: first line\nsecond line [BOBada]\nthird line\n# end\nbob line\n"
        await until(lambda: shows(b, mine_gone), 15, "the first undo at Bob's")
        await a.call("nvim_command", "PairlsUndo")
        only_bob = "bob: first line\nsecond lineBOB\nthird line\n# end\nbob line\n"
        await until(lambda: shows(b, only_bob), 15, "the second undo at Bob's")
        assert await converged(a, b, hub, invite) == only_bob
        await a.call("nvim_command", "PairlsRedo")
        await until(lambda: shows(b, mine_gone), 15, "the redo at Bob's")
        assert await converged(a, b, hub, invite) == mine_gone
        # Bob's hover on the line Ada's redo brought back names her
        said = await b.lua(HOVER_LINE_2)
        assert said["kind"] == "markdown" and said["value"].startswith("**Ada**, just now · rev "), said
        # Bob has nothing of his own undone: said in words, nothing changes
        await b.call("nvim_command", "PairlsRedo")
        await until(lambda: told_error(b, "Nothing of yours to redo in this document"), 10, "Bob told")
        said = await messages(a)
        assert "pairls: undid your last change (rev" in said and "pairls: redid your change (rev" in said
        assert "Nothing of yours" not in said and "failed" not in said, said

        # the history, as Ada picks the change that made "ada top"; then revision 0
        assert await a.lua(PICK_ADA_TOP)
        await a.call("nvim_command", "PairlsHistory")
        picked = await until(lambda: a.lua("return _G.picked_rev"), 10, "the history list")
        opened = await until(lambda: revision_buffer(a, picked), 10, "the revision opened")
        assert opened["text"] == "ada top\nfirst line\nsecond line [ada]\nthird line\n# end\n"
        assert opened["readonly"] and not opened["modifiable"]
        cache = (tmp_path / "home-ada" / "cache" / "pairls" / "revisions").resolve()
        assert Path(opened["name"]).is_relative_to(cache) and Path(opened["name"]).name == PATH
        await a.call("nvim_command", f"buffer {await a.lua('return vim.fn.bufnr(...)', PATH)}")
        await a.call("nvim_command", "PairlsOpenRevision 0")
        zero = await until(lambda: revision_buffer(a, 0), 10, "revision 0 opened")
        assert zero["text"] == INITIAL
        # nothing of this went to the room
        assert await hub_text(hub, invite) == mine_gone
        assert list((await status(a)).get("documents", {})) == [PATH]

        # typed and undone at once, within the didChange debounce: the request sends the
        # typing first (Neovim flushes before a request), so the undo takes back what was typed
        await a.call("nvim_command", f"buffer {await a.lua('return vim.fn.bufnr(...)', PATH)}")
        await a.input("<Esc>ggIzz<Esc>:PairlsUndo<CR>")
        newest = await until(lambda: undid_the_last_edit(a), 15, "an undo of the typing in the history")
        assert newest["edit"]["inserted"] == 2 and newest["edit"]["name"] == "Ada", newest
        assert await converged(a, b, hub, invite) == mine_gone
    finally:
        await close_checked(a, b)


# what the language server answers to a hover on line 2 (0-based 1) of the current buffer
HOVER_LINE_2 = r"""
local params = { textDocument = { uri = vim.uri_from_bufnr(0) }, position = { line = 1, character = 0 } }
local r = vim.lsp.buf_request_sync(0, 'textDocument/hover', params, 5000)
for _, v in pairs(r or {}) do if v.result then return v.result.contents end end
"""


# vim.ui.select as a user answers it: the change whose text holds "ada top" (Ada's second)
PICK_ADA_TOP = r"""
vim.ui.select = function(items, opts, on_choice)
  for _, c in ipairs(items) do
    if c.name == 'Ada' and c.inserted == 8 and not c.kind then
      _G.picked_rev = c.rev
      return on_choice(c)
    end
  end
  _G.picked_rev = -1
  on_choice(nil)
end
return true
"""


async def revision_buffer(nv: Nvim, rev: int) -> dict[str, Any] | None:
    """The current buffer if it is a revision file of *rev*: its name, text and flags."""
    return await nv.lua(  # type: ignore[no-any-return]
        "local n = vim.api.nvim_buf_get_name(0)"
        " if not n:find('/revisions/[^/]+/' .. ... .. '/') then return nil end"
        " local t = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, true), '\\n')"
        " if vim.bo.eol then t = t .. '\\n' end"
        " return { name = vim.fn.resolve(n), text = t,"
        " readonly = vim.bo.readonly, modifiable = vim.bo.modifiable }",
        str(rev),
    )


async def undid_the_last_edit(nv: Nvim) -> dict[str, Any] | None:
    """The newest history entry if it is an undo of the edit just before it (else None)."""
    history = await nv.lua(
        "local r = vim.lsp.buf_request_sync(0, 'workspace/executeCommand', { command = 'pairls.history',"
        " arguments = { { uri = vim.uri_from_bufnr(0), limit = 2 } } }, 5000)"
        " for _, v in pairs(r or {}) do return v.result end"
    )
    changes = (history or {}).get("changes", [])
    if (
        len(changes) == 2
        and changes[0].get("kind") == "undo"
        and changes[0]["toggles"] == changes[1]["firstRev"]
    ):
        return {"undo": changes[0], "edit": changes[1]}
    return None


async def told_error(nv: Nvim, text: str) -> bool:
    return text in await messages(nv)


# -- larger than a hub frame -----------------------------------------------------------------------


def big_text(size: int, seed: int) -> str:
    """About *size* bytes of UTF-8 in lines of varied length, some of them not ASCII."""
    rng = random.Random(seed)
    words = ["pair", "programming", "é", "naïve", "✓", "😀", "λx", "数据", "line", "text", "—"]
    lines = []
    total = 0
    n = 0
    while total < size:
        line = f"{n:06d} " + " ".join(rng.choice(words) for _ in range(rng.randint(0, 24)))
        lines.append(line)
        total += len(line.encode("utf-8")) + 1
        n += 1
    return "\n".join(lines) + "\n"


def no_reconnect_loop(probe: dict[str, Any], who: str) -> None:
    lost = [m for m in probe["messages"] if "lost the connection" in m]
    disconnects = [s for s in probe["states"] if s["state"] == "disconnected"]
    assert not lost and not disconnects, f"{who}: {len(disconnects)} disconnects, messages {lost[:3]}"


async def disconnects(nv: Nvim) -> int:
    """How many times this Neovim's pairls-lsp reported losing the hub (pairls/status)."""
    return int(
        await nv.lua(
            "local n = 0 for _, s in ipairs(probe.states) do"
            " if s.state == 'disconnected' then n = n + 1 end end return n"
        )
    )


async def until_unless_disconnected(
    pred: Any, watched: Nvim, timeout: float, what: str, diagnosis: Any, *, give_up_after: int = 1
) -> None:
    """Wait for *pred*; stop early once *watched*'s server lost the hub *give_up_after* times.

    Losing the hub is a failure in itself here (a frame too large for it closes the connection).
    """

    async def done() -> bool:
        if await pred():
            return True
        lost = await disconnects(watched)
        if lost >= give_up_after:
            raise AssertionError(
                f"the server lost the hub {lost} times while waiting for {what}\n{await diagnosis()}"
            )
        return False

    try:
        await until(done, timeout, what, interval=0.5)
    except AssertionError as exc:
        if "lost the hub" in str(exc):
            raise
        raise AssertionError(f"{exc}\n{await diagnosis()}") from None


async def test_paste_larger_than_a_hub_frame(
    hub: HubProcess, tmp_path: Path, nvim_binary: NvimBinary
) -> None:
    """B pastes 2.5 MB (30k lines, some not ASCII) into the shared buffer; A gets all of it."""
    paste = big_text(5 * HUB_FRAME_LIMIT // 2, seed=7)
    assert len(paste.encode("utf-8")) > 2 * HUB_FRAME_LIMIT
    a, b, invite = await pair(hub, tmp_path, nvim_binary)
    try:
        # what a terminal's bracketed paste does: nvim_paste (vim.paste), after line 2
        await b.call("nvim_command", "normal! 2G$")
        assert await b.call("nvim_paste", paste, False, -1) is True
        want = await b.text()
        assert paste in want and len(want) == len(INITIAL) + len(paste), "the paste is not in B's buffer"
        await until_unless_disconnected(
            lambda: _equals(a, want),
            b,
            60,
            "A's buffer to hold the paste",
            lambda: diagnose(a, b),
            give_up_after=3,  # show that it is a loop
        )
        text = await converged(a, b, hub, invite, timeout=60)
        assert text == want
        for who, nv in (("A", a), ("B", b)):
            no_reconnect_loop(await nv.lua("return probe"), who)
            assert (await status(nv))["heals"] == 0, who
    finally:
        await close_checked(a, b)


async def test_share_a_file_larger_than_a_hub_frame(
    hub: HubProcess, tmp_path: Path, nvim_binary: NvimBinary
) -> None:
    """B opens a 2 MB file in the room (autoShare); A opens it with :PairlsOpen."""
    big = big_text(2 * HUB_FRAME_LIMIT, seed=11)
    a, b, invite = await pair(hub, tmp_path, nvim_binary)
    try:
        (tmp_path / "bob" / "big.txt").write_text(big, encoding="utf-8")
        await b.call("nvim_command", "edit big.txt")
        # the document is in the room at once, its text follows in ops that each fit a frame
        await until_unless_disconnected(
            lambda: _hub_has(hub, invite, "big.txt", big),
            b,
            60,
            "big.txt whole in the room",
            lambda: diagnose(a, b, "big.txt"),
        )
        # Neovim 0.12 shows it (window/showDocument); on 0.7, which has no showDocument,
        # neovim.lua opens it: either way A lands in big.txt
        await a.call("nvim_command", "PairlsOpen big.txt")
        await until(lambda: _in_file(a, tmp_path / "ada" / "big.txt"), 15, "A in big.txt")
        await until(lambda: quiescent(a, b, "big.txt"), 60, "A and B to agree on big.txt", interval=0.5)
        assert await buffer_text(a, "big.txt") == big
        assert await buffer_text(b, "big.txt") == big
        for who, nv in (("A", a), ("B", b)):
            no_reconnect_loop(await nv.lua("return probe"), who)
            assert (await status(nv))["heals"] == 0, who
    finally:
        await close_checked(a, b)


async def _hub_has(hub: HubProcess, invite: str, path: str, text: str) -> bool:
    return path in await room_paths(hub, invite) and await hub_text(hub, invite, path) == text


async def current_file(nv: Nvim) -> str:
    """The file of the current buffer, symlinks resolved ('' for a buffer with no name)."""
    return str(
        await nv.lua("local n = vim.api.nvim_buf_get_name(0) return n ~= '' and vim.fn.resolve(n) or ''")
    )


async def _in_file(nv: Nvim, path: Path) -> bool:
    return await current_file(nv) == str(await asyncio.to_thread(path.resolve))


# -- no file open ------------------------------------------------------------------------------------

# pairls.status straight from the client: the current buffer may be attached to nothing
CLIENT_STATUS = r"""
local get = vim.lsp.get_clients or vim.lsp.get_active_clients
local c = get({ name = 'pairls' })[1]
if not (c and c.initialized) then return nil end
local params = { command = 'pairls.status', arguments = { vim.empty_dict() } }
local r
if vim.fn.has('nvim-0.11') == 1 then
  r = c:request_sync('workspace/executeCommand', params, 5000, 0)
else
  r = c.request_sync('workspace/executeCommand', params, 5000, 0)
end
return r and r.result
"""


async def start_nvim_with_no_file(ws: Path, name: str, hub_url: str, home: Path, binary: NvimBinary) -> Nvim:
    """``nvim`` in *ws* with no file argument: an empty buffer with no name, no pairls-lsp yet."""
    env = nvim_env(home, PAIRLS_LSP=LSP, PAIRLS_HUB_URL=hub_url, PAIRLS_NAME=name)
    nv = await Nvim.start(ws, ["-u", str(CONFIG)], env, binary=binary.path)
    try:
        assert await current_file(nv) == ""
        assert not await nv.lua(CLIENT), "pairls-lsp started with no file open"
    except BaseException:
        await nv.close()
        raise
    return nv


async def client_status(nv: Nvim) -> dict[str, Any]:
    return await nv.lua(CLIENT_STATUS) or {}  # type: ignore[no-any-return]


async def close_checked(*nvs: Nvim | None) -> None:
    """Close *nvs* (None: never started) through :func:`end_checked`: each pairls-lsp still
    running is asked for its status.  A Neovim with no pairls-lsp (no file was opened) has none
    to ask."""

    async def statuses(nv: Nvim) -> list[dict[str, Any]] | None:
        if nv.proc.returncode is not None or not await nv.lua(CLIENT):
            return None
        st = await client_status(nv)
        return [st] if st else []

    started = [nv for nv in nvs if nv is not None]
    await end_checked(started, lambda k, _: f"Neovim #{k}", statuses, Nvim.close)


async def _client_in_room(nv: Nvim) -> dict[str, Any] | None:
    st = await client_status(nv)
    return st if st.get("roomId") else None


async def no_error_shown(nv: Nvim) -> None:
    """Nothing in :messages says a command failed or an API is deprecated."""
    shown = await messages(nv)
    for bad in ("open a file first", "did not start", "Error", "deprecated"):
        assert bad not in shown, shown


@pytest.mark.parametrize("how", ["edit", "PairlsOpen"])
async def test_join_with_no_file_open(
    hub: HubProcess, tmp_path: Path, nvim_binary: NvimBinary, how: str
) -> None:
    """``nvim`` with no file, ``:PairlsJoin``, then the room's file (``:edit`` it or ``:PairlsOpen``).

    The working directory is the workspace: the room's ``src/notes.txt`` is
    ``src/notes.txt`` under it.  ``:PairlsOpen`` lands in the file on both
    Neovims (0.7 has no ``window/showDocument``: neovim.lua opens it).  What
    is typed there reaches the room.
    """
    ws = tmp_path / "bob"
    ws.mkdir()
    cleo = await Peer(hub.url, "Cleo").connect()
    nv: Nvim | None = None
    try:
        room = await cleo.create_room("no file")
        await cleo.create_document("src/notes.txt", INITIAL)
        shared = await cleo.open("src/notes.txt")
        nv = await start_nvim_with_no_file(ws, "Bob", hub.url, tmp_path / "home-bob", nvim_binary)
        await nv.call("nvim_command", f"PairlsJoin {hub.url}/room/{room['room']}#{room['editorSecret']}")
        joined = await until(lambda: _client_in_room(nv), 15, "B to join")
        assert joined["roomId"] == room["room"] and joined["role"] == "editor", joined
        await nv.call("nvim_command", f"{how} src/notes.txt")
        await until(lambda: _in_file(nv, ws / "src" / "notes.txt"), 15, "B in src/notes.txt")
        await until(lambda: _equals(nv, INITIAL), 15, "B's buffer to hold the room's text")
        await type_script(nv, [key("<Esc>ggA"), " — Bob 😀", key("<Esc>")], 0.03)
        want = INITIAL.replace("first line", "first line — Bob 😀", 1)
        try:
            await until(lambda: _shows(shared, want), 15, "Cleo to see B's typing")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {shared.text!r}\n{await messages(nv)}") from None
        assert await nv.text() == want
        assert (await client_status(nv))["documents"]["src/notes.txt"]["pending"] is False
        await no_error_shown(nv)
    finally:
        await cleo.close()
        await close_checked(nv)


async def test_create_with_no_file_open(hub: HubProcess, tmp_path: Path, nvim_binary: NvimBinary) -> None:
    """``nvim`` with no file, ``:PairlsCreate``; a file opened afterwards is shared, typing reaches it."""
    ws = tmp_path / "ada"
    ws.mkdir()
    (ws / PATH).write_text(INITIAL)
    nv = await start_nvim_with_no_file(ws, "Ada", hub.url, tmp_path / "home-ada", nvim_binary)
    try:
        await nv.call("nvim_command", "PairlsCreate no file")
        invite = await until(
            lambda: nv.call("nvim_call_function", "getreg", ['"']), 15, "the invite in the register"
        )
        assert str(invite).startswith("http://"), invite
        assert (await client_status(nv))["documents"] == {}
        await nv.call("nvim_command", f"edit {PATH}")
        await until(lambda: _hub_has(hub, invite, PATH, INITIAL), 15, f"{PATH} in the room")
        await type_script(nv, [key("<Esc>GA"), " ✓ Ada", key("<Esc>")], 0.03)
        want = INITIAL.replace("# end", "# end ✓ Ada")
        await until(lambda: _hub_has(hub, invite, PATH, want), 15, "A's typing in the room")
        await no_error_shown(nv)
    finally:
        await close_checked(nv)


# -- the LSP boundary, against a recording stand-in server ------------------------------------------

RECORDER = ROOT / "tests" / "support" / "lsp_recorder.py"

APPLY_EDIT = r"""
_G.answer = nil
local get = vim.lsp.get_clients or vim.lsp.get_active_clients
local c = get({ name = 'pairls' })[1]
local params = { command = 'recorder.applyEdit', arguments = { ... } }
local function handler(err, result) _G.answer = { err = err, result = result } end
if vim.fn.has('nvim-0.11') == 1 then
  c:request('workspace/executeCommand', params, handler, 0)
else
  c.request('workspace/executeCommand', params, handler, 0)
end
"""


class Recorded:
    """What one Neovim sent the recorder (tests/support/lsp_recorder.py), read from its log."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def messages(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]

    def method(self, name: str, since: int = 0) -> list[dict[str, Any]]:
        return [m["params"] for m in self.messages()[since:] if m.get("method") == name]

    def did_change(self, since: int) -> list[dict[str, Any]]:
        return self.method("textDocument/didChange", since)


def _range(sl: int, sc: int, el: int, ec: int) -> dict[str, Any]:
    return {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}


@pytest.mark.parametrize(
    "incremental,debounce",
    [(True, 150), (True, 0), (False, 150)],
    ids=["incremental-debounce150", "incremental-debounce0", "full-debounce150"],
)
async def test_lsp_boundary(
    tmp_path: Path,
    nvim_binary: NvimBinary,
    incremental: bool,
    debounce: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What Neovim sends and answers, through docs/editors/neovim.lua, to a recording server.

    Pins down docs/editors/neovim-notes.md: the position encodings offered, didOpen's
    version, incremental or whole-text didChange, the debounce, the answer to a stale
    versioned applyEdit, and how an applyEdit with several TextEdits comes back.
    """
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / PATH).write_text(INITIAL)
    rec = Recorded(tmp_path / "recorded.jsonl")
    server = tmp_path / "server.sh"
    server.write_text(f"#!/bin/sh\nexec {sys.executable} {RECORDER} {rec.log}\n")
    server.chmod(0o755)
    env = nvim_env(
        tmp_path / "home",
        PAIRLS_LSP=str(server),
        PAIRLS_DEBOUNCE_MS=str(debounce),
        PAIRLS_INCREMENTAL_SYNC="1" if incremental else "0",
    )
    nv = await Nvim.start(ws, ["-u", str(CONFIG), PATH], env, binary=nvim_binary.path)
    try:
        version = await nv.version()
        await until(lambda: _has(rec, "textDocument/didOpen"), 15, "didOpen")
        init = rec.method("initialize")[0]
        opened = rec.method("textDocument/didOpen")[0]["textDocument"]
        uri = opened["uri"]
        assert init["clientInfo"]["name"] == "Neovim"
        assert init["clientInfo"]["version"].startswith(version.removesuffix("-dev"))
        offered = (init["capabilities"].get("general") or {}).get("positionEncodings")
        assert opened["version"] == 0
        assert opened["text"] == INITIAL

        async def tick() -> int:
            return int(await nv.lua("return vim.b.changedtick"))

        # -- typing: the buffer's first changes ---------------------------------------------------
        n = len(rec.messages())
        await nv.input("ggA")
        for ch in "xyz":
            await nv.input(ch)
            await asyncio.sleep(0.02)
        await nv.input("<Esc>")
        await asyncio.sleep(1.0)
        typing = rec.did_change(n)
        assert typing and typing[-1]["textDocument"]["version"] == await tick()
        if debounce:
            # nothing goes until a 150 ms pause (the timer restarts on every change)
            assert len(typing) == 1, typing
        else:
            now = await tick()
            assert [d["textDocument"]["version"] for d in typing] == [now - 2, now - 1, now]
        changes = [c for d in typing for c in d["contentChanges"]]
        if incremental:
            assert [c["text"] for c in changes] == ["x", "y", "z"]
            assert changes[0]["range"] == _range(0, 10, 0, 10)
        else:
            assert all("range" not in c for c in changes)
            assert changes[-1]["text"] == INITIAL.replace("first line", "first linexyz")

        # -- slow typing (observed, not asserted: it depends on timing) ----------------------------
        n = len(rec.messages())
        await nv.input("GA")
        for ch in "0123456789":
            await nv.input(ch)
            await asyncio.sleep(0.06)
        await nv.input("<Esc>")
        await asyncio.sleep(1.0)
        slow = [len(d["contentChanges"]) for d in rec.did_change(n)]

        async def apply(edits: list[dict[str, Any]], at: int) -> Any:
            change = {"textDocument": {"uri": uri, "version": at}, "edits": edits}
            params = {"edit": {"documentChanges": [change]}}
            await nv.lua(APPLY_EDIT, params)
            return await until(lambda: nv.lua("return _G.answer"), 10, "the answer to applyEdit")

        # -- a stale versioned applyEdit -------------------------------------------------------------
        before = await nv.text()
        n = len(rec.messages())
        answer = await apply([{"range": _range(0, 0, 0, 0), "newText": "STALE"}], 1)
        await asyncio.sleep(0.5)
        assert answer["result"]["result"] == {"applied": True}, answer  # it says applied...
        assert await nv.text() == before  # ...and changed nothing
        assert rec.did_change(n) == []
        assert "newer than edits" in await messages(nv)

        # -- several TextEdits in one applyEdit, at the buffer's version ------------------------------
        edits = [
            {"range": _range(0, 0, 0, 5), "newText": "FIRST"},
            {"range": _range(2, 0, 2, 0), "newText": "→"},
            {"range": _range(3, 2, 3, 5), "newText": "END😀"},
        ]
        n = len(rec.messages())
        start = await tick()
        answer = await apply(edits, start)
        await asyncio.sleep(1.0)
        assert answer["result"]["result"] == {"applied": True}, answer
        after = await nv.text()
        assert after == "FIRST linexyz\nsecond line\n→third line\n# END😀0123456789\n"
        several = rec.did_change(n)
        assert several[-1]["textDocument"]["version"] == await tick() == start + 3
        changes = [c for d in several for c in d["contentChanges"]]
        if incremental:
            # one buffer change per TextEdit, applied from the last to the first
            assert [(c["range"], c["text"]) for c in changes] == [
                (e["range"], e["newText"]) for e in reversed(edits)
            ]
        else:
            assert changes[-1]["text"] == after
        if not debounce:
            assert [d["textDocument"]["version"] for d in several] == [start + 1, start + 2, start + 3]
        with capsys.disabled():
            print(
                f"\n[neovim {version} boundary incremental={incremental} debounce={debounce}]"
                f" positionEncodings offered {offered}; 3 fast keys -> {len(typing)} didChange;"
                f" 10 keys 60 ms apart -> {len(slow)} didChange {slow};"
                f" stale applyEdit -> {answer['result']['result']} (unchanged);"
                f" 3 TextEdits -> {len(several)} didChange {[len(d['contentChanges']) for d in several]}"
            )
        if nvim_binary.name == "nvim0.7" and version.startswith("0.7."):
            assert offered is None
        elif nvim_binary.name == "nvim-modern":
            assert offered == ["utf-8", "utf-16", "utf-32"]
    finally:
        await nv.close()  # a recording server, not pairls-lsp: nothing to ask


async def _has(rec: Recorded, method: str) -> bool:
    return bool(rec.method(method))


# -- run it together ---------------------------------------------------------------------------

# Bob's answer to window/showMessageRequest (in place of his pick in the prompt): recorded
ANSWER_ASKS = """
_G.asked = {}
vim.lsp.handlers['window/showMessageRequest'] = function(_, params)
  table.insert(_G.asked, params.message)
  return vim.NIL
end
"""


async def test_run_for_the_room_from_neovim(hub: HubProcess, tmp_path: Path, nvim_binary: NvimBinary) -> None:
    """Ada's :PairlsRun runs a command line in her folder; its output opens read-only at
    hers and Bob (told) opens it with :PairlsOpen and sees every line and the end line."""
    a, b, _ = await pair(hub, tmp_path, nvim_binary)
    try:
        await b.lua(ANSWER_ASKS)
        await a.call(
            "nvim_command",
            "PairlsRun python3 -c \"import sys; print('hi from', 'Ada'); open('ran', 'w'); sys.exit(3)\"",
        )
        said = await until(lambda: _run_path(a), 15, "Ada told where the output is")
        end = "exit status 3 after"
        await until(lambda: _buffer_has(a, said, end), 20, "the run's end at Ada's")
        assert (tmp_path / "ada" / "ran").exists() and not (tmp_path / "bob" / "ran").exists()
        assert await a.lua("return vim.bo[vim.fn.bufnr(...)].readonly", said) is True
        asked = await until(lambda: b.lua("return #_G.asked > 0 and _G.asked[1] or nil"), 15, "Bob told")
        assert asked == f"pairls: Ada started a run for the room ({said})"
        await b.call("nvim_command", f"PairlsOpen {said}")
        await until(lambda: _buffer_has(b, said, end), 20, "the run's end at Bob's")
        text = await buffer_text(b, said)
        assert "\nhi from Ada\n" in text and "run by Ada: exit status 3" in text, repr(text.splitlines()[1:])
        assert text == await buffer_text(a, said)
        # no drift healed on the way (a heal is a bug: the buffer and the room disagreed)
        for who, nv in (("Ada", a), ("Bob", b)):
            assert (await status(nv))["heals"] == 0, who
    finally:
        await close_checked(a, b)


async def _run_path(nv: Nvim) -> str | None:
    for line in (await messages(nv)).splitlines():
        if line.startswith("pairls: running (") and line.endswith("); :PairlsStopRun stops it"):
            return line.removeprefix("pairls: running (").removesuffix("); :PairlsStopRun stops it")
    return None


async def _buffer_has(nv: Nvim, path: str, text: str) -> bool:
    return text in await buffer_text(nv, path)
