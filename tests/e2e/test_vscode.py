"""Real VS Code: two code-server windows in Debian's chromium pair-program through the extension.

``scripts/install-code-server.sh`` (``make code-server``, part of ``make test``) installs
code-server from npm with Node 24, playwright-core and Debian's chromium, outside the
repository (``~/.cache/pairls/code-server`` or ``$PAIRLS_CACHE/code-server``).  Without them
these tests skip, except in CI (``CI`` set), where they fail.

Each code-server listens on 127.0.0.1 (port 0, read from its log), with its own user-data
and extensions directories, auth none, telemetry off, workspace trust disabled, and the
extension's ``.vsix`` installed with ``code-server --install-extension``.
``tests/e2e/vscode/run.mjs`` drives the windows with playwright-core (headless chromium) the
way a user does: the command palette, quick open, the keyboard.

* ``test_workbench``: the harness alone (no extension): both workbenches load, the command
  palette runs a built-in command, quick open shows the file in an editor.
* ``test_pair``: in workspaces whose ``.vscode/settings.json`` has Pairls settings (so the
  server starts with the window), A runs "Pairls: Create Room", the invite is read from A's
  clipboard or notification; B runs "Pairls: Join Room" and types it in the input box; B's stale copy
  of the file becomes the room's; both type into it at once at different lines; B's suggest
  widget offers an identifier that only A's other (shared, never opened by B) file holds;
  both editors (their rendered lines) converge to the same text, which equals the hub's
  (a protocol peer joins with the invite) and holds every typed character once; B's editor
  shows A's cursor with A's display name (a decoration's CSS ``content``).
* ``test_vsix_alone``: the .vsix as ``make extension`` builds it is all that is installed:
  fresh user-data and extensions directories, no Pairls setting, and a Python with nothing
  of pairls (a virtualenv with only pip, first on ``PATH``). No server runs until a command
  does; "Pairls: Create Room" asks for the hub (default ``ws://127.0.0.1:8765``), B joins
  from the palette and opens the room's file from the notification; both type, both
  converge with the hub, and B's completions hold the room's words and jedi's.
* ``test_owner``: the owner's controls: from the participants picker A makes B a viewer,
  "Pairls: Rotate Invites" puts B out (B joins again with the new invite), A removes B from
  the picker, "Pairls: Delete Room"; each confirmed in its modal dialog, and B's window tells
  B what happened.
* ``test_history``: A makes two changes, B types inside one and after the other; A's
  "Pairls: Undo My Last Change" (the palette, then the suggested Ctrl+Alt+Z) takes back A's
  text only, in both editors and on the hub; "Pairls: Redo My Change" brings it back; B's
  hover names who changed the line; A's "Pairls: Show History" opens the change picked as a
  diff whose left side is the hub's text at that revision.

The extension is built once per module with ``make extension`` (the language server bundled
into it).

Screenshots of each window and the extension's logs go to ``artifacts/vscode/<test>/``
(printed).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lsp_bridge.invite import parse_invite
from tests.support.hubclient import HubError, Peer, hub_text
from tests.support.hubproc import HubProcess
from tests.support.proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "e2e" / "vscode" / "run.mjs"
EXTENSION = ROOT / "vscode-extension"
ARTIFACTS = ROOT / "artifacts" / "vscode"
CACHE = Path(
    os.environ.get("PAIRLS_CODE_SERVER_DIR")
    or Path(os.environ.get("PAIRLS_CACHE") or Path.home() / ".cache" / "pairls") / "code-server"
)
NODE = CACHE / "node24" / "node_modules" / "node" / "bin" / "node"
CODE_SERVER = CACHE / "app" / "node_modules" / "code-server" / "out" / "node" / "entry.js"
CHROMIUM = "/usr/bin/chromium"
IN_CI = bool(os.environ.get("CI"))


def _missing() -> list[str]:
    missing = []
    if not (CACHE / "installed").is_file() or not NODE.is_file() or not CODE_SERVER.is_file():
        missing.append(f"code-server in {CACHE}")
    if not (DRIVER.parent / "node_modules" / "playwright-core").is_dir():
        missing.append("playwright-core (tests/e2e/vscode)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM)
    return missing


MISSING = _missing()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(MISSING) and not IN_CI,
        reason=f"not installed: {', '.join(MISSING)} (make code-server); in CI this fails instead",
    ),
]

SETTINGS: dict[str, Any] = {
    "security.workspace.trust.enabled": False,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
    "extensions.ignoreRecommendations": True,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "workbench.enableExperiments": False,
    "workbench.welcomePage.walkthroughs.openOnInstall": False,
    "chat.disableAIFeatures": True,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
    "git.enabled": False,
    # keystrokes land as typed: no auto-closing, no auto-indent, no suggest popping up on
    # its own (Enter would accept it); completions only from language servers (not from
    # the words of B's own copy of the file)
    "editor.quickSuggestions": {"other": "off", "comments": "off", "strings": "off"},
    "editor.suggestOnTriggerCharacters": False,
    "editor.acceptSuggestionOnEnter": "off",
    "editor.wordBasedSuggestions": "off",
    "editor.autoClosingBrackets": "never",
    "editor.autoClosingQuotes": "never",
    "editor.autoSurround": "never",
    "editor.autoIndent": "none",
    "editor.formatOnType": False,
    "editor.parameterHints.enabled": False,
    "editor.hover.enabled": False,
    "editor.inlayHints.enabled": "off",
    "editor.minimap.enabled": False,
    "files.autoSave": "off",
    "files.insertFinalNewline": False,
    "files.trimTrailingWhitespace": False,
}

LISTENING = re.compile(r"HTTP server listening on (http://127\.0\.0\.1:\d+)/?")


class CodeServer:
    """One code-server on 127.0.0.1 with its own user-data and extensions directories."""

    def __init__(
        self,
        home: Path,
        workspace: Path,
        settings: dict[str, Any],
        vsix: Path | None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.workspace = workspace
        self.user_data = home / "user-data"
        self.extensions = home / "extensions"
        (self.user_data / "User").mkdir(parents=True, exist_ok=True)
        self.extensions.mkdir(parents=True, exist_ok=True)
        (self.user_data / "Machine").mkdir(parents=True, exist_ok=True)
        # a code-server window is a remote window: machine-scoped settings (pairls.pythonPath)
        # are read from the server's Machine settings, not the User ones
        for scope in ("User", "Machine"):
            (self.user_data / scope / "settings.json").write_text(json.dumps(settings, indent=2))
        (home / "config.yaml").write_text("bind-addr: 127.0.0.1:0\nauth: none\ncert: false\n")
        base = dict(os.environ) if env is None else env
        self.env = dict(
            base,
            PATH=f"{NODE.parent}{os.pathsep}{base.get('PATH', '')}",
            XDG_DATA_HOME=str(home / "xdg-data"),
            XDG_CONFIG_HOME=str(home / "xdg-config"),
            # each window its own person: the language server keeps the user id here
            XDG_STATE_HOME=str(home / "xdg-state"),
            PYTHONUNBUFFERED="1",
        )
        self.env.pop("VSCODE_IPC_HOOK_CLI", None)
        self.common = [
            str(NODE),
            str(CODE_SERVER),
            "--config",
            str(home / "config.yaml"),
            "--user-data-dir",
            str(self.user_data),
            "--extensions-dir",
            str(self.extensions),
        ]
        if vsix is not None:
            out = subprocess.run(
                [*self.common, "--install-extension", str(vsix)],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert out.returncode == 0 and "was successfully installed" in out.stdout, (
                f"--install-extension {vsix} failed:\n{out.stdout}\n{out.stderr}"
            )
        self.log: list[str] = []
        self.url = ""
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            [
                *self.common,
                "--bind-addr",
                "127.0.0.1:0",
                "--auth",
                "none",
                "--disable-telemetry",
                "--disable-update-check",
                "--disable-workspace-trust",
                "--disable-getting-started-override",
                "--ignore-last-opened",
                str(workspace),
            ],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line.rstrip("\n"))
            m = LISTENING.search(line)
            if m and not self.url:
                self.url = m.group(1)
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float = 60) -> str:
        self._ready.wait(timeout)
        if not self.url:
            raise RuntimeError(
                f"code-server did not start (exit {self.proc.poll()}):\n" + "\n".join(self.log)
            )
        return self.url

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(15)


def _require_installed() -> None:
    if MISSING:  # only reached in CI: outside it the module skips
        pytest.fail(f"not installed: {', '.join(MISSING)}; run make code-server")


def _start(
    tmp_path: Path, users: list[dict[str, Any]], vsix: Path | None, env: dict[str, str] | None = None
) -> list[CodeServer]:
    servers = []
    for u in users:
        servers.append(CodeServer(tmp_path / f"home-{u['id']}", u["workspace"], u["settings"], vsix, env))
    for s, u in zip(servers, users, strict=True):
        u["url"] = s.wait_ready()
        u.pop("settings")
        u["workspace"] = str(u["workspace"])
    return servers


class Driver:
    """``node run.mjs CONFIG``: its events, one JSON object a line."""

    def __init__(self, proc: asyncio.subprocess.Process, tmp: Path) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self.tmp = tmp

    @classmethod
    async def start(cls, tmp: Path, config: dict[str, Any]) -> Driver:
        path = tmp / "driver.json"
        path.write_text(
            json.dumps({"chromium": CHROMIUM, "artifacts": str(ARTIFACTS / config["mode"]), **config})
        )
        proc = await asyncio.create_subprocess_exec(
            str(NODE),
            str(DRIVER),
            str(path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,  # the driver's log goes to pytest's captured stderr
            cwd=DRIVER.parent,
        )
        return cls(proc, tmp)

    async def next(self, timeout: float = 300) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise AssertionError(f"driver exited ({await self.proc.wait()}) after {self.summary()}")
        event: dict[str, Any] = json.loads(line)
        self.events.append(event)
        if event["event"] == "screenshots":
            for who, p in event["paths"].items():
                print(f"screenshot of {who}'s window: {p}")
        return event

    async def until(self, name: str, timeout: float = 300) -> dict[str, Any]:
        while True:
            e = await self.next(timeout)
            if e["event"] == name:
                return e
            if e["event"] == "error":
                await self.finish()
                pytest.fail(f"driver: {e['message']}\n{e['stack']}\nevents: {self.summary()}")

    async def resume(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"continue\n")
        await self.proc.stdin.drain()

    async def finish(self, timeout: float = 120) -> dict[str, Any]:
        done: dict[str, Any] = {}
        while self.proc.stdout is not None:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not line:
                break
            e = json.loads(line)
            self.events.append(e)
            if e["event"] == "screenshots":
                for who, p in e["paths"].items():
                    print(f"screenshot of {who}'s window: {p}")
            if e["event"] == "done":
                done = e
        await asyncio.wait_for(self.proc.wait(), timeout)
        return done

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()

    def summary(self) -> str:
        return json.dumps([{k: v for k, v in e.items() if k != "stack"} for e in self.events])[:4000]


@pytest.fixture
def servers_to_stop(request: pytest.FixtureRequest) -> Iterator[list[CodeServer]]:
    servers: list[CodeServer] = []
    yield servers
    for s in servers:
        s.stop()
    for s in servers:
        if s.proc.returncode not in (0, -signal.SIGTERM, None):
            print(f"code-server {s.workspace} exited {s.proc.returncode}:\n" + "\n".join(s.log[-40:]))
        # the extension's output channel and the extension host's log, next to the screenshots
        logs = (
            ARTIFACTS / request.node.name.removeprefix("test_") / f"logs-{s.home.name.removeprefix('home-')}"
        )
        shutil.rmtree(logs, ignore_errors=True)
        for pattern in ("*/exthost*/pairls.pairls/*.log", "*/exthost*/remoteexthost.log"):
            for f in (s.user_data / "logs").glob(pattern):
                logs.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, logs / f.name)
        if logs.is_dir():
            print(f"logs: {logs}")
    # what hides a bug: a warning or an error in the Pairls output channel (the extension's
    # own, or a line its language server wrote to stderr: a heal, a failed task, a handler
    # of ours that raised); none of these tests causes one on purpose
    said = {s.home.name: _log_problems(_pairls_log(s)) for s in servers}
    said = {who: lines for who, lines in said.items() if lines}
    assert not said, f"warnings and errors in the Pairls output channel: {said}"


def _log_problems(text: str) -> list[str]:
    """The lines of a Pairls output channel's log at level warning or error."""
    return [line for line in text.splitlines() if re.match(r"\S+ \S+ \[(warning|error)\] ", line)]


@pytest.mark.timeout(300)
async def test_workbench(tmp_path: Path, servers_to_stop: list[CodeServer]) -> None:
    _require_installed()
    users = []
    for name in ("A", "B"):
        ws = tmp_path / f"ws-{name}"
        ws.mkdir()
        (ws / "notes.py").write_text(f"# {name}'s notes\nx = 1\n")
        users.append({"id": name, "name": name, "workspace": ws, "settings": dict(SETTINGS)})
    servers_to_stop += _start(tmp_path, users, None)
    driver = await Driver.start(tmp_path, {"mode": "workbench", "users": users, "file": "notes.py"})
    try:
        await driver.until("workbench", 180)
        for name in ("A", "B"):
            e = await driver.until("editor", 120)
            assert e["user"] == name and e["text"] == f"# {name}'s notes\nx = 1\n", e
        done = await driver.finish()
    finally:
        driver.kill()
    assert done.get("ok"), driver.summary()


# --- the pair test ------------------------------------------------------------------------

FILE = "shared.py"
HELPER = "helpers.py"
IDENTIFIER = "pairls_only_in_helpers"
INITIAL = '"""Shared by A and B."""\n\n\ndef greet(name):\n    return "hello " + name\n\n\n# end\n'
STALE = "# B's old copy, replaced by the room's\n"
HELPER_TEXT = f"def {IDENTIFIER}(x):\n    return x * 2\n"
TYPE_A = "\nalpha_from_a = 'é'\nalpha_two = 2  # 😀 from A"
TYPE_B = "\nbeta_from_b = [1, 2]\nbeta_two = 'ü from B'"
SUGGEST_LINE = "\nresult = pairls_only"
NAME_A = "Alice Pairls"
NAME_B = "Bob Pairls"


@pytest.fixture(scope="module")
def vsix() -> Path:
    """The extension as a user gets it: ``make extension`` (bundle, build, unit tests, package)."""
    if not (EXTENSION / "package.json").is_file():
        pytest.skip(reason="no vscode-extension/ in this tree")
    _require_installed()
    assert shutil.which("npm"), "npm is needed to build the extension"
    t0 = time.monotonic()
    out = subprocess.run(["make", "-C", str(ROOT), "extension"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"make extension failed:\n{out.stdout[-6000:]}\n{out.stderr[-6000:]}"
    version = json.loads((EXTENSION / "package.json").read_text())["version"]
    path = EXTENSION / f"pairls-{version}.vsix"
    assert path.is_file(), out.stdout[-3000:]
    # vsce packs without a warning (its warnings read " WARNING ", pip's "WARNING:")
    assert " WARNING " not in out.stdout + out.stderr, out.stdout + out.stderr
    assert " is large " not in out.stdout, out.stdout
    print(f"make extension: {time.monotonic() - t0:.0f}s, {path.name} {path.stat().st_size / 1e6:.2f} MB")
    return path


@pytest.mark.timeout(600)
async def test_pair(database_url: str, tmp_path: Path, servers_to_stop: list[CodeServer], vsix: Path) -> None:
    _require_installed()
    hub = HubProcess(database_url=database_url)
    try:
        hub_url = hub.wait_ready()
        users = []
        for name, display, files in (
            ("A", NAME_A, {FILE: INITIAL, HELPER: HELPER_TEXT}),
            ("B", NAME_B, {FILE: STALE}),
        ):
            ws = tmp_path / f"ws-{name}"
            ws.mkdir()
            for rel, text in files.items():
                (ws / rel).write_text(text)
            # the workspace's own Pairls settings: the server starts with the window
            (ws / ".vscode").mkdir()
            workspace_settings = {
                "pairls.hubUrl": hub_url,
                "pairls.displayName": display,
                "pairls.autoShare": True,
            }
            (ws / ".vscode" / "settings.json").write_text(json.dumps(workspace_settings))
            # the explicit interpreter (this test's own, with pairls installed: the bundle runs anyway)
            settings = dict(SETTINGS, **{"pairls.pythonPath": sys.executable})
            users.append({"id": name, "name": display, "workspace": ws, "settings": settings})
        servers_to_stop += await asyncio.to_thread(_start, tmp_path, users, vsix)
        config = {
            "mode": "pair",
            "users": users,
            "file": FILE,
            "helperFile": HELPER,
            "identifier": IDENTIFIER,
            "lineA": 1,
            "lineB": 8,
            "typeA": TYPE_A,
            "typeB": TYPE_B,
            "suggestLine": SUGGEST_LINE,
            "typeDelayMs": 40,
            "pauseAt": ["converged"],
        }
        t0 = time.monotonic()
        driver = await Driver.start(tmp_path, config)
        try:
            invite = parse_invite((await driver.until("invite", 300))["invite"])
            joined = await driver.until("joined", 180)
            assert joined["text"] == INITIAL, "B's stale copy was not replaced by the room's text"
            typed = await driver.until("typed", 180)
            (a0, a1), (b0, b1) = typed["a"], typed["b"]
            assert max(a0, b0) < min(a1, b1), f"the two did not type at the same time: {typed}"
            suggest = await driver.until("suggest", 180)
            assert any(IDENTIFIER in s for s in suggest["suggestions"]), suggest
            converged = await driver.until("converged", 180)
            text = converged["text"]
            assert converged["a"] == converged["b"] == text
            # the hub has what both editors show
            peer = await Peer(hub_url, name="e2e-checker").connect()
            try:
                await peer.join(invite.room_id, invite.secret)
                doc = await peer.open(FILE)
                await doc.wait_synced()
                assert doc.text == text, f"hub {doc.text!r} != editors {text!r}"
                helper = await peer.open(HELPER)
                assert helper.text == HELPER_TEXT
            finally:
                await peer.close()
            # every typed character once, the rest of the file as it was
            for typed in (TYPE_A, TYPE_B, SUGGEST_LINE):
                for line in typed.strip("\n").split("\n"):
                    assert text.count(line) == 1, (line, text)
            rest = text
            for typed in (TYPE_A, TYPE_B, SUGGEST_LINE):
                rest = rest.replace(typed, "", 1)
            assert rest == INITIAL, rest
            await driver.resume()
            cursor = await driver.until("cursor", 120)
            # B shows A's name at A's caret (end of line 1); A shows B's name too
            assert any(NAME_A in lb["content"] and lb["line"] == 1 for lb in cursor["labels"]), cursor
            assert any(NAME_B in lb["content"] for lb in cursor["labelsInA"]), cursor
            done = await driver.finish()
            assert done.get("ok"), driver.summary()
            print(f"pair test: {time.monotonic() - t0:.1f}s in the browsers")
        finally:
            driver.kill()
    finally:
        hub.terminate()


# --- the .vsix alone ------------------------------------------------------------------------

JEDI_LINE = "\nimport os\nprint(os.getcw"
SERVER_SCRIPT = "bundled/tool/server.py"


def _bare_python(where: Path) -> Path:
    """A virtualenv with nothing but pip (and what ensurepip brings): no pairls, no pygls."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=180)
    py = where / "bin" / "python3"
    listed = subprocess.run(
        [str(py), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {d["name"].lower() for d in json.loads(listed.stdout)}
    assert names <= {"pip", "setuptools"}, names
    for module in ("lsp_bridge", "collab_core", "pygls", "websockets", "jedi"):
        probe = subprocess.run([str(py), "-c", f"import {module}"], capture_output=True, cwd=where)
        assert probe.returncode != 0, f"{module} is importable in the bare virtualenv"
    return where


def _server_processes(extensions: Path) -> list[list[str]]:
    """Command lines of the language servers run from *extensions* (the bundled server.py)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = [a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        if any(a.startswith(str(extensions)) and a.endswith(SERVER_SCRIPT) for a in argv):
            found.append(argv)
    return found


def _pairls_log(server: CodeServer) -> str:
    """The extension's output channel (Pairls), as its log file has it so far."""
    return "\n".join(
        f.read_text() for f in sorted(server.user_data.glob("logs/*/exthost*/pairls.pairls/*.log"))
    )


async def _until(what: str, check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


@pytest.mark.timeout(600)
async def test_vsix_alone(
    database_url: str, tmp_path: Path, servers_to_stop: list[CodeServer], vsix: Path
) -> None:
    """Install the .vsix, have a Python 3.11+, done: no setting, nothing pip-installed."""
    _require_installed()
    bare = await asyncio.to_thread(_bare_python, tmp_path / "bare-venv")
    # The user's shell has the bare virtualenv activated: its python3 comes first on PATH.
    # VS Code's server gives extensions the environment of the user's login shell (bash -ilc),
    # so the activation goes where a user's would, in ~/.profile (of a home made for the test).
    home = tmp_path / "user-home"
    home.mkdir()
    (home / ".profile").write_text(f". {shlex.quote(str(bare / 'bin' / 'activate'))}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAIRLS_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        HOME=str(home),
        PATH=f"{bare / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(bare),
        PYTHONUNBUFFERED="1",
    )
    hub = HubProcess(database_url=database_url)
    try:
        hub_url = hub.wait_ready()
        users = []
        for name, files in (
            ("A", {FILE: INITIAL, HELPER: HELPER_TEXT}),
            ("B", {"notes.md": "# B's notes\n"}),
        ):
            ws = tmp_path / f"ws-{name}"
            ws.mkdir()
            for rel, text in files.items():
                (ws / rel).write_text(text)
            # the harness's editor settings only (no telemetry, keystrokes land as typed): no pairls.*
            users.append({"id": name, "name": name, "workspace": ws, "settings": dict(SETTINGS)})
        servers = await asyncio.to_thread(_start, tmp_path, users, vsix, env)
        servers_to_stop += servers
        server_a, server_b = servers
        config = {
            "mode": "fresh",
            "users": users,
            "file": FILE,
            "helperFile": HELPER,
            "hubUrl": hub_url,
            "identifier": IDENTIFIER,
            "lineA": 1,
            "lineB": 8,
            "typeA": TYPE_A,
            "typeB": TYPE_B,
            "suggestLine": SUGGEST_LINE,
            "jediLine": JEDI_LINE,
            "jediWord": "getcwd",
            "typeDelayMs": 30,
            "pauseAt": ["ready", "invite", "converged"],
        }
        driver = await Driver.start(tmp_path, config)
        try:
            # --- nothing started: no status bar item, no server process -----------------------
            ready = await driver.until("ready", 300)
            assert ready["statusA"] is None and ready["statusB"] is None, ready
            for s in servers:
                assert _server_processes(s.extensions) == [], "a server started before any command"
            await driver.resume()

            # --- A: Create Room asks for the hub -------------------------------------------------
            prompt = await driver.until("hubPrompt", 180)
            assert prompt["value"] == "ws://127.0.0.1:8765", prompt
            assert "hub" in prompt["message"].lower(), prompt
            invite = parse_invite((await driver.until("invite", 300))["invite"])
            assert invite.hub_url == hub_url
            # the bundled server.py, run by the bare virtualenv's python3 found on PATH
            (argv,) = await _until(
                "A's language server process", lambda: _server_processes(server_a.extensions)
            )
            assert Path(argv[0]).name == "python3" and argv[1].endswith(SERVER_SCRIPT), argv
            log = await _until(
                "A's log to say which Python runs the server",
                lambda: (t := _pairls_log(server_a)) and "starting the pairls language server" in t and t,
            )
            assert f"(PATH, {bare / 'bin' / 'python3'}, Python 3." in log, log
            assert _server_processes(server_b.extensions) == [], "B's server started before B ran a command"
            await driver.resume()

            # --- B joins; both type; completions; convergence --------------------------------------
            joined = await driver.until("joined", 240)
            assert joined["text"] == INITIAL, joined
            await driver.until("typed", 180)
            suggest = await driver.until("suggest", 180)
            assert any(IDENTIFIER in s for s in suggest["roomWords"]), suggest
            assert any(s.startswith("getcwd") for s in suggest["jedi"]), suggest
            text = (await driver.until("converged", 180))["text"]
            assert len(_server_processes(server_b.extensions)) == 1
            peer = await Peer(hub_url, name="e2e-checker").connect()
            try:
                await peer.join(invite.room_id, invite.secret)
                doc = await peer.open(FILE)
                await doc.wait_synced()
                assert doc.text == text, f"hub {doc.text!r} != editors {text!r}"
            finally:
                await peer.close()
            # each typing where it was typed, whole and once
            for typed in (TYPE_A, TYPE_B, SUGGEST_LINE, JEDI_LINE):
                assert text.count(typed) == 1, (typed, text)
            await driver.resume()
            done = await driver.finish()
            assert done.get("ok"), driver.summary()
        finally:
            driver.kill()
        # the bare virtualenv is as bare as before
        await asyncio.to_thread(_bare_python_unchanged, bare)
    finally:
        hub.terminate()


def _bare_python_unchanged(bare: Path) -> None:
    probe = subprocess.run(
        [str(bare / "bin" / "python3"), "-c", "import pygls"], capture_output=True, cwd=bare
    )
    assert probe.returncode != 0, "pygls got installed into the bare virtualenv"


# --- the room's owner -----------------------------------------------------------------------


def _two_users(
    tmp_path: Path, hub_url: str, file: str, text: str, settings: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """A and B, each with a workspace holding *file* and its own Pairls settings (the server
    starts with the window), and the user settings the harness gives code-server."""
    users = []
    for name, display in (("A", NAME_A), ("B", NAME_B)):
        ws = tmp_path / f"ws-{name}"
        ws.mkdir()
        (ws / file).write_text(text)
        (ws / ".vscode").mkdir()
        workspace_settings = {"pairls.hubUrl": hub_url, "pairls.displayName": display}
        (ws / ".vscode" / "settings.json").write_text(json.dumps(workspace_settings))
        user_settings = dict(SETTINGS, **{"pairls.pythonPath": sys.executable}, **(settings or {}))
        users.append({"id": name, "name": display, "workspace": ws, "settings": user_settings})
    return users


@pytest.mark.timeout(600)
async def test_owner(
    database_url: str, tmp_path: Path, servers_to_stop: list[CodeServer], vsix: Path
) -> None:
    """The owner's controls in real VS Code: the participants picker (Make viewer, Remove) and the
    Rotate Invites and Delete Room commands, each confirmed in its modal dialog; B's window says
    what happened to B each time; the room is gone from the hub at the end."""
    _require_installed()
    hub = HubProcess(database_url=database_url)
    try:
        hub_url = hub.wait_ready()
        users = _two_users(tmp_path, hub_url, FILE, INITIAL)
        servers_to_stop += await asyncio.to_thread(_start, tmp_path, users, vsix)
        driver = await Driver.start(tmp_path, {"mode": "owner", "users": users, "file": FILE})
        try:
            invite = (await driver.until("joined", 300))["invite"]
            assert "made you a viewer" in (await driver.until("viewer", 120))["told"]
            rotated = await driver.until("rotated", 120)
            assert rotated["invite"] != invite and "Rotate the room's invites?" in rotated["dialog"]
            assert "changed the invites" in rotated["told"]
            await driver.until("rejoined", 120)
            removed = await driver.until("removed", 120)
            assert f"Remove {NAME_B} from the room?" in removed["dialog"]
            assert "rotating is what keeps a determined person out" in removed["dialog"]
            assert "removed from the room by the owner" in removed["told"]
            deleted = await driver.until("deleted", 120)
            assert "Delete the room for everyone?" in deleted["dialog"]
            done = await driver.finish()
            assert done.get("ok"), driver.summary()
        finally:
            driver.kill()
        # the room is gone from the hub: its newest invite opens nothing
        inv = parse_invite(rotated["invite"])
        peer = await Peer(hub_url, name="e2e-checker").connect()
        try:
            with pytest.raises(HubError) as info:
                await peer.join(inv.room_id, inv.secret)
            assert info.value.code == "no_such_room"
        finally:
            await peer.close()
    finally:
        hub.terminate()


# --- history: undo and redo of my own changes, the history, hovers -------------------------------

H_FILE = "story.txt"
H_INITIAL = "line one\nline two\nline three\nline four\n"


@pytest.mark.timeout(600)
async def test_history(
    database_url: str, tmp_path: Path, servers_to_stop: list[CodeServer], vsix: Path
) -> None:
    _require_installed()
    hub = HubProcess(database_url=database_url)
    try:
        hub_url = hub.wait_ready()
        # hovers on (the harness turns them off): the blame shows in them
        hovers = {"editor.hover.enabled": True, "editor.hover.delay": 300}
        users = _two_users(tmp_path, hub_url, H_FILE, H_INITIAL, hovers)
        servers_to_stop += await asyncio.to_thread(_start, tmp_path, users, vsix)
        after_first = "line one\nline two [ada]\nline three\nline four\n"
        with_bob = "line one\nline two [BOBada]\nline three\nline four # ada2 bob\n"
        undone_once = "line one\nline two [BOBada]\nline three\nline four bob\n"
        undone_twice = "line one\nline twoBOB\nline three\nline four bob\n"
        config = {
            "mode": "history",
            "users": users,
            "file": H_FILE,
            "initial": H_INITIAL,
            "first": " [ada]",
            "afterFirst": after_first,
            "second": " # ada2",
            "afterSecond": "line one\nline two [ada]\nline three\nline four # ada2\n",
            "inside": "BOB",
            "insideFromEnd": 4,
            "after": " bob",
            "withBob": with_bob,
            "undoneOnce": undone_once,
            "undoneTwice": undone_twice,
            "nameA": NAME_A,
            # A's first change in the history (not the undo or redo of it)
            "pick": "+6 −0 · line 2",
            "typeDelayMs": 40,
            "pauseAt": ["typed", "undone", "redone"],
        }
        driver = await Driver.start(tmp_path, config)
        try:
            invite = parse_invite((await driver.until("joined", 300))["invite"])
            peer = await Peer(hub_url, name="e2e-checker").connect()
            try:
                await peer.join(invite.room_id, invite.secret)
                doc = await peer.open(H_FILE)
                for event, text in (("typed", with_bob), ("undone", undone_twice), ("redone", undone_once)):
                    await driver.until(event, 240)
                    await doc.wait_synced()
                    for _ in range(100):  # (the hub has it before both editors show it)
                        if doc.text == text:
                            break
                        await asyncio.sleep(0.1)
                    assert doc.text == text, (event, doc.text)
                    await driver.resume()
                hover = await driver.until("hover", 240)
                assert NAME_A in hover["text"] and "just now · rev " in hover["text"], hover
                diff = await driver.until("diff", 240)
                # the diff's title names the revision; its left side is the hub's text then
                m = re.search(r"\(rev (\d+)\)", diff["title"])
                assert m is not None and "↔ now" in diff["title"], diff
                revision = await peer.request({"type": "revision", "path": H_FILE, "rev": int(m.group(1))})
                assert revision["text"] == after_first == diff["left"], (revision, diff)
                assert any("undid the change of rev" in r for r in diff["rows"]), diff["rows"]
            finally:
                await peer.close()
            done = await driver.finish()
            assert done.get("ok"), driver.summary()
        finally:
            driver.kill()
    finally:
        hub.terminate()


# --- run it together: A runs for the room, B's window shows the output in a terminal -------------

R_FILE = "count.py"
R_TEXT = (
    "import sys, time\n"
    "for i in range(1, 4):\n"
    "    print(f'count {i} of 3', flush=True)\n"
    "    time.sleep(0.3)\n"
    "print('oops on stderr', file=sys.stderr, flush=True)\n"
    "open('ran-here', 'w').close()\n"
    "sys.exit(3)\n"
)


def _ran_in(workspace: str) -> bool:
    return (Path(workspace) / "ran-here").exists()


@pytest.mark.timeout(600)
async def test_run_for_the_room(
    database_url: str, tmp_path: Path, servers_to_stop: list[CodeServer], vsix: Path
) -> None:
    """A runs count.py for the room from the palette ("Pairls: Run for the Room", "Run
    count.py"); B's window opens a terminal fed by the output document by itself and shows every
    line and the end line with the exit status; A's own terminal shows the same; it ran on A's
    machine only."""
    _require_installed()
    hub = HubProcess(database_url=database_url)
    try:
        hub_url = hub.wait_ready()
        # the terminal's rows in the DOM (not drawn by WebGL), to read what it shows
        users = _two_users(tmp_path, hub_url, R_FILE, R_TEXT, {"terminal.integrated.gpuAcceleration": "off"})
        servers_to_stop += await asyncio.to_thread(_start, tmp_path, users, vsix)
        end = f"[pairls: python3 {R_FILE} run by {NAME_A}: exit status 3 after "
        driver = await Driver.start(tmp_path, {"mode": "run", "users": users, "file": R_FILE, "endText": end})
        try:
            await driver.until("joined", 300)
            shown = await driver.until("terminal", 240)
            for text in (shown["b"], shown["a"]):
                lines = text.splitlines()
                assert lines[0].startswith(f"$ python3 {R_FILE}    (run by {NAME_A})"), text
                counts = [ln for ln in lines if ln.startswith("count ")]
                assert counts == ["count 1 of 3", "count 2 of 3", "count 3 of 3"], text
                assert "oops on stderr" in lines and text.index("count 3") < text.index("oops on stderr")
                assert lines[-1].startswith(end), text
            assert any(f"Pairls run: python3 {R_FILE} ({NAME_A})" in n for n in shown["names"]), shown[
                "names"
            ]
            # B was told it started and ended, and no editor tab opened for the output
            assert any(f"{NAME_A} started a run for the room" in t for t in shown["told"]), shown["told"]
            assert any(f"run `python3 {R_FILE}` ended: exit status 3" in t for t in shown["told"]), shown[
                "told"
            ]
            assert not any(".log" in t for t in shown["tabs"]), shown["tabs"]
            stop = await driver.until("stop", 120)
            assert "no run of yours is running" in stop["told"]
            done = await driver.finish()
            assert done.get("ok"), driver.summary()
        finally:
            driver.kill()
        # it ran on A's machine, in A's folder, and nowhere else
        assert [_ran_in(u["workspace"]) for u in users] == [True, False]
    finally:
        hub.terminate()


# --- closing VS Code while offline: the typing is kept for the next entry ------------------------

C_FILE = "notes.txt"
C_INITIAL = "first line\nsecond line\nthird line\n"


@pytest.mark.timeout(600)
async def test_typing_offline_then_reloading_the_window_keeps_it_for_the_next_entry(
    database_url: str, tmp_path: Path, servers_to_stop: list[CodeServer], vsix: Path
) -> None:
    """VS Code's own way of ending its language server: B's route to the hub is cut, B types a
    line, saves and runs "Developer: Reload Window" (the extension host ends, and with it the
    language client that ran B's server: the server is asked to shut down, or finds its stdin
    closed; the test does not tell which).  The server keeps what the hub never had in B's state
    folder before it goes; A types meanwhile; once the route is back, B's new window joins with
    the same invite and the room gets B's line once, after A's."""
    _require_installed()
    hub = HubProcess(database_url=database_url)
    host, port = hub.wait_ready().removeprefix("ws://").rsplit(":", 1)
    proxy = await TcpProxy(host, int(port)).start()
    try:
        hub_url = hub.url
        users = _two_users(tmp_path, hub_url, C_FILE, C_INITIAL)
        servers_to_stop += await asyncio.to_thread(_start, tmp_path, users, vsix)
        carries = tmp_path / "home-B" / "xdg-state" / "pairls" / "carries"
        with_a = "first line A online\nsecond line\nthird line\n"
        want = "first line A online\nsecond line\nthird line B offline\n"
        config = {
            "mode": "carry",
            "users": users,
            "file": C_FILE,
            "initial": C_INITIAL,
            "hubAddress": f"{host}:{port}",
            "bobHubAddress": proxy.url.removeprefix("ws://"),
            "lineA": 1,
            "typeA": " A online",
            "withA": with_a,
            "lineB": 3,
            "typeB": " B offline",
            "want": want,
            "typeDelayMs": 40,
            "pauseAt": ["joined", "reloaded"],
        }
        driver = await Driver.start(tmp_path, config)
        try:
            invite = parse_invite((await driver.until("joined", 300))["invite"])
            proxy.cut()
            await driver.resume()
            reloaded = await driver.until("reloaded", 240)
            assert reloaded["typed"] == "first line\nsecond line\nthird line B offline\n", reloaded
            (kept,) = carries.iterdir()  # (B's old server kept it before VS Code killed it)
            assert kept.name.endswith(".json") and kept.stat().st_mode & 0o777 == 0o600
            assert (tmp_path / "ws-B" / C_FILE).read_text() == reloaded["typed"]  # (saved)
            assert await hub_text(hub_url, str(invite), C_FILE) == with_a  # (not B's line yet)
            proxy.restore()
            await driver.resume()
            converged = await driver.until("converged", 240)
            assert converged["text"] == want
            assert await hub_text(hub_url, str(invite), C_FILE) == want
            assert not any(carries.iterdir())  # (taken)
            done = await driver.finish()
            assert done.get("ok"), driver.summary()
        finally:
            driver.kill()
    finally:
        await proxy.close()
        hub.terminate()
