"""Two real Emacs (eglot) instances pair-program through pairls-lsp and a real hub.

Each Emacs is a daemon (``emacs --daemon=SOCKET``) with its own HOME, whose
init file loads the user-facing config ``docs/editors/pairls.el``; each has
its own workspace (a git checkout: eglot's project), its own ``pairls-lsp``;
one hub subprocess on a real PostgreSQL.  A creates the room with
``pairls-create-room`` (through ``emacsclient --eval``), B joins with
``pairls-join-room``; B's stale local copy is replaced by the room's text.

Then both type at once.  A edits through ``emacsclient --eval`` (goto-char,
insert, newline, delete-region).  B types keystrokes into a terminal frame
(``emacsclient -t`` on a pseudo-terminal), as a user does: real input, so
eglot's didChange debounce (``eglot-send-changes-idle-time``, 0.5 s) runs
as it does for a user and batches B's changes, and A's edits reach B's Emacs
with a version older than its buffer: eglot refuses them with an error and the
bridge must send them again.  (A daemon that only gets ``--eval`` never stops
being idle, so its eglot sends didChange at once.)

After quiescence (``pairls-status`` from each Emacs: nothing pending, same
revision) both buffers must equal the hub's text and hold every typed
character exactly once.  A probe (advice in the test's init file, not in
pairls.el) records every edit eglot applied or refused, every didChange it
sent, every ``pairls/status`` state and every ``window/showMessage``.  The
same again with B's route to the hub slow (every byte held 0.15 s each way).

Then the detours, edits made through ``emacsclient --eval``: leaving and
joining again (the same room, another room) with ``pairls-leave-room`` and
``pairls-join-room``, and an insertion and a file larger than the hub's
1 MiB frame limit.  And a folder that is not a VC checkout, whose project
root is where its ``.pairls`` marker is (pairls.el's rule for project.el).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import json
import os
import pty
import random
import shutil
import struct
import subprocess
import sys
import termios
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from lsp_bridge.invite import parse_invite
from tests.support import hubclient
from tests.support.hubclient import HubError, Peer
from tests.support.hubproc import HubProcess
from tests.support.lsp_editor import end_checked
from tests.support.proxy import TcpProxy

EMACS = shutil.which("emacs")
EMACSCLIENT = shutil.which("emacsclient")


def _has_eglot() -> bool:
    if EMACS is None or EMACSCLIENT is None:
        return False
    r = subprocess.run(
        [EMACS, "--batch", "--eval", "(require 'eglot)"], capture_output=True, timeout=60, check=False
    )
    return r.returncode == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not _has_eglot() and not os.environ.get("CI"),
        reason="emacs with eglot is not installed (make sysdeps); in CI this fails instead",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "docs" / "editors" / "pairls.el"
LSP = str(Path(sys.executable).with_name("pairls-lsp"))
PATH = "notes.txt"
INITIAL = "first line\nsecond line\nthird line\n# end\n"

# Test-only probe, loaded after pairls.el: what eglot did with each applyEdit and each didChange.
PROBE_VALUE = (
    "(list :edits (vconcat (reverse pairls-probe-edits)) :changes (vconcat (reverse pairls-probe-changes))"
    " :states (vconcat (reverse pairls-probe-states)) :messages (vconcat (reverse pairls-probe-messages)))"
)
# (didChange texts longer than 4096 characters are recorded by length only; every pairls/status
# state and every window/showMessage are recorded too)
PROBE = r"""
(defvar pairls-probe-edits nil)
(defvar pairls-probe-changes nil)
(defvar pairls-probe-states nil)
(defvar pairls-probe-messages nil)
(cl-defmethod eglot-handle-notification :before
  ((_server pairls-eglot-server) (_method (eql 'pairls/status)) &rest status)
  (push (plist-get status :state) pairls-probe-states))
(cl-defmethod eglot-handle-notification :before
  (_server (_method (eql 'window/showMessage)) &rest params)
  (push (plist-get params :message) pairls-probe-messages))
(advice-add 'eglot--apply-text-edits :around
  (lambda (orig edits &optional version)
    (let ((before eglot--versioned-identifier))
      (condition-case err
          (prog1 (funcall orig edits version)
            (push (list :version version :buffer before :after eglot--versioned-identifier :ok t)
                  pairls-probe-edits))
        (error
         (push (list :version version :buffer before :ok :json-false
                     :error (error-message-string err))
               pairls-probe-edits)
         (signal (car err) (cdr err)))))))
(advice-add 'jsonrpc-notify :before
  (lambda (_conn method params)
    (when (eq method :textDocument/didChange)
      (push (list :version (plist-get (plist-get params :textDocument) :version)
                  :changes (vconcat
                            (mapcar (lambda (c)
                                      (let ((text (plist-get c :text)))
                                        (if (> (length text) 4096)
                                            (list :range (plist-get c :range) :length (length text))
                                          c)))
                                    (plist-get params :contentChanges))))
            pairls-probe-changes))))
"""


class Emacs:
    """One Emacs daemon with its own HOME; ``eval`` runs a form through emacsclient."""

    def __init__(self, name: str, home: Path, ws: Path, hub_url: str) -> None:
        self.name = name
        self.home = home
        self.ws = ws
        self.socket = home / "server"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PAIRLS_", "XDG_", "EMACS"))},
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "TERM": "xterm-256color",
            "PAIRLS_LSP": LSP,
            "PAIRLS_HUB_URL": hub_url,
            "PAIRLS_NAME": name,
        }
        self.pid: int | None = None
        self._n = itertools.count()
        self.tty: subprocess.Popen[bytes] | None = None
        self.tty_fd: int | None = None

    async def start(self) -> None:
        init = self.home / ".emacs.d" / "init.el"
        init.parent.mkdir(parents=True, exist_ok=True)  # (exists: the same user's Emacs again)
        init.write_text(f"(load {json.dumps(str(CONFIG))})\n{PROBE}", encoding="utf-8")
        assert EMACS is not None
        proc = await asyncio.create_subprocess_exec(
            EMACS,
            f"--daemon={self.socket}",
            cwd=self.ws,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode(errors="replace")
        self.pid = int(await self.eval("(emacs-pid)"))

    async def eval(self, form: str, timeout: float = 20) -> Any:
        """Evaluate *form* in the daemon; its value comes back through a JSON file."""
        out = self.home / f"eval-{next(self._n)}.json"
        wrapped = (
            f"(let ((value (progn {form})) (coding-system-for-write 'utf-8-unix))"
            f" (with-temp-file {json.dumps(str(out))} (insert (json-encode value))) nil)"
        )
        assert EMACSCLIENT is not None
        proc = await asyncio.create_subprocess_exec(
            EMACSCLIENT,
            "-s",
            str(self.socket),
            "--eval",
            wrapped,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
        if proc.returncode != 0 or b"*ERROR*" in stderr + stdout:
            messages = await self.messages()
            raise AssertionError(
                f"{self.name}: {form} -> {(stderr + stdout).decode(errors='replace')}\n{messages}"
            )
        value = json.loads(out.read_text(encoding="utf-8"))
        out.unlink()
        return value

    async def messages(self) -> str:
        """The end of the daemon's *Messages* (for failures)."""
        assert EMACSCLIENT is not None
        proc = await asyncio.create_subprocess_exec(
            EMACSCLIENT,
            "-s",
            str(self.socket),
            "--eval",
            '(with-current-buffer "*Messages*" (buffer-substring-no-properties'
            " (max (point-min) (- (point-max) 3000)) (point-max)))",
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
        return out.decode(errors="replace")

    def in_buffer(self, body: str, path: str = PATH) -> str:
        return f"(with-current-buffer (find-file-noselect {json.dumps(str(self.ws / path))}) {body})"

    async def text(self, path: str = PATH) -> str:
        return str(
            await self.eval(self.in_buffer("(buffer-substring-no-properties (point-min) (point-max))", path))
        )

    async def status(self) -> dict[str, Any]:
        return await self.eval(self.in_buffer("(pairls-status)"))  # type: ignore[no-any-return]

    async def disconnects(self) -> int:
        """How many times pairls-lsp reported losing the hub (pairls/status)."""
        return int(await self.eval('(cl-count "disconnected" pairls-probe-states :test #\'equal)'))

    # -- a terminal frame, typed into like a user ---------------------------------------------

    def open_tty(self) -> None:
        """``emacsclient -t FILE`` on a pseudo-terminal; its output is read and dropped."""
        assert EMACSCLIENT is not None
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        self.tty = subprocess.Popen(
            [EMACSCLIENT, "-t", "-s", str(self.socket), str(self.ws / PATH)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=self.env,
            start_new_session=True,
        )
        os.close(slave)
        self.tty_fd = master
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, self._drain)

    def _drain(self) -> None:
        assert self.tty_fd is not None
        try:
            os.read(self.tty_fd, 65536)
        except OSError:
            asyncio.get_running_loop().remove_reader(self.tty_fd)

    async def keys(self, keys: str) -> None:
        assert self.tty_fd is not None
        os.write(self.tty_fd, keys.encode("utf-8"))

    async def close(self) -> None:
        if self.tty is not None and self.tty_fd is not None:
            with contextlib.suppress(Exception):
                await self.eval("(dolist (f (frame-list)) (when (eq (framep f) t) (delete-frame f t)))", 5)
            asyncio.get_running_loop().remove_reader(self.tty_fd)
            try:
                await asyncio.to_thread(self.tty.wait, 5)
            except subprocess.TimeoutExpired:
                self.tty.kill()
                self.tty.wait()
            os.close(self.tty_fd)
        if self.pid is not None:
            with contextlib.suppress(Exception):
                await self.eval("(run-at-time 0 nil #'kill-emacs)", 5)
            for _ in range(100):
                if not _alive(self.pid):
                    break
                await asyncio.sleep(0.05)
            else:
                os.kill(self.pid, 9)


# pairls.status from every pairls-lsp this Emacs runs (whatever buffer each manages)
ALL_STATUSES = """
(let (out)
  (maphash (lambda (_project servers)
             (dolist (s servers)
               (when (jsonrpc-running-p s)
                 (push (jsonrpc-request s :workspace/executeCommand
                                        (list :command "pairls.status" :arguments (vector eglot--{}))
                                        :timeout 10)
                       out))))
           eglot--servers-by-project)
  (vconcat out))
"""


async def close_checked(*editors: Emacs) -> None:
    """Close *editors* through :func:`end_checked`: every pairls-lsp each still runs is asked
    for its status."""

    async def statuses(e: Emacs) -> list[dict[str, Any]] | None:
        if e.pid is None or not _alive(e.pid):
            return None
        return list(await e.eval(ALL_STATUSES))

    await end_checked(editors, lambda _, e: e.name, statuses, Emacs.close)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of a daemon we started (its parent exited) counts as gone
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False
    return True


async def until(pred: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


@pytest.fixture
async def hub(database_url: str) -> AsyncIterator[HubProcess]:
    proc = HubProcess(database_url=database_url)
    try:
        await asyncio.to_thread(proc.wait_ready)
        yield proc
    finally:
        await asyncio.to_thread(proc.__exit__, None, None, None)


async def quiescent(a: Emacs, b: Emacs, path: str = PATH) -> bool:
    sa, sb = await a.status(), await b.status()
    da, db = (sa.get("documents") or {}).get(path), (sb.get("documents") or {}).get(path)
    if not da or not db or da["pending"] or db["pending"] or da["rev"] != db["rev"]:
        return False
    return await a.text(path) == await b.text(path)


def workspace(path: Path, text: str) -> Path:
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / PATH).write_text(text, encoding="utf-8")
    return path


# A edits through emacsclient --eval: (form, text it inserts)
A_STEPS = [
    ('(goto-char (point-min)) (end-of-line) (insert " 😀 from Ada")', " 😀 from Ada"),
    ("(newline)", "\n"),
    ("(insert \"ada = 'é'\")", "ada = 'é'"),
    (
        '(goto-char (point-min)) (when (search-forward "third " nil t)'
        " (delete-region (match-beginning 0) (match-end 0)))",
        "",
    ),
    ('(goto-char (point-max)) (insert "(end ✓)") (newline)', "(end ✓)\n"),
    *[(f'(goto-char (point-min)) (forward-line 2) (insert "A{i}·")', f"A{i}·") for i in range(6)],
]

# B types into its terminal frame: (keys, text they insert)
B_KEYS = [
    ("\x1b<", ""),  # M-<
    ("B🎉 ", "B🎉 "),
    ("\x0e\x05", ""),  # C-n C-e
    (" <bob>", " <bob>"),
    ("x\x7f", ""),  # a typo, and DEL
    ("\x1b>", ""),  # M->
    ("bob = 2 👩‍💻", "bob = 2 👩‍💻"),
    ("\x0f", "\n"),  # C-o: open-line (a newline, no indentation)
    ("\x1b<\x0e\x0e\x0e", ""),
    ("«fin»", "«fin»"),
    ("\x1b<", ""),
    ("# ", "# "),
]


async def run_a(a: Emacs) -> None:
    # B is already typing when A's first edit reaches it (its eglot has changes not yet sent)
    await asyncio.sleep(0.3)
    for form, _ in A_STEPS:
        await a.eval(a.in_buffer(form))
        await asyncio.sleep(0.08)


async def run_b(b: Emacs) -> None:
    for keys, _ in B_KEYS:
        for ch in keys if not keys.startswith("\x1b") else [keys]:
            await b.keys(ch)
            await asyncio.sleep(0.03)


@pytest.mark.parametrize("bob_lag", [0.0, 0.15], ids=["near", "slow-route"])
async def test_two_emacs_type_at_once(
    hub: HubProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str], bob_lag: float
) -> None:
    """*slow-route*: every byte between Bob's server and the hub is held 0.15 s each way."""
    if not bob_lag:
        await _two_emacs_type_at_once(hub, tmp_path, capsys, None, 0.0)
        return
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        await _two_emacs_type_at_once(hub, tmp_path, capsys, proxy, bob_lag)
    finally:
        await proxy.close()


async def _two_emacs_type_at_once(
    hub: HubProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str], via: TcpProxy | None, lag: float
) -> None:
    wa = workspace(tmp_path / "ada", INITIAL)
    wb = workspace(tmp_path / "bob", "bob's stale copy\n")  # the room's text wins when B joins
    a = Emacs("Ada", tmp_path / "home-ada", wa, hub.url)
    b = Emacs("Bob", tmp_path / "home-bob", wb, hub.url)
    a.home.mkdir()
    b.home.mkdir()
    try:
        await asyncio.gather(a.start(), b.start())
        # -- A creates the room from Emacs, B joins from Emacs -----------------------------------
        invite = await a.eval(a.in_buffer('(plist-get (pairls-create-room "demo") :invite)'))
        assert isinstance(invite, str) and invite.startswith("http://"), invite
        assert await a.eval("(current-kill 0 t)") == invite  # the invite is in the kill ring
        assert (await a.status())["documents"][PATH]["pending"] is False
        b.open_tty()
        await until(
            lambda: b.eval(f"(and (cdr (frame-list)) (get-file-buffer {json.dumps(str(wb / PATH))}) t)"),
            10,
            "B's terminal frame",
        )
        bobs = invite if via is None else via.invite(invite)
        joined = await b.eval(b.in_buffer(f"(pairls-join-room {json.dumps(bobs)})"))
        assert joined["role"] == "editor"
        try:
            await until(lambda: _equals(b, INITIAL), 15, "B's buffer to become the room's text")
            await until(lambda: quiescent(a, b), 15, "quiet after join")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await diagnose(a, b)}") from None
        encoding = await a.eval(
            a.in_buffer(
                "(list (plist-get (eglot--capabilities (eglot-current-server)) :positionEncoding)"
                " (plist-get (eglot-client-capabilities (eglot-current-server)) :general))"
            )
        )

        # -- both type at once ---------------------------------------------------------------------
        if via is not None:
            via.lag(lag)
        await asyncio.gather(run_a(a), run_b(b))

        # -- quiescence, then everyone agrees with the hub --------------------------------------
        try:
            await until(lambda: quiescent(a, b), 30, "both Emacs and the hub to agree", interval=0.25)
        except AssertionError:
            raise AssertionError(await diagnose(a, b)) from None
        text_a, text_b = await a.text(), await b.text()
        inv = parse_invite(invite)
        peer = await Peer(hub.url, "checker").connect()
        try:
            await peer.join(inv.room_id, inv.secret)
            hub_text = (await peer.open(PATH)).text
        finally:
            await peer.close()
        probe = {e.name: await e.eval(PROBE_VALUE) for e in (a, b)}

        refused = {n: [e for e in p["edits"] or [] if e["ok"] is not True] for n, p in probe.items()}
        batched = {n: [c for c in p["changes"] or [] if len(c["changes"]) > 1] for n, p in probe.items()}
        with capsys.disabled():
            print(
                f"\n[emacs e2e] positionEncoding (server, client general caps): {encoding};"
                + "".join(
                    f" {n}: {len(p['edits'] or [])} applyEdit ({len(refused[n])} refused as stale),"
                    f" {len(p['changes'] or [])} didChange ({len(batched[n])} with several changes);"
                    for n, p in probe.items()
                )
            )
            if os.environ.get("PAIRLS_EMACS_PROBE"):
                print(json.dumps(probe, ensure_ascii=False))

        assert text_a == hub_text, (text_a, hub_text)
        assert text_b == hub_text, (text_b, hub_text)
        # nothing typed was lost or doubled
        typed = "".join(t for _, t in A_STEPS) + "".join(t for _, t in B_KEYS)
        expected = Counter(INITIAL + typed)
        expected.subtract(Counter("third "))
        assert Counter(hub_text) == +expected, hub_text
        for fragment in (" 😀 from Ada", "ada = 'é'", "(end ✓)", "B🎉 ", " <bob>", "bob = 2 👩‍💻", "«fin»"):
            assert hub_text.count(fragment) == 1, (fragment, hub_text)
        assert "third " not in hub_text
        # B typed while A's edits arrived: eglot refused at least one as stale (an error
        # answer), and the bridge sent it again (the texts agree and nothing is lost).  (Over
        # the slow route A's edits come to Bob in a few ops: refusals may or may not happen.)
        assert refused["Bob"] or via is not None, probe["Bob"]["edits"]
        assert all("require version" in e["error"] for e in refused["Bob"])
        for e in (a, b):
            assert (await e.status())["heals"] == 0, e.name
        # pairls.el applies pairls edits without a prompt and without eglot's message for each
        for e in (a, b):
            assert "Edit successful" not in await e.messages()
    finally:
        await close_checked(a, b)


async def diagnose(a: Emacs, b: Emacs, path: str = PATH) -> str:
    out = []
    for e in (a, b):
        probe = await e.eval(PROBE_VALUE)
        text = (
            await e.text(path)
            if await e.eval(f"(and (get-file-buffer {json.dumps(str(e.ws / path))}) t)")
            else None
        )
        out.append(f"{e.name} status: {await e.status()}")
        out.append(
            f"{e.name} text: {'<no buffer>' if text is None else f'({len(text)} characters) {text[:1500]!r}'}"
        )
        out.append(
            f"{e.name}: {len(probe['edits'] or [])} applyEdit, {len(probe['changes'] or [])} didChange,"
            f" states {dict(Counter(probe['states'] or []))}, {len(probe['messages'] or [])} showMessage:"
            f" {sorted(set(probe['messages'] or []))}"
        )
        out.append(f"{e.name} messages: {(await e.messages())[-1500:]}")
        out.append(f"{e.name} probe: " + json.dumps(probe, ensure_ascii=False)[:4000])
        events = await e.eval(
            e.in_buffer(
                "(let ((buf (jsonrpc-events-buffer (eglot-current-server))))"
                " (with-current-buffer buf (buffer-substring-no-properties"
                " (max (point-min) (- (point-max) 4000)) (point-max))))"
            )
        )
        out.append(f"{e.name} eglot events (end): {events}")
    return "\n".join(out)


async def _equals(e: Emacs, text: str) -> bool:
    return await e.text() == text


# -- detours: leave and join again, larger than a hub frame ---------------------------------------


async def pair(tmp_path: Path, hub: HubProcess, bob_via: TcpProxy | None = None) -> tuple[Emacs, Emacs, str]:
    """Ada creates a room from Emacs with notes.txt (INITIAL); Bob joins from Emacs (both by eval),
    through *bob_via* if given (his server's connection to the hub goes through it)."""
    wa = workspace(tmp_path / "ada", INITIAL)
    wb = workspace(tmp_path / "bob", "bob's stale copy\n")
    a = Emacs("Ada", tmp_path / "home-ada", wa, hub.url)
    b = Emacs("Bob", tmp_path / "home-bob", wb, hub.url)
    a.home.mkdir()
    b.home.mkdir()
    try:
        await asyncio.gather(a.start(), b.start())
        invite = await a.eval(a.in_buffer('(plist-get (pairls-create-room "demo") :invite)'))
        assert isinstance(invite, str) and invite.startswith("http://"), invite
        bobs = invite if bob_via is None else bob_via.invite(invite)
        joined = await b.eval(b.in_buffer(f"(pairls-join-room {json.dumps(bobs)})"))
        assert joined["role"] == "editor"
        await until(lambda: _equals(b, INITIAL), 15, "B's buffer to become the room's text")
        await until(lambda: quiescent(a, b), 15, "quiet after join")
    except BaseException:
        await asyncio.gather(a.close(), b.close())
        raise
    return a, b, invite


async def hub_text(hub: HubProcess, invite: str, path: str = PATH) -> str:
    return await hubclient.hub_text(hub.url, invite, path)


async def room_paths(hub: HubProcess, invite: str) -> list[str]:
    return await hubclient.room_paths(hub.url, invite)


async def converged(a: Emacs, b: Emacs, hub: HubProcess, invite: str, timeout: float = 30) -> str:
    try:
        await until(lambda: quiescent(a, b), timeout, "both Emacs and the hub to agree", interval=0.25)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{await diagnose(a, b)}") from None
    text = await hub_text(hub, invite)
    assert await a.text() == text, (await a.text(), text)
    assert await b.text() == text, (await b.text(), text)
    return text


async def add_lines(a: Emacs, b: Emacs, hub: HubProcess, invite: str, tag: str) -> str:
    """A adds a first line and B a last line at once; both must reach the other and the hub, once."""
    line_a, line_b = f"ada {tag} ✓", f"bob {tag} é"
    await asyncio.gather(
        a.eval(a.in_buffer(f"(goto-char (point-min)) (insert {json.dumps(line_a + chr(10))})")),
        b.eval(b.in_buffer(f"(goto-char (point-max)) (insert {json.dumps(line_b + chr(10))})")),
    )
    text = await converged(a, b, hub, invite)
    for line in (line_a, line_b):
        assert text.count(line) == 1, (line, text)
    return text


async def test_emacs_save_and_quit_at_once_on_a_slow_route_loses_nothing(
    hub: HubProcess, tmp_path: Path
) -> None:
    """Bob's route to the hub holds every byte 0.2 s each way.  He types a line in his terminal
    frame, saves (eglot sends the changes it was holding back) and quits Emacs at once: Emacs
    sends no ``shutdown``, it sends SIGHUP to his pairls-lsp as it exits and closes its pipes.
    Every key reaches the room and Ada's buffer; his saved file has them too, but the room's
    text wins when he comes back, so a key lost here would be lost for good."""
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        a, b, invite = await pair(tmp_path, hub, bob_via=proxy)
        try:
            line = "typed, saved and quit"
            await _type_save_and_quit(b, line, lambda: proxy.lag(0.2))
            want = INITIAL + line + "\n"  # (the save adds a final newline, as text modes ask)
            await until(lambda: _equals(a, want), 20, "Ada's buffer to show Bob's last line")
            proxy.lag(0)
            assert await hub_text(hub, invite) == want
        finally:
            await close_checked(a, b)
    finally:
        await proxy.close()


async def test_emacs_typing_offline_then_quitting_keeps_it_for_the_next_session(
    hub: HubProcess, tmp_path: Path
) -> None:
    """Bob's network is down.  He types a line, saves and quits Emacs (SIGHUP to his pairls-lsp):
    it waits for the hub a little, then keeps what the hub never had in his state folder.  Ada
    goes on.  Later, the network back, Bob starts Emacs again, opens the file and joins: his
    line reaches the room once, after Ada's, and both buffers show it (without the kept copy, the
    room's older text would have replaced his saved line)."""
    host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    b2: Emacs | None = None
    try:
        a, b, invite = await pair(tmp_path, hub, bob_via=proxy)
        try:
            line = "typed offline"
            await _type_save_and_quit(b, line, proxy.cut)
            saved = INITIAL + line + "\n"
            carries = b.home / ".local" / "state" / "pairls" / "carries"
            assert len(list(carries.iterdir())) == 1
            await a.eval(a.in_buffer('(goto-char (point-min)) (insert "meanwhile\n")'))
            await until(lambda: _hub_shows(hub, invite, a), 10, "Ada's line to reach the hub")
            proxy.restore()

            b2 = Emacs("Bob", b.home, b.ws, hub.url)  # his Emacs, started again
            await b2.start()
            joined = await b2.eval(b2.in_buffer(f"(pairls-join-room {json.dumps(proxy.invite(invite))})"))
            assert joined["role"] == "editor"
            want = "meanwhile\n" + saved
            await until(lambda: _equals(b2, want), 20, "Bob's buffer to show both lines")
            await until(lambda: _equals(a, want), 20, "Ada's buffer to show Bob's line")
            assert await hub_text(hub, invite) == want
            assert list(carries.iterdir()) == []  # (taken)
        finally:
            await close_checked(*[e for e in (a, b, b2) if e is not None])
    finally:
        await proxy.close()


async def _type_save_and_quit(b: Emacs, line: str, then: Callable[[], None]) -> None:
    """In a terminal frame of *b*, after *then* (the route made slow, or cut): the end of the
    buffer, *line* a key at a time, ``C-x C-s``, ``M-x kill-emacs``.  Returns once Emacs and its
    pairls-lsp (which it sent SIGHUP, and which leaves the room before it ends) have both exited,
    with the line and the final newline the save adds (text modes ask for one) in the file."""
    server = int(await b.eval(b.in_buffer("(process-id (jsonrpc--process (eglot-current-server)))")))
    b.open_tty()
    await until(lambda: b.eval("(and (cdr (frame-list)) t)"), 10, "B's terminal frame")
    then()
    await b.keys("\x1b>")  # M->
    for ch in line:
        await b.keys(ch)
        await asyncio.sleep(0.02)
    await b.keys("\x18\x13")  # C-x C-s
    await b.keys("\x1bxkill-emacs\r")  # M-x kill-emacs RET
    await until(lambda: _gone(b.pid), 15, "Bob's Emacs to exit")
    assert (b.ws / PATH).read_text(encoding="utf-8") == INITIAL + line + "\n"
    await until(lambda: _gone(server), 15, "Bob's pairls-lsp to leave the room and end")


async def _gone(pid: int | None) -> bool:
    return pid is not None and not _alive(pid)


async def _left(e: Emacs) -> bool:
    return (await e.status()).get("roomId") is None


async def test_emacs_leave_and_join_the_same_room_again(hub: HubProcess, tmp_path: Path) -> None:
    """B edits, pairls-leave-room, A edits meanwhile, pairls-join-room again; then both edit."""
    a, b, invite = await pair(tmp_path, hub)
    try:
        await add_lines(a, b, hub, invite, "before leaving")
        await b.eval(b.in_buffer("(pairls-leave-room)"))
        await until(lambda: _left(b), 10, "B to leave")
        await a.eval(a.in_buffer('(goto-char (point-max)) (insert "while Bob was out\n")'))
        await until(lambda: _hub_shows(hub, invite, a), 10, "A's edit to reach the hub")
        joined = await b.eval(b.in_buffer(f"(pairls-join-room {json.dumps(invite)})"))
        assert joined["role"] == "editor"
        await converged(a, b, hub, invite)  # B's buffer shows what A wrote meanwhile
        text = await add_lines(a, b, hub, invite, "after joining again")
        assert text.count("while Bob was out") == 1, text
        assert text.count("bob before leaving é") == 1, text
    finally:
        await close_checked(a, b)


async def _hub_shows(hub: HubProcess, invite: str, e: Emacs) -> bool:
    return await hub_text(hub, invite) == await e.text()


async def test_emacs_leave_and_join_another_room(hub: HubProcess, tmp_path: Path) -> None:
    """B edits in A's room, leaves it and joins Cleo's room (a hub client) with a notes.txt."""
    a, b, invite = await pair(tmp_path, hub)
    cleo = await Peer(hub.url, "Cleo").connect()
    try:
        await add_lines(a, b, hub, invite, "in room one")
        room = await cleo.create_room("two")
        await cleo.create_document(PATH, "room two\n")
        shared = await cleo.open(PATH)
        await b.eval(b.in_buffer("(pairls-leave-room)"))
        await until(lambda: _left(b), 10, "B to leave")
        other = f"{hub.url}/room/{room['room']}#{room['editorSecret']}"
        await b.eval(b.in_buffer(f"(pairls-join-room {json.dumps(other)})"))
        try:
            await until(lambda: _equals(b, "room two\n"), 15, "B's buffer to become room two's text")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await diagnose(a, b)}") from None
        await b.eval(b.in_buffer('(goto-char (point-max)) (insert "Bob in room two 😀\n")'))
        want = "room two\nBob in room two 😀\n"

        async def cleo_sees() -> bool:
            return bool(shared.text == want)

        try:
            await until(cleo_sees, 15, "Cleo to see B's edit")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {shared.text!r}\n{await diagnose(a, b)}") from None
        assert await b.text() == want
        assert await a.text() == await hub_text(hub, invite), "room one changed"
        assert "room two" not in await a.text()
    finally:
        await cleo.close()
        await close_checked(a, b)


#: the hub's default frame limit (HubConfig.max_message_bytes)
HUB_FRAME_LIMIT = 1 << 20


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


async def until_unless_disconnected(
    pred: Any, watched: Emacs, timeout: float, what: str, diagnosis: Any, *, give_up_after: int = 1
) -> None:
    """Wait for *pred*; stop early once *watched*'s server lost the hub *give_up_after* times."""

    async def done() -> bool:
        if await pred():
            return True
        lost = await watched.disconnects()
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


async def no_reconnect_loop(e: Emacs) -> None:
    probe = await e.eval(PROBE_VALUE)
    lost = [m for m in probe["messages"] or [] if "lost the connection" in m]
    disconnected = [s for s in probe["states"] or [] if s == "disconnected"]
    assert not lost and not disconnected, f"{e.name}: {len(disconnected)} disconnects, messages {lost[:3]}"
    assert (await e.status())["heals"] == 0, e.name


async def test_emacs_insert_larger_than_a_hub_frame(hub: HubProcess, tmp_path: Path) -> None:
    """B inserts a 2.5 MB file (30k lines, some not ASCII) into the shared buffer: C-x i."""
    big = big_text(5 * HUB_FRAME_LIMIT // 2, seed=7)
    source = tmp_path / "paste.txt"
    source.write_text(big, encoding="utf-8")
    a, b, invite = await pair(tmp_path, hub)
    try:
        await b.eval(
            b.in_buffer(
                f"(goto-char (point-min)) (forward-line 2) (insert-file-contents {json.dumps(str(source))})"
            )
        )
        want = await b.text()
        assert want == INITIAL.replace("third line", big + "third line", 1), "the insert is not in B's buffer"
        await until_unless_disconnected(
            lambda: _equals(a, want),
            b,
            60,
            "A's buffer to hold the insertion",
            lambda: diagnose(a, b),
            give_up_after=3,  # show that it is a loop
        )
        assert await converged(a, b, hub, invite, timeout=60) == want
        await no_reconnect_loop(a)
        await no_reconnect_loop(b)
    finally:
        await close_checked(a, b)


async def test_emacs_share_a_file_larger_than_a_hub_frame(hub: HubProcess, tmp_path: Path) -> None:
    """B visits a 2 MB file of the project (shared as it opens); A opens it: pairls-open-document."""
    big = big_text(2 * HUB_FRAME_LIMIT, seed=11)
    a, b, invite = await pair(tmp_path, hub)
    try:
        (b.ws / "big.txt").write_text(big, encoding="utf-8")
        await b.eval(f"(progn (find-file-noselect {json.dumps(str(b.ws / 'big.txt'))}) nil)")

        async def whole_in_room() -> bool:
            # the document is in the room at once, its text follows in ops that each fit a frame
            return (
                "big.txt" in await room_paths(hub, invite) and await hub_text(hub, invite, "big.txt") == big
            )

        await until_unless_disconnected(
            whole_in_room, b, 60, "big.txt whole in the room", lambda: diagnose(a, b, "big.txt")
        )
        await a.eval(a.in_buffer('(progn (pairls-open-document "big.txt") nil)'))
        await until(lambda: quiescent(a, b, "big.txt"), 60, "A and B to agree on big.txt", interval=0.5)
        assert await a.text("big.txt") == big
        assert await b.text("big.txt") == big
        await no_reconnect_loop(a)
        await no_reconnect_loop(b)
    finally:
        await close_checked(a, b)


# -- a folder that is not a VC checkout ------------------------------------------------------------


def plain_folder(path: Path, files: dict[str, str]) -> Path:
    """A folder with a ``.pairls`` marker at its top and *files*; no VC."""
    path.mkdir()
    (path / ".pairls").write_text("", encoding="utf-8")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text, encoding="utf-8")
    return path


async def test_emacs_plain_folder_with_a_pairls_marker(hub: HubProcess, tmp_path: Path) -> None:
    """Two folders that are not VC checkouts, each with a ``.pairls`` marker at its top.

    A visits ``src/notes.txt`` and creates a room: the project root is A's
    folder (not ``src/``, eglot's fallback), so the room has ``src/notes.txt``.
    B visits ``README.txt``, joins, and opens ``src/notes.txt`` from the
    room: it is written under B's folder and managed by the same server, and
    an edit in it reaches A.  A then visits a file at its folder's top,
    shared into the same room.
    """
    notes = "src/notes.txt"
    wa = plain_folder(tmp_path / "ada", {notes: INITIAL, "top.txt": "top\n"})
    wb = plain_folder(tmp_path / "bob", {"README.txt": "bob's readme\n"})
    a = Emacs("Ada", tmp_path / "home-ada", wa, hub.url)
    b = Emacs("Bob", tmp_path / "home-bob", wb, hub.url)
    a.home.mkdir()
    b.home.mkdir()
    root = "(project-root (eglot--project (eglot-current-server)))"
    try:
        await asyncio.gather(a.start(), b.start())
        assert await a.eval(f"(and (vc-responsible-backend {json.dumps(str(wa))} t) t)") is None
        invite = await a.eval(a.in_buffer('(plist-get (pairls-create-room "plain") :invite)', notes))
        assert isinstance(invite, str) and invite.startswith("http://"), invite
        assert await a.eval(a.in_buffer(root, notes)) == f"{wa}/"
        await until(lambda: _room_has(hub, invite, [notes]), 15, f"{notes} in the room")

        joined = await b.eval(b.in_buffer(f"(pairls-join-room {json.dumps(invite)})", "README.txt"))
        assert joined["role"] == "editor"
        assert await b.eval(b.in_buffer(root, "README.txt")) == f"{wb}/"
        await b.eval(b.in_buffer(f"(progn (pairls-open-document {json.dumps(notes)}) nil)", "README.txt"))
        await until(lambda: _has_file(b, notes), 15, f"{notes} in B's folder")
        assert await b.eval(b.in_buffer(root, notes)) == f"{wb}/"
        await until(lambda: _equals_at(b, notes, INITIAL), 15, f"B's {notes} to be the room's")

        await b.eval(b.in_buffer('(goto-char (point-max)) (insert "bob, no VC ✓\\n")', notes))
        want = INITIAL + "bob, no VC ✓\n"
        try:
            await until(lambda: _equals_at(a, notes, want), 15, "A to see B's edit")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await diagnose(a, b, notes)}") from None
        assert await hub_text(hub, invite, notes) == want

        await a.eval(f"(progn (find-file-noselect {json.dumps(str(wa / 'top.txt'))}) nil)")
        await until(lambda: _room_has(hub, invite, [notes, "README.txt", "top.txt"]), 15, "top.txt shared")
        assert await hub_text(hub, invite, "top.txt") == "top\n"
    finally:
        await close_checked(a, b)


async def _room_has(hub: HubProcess, invite: str, paths: list[str]) -> bool:
    return set(paths) <= set(await room_paths(hub, invite))


async def _has_file(e: Emacs, path: str) -> bool:
    return bool(await e.eval(f"(and (get-file-buffer {json.dumps(str(e.ws / path))}) t)"))


async def _equals_at(e: Emacs, path: str, text: str) -> bool:
    return await e.text(path) == text


# -- the room's owner ------------------------------------------------------------------------------


async def participant_id(e: Emacs) -> str:
    return str(
        await e.eval(
            e.in_buffer(
                "(plist-get (seq-find (lambda (p) (eq (plist-get p :self) t))"
                ' (plist-get (pairls-command "pairls.participants") :participants)) :id)'
            )
        )
    )


async def test_emacs_the_owners_commands(hub: HubProcess, tmp_path: Path) -> None:
    """pairls-set-role, pairls-rotate-invites, pairls-kick and pairls-delete-room from Ada's Emacs."""
    a, b, invite = await pair(tmp_path, hub)
    try:
        bob = await participant_id(b)
        await a.eval(a.in_buffer(f'(pairls-set-role {json.dumps(bob)} "viewer")'))
        await until(lambda: _role(b, "viewer"), 10, "B to be a viewer")
        await a.eval(a.in_buffer(f'(pairls-set-role {json.dumps(bob)} "editor")'))
        await until(lambda: _role(b, "editor"), 10, "B to be an editor again")
        await add_lines(a, b, hub, invite, "as editors again")

        rotated = await a.eval(a.in_buffer("(pairls-rotate-invites)"))
        new = rotated["invite"]
        assert new != invite and await a.eval("(car kill-ring)") == new
        await until(lambda: _left(b), 10, "B to be out after the rotation")
        assert "changed the invites" in await b.messages()
        joined = await b.eval(b.in_buffer(f"(pairls-join-room {json.dumps(new)})"))
        assert joined["role"] == "editor"

        await a.eval(a.in_buffer(f"(pairls-kick {json.dumps(await participant_id(b))})"))
        await until(lambda: _left(b), 10, "B to be removed")
        assert "removed from the room by the owner" in await b.messages()

        await a.eval(a.in_buffer("(pairls-delete-room)"))  # (not interactive: no question)
        await until(lambda: _left(a), 10, "A to be out of the deleted room")
        assert await room_gone(hub, new)
    finally:
        await close_checked(a, b)


async def _role(e: Emacs, role: str) -> bool:
    return (await e.status()).get("role") == role


async def room_gone(hub: HubProcess, invite: str) -> bool:
    inv = parse_invite(invite)
    peer = await Peer(hub.url, "checker").connect()
    try:
        await peer.join(inv.room_id, inv.secret)
    except HubError as exc:
        return exc.code == "no_such_room"
    finally:
        await peer.close()
    return False


# -- history ---------------------------------------------------------------------------------------


async def test_emacs_undo_and_redo_my_changes_keep_the_others_text(hub: HubProcess, tmp_path: Path) -> None:
    """Ada makes two changes, Bob types around and inside them; pairls-undo-mine twice takes
    back Ada's only, in both Emacs and on the hub; pairls-redo-mine brings the older back;
    pairls-history opens the change picked as it was then, read-only, outside the project."""
    a, b, invite = await pair(tmp_path, hub)
    try:
        await a.eval(a.in_buffer('(goto-char (point-min)) (forward-line 1) (end-of-line) (insert " [ada]")'))
        await converged(a, b, hub, invite)
        await asyncio.sleep(1.2)  # a pause: what Ada types next is another change
        await a.eval(a.in_buffer('(goto-char (point-min)) (insert "ada top\\n")'))
        await converged(a, b, hub, invite)
        # Bob types inside Ada's first change, at the start of her second, and after all
        await b.eval(b.in_buffer('(goto-char (point-min)) (search-forward "[") (insert "BOB")'))
        await b.eval(b.in_buffer('(goto-char (point-min)) (insert "bob: ")'))
        await b.eval(b.in_buffer('(goto-char (point-max)) (insert "bob line\\n")'))
        both = "bob: ada top\nfirst line\nsecond line [BOBada]\nthird line\n# end\nbob line\n"
        assert await converged(a, b, hub, invite) == both

        first = await a.eval(a.in_buffer("(pairls-undo-mine)"))
        mine_gone = "bob: first line\nsecond line [BOBada]\nthird line\n# end\nbob line\n"
        assert await converged(a, b, hub, invite) == mine_gone
        second = await a.eval(a.in_buffer("(pairls-undo-mine)"))
        assert second["rev"] == first["rev"] + 1
        assert (
            await converged(a, b, hub, invite)
            == "bob: first line\nsecond lineBOB\nthird line\n# end\nbob line\n"
        )
        await a.eval(a.in_buffer("(pairls-redo-mine)"))
        assert await converged(a, b, hub, invite) == mine_gone
        # Bob's hover on the line Ada's redo brought back names her
        hover = await b.eval(
            b.in_buffer(
                "(plist-get (pairls--request (pairls--server) :textDocument/hover"
                " (list :textDocument (eglot--TextDocumentIdentifier)"
                " :position (list :line 1 :character 0)) 10)"
                " :contents)"
            )
        )
        assert hover["kind"] == "markdown" and hover["value"].startswith("**Ada**, just now · rev "), hover
        said = await b.eval(
            b.in_buffer("(condition-case err (pairls-redo-mine) (user-error (error-message-string err)))")
        )
        assert said == "pairls: Nothing of yours to redo in this document"
        assert "undid your last change (rev" in await a.messages()

        # the history: Ada picks her change that made "ada top"; it opens as it was then
        opened = await a.eval(
            a.in_buffer(
                "(cl-letf (((symbol-function 'completing-read)"
                " (lambda (_prompt choices &rest _)"
                '  (car (seq-find (lambda (c) (string-match-p "Ada .* [+]8 -0 " (car c))) choices)))))'
                " (pairls-history))"
            )
        )
        revision = await revision_buffer(a, opened["uri"])
        assert revision["text"] == "ada top\nfirst line\nsecond line [ada]\nthird line\n# end\n"
        assert revision["readOnly"] is True
        cache = await asyncio.to_thread((a.home / ".cache" / "pairls" / "revisions").resolve)
        assert (await asyncio.to_thread(Path(revision["file"]).resolve)).is_relative_to(cache), revision
        zero = await a.eval(a.in_buffer("(pairls-open-revision 0)"))
        assert (await revision_buffer(a, zero["uri"]))["text"] == INITIAL
        # nothing of this went to the room
        assert await hub_text(hub, invite) == mine_gone
        assert list((await a.status())["documents"]) == [PATH]

        # typed at a terminal and undone at once, before eglot's idle timer sent the typing:
        # the command sends it first, so the undo takes back what was just typed
        a.open_tty()
        await until(
            lambda: a.eval("(and (cl-some (lambda (f) (eq (framep f) t)) (frame-list)) t)"), 10, "a tty"
        )
        await asyncio.sleep(1.0)
        await a.keys("\x1b<zz\x1bxpairls-undo-mine\r")
        newest = await until(lambda: _undid_the_last_edit(a), 15, "an undo of the typing in the history")
        assert newest["edit"]["inserted"] == 2 and newest["edit"]["name"] == "Ada", newest
        assert await converged(a, b, hub, invite) == mine_gone
    finally:
        await close_checked(a, b)


async def revision_buffer(e: Emacs, uri: str) -> dict[str, Any]:
    """The buffer visiting the file of *uri*: its file, text and whether it is read-only."""
    path = json.dumps(uri.removeprefix("file://"))
    return await e.eval(  # type: ignore[no-any-return]
        f"(with-current-buffer (find-buffer-visiting {path})"
        " (list :file buffer-file-name :text (buffer-substring-no-properties (point-min) (point-max))"
        " :readOnly (if buffer-read-only t :json-false)))"
    )


async def _undid_the_last_edit(e: Emacs) -> dict[str, Any] | None:
    """The newest history entry if it is an undo of the edit just before it (else None)."""
    history = await e.eval(
        e.in_buffer('(pairls-command "pairls.history" (list :uri (pairls--this-document) :limit 2))')
    )
    changes = history["changes"]
    if (
        len(changes) == 2
        and changes[0].get("kind") == "undo"
        and changes[0]["toggles"] == changes[1]["firstRev"]
    ):
        return {"undo": changes[0], "edit": changes[1]}
    return None


# -- run it together -------------------------------------------------------------------------------

# Test-only: what the server asks (window/showMessageRequest) is recorded and answered with no
# choice (eglot would read a choice in the minibuffer, which a daemon without a frame has not)
ASK_PROBE = r"""
(progn
  (defvar pairls-probe-asked nil)
  (cl-defmethod eglot-handle-request
    ((_server pairls-eglot-server) (_method (eql window/showMessageRequest)) &key message &allow-other-keys)
    (push message pairls-probe-asked)
    nil)
  t)
"""


def _ran_in(ws: Path) -> bool:
    return (ws / "ran-here").exists()


async def _shows(e: Emacs, path: str, text: str) -> bool:
    return await _has_file(e, path) and text in await e.text(path)


async def test_emacs_run_for_the_room_fills_the_output_on_the_peer(hub: HubProcess, tmp_path: Path) -> None:
    """Ada's pairls-run runs a command line on her machine; its output opens read-only at hers;
    Bob is told it started and ended, opens it with pairls-open-document, and sees it fill:
    every line and the end line with the exit status."""
    a, b, _ = await pair(tmp_path, hub)
    try:
        await b.eval(ASK_PROBE)
        code = (
            "import sys, time; open('ran-here', 'w').close(); print('hi from', 'Ada', flush=True);"
            " time.sleep(1); print('bye'); sys.exit(3)"
        )
        cmd = f'python3 -c "{code}"'
        started = await a.eval(a.in_buffer(f"(pairls-run {json.dumps(cmd)})"))
        path = started["path"]
        assert path.startswith(".pairls/runs/"), started
        # Bob is told, and opens it while it runs (or just after)
        await until(lambda: b.eval("(and pairls-probe-asked t)"), 20, "Bob told the run started")
        await b.eval(b.in_buffer(f"(pairls-open-document {json.dumps(path)})"))
        end = "run by Ada: exit status 3 after"
        await until(lambda: _shows(b, path, end), 30, "the output to fill to its end at Bob's")
        text = await b.text(path)
        assert text.startswith("$ python3 -c ")
        assert text.index("\nhi from Ada\n") < text.index("\nbye\n") < text.index(end), text
        await until(lambda: _shows(a, path, end), 10, "the output's end at Ada's")
        assert await a.text(path) == text
        assert await a.eval(a.in_buffer("buffer-read-only", path)) is True
        assert await a.eval(a.in_buffer("buffer-read-only")) is None  # (not the buffer it ran from)
        # it ran at Ada's only; Bob was told it started and that it ended, and how
        assert [_ran_in(e.ws) for e in (a, b)] == [True, False]
        await until(lambda: b.eval("(>= (length pairls-probe-asked) 2)"), 20, "Bob told the run ended")
        asked = list(reversed(await b.eval("pairls-probe-asked")))
        assert asked[0] == f"pairls: Ada started a run for the room ({path})", asked
        assert asked[1].startswith("pairls: Ada's run `python3 -c ") and asked[1].endswith(
            f"` ended: exit status 3 ({path})"
        ), asked
    finally:
        await close_checked(a, b)
