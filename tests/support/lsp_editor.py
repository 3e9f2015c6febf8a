"""A test editor: pytest-lsp's LanguageClient driving a real ``python -m lsp_bridge`` subprocess.

:class:`TestEditor` plays one editor at the LSP boundary the way VS Code,
Neovim 0.7 or Emacs eglot do (docs/architecture.md, decision 2), with their real
capability sets from pytest-lsp (``visual-studio-code``, ``neovim@v0.7.0``,
``emacs``).  Each open document is one of the sans-I/O simulators of
``tests/lsp_bridge/editors.py`` (a buffer, its version, changes not yet
notified), so the boundary rules live in one place:

* ``vscode``: refuses an edit whose version is not the buffer's
  (``applied: false``); every change is its own didChange at once, except that
  an applied edit is answered first and its didChange follows; utf-16.
* ``neovim``: opens at version 0, then versions are ``b:changedtick`` (the
  first change jumps to >= 3, later steps 1 or 2); skips an edit older than
  the buffer yet answers ``applied: true``, never checks version 0; debounces
  didChange (several changes in one notification), flushes before a request.
* ``emacs`` (eglot): opens at version 0; answers an error on a stale version;
  applies an edit as a minimal diff (possibly several changes); sends
  didChange when idle, and before a request; offers utf-32, utf-8, utf-16.

Positions use the encoding the server chose (``InitializeResult``
``capabilities.positionEncoding``).  The typing API works in code points:
:meth:`insert`, :meth:`delete`, :meth:`replace`, :meth:`paste`.
:meth:`status`, :meth:`command`, :func:`settle` (quiescence: every editor
flushed, nothing pending, the same revision and hash everywhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import secrets
import shutil
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs
from lsprotocol import types as T
from pygls.exceptions import JsonRpcException
from pygls.io_ import run_async
from pygls.protocol import JsonRPCNotification, default_converter
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, forward_stderr, register_lsp_features

from lsp_bridge.editor_sync import ContentChange, EditToApply, TextEdit
from tests.lsp_bridge.editors import Answer, Eglot, Neovim07, Notification, SimEditor, VersionBlind, VSCode

ROOT = Path(__file__).resolve().parents[2]

E = TypeVar("E")

KINDS = ("vscode", "neovim", "emacs")
#: also a full-sync client (Neovim with allow_incremental_sync = false) and a client that
#: ignores an edit's version and applies it where its positions fall now
ALL_KINDS = (*KINDS, "neovim-full", "blind")

_CAPS = {
    "vscode": "visual-studio-code",
    "neovim": "neovim@v0.7.0",
    "emacs": "emacs",
    "neovim-full": "neovim@v0.7.0",
    "blind": "visual-studio-code",
}
_STDIO = {"vscode": "socket", "neovim": "socket", "neovim-full": "socket", "emacs": "pipe", "blind": "pipe"}
_INFO = {
    "vscode": T.ClientInfo(name="Visual Studio Code", version="1.65.2"),
    "neovim": T.ClientInfo(name="Neovim", version="0.7.0"),
    "neovim-full": T.ClientInfo(name="Neovim", version="0.7.0"),
    "blind": T.ClientInfo(name="Blind", version="1.0"),
    "emacs": T.ClientInfo(name="Eglot", version="1.15"),
}


class _Nvim(Neovim07):
    """Neovim 0.7 as it really versions a buffer: didOpen says 0, the first change jumps to >= 3."""

    def _version_step(self) -> int:
        if self.version == 0:
            return self.rng.randint(3, 5)
        return super()._version_step()


class _NvimFull(_Nvim):
    """Neovim with ``flags.allow_incremental_sync = false``: every didChange is the whole text."""

    avoid_fresh = True

    def flush(self) -> None:
        self.fresh = []
        if self.unsent:
            self.outbox.append(Notification(self.version, [ContentChange(None, self.text)]))
            self.unsent = []


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plain(obj: Any) -> Any:
    """A pygls params object of an unknown method (a namedtuple-like Object) as plain JSON data."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple) and not hasattr(obj, "_asdict"):
        return [_plain(v) for v in obj]
    if hasattr(obj, "_asdict"):
        return {k: _plain(v) for k, v in obj._asdict().items()}
    return obj


@attrs.define
class _PairlsNote(JsonRPCNotification):  # type: ignore[misc]
    """A ``pairls/*`` notification, its params kept as the JSON they came as.

    pygls makes every dict of an unknown method's params an instance of a namedtuple type it
    creates for that dict (``pygls.protocol._dict_to_object``): 2.2 ms for a list of 60
    documents, against 10 us kept as JSON.  A real editor's client spends microseconds on
    it, and this client stands for one, also in the benches, where its event loop stamps
    arrivals."""


def _converter() -> Any:
    converter = default_converter()
    converter.register_structure_hook(_PairlsNote, lambda obj, cls: cls(**obj))
    return converter


class TestEditor:
    """One editor and its own ``pairls-lsp`` subprocess.  See the module docstring."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        kind: str,
        name: str,
        workspace: Path | None,
        hub_url: str | None,
        *,
        seed: int = 0,
        auto_share: bool = True,
        env: dict[str, str] | None = None,
        debounce: float = 0.08,
        init_options: dict[str, Any] | None = None,
        stdio: str | None = None,
    ) -> None:
        assert kind in ALL_KINDS, kind
        #: how the server's stdin and stdout are made: as the editor this one plays makes them
        #: (``"socket"``: a socket pair each, libuv's way, in VS Code's Node.js and in Neovim;
        #: ``"pipe"``: Emacs's way, and Python's)
        self.stdio = stdio or _STDIO[kind]
        #: what the client reads the server's messages from, and writes its own to (the
        #: server's stdout and stdin, a pipe's end or a socket's)
        self.stdout: asyncio.StreamReader | None = None
        self.stdin: asyncio.StreamWriter | None = None
        self._out_writer: asyncio.StreamWriter | None = None
        self.init_options = init_options or {}
        self.kind = kind
        self.name = name
        self.workspace = workspace
        self.hub_url = hub_url
        self.auto_share = auto_share
        self.env = env
        self.rng = random.Random(seed)
        self.debounce = debounce
        self.client = LanguageClient(converter_factory=_converter)
        protocol = self.client.protocol
        message_type = protocol.get_message_type
        protocol.get_message_type = lambda method: (  # type: ignore[method-assign]
            _PairlsNote if method.startswith("pairls/") else message_type(method)
        )
        # pytest-lsp's default handlers, except window/showDocument (ours opens the file too)
        register_lsp_features(
            self.client, {k: f for k, f in DEFAULT_CLIENT_FEATURES.items() if k != T.WINDOW_SHOW_DOCUMENT}
        )
        self.encoding = "utf-16"
        self.buffers: dict[str, SimEditor] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        #: the server's state folder when the caller gave none (a temporary one, removed at stop)
        self._state_home: Path | None = None
        #: pairls/* notifications received, by method, in order
        self.notes: dict[str, list[dict[str, Any]]] = {}
        #: when each of them arrived (the event loop's clock), parallel to ``notes``
        self.note_times: dict[str, list[float]] = {}
        self.inlay_refreshes = 0
        #: a test that knows how long a text can be sets this: an edit that would make a
        #: buffer longer is not applied but recorded in ``runaway`` (text taken for typing
        #: and sent again grows without end, and the simulators' diffs of it take hours)
        self.max_text: int | None = None
        self.runaway: list[str] = []

        self.edits_received = 0
        self.edits_refused = 0
        self.edits_skipped = 0
        #: TextEdits in all the applyEdits received (one applyEdit may hold many)
        self.text_edits_received = 0
        self.auto_open_shown = True
        #: window/showMessageRequest asked of the user, and the title this editor answers with
        #: (None: the user dismissed it)
        self.questions: list[T.ShowMessageRequestParams] = []
        self.answer: str | None = None
        self._note_event = asyncio.Event()
        self._register()

    # -- lifecycle -------------------------------------------------------------------

    def _register(self) -> None:
        c = self.client

        @c.feature(T.WORKSPACE_APPLY_EDIT)
        def apply_edit(ls: Any, params: T.ApplyWorkspaceEditParams) -> T.ApplyWorkspaceEditResult:
            return self._apply_edit(params)

        @c.feature(T.WINDOW_SHOW_MESSAGE_REQUEST)
        def show_message_request(ls: Any, params: T.ShowMessageRequestParams) -> T.MessageActionItem | None:
            self.questions.append(params)
            return None if self.answer is None else T.MessageActionItem(title=self.answer)

        @c.feature(T.WORKSPACE_INLAY_HINT_REFRESH)
        def inlay_refresh(ls: Any, params: Any) -> None:
            self.inlay_refreshes += 1

        @c.feature(T.WINDOW_SHOW_DOCUMENT)
        def show_document(ls: Any, params: T.ShowDocumentParams) -> T.ShowDocumentResult:
            c.shown_documents.append(params)
            if self.auto_open_shown and params.uri not in self.buffers:
                # a real editor opens the file it is asked to show
                path = Path(params.uri.removeprefix("file://"))
                if path.exists():
                    self.open(params.uri, path.read_text(encoding="utf-8"))
            return T.ShowDocumentResult(success=True)

        for method in (
            "pairls/status",
            "pairls/participants",
            "pairls/cursors",
            "pairls/runs",
            "pairls/runOutput",
        ):

            def note(ls: Any, params: Any, method: str = method) -> None:
                self.notes.setdefault(method, []).append(_plain(params))
                self.note_times.setdefault(method, []).append(asyncio.get_running_loop().time())
                self._note_event.set()

            c.feature(method)(note)

    async def start(self, command: list[str] | None = None, cwd: Path | None = None) -> TestEditor:
        """Start the server (``python -m lsp_bridge`` of this checkout, or *command*) and initialize."""
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(self.env or {}))
        if "PAIRLS_USER_ID" not in (self.env or {}) and "XDG_STATE_HOME" not in (self.env or {}):
            # each editor its own person, and no user id written into the real state folder
            # (not from self.rng: the simulated editors' choices stay what each seed made them)
            name = "".join(c for c in self.name if c.isalnum())[:20]
            env["PAIRLS_USER_ID"] = f"test-{name}-{secrets.token_hex(4)}"
        if "XDG_STATE_HOME" not in (self.env or {}):
            # nor what a server keeps when its editor goes with edits unsent (lsp_bridge/carries.py)
            self._state_home = Path(tempfile.mkdtemp(prefix="pairls-test-state-"))
            env["XDG_STATE_HOME"] = str(self._state_home)
        cmd = command or [sys.executable, "-m", "lsp_bridge"]
        if self.stdio == "socket":
            await self._start_on_sockets([*cmd, "--log-level", "WARNING"], env, str(cwd or ROOT))
        else:
            await self.client.start_io(*cmd, "--log-level", "WARNING", env=env, cwd=str(cwd or ROOT))
            assert self.client._server is not None
            self.stdout, self.stdin = self.client._server.stdout, self.client._server.stdin
        caps = client_capabilities(_CAPS[self.kind])
        if self.kind == "vscode":
            # VS Code >= 1.67 renders inlay hints and honours refresh (the 1.65 capture predates it)
            caps.workspace.inlay_hint = T.InlayHintWorkspaceClientCapabilities(refresh_support=True)
            caps.text_document.inlay_hint = T.InlayHintClientCapabilities()
        folders = None
        root_uri = None
        if self.workspace is not None:
            root_uri = self.workspace.as_uri()
            folders = [T.WorkspaceFolder(uri=root_uri, name=self.workspace.name)]
        opts: dict[str, Any] = {"displayName": self.name, "autoShare": self.auto_share, **self.init_options}
        if self.hub_url is not None:
            opts["hubUrl"] = self.hub_url
        result = await self.client.initialize_session(
            T.InitializeParams(
                capabilities=caps,
                client_info=_INFO[self.kind],
                root_uri=root_uri,
                workspace_folders=folders,
                initialization_options=opts,
            )
        )
        enc = result.capabilities.position_encoding or "utf-16"
        self.encoding = str(getattr(enc, "value", enc))
        return self

    async def _start_on_sockets(self, cmd: list[str], env: dict[str, str], cwd: str) -> None:
        """pygls's ``start_io``, with a socket pair for each of the server's stdin and stdout."""
        c = self.client
        server, reader, writer, self._out_writer = await spawn_on_socket_pairs(cmd, env, cwd)
        self.stdout, self.stdin = reader, writer
        c.protocol.set_writer(writer)
        read = run_async(
            stop_event=c._stop_event,
            reader=reader,
            protocol=c.protocol,
            logger=logging.getLogger("pygls.client"),
            error_handler=c.report_server_error,
        )
        c._server = server
        c._async_tasks.extend([asyncio.create_task(read), asyncio.create_task(c._server_exit())])
        c._stderr_forwarder = asyncio.create_task(forward_stderr(server))

    async def stop(self) -> None:
        self._cancel_timers()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.shutdown_session(), 10)
        with contextlib.suppress(Exception):
            await self.client.stop()
        self._cancel_timers()  # (any a change made while it shut down: nothing to send to)
        if self._state_home is not None and not self.alive:
            shutil.rmtree(self._state_home, ignore_errors=True)
            self._state_home = None

    def _cancel_timers(self) -> None:
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()

    def close_stdin(self) -> None:
        """What an editor that has gone does: its server reads the end of its stdin."""
        assert self.stdin is not None
        self.stdin.close()

    @property
    def alive(self) -> bool:
        server = self.client._server
        return server is not None and server.returncode is None

    # -- documents ---------------------------------------------------------------------

    def uri(self, rel: str) -> str:
        assert self.workspace is not None
        return (self.workspace / rel).as_uri()

    def open(self, uri: str, text: str, language_id: str = "python") -> None:
        version = 1 if self.kind in ("vscode", "blind") else 0
        cls = {
            "vscode": VSCode,
            "neovim": _Nvim,
            "emacs": Eglot,
            "neovim-full": _NvimFull,
            "blind": VersionBlind,
        }[self.kind]
        buf = cls(text, self.rng, encoding=self.encoding, version=version)
        if type(buf) is VSCode:
            buf.answer_first = True  # see _apply_edit
        self.buffers[uri] = buf
        self.client.text_document_did_open(
            T.DidOpenTextDocumentParams(
                text_document=T.TextDocumentItem(uri=uri, language_id=language_id, version=version, text=text)
            )
        )

    def close(self, uri: str) -> None:
        self.flush(uri)
        del self.buffers[uri]
        self.client.text_document_did_close(
            T.DidCloseTextDocumentParams(text_document=T.TextDocumentIdentifier(uri=uri))
        )

    def text(self, uri: str) -> str:
        return self.buffers[uri].text

    # -- typing (code point offsets) ------------------------------------------------------

    def replace(self, uri: str, start: int, end: int, new_text: str) -> None:
        buf = self.buffers[uri]
        buf.user_edit(start, end, new_text)
        self._drain(uri)

    def insert(self, uri: str, offset: int, text: str) -> None:
        self.replace(uri, offset, offset, text)

    def paste(self, uri: str, offset: int, lines: Iterable[str], eol: str = "\n") -> None:
        self.replace(uri, offset, offset, eol.join(lines))

    def delete(self, uri: str, start: int, end: int) -> None:
        self.replace(uri, start, end, "")

    def type(self, uri: str, offset: int, text: str) -> None:
        """Type *text* one character at a time (one change each) at *offset*."""
        for i, ch in enumerate(text):
            self.insert(uri, offset + i, ch)

    def append(self, uri: str, text: str) -> None:
        self.insert(uri, len(self.text(uri)), text)

    def position(self, uri: str, offset: int) -> T.Position:
        from tests.lsp_bridge.editors import ref_position

        line, char = ref_position(self.text(uri), offset, self.encoding)
        return T.Position(line=line, character=char)

    def flush(self, uri: str | None = None) -> None:
        """Send every change not yet notified (the debounce ran out)."""
        for u in [uri] if uri is not None else list(self.buffers):
            buf = self.buffers.get(u)
            if buf is None:
                continue
            t = self._timers.pop(u, None)
            if t is not None:
                t.cancel()
            buf.flush()
            self._send_notifications(u)

    def _drain(self, uri: str) -> None:
        self._send_notifications(uri)
        buf = self.buffers[uri]
        if buf.unsent:
            if self.kind == "emacs":
                # eglot: when idle, i.e. some time after the last change
                old = self._timers.pop(uri, None)
                if old is not None:
                    old.cancel()
            if uri not in self._timers:
                delay = self.debounce * (0.5 + self.rng.random())
                self._timers[uri] = asyncio.get_running_loop().call_later(delay, self.flush, uri)

    def _send_notifications(self, uri: str) -> None:
        buf = self.buffers.get(uri)
        if buf is None:
            # closed since this was scheduled (VS Code's answer goes first, its didChange on
            # the next turn): close() sent what it had before the didClose
            return
        while buf.outbox and isinstance(buf.outbox[0], Notification):
            n = buf.outbox.popleft()
            assert isinstance(n, Notification)
            self.notify_change(uri, n)

    def notify_change(self, uri: str, n: Notification) -> None:
        """Send one didChange (tests that hold one back send it with this, later)."""
        self.client.text_document_did_change(
            T.DidChangeTextDocumentParams(
                text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=n.version),
                content_changes=[_lsp_change(c) for c in n.changes],
            )
        )

    # -- workspace/applyEdit ------------------------------------------------------------------

    def _apply_edit(self, params: T.ApplyWorkspaceEditParams) -> T.ApplyWorkspaceEditResult:
        self.edits_received += 1
        changes = params.edit.document_changes or []
        assert len(changes) == 1, params
        tde = changes[0]
        assert isinstance(tde, T.TextDocumentEdit), tde
        uri = tde.text_document.uri
        version = tde.text_document.version
        assert version is not None, "pairls must never send version null"
        assert tde.edits, tde
        edits = []
        for e in tde.edits:
            assert isinstance(e, T.TextEdit)
            start = (e.range.start.line, e.range.start.character)
            end = (e.range.end.line, e.range.end.character)
            edits.append(TextEdit(start, end, e.new_text))
        edit = EditToApply(version, tuple(edits))
        self.text_edits_received += len(edits)
        buf = self.buffers.get(uri)
        if buf is None:
            return T.ApplyWorkspaceEditResult(applied=False, failure_reason="not open")
        grown = len(buf.text) + sum(len(e.new_text) for e in edits)
        if self.max_text is not None and grown > self.max_text:
            self.runaway.append(f"{uri}: an edit to {grown} code points, at most {self.max_text} expected")
            return T.ApplyWorkspaceEditResult(applied=False, failure_reason="runaway")
        if isinstance(buf, Neovim07):
            # vim.lsp.util.apply_text_document_edit (0.7): skip if version > 0 and the buffer is newer
            if edit.version > 0 and buf.version > edit.version:
                self.edits_skipped += 1
                buf.messages.append("Buffer newer than edits.")
                buf.outbox.append(Answer(True))
            else:
                buf.apply_unchecked(edit)
        else:
            buf.receive_edit(edit)
        if type(buf) is VSCode and buf.outbox and isinstance(buf.outbox[0], Answer):
            # VS Code answers, then sends the didChange of the edit (its language client
            # does, as tests/e2e/test_vscode.py's logs show): the answer goes out first
            answer = buf.outbox.popleft()
            asyncio.get_running_loop().call_soon(self._send_notifications, uri)
        else:
            self._send_notifications(uri)
            answer = buf.outbox.popleft()
            assert isinstance(answer, Answer), answer
            self._send_notifications(uri)
        if buf.unsent:
            self._drain(uri)
        if answer.error is not None:
            self.edits_refused += 1
            raise JsonRpcException(message=answer.error)
        if not answer.applied:
            self.edits_refused += 1
        return T.ApplyWorkspaceEditResult(applied=answer.applied)

    # -- requests ---------------------------------------------------------------------------------

    async def command(self, name: str, arg: dict[str, Any] | None = None) -> Any:
        if self.kind != "vscode":
            self.flush()  # Neovim and eglot send pending changes before a request
        return _plain(
            await self.client.workspace_execute_command_async(
                T.ExecuteCommandParams(command=name, arguments=[arg or {}])
            )
        )

    async def status(self) -> dict[str, Any]:
        return await self.command("pairls.status")

    async def complete(self, uri: str, offset: int) -> list[T.CompletionItem]:
        self.flush(uri)
        res = await self.client.text_document_completion_async(
            T.CompletionParams(
                text_document=T.TextDocumentIdentifier(uri=uri), position=self.position(uri, offset)
            )
        )
        if res is None:
            return []
        return list(res.items if isinstance(res, T.CompletionList) else res)

    async def inlay_hints(self, uri: str) -> list[T.InlayHint]:
        self.flush(uri)
        end = self.position(uri, len(self.text(uri)))
        res = await self.client.text_document_inlay_hint_async(
            T.InlayHintParams(
                text_document=T.TextDocumentIdentifier(uri=uri),
                range=T.Range(
                    start=T.Position(line=0, character=0), end=T.Position(line=end.line + 1, character=0)
                ),
            )
        )
        return list(res or [])

    def send_cursor(self, uri: str, offset: int) -> None:
        p = self.position(uri, offset)
        pos = {"line": p.line, "character": p.character}
        self.client.protocol.notify("pairls/cursor", {"uri": uri, "ranges": [{"start": pos, "end": pos}]})

    async def wait_note(self, method: str, pred: Any, timeout: float = 20) -> dict[str, Any]:
        """The first ``pairls/*`` notification *method* whose params satisfy *pred* (past ones count)."""

        async def wait() -> dict[str, Any]:
            while True:
                for n in self.notes.get(method, []):
                    if pred(n):
                        return n
                self._note_event.clear()
                await self._note_event.wait()

        return await asyncio.wait_for(wait(), timeout)


async def spawn_on_socket_pairs(
    cmd: Sequence[str], env: dict[str, str], cwd: str
) -> tuple[asyncio.subprocess.Process, asyncio.StreamReader, asyncio.StreamWriter, asyncio.StreamWriter]:
    """Start *cmd* with a socket pair for each of its stdin and stdout, as libuv does (VS Code's
    Node.js, Neovim), stderr a pipe: the process, the reader of its stdout, the writer to its
    stdin, and the stdout pair's own writer, to keep (a StreamWriter collected closes its
    transport, and the reader with it)."""
    ours_in, theirs_in = socket.socketpair()
    ours_out, theirs_out = socket.socketpair()
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=theirs_in, stdout=theirs_out, stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd
        )
    finally:
        theirs_in.close()
        theirs_out.close()
    reader, keep = await asyncio.open_unix_connection(sock=ours_out)
    _, writer = await asyncio.open_unix_connection(sock=ours_in)
    return proc, reader, writer, keep


def _lsp_change(c: ContentChange) -> T.TextDocumentContentChangeEvent:
    if c.range is None:
        return T.TextDocumentContentChangeWholeDocument(text=c.text)
    sl, sc, el, ec = c.range
    return T.TextDocumentContentChangePartial(
        range=T.Range(start=T.Position(line=sl, character=sc), end=T.Position(line=el, character=ec)),
        text=c.text,
    )


async def settle(
    editors: list[tuple[TestEditor, str]], path: str, *, timeout: float = 60, interval: float = 0.05
) -> dict[str, Any]:
    """Wait for quiescence of document *path*, open as ``(editor, uri)`` in each editor.

    Quiet means: every editor flushed its changes, every server connected with
    nothing pending for *path*, the same revision and shadow hash everywhere,
    and each editor buffer's hash equal to it, twice in a row.  Returns the
    last status of the first editor's document.  The *timeout* only bounds a
    hang; it asserts nothing about speed.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    stable = 0
    last: list[Any] = []
    while True:
        for ed, uri in editors:
            ed.flush(uri)
        statuses = [await ed.status() for ed, _ in editors]
        docs = [st["documents"].get(path) for st in statuses]
        ok = all(st["connected"] for st in statuses) and all(d is not None and not d["pending"] for d in docs)
        if ok:
            revs = {d["rev"] for d in docs}
            hashes = {d["sha256"] for d in docs} | {sha256(ed.text(uri)) for ed, uri in editors}
            ok = (
                len(revs) == 1 and len(hashes) == 1 and not any(ed.buffers[uri].unsent for ed, uri in editors)
            )
        last = [statuses, [(ed.name, ed.text(uri)) for ed, uri in editors]]
        stable = stable + 1 if ok else 0
        if stable >= 2:
            return docs[0]
        if loop.time() > deadline:
            raise TimeoutError(f"no quiescence on {path}: {last!r}")
        await asyncio.sleep(interval)


def hidden_problems(status: dict[str, Any], *, resyncs: bool = False) -> dict[str, int]:
    """What in a ``pairls.status`` answer hides a bug, by name, with its count (none: ``{}``):
    a heal, a failed task, an error of the server's own (``serverErrors``), an answer that made
    no sense, a jedi worker lost (and a resync with the editor, if *resyncs*).  Shared by the
    test editors' :func:`stop_checked` and the real editors' end-to-end tests."""
    stats, jedi = status["stats"], status["jedi"]
    found = {
        "heals": status["heals"],
        "failedTasks": stats["failedTasks"],
        "serverErrors": stats["serverErrors"],
        "bad_answers": stats["bad_answers"],
        "carries_unreadable": stats["carries_unreadable"],
        "jedi deaths, hangs, bad lines": sum(jedi.get(k, 0) for k in ("deaths", "hangs", "bad_lines")),
    }
    if resyncs:
        found["resyncs"] = stats["resyncs"]
    return {k: n for k, n in found.items() if n}


async def end_checked(
    editors: Sequence[E],
    name: Callable[[int, E], str],
    statuses: Callable[[E], Awaitable[list[dict[str, Any]] | None]],
    close: Callable[[E], Awaitable[None]],
    *,
    resyncs: bool = False,
) -> None:
    """Close *editors*, failing on what hides a bug (:func:`hidden_problems`) in any language
    server they still run, or on a status one cannot give.  *statuses* gives an editor's
    servers' ``pairls.status`` answers (None: it runs none to ask, as when it has ended); an
    editor that should run one and runs none fails too.  For the test editors' fixtures
    (:func:`stop_checked`) and the real editors' end-to-end tests: none of them causes one
    on purpose."""
    problems: dict[str, Any] = {}
    for k, ed in enumerate(editors):
        who = name(k, ed)
        try:
            found = await statuses(ed)
        except Exception as exc:  # a server that cannot say how it is: a bug too
            problems[who] = f"pairls.status failed: {exc!r}"
            continue
        if found is None:
            continue
        if not found:
            problems[who] = "no pairls-lsp running"
        for i, st in enumerate(found):
            if hidden := hidden_problems(st, resyncs=resyncs):
                problems[f"{who}, server {i}"] = hidden
    await asyncio.gather(*(close(ed) for ed in editors))
    assert not problems, f"what hides a bug, in servers still running at the end: {problems}"


async def stop_checked(editors: list[TestEditor], *, resyncs: bool = False) -> None:
    """:func:`end_checked` for test editors (and a resync with the editor too, if *resyncs*)."""

    async def statuses(ed: TestEditor) -> list[dict[str, Any]] | None:
        return [await asyncio.wait_for(ed.status(), 10)] if ed.alive else None

    await end_checked(editors, lambda k, ed: f"{ed.name}#{k}", statuses, TestEditor.stop, resyncs=resyncs)
