"""``pairls-lsp``: the language server every participant's editor runs (pygls 2, LSP 3.17).

Handlers are thin: they translate LSP into :class:`~lsp_bridge.session.Session`
calls and back.  Everything a user does is standard LSP where LSP has a way
(DESIGN.md decision 6): room actions are ``workspace/executeCommand``
commands, opening and following use ``window/showDocument``, completions are
``textDocument/completion``; ``pairls/*`` notifications carry only what LSP
has no word for (peers' cursors, room status).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import stat
import sys
import threading
from collections.abc import Awaitable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.io_ import StdoutWriter, run_async
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from . import __version__
from .completion import Candidate, CompletionEngine, IdentifierIndex, SemanticResult, language_of
from .editor_sync import ContentChange, EditToApply
from .positions import LineIndex
from .session import Participant, Session, SessionError

__all__ = ["PairlsServer", "create_server"]

logger = logging.getLogger(__name__)

#: how long a completion waits for jedi (it runs on in the background after that)
JEDI_WAIT_S = 0.015

COMMANDS = (
    "pairls.createRoom",
    "pairls.joinRoom",
    "pairls.leaveRoom",
    "pairls.shareDocument",
    "pairls.openDocument",
    "pairls.participants",
    "pairls.follow",
    "pairls.status",
)


class PairlsServer(LanguageServer):
    """The language server; one per editor."""

    def __init__(self) -> None:
        super().__init__(
            "pairls-lsp", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental
        )
        self.hub_url = os.environ.get("PAIRLS_HUB_URL", "ws://127.0.0.1:8765")
        self.display_name = os.environ.get("USER", "someone")
        self.auto_share = True
        self.encoding = "utf-16"
        self.session: Session | None = None
        self.index = IdentifierIndex()
        self.engine = CompletionEngine(self.index)
        # jedi is not thread-safe and cannot be interrupted: one worker, waited on for a budget
        self.jedi_pool = _DaemonWorker()
        self.jedi_busy: asyncio.Future[SemanticResult] | None = None
        #: unshared documents indexed at this version
        self.indexed_versions: dict[str, int] = {}
        self.can_refresh_inlay_hints = False
        self._refresh_timer: asyncio.TimerHandle | None = None
        self.client_name = ""

    # -- the Editor interface of Session ---------------------------------------------

    async def apply_edit(self, uri: str, edit: EditToApply) -> bool:
        version = edit.version
        if version == 0 and self.client_name == "Neovim":
            # Neovim opens documents at version 0 and never checks an edit's version 0 against
            # the buffer (only versions > 0): it would apply it over changes not yet reported.
            # It checks 1, and a change since didOpen makes the buffer's version (b:changedtick) >= 3.
            version = 1
        # no label: Neovim prints it for every edit
        params = lsp.ApplyWorkspaceEditParams(
            edit=lsp.WorkspaceEdit(
                document_changes=[
                    lsp.TextDocumentEdit(
                        text_document=lsp.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                        edits=[
                            lsp.TextEdit(
                                range=lsp.Range(
                                    start=lsp.Position(line=edit.start[0], character=edit.start[1]),
                                    end=lsp.Position(line=edit.end[0], character=edit.end[1]),
                                ),
                                new_text=edit.new_text,
                            )
                        ],
                    )
                ]
            ),
        )
        result = await self.workspace_apply_edit_async(params)
        return bool(result.applied)

    def show_message(self, text: str, *, error: bool = False) -> None:
        kind = lsp.MessageType.Error if error else lsp.MessageType.Warning
        self.window_show_message(lsp.ShowMessageParams(type=kind, message=text))

    def log(self, text: str) -> None:
        self.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Info, message=text))

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.protocol.notify(method, params)

    def cursors_changed(self, uri: str) -> None:
        session = self.session
        if session is None:
            return
        doc = session.by_uri.get(uri)
        if doc is None or doc.sync is None:
            return
        idx = LineIndex.of(doc.sync.text)
        cursors = []
        for p in session.cursors(doc.path):
            cursors.append(
                {
                    "participantId": p.id,
                    "name": p.name,
                    "color": p.color,
                    "ranges": [self._lsp_range(idx, a, h) for a, h in p.ranges],
                }
            )
        self.notify("pairls/cursors", {"uri": uri, "cursors": cursors})
        if self.can_refresh_inlay_hints and self._refresh_timer is None:
            # one refresh for a burst of cursor moves: each makes the editor ask again
            self._refresh_timer = asyncio.get_running_loop().call_later(0.1, self._refresh_inlay_hints)

    def _refresh_inlay_hints(self) -> None:
        self._refresh_timer = None
        self.workspace_inlay_hint_refresh(None)

    def _lsp_range(self, idx: LineIndex, anchor: int, head: int) -> dict[str, Any]:
        a = idx.position(anchor, self.encoding)
        h = idx.position(head, self.encoding)
        return {"start": {"line": a[0], "character": a[1]}, "end": {"line": h[0], "character": h[1]}}

    def text_changed(self, path: str, old: str, op: Any, new: str, author: str | None) -> None:
        self.index.apply_op(path, old, op, new, author)

    def text_replaced(self, path: str, text: str | None) -> None:
        if text is None:
            self.index.remove(path)
            self.engine.forget(path)
        else:
            self.index.update(path, text)

    async def complete(self, params: lsp.CompletionParams) -> lsp.CompletionList:
        uri = params.text_document.uri
        session = self.session
        doc = session.by_uri.get(uri) if session else None
        language_id = None
        tdoc = self.workspace.text_documents.get(uri)
        if tdoc is not None:
            language_id = tdoc.language_id
        if doc is not None and doc.sync is not None:
            path, text = doc.path, doc.sync.text
        elif tdoc is not None:
            # not shared: still complete from it and from the room
            path = self.relative_path(uri) or uri
            text = tdoc.source
            if self.indexed_versions.get(path) != tdoc.version:
                self.index.update(path, text, author=self.display_name)
                self.indexed_versions[path] = tdoc.version or 0
        else:
            return lsp.CompletionList(is_incomplete=False, items=[])
        idx = LineIndex.of(text)
        offset = idx.offset(params.position.line, params.position.character, self.encoding)
        semantic = await self._semantic(path, text, offset, language_id)
        result = self.engine.complete(path, text, offset, language_id, semantic=semantic)
        start = idx.position(result.start, self.encoding)
        replace = lsp.Range(
            start=lsp.Position(line=start[0], character=start[1]),
            end=lsp.Position(line=params.position.line, character=params.position.character),
        )
        items = [_item(c, replace) for c in result.items]
        return lsp.CompletionList(is_incomplete=result.incomplete, items=items)

    async def _semantic(self, path: str, text: str, offset: int, language_id: str | None) -> SemanticResult:
        if language_of(path, language_id) != "python" or not self.engine.jedi_enabled:
            return SemanticResult([], "off")
        if self.jedi_busy is not None and not self.jedi_busy.done():
            return SemanticResult([], "skipped")  # the last one is still running
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self.jedi_pool, self.engine.semantic, path, text, offset, language_id)
        self.jedi_busy = fut
        try:
            # Wait less than the 20 ms a completion may take; a late answer is
            # cached and serves the next keystroke in the same word.
            return await asyncio.wait_for(asyncio.shield(fut), JEDI_WAIT_S)
        except TimeoutError:
            return SemanticResult([], "skipped")  # its answer lands in the cache for the next keystroke
        except Exception:
            logger.exception("jedi failed")
            return SemanticResult([], "error")

    # -- helpers ------------------------------------------------------------------------

    def require_session(self) -> Session:
        if self.session is None:
            self.session = Session(self, name=self.display_name)
            self.session.on_follow = self._follow_moved
        return self.session

    def workspace_root(self) -> Path | None:
        folders = list(self.workspace.folders.values())
        if folders:
            path = to_fs_path(folders[0].uri)
            return Path(path) if path else None
        root = self.workspace.root_uri
        if root:
            path = to_fs_path(root)
            return Path(path) if path else None
        return None

    def relative_path(self, uri: str) -> str | None:
        """The workspace-relative path of *uri*, or None if it is not under a workspace folder."""
        fs = to_fs_path(uri)
        if not fs:
            return None
        target = Path(fs).resolve()
        roots = [to_fs_path(f.uri) for f in self.workspace.folders.values()]
        if not roots and self.workspace.root_uri:
            roots = [to_fs_path(self.workspace.root_uri)]
        for root in roots:
            if not root:
                continue
            try:
                rel = target.relative_to(Path(root).resolve())
            except ValueError:
                continue
            return rel.as_posix()
        return None

    def local_path(self, path: str) -> Path:
        root = self.workspace_root()
        if root is None:
            base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
            room = self.session.room_id if self.session and self.session.room_id else "no-room"
            root = Path(base) / "pairls" / "rooms" / room
        return root / path

    async def enter_room(self, entering: Awaitable[dict[str, Any]]) -> dict[str, Any]:
        """Create or join: on failure tell the user and fail the command; then share what is open."""
        try:
            result = await entering
        except SessionError as exc:
            self.show_message(f"pairls: {exc}", error=True)
            raise _user_error(exc) from None
        if self.auto_share:
            self.share_open_documents()
        return result

    def share_open_documents(self) -> None:
        """Share every open document under a workspace folder (autoShare)."""
        for uri, doc in list(self.workspace.text_documents.items()):
            self.begin_share(uri, doc.source, doc.version or 0)

    def begin_share(self, uri: str, text: str, version: int) -> None:
        session = self.session
        if session is None or session.room_id is None or not self.auto_share or uri in session.by_uri:
            return
        path = self.relative_path(uri)
        if path is None:
            return
        asyncio.get_running_loop().create_task(self._share(uri, path, text, version))

    async def _share(self, uri: str, path: str, text: str, version: int) -> None:
        assert self.session is not None
        try:
            await self.session.share(uri, path, text, version)
        except SessionError as exc:
            self.log(f"pairls: could not share {path}: {exc}")

    async def _follow_moved(self, p: Participant) -> None:
        if p.path is None or self.session is None:
            return
        doc = self.session.docs.get(p.path)
        uri = doc.uri if doc is not None and doc.uri else from_fs_path(str(self.local_path(p.path)))
        if uri is None:
            return
        selection = None
        if doc is not None and doc.sync is not None and p.ranges:
            idx = LineIndex.of(doc.sync.text)
            r = self._lsp_range(idx, *p.ranges[0])
            selection = lsp.Range(
                start=lsp.Position(**r["start"]),
                end=lsp.Position(**r["end"]),
            )
        if doc is None or doc.uri is None:
            await self.ensure_local(p.path)  # the editor can only show a file that exists
        where = f"{p.path}:{selection.start.line + 1}" if selection else p.path
        await self.show_document(uri, selection, f"pairls: {p.name} is at {where}")

    async def show_document(self, uri: str, selection: lsp.Range | None, fallback: str) -> None:
        """``window/showDocument``; if the editor cannot, tell the user where to look instead."""
        try:
            result = await self.window_show_document_async(
                lsp.ShowDocumentParams(uri=uri, take_focus=True, selection=selection)
            )
            shown = bool(result and result.success)
        except Exception:  # an editor without showDocument answers MethodNotFound
            shown = False
        if not shown:
            self.window_show_message(lsp.ShowMessageParams(type=lsp.MessageType.Info, message=fallback))

    async def ensure_local(self, path: str) -> Path:
        """Make the room's document *path* exist on disk (its current text) if it does not yet."""
        session = self.session
        assert session is not None and session.hub is not None
        local = self.local_path(path)
        if not local.exists():
            doc = session.docs.get(path)
            if doc is not None and doc.client is not None:
                text = doc.client.text  # followed already: a close would end that subscription
            else:
                opened = await session.hub.request({"type": "open", "path": path})
                text = opened["text"]
                if path not in session.docs:
                    session.hub.send({"type": "close", "path": path})
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(text, encoding="utf-8", newline="")
        return local


def serve_stdio(server: PairlsServer) -> None:
    """Serve LSP on stdin/stdout.

    pygls's own ``start_io`` reads stdin through a thread pool, three
    hand-offs per message (header line, blank line, body); on a pipe, an
    asyncio pipe reader reads in the event loop itself.
    """
    stdin = sys.stdin.buffer
    if not stat.S_ISFIFO(os.fstat(stdin.fileno()).st_mode):
        server.start_io()  # a file or a terminal: pygls's way works everywhere
        return

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 30)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
        server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))
        server._stop_event = stop = threading.Event()
        await run_async(
            stop_event=stop,
            reader=reader,
            protocol=server.protocol,
            logger=logger,
            error_handler=server.report_server_error,
        )

    try:
        asyncio.run(main())
    except (BrokenPipeError, KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()  # type: ignore[no-untyped-call]


def create_server() -> PairlsServer:
    server = PairlsServer()

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: PairlsServer, params: lsp.InitializeParams) -> None:
        opts = params.initialization_options if isinstance(params.initialization_options, dict) else {}
        ls.hub_url = str(opts.get("hubUrl") or ls.hub_url)
        ls.display_name = str(opts.get("displayName") or ls.display_name)[:64]
        ls.auto_share = bool(opts.get("autoShare", True))
        # pygls picks PositionEncodingKind.Utf16 (an enum) when the client names no encoding
        # (Neovim 0.7): str() of it is "PositionEncodingKind.Utf16" on Python 3.11, not "utf-16"
        enc = ls.workspace.position_encoding or "utf-16"
        ls.encoding = str(getattr(enc, "value", enc))
        ws = params.capabilities.workspace
        ls.can_refresh_inlay_hints = bool(ws and ws.inlay_hint and ws.inlay_hint.refresh_support)
        ls.client_name = params.client_info.name if params.client_info else ""
        ls.require_session()
        ls.engine.me = ls.display_name

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: PairlsServer, params: lsp.DidOpenTextDocumentParams) -> None:
        td = params.text_document
        ls.begin_share(td.uri, td.text, td.version)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: PairlsServer, params: lsp.DidChangeTextDocumentParams) -> None:
        session = ls.session
        if session is None:
            return
        changes = []
        for c in params.content_changes:
            if isinstance(c, lsp.TextDocumentContentChangePartial):
                r = c.range
                changes.append(
                    ContentChange((r.start.line, r.start.character, r.end.line, r.end.character), c.text)
                )
            else:
                changes.append(ContentChange(None, c.text))
        uri = params.text_document.uri
        typed = session.did_change(uri, params.text_document.version, changes)
        doc = session.by_uri.get(uri)
        if typed and doc is not None and doc.sync is not None and changes[-1].range is not None:
            # no plugin tells us where the cursor is: the end of the last change is a good guess
            end = doc.sync.view.text
            idx = LineIndex.of(end)
            sl, sc, _, _ = changes[-1].range
            pos = idx.offset(sl, sc, ls.encoding) + len(changes[-1].text)
            session.send_presence(uri, [(pos, pos)])

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: PairlsServer, params: lsp.DidCloseTextDocumentParams) -> None:
        if ls.session is not None:
            ls.session.unshare(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: PairlsServer, params: lsp.DidSaveTextDocumentParams) -> None:
        pass

    @server.feature("pairls/cursor")
    def cursor(ls: PairlsServer, params: Any) -> None:
        session = ls.session
        if session is None:
            return
        uri = getattr(params, "uri", None) or (params.get("uri") if isinstance(params, dict) else None)
        ranges = getattr(params, "ranges", None) or (
            params.get("ranges") if isinstance(params, dict) else None
        )
        if not isinstance(uri, str) or not isinstance(ranges, list):
            return
        doc = session.by_uri.get(uri)
        if doc is None or doc.sync is None:
            return
        idx = LineIndex.of(doc.sync.view.text)
        out = []
        for r in ranges[:64]:
            try:
                s, e = _get(r, "start"), _get(r, "end")
                a = idx.offset(int(_get(s, "line")), int(_get(s, "character")), ls.encoding)
                h = idx.offset(int(_get(e, "line")), int(_get(e, "character")), ls.encoding)
            except (TypeError, ValueError, KeyError, AttributeError):
                continue
            out.append((a, h))
        session.send_presence(uri, out)

    def presence_from_position(ls: PairlsServer, uri: str, position: lsp.Position) -> None:
        session = ls.session
        doc = session.by_uri.get(uri) if session else None
        if session is None or doc is None or doc.sync is None:
            return
        off = LineIndex.of(doc.sync.view.text).offset(position.line, position.character, ls.encoding)
        session.send_presence(uri, [(off, off)])

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_HIGHLIGHT)
    def document_highlight(ls: PairlsServer, params: lsp.DocumentHighlightParams) -> None:
        presence_from_position(ls, params.text_document.uri, params.position)
        return None

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: PairlsServer, params: lsp.HoverParams) -> None:
        presence_from_position(ls, params.text_document.uri, params.position)
        return None

    @server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT)
    def inlay_hint(ls: PairlsServer, params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
        session = ls.session
        doc = session.by_uri.get(params.text_document.uri) if session else None
        if session is None or doc is None or doc.sync is None:
            return []
        idx = LineIndex.of(doc.sync.text)
        hints = []
        for p in session.cursors(doc.path):
            for _, head in p.ranges[:1]:
                line, char = idx.position(head, ls.encoding)
                if params.range.start.line <= line <= params.range.end.line:
                    hints.append(
                        lsp.InlayHint(
                            position=lsp.Position(line=line, character=char),
                            label=f"\u2038{p.name}",
                            padding_left=False,
                            padding_right=True,
                            tooltip=f"{p.name} is here",
                        )
                    )
        return hints

    @server.feature(
        lsp.TEXT_DOCUMENT_COMPLETION,
        lsp.CompletionOptions(trigger_characters=["."], resolve_provider=False),
    )
    async def completion(ls: PairlsServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        return await ls.complete(params)

    # -- commands ----------------------------------------------------------------------------

    @server.command("pairls.createRoom")
    async def create_room(ls: PairlsServer, *args: Any) -> dict[str, Any]:
        arg = _arg(args)
        session = ls.require_session()
        return await ls.enter_room(session.create_room(ls.hub_url, str(arg.get("name") or "")))

    @server.command("pairls.joinRoom")
    async def join_room(ls: PairlsServer, *args: Any) -> dict[str, Any]:
        arg = _arg(args)
        invite = arg.get("invite")
        if not isinstance(invite, str) or not invite:
            raise _user_error(SessionError("joinRoom needs {invite}"))
        return await ls.enter_room(ls.require_session().join_room(invite))

    @server.command("pairls.leaveRoom")
    async def leave_room(ls: PairlsServer, *args: Any) -> dict[str, Any]:
        if ls.session is not None:
            await ls.session.leave()
        return {}

    @server.command("pairls.shareDocument")
    async def share_document(ls: PairlsServer, *args: Any) -> dict[str, Any]:
        arg = _arg(args)
        session = ls.require_session()
        uri = arg.get("uri")
        doc = ls.workspace.text_documents.get(uri) if isinstance(uri, str) else None
        if doc is None:
            raise _user_error(SessionError("open the document in the editor first"))
        path = ls.relative_path(doc.uri) or Path(to_fs_path(doc.uri) or "untitled").name
        try:
            return await session.share(doc.uri, path, doc.source, doc.version or 0)
        except SessionError as exc:
            raise _user_error(exc) from None

    @server.command("pairls.openDocument")
    async def open_document(ls: PairlsServer, *args: Any) -> dict[str, Any]:
        arg = _arg(args)
        session = ls.require_session()
        path = arg.get("path")
        if session.room_id is None or session.hub is None:
            raise _user_error(SessionError("join or create a room first"))
        if not isinstance(path, str) or path not in session.room_documents:
            raise _user_error(SessionError("no such document in the room"))
        try:
            local = await ls.ensure_local(path)
        except Exception as exc:
            raise _user_error(SessionError(f"could not open {path}")) from exc
        uri = from_fs_path(str(local)) or local.as_uri()
        await ls.show_document(uri, None, f"pairls: {path} is at {local}")
        return {"uri": uri}

    @server.command("pairls.participants")
    async def participants(ls: PairlsServer, *args: Any) -> dict[str, Any]:
        session = ls.require_session()
        return {"participants": session.participants_list()}

    @server.command("pairls.follow")
    async def follow(ls: PairlsServer, *args: Any) -> dict[str, Any]:
        arg = _arg(args)
        session = ls.require_session()
        pid = arg.get("participantId")
        if pid is None:
            session.follow = None
            return {}
        if pid not in session.participants:
            raise _user_error(SessionError("no such participant"))
        session.follow = pid
        p = session.participants[pid]
        if p.path is not None:
            await ls._follow_moved(p)
        return {}

    @server.command("pairls.status")
    async def status(ls: PairlsServer, *args: Any) -> dict[str, Any]:
        session = ls.require_session()
        st = session.status()
        if st["hubUrl"] is None:
            st["hubUrl"] = ls.hub_url
        return st

    return server


_KINDS = {
    "keyword": lsp.CompletionItemKind.Keyword,
    "identifier": lsp.CompletionItemKind.Text,
    "function": lsp.CompletionItemKind.Function,
    "class": lsp.CompletionItemKind.Class,
    "module": lsp.CompletionItemKind.Module,
    "instance": lsp.CompletionItemKind.Variable,
    "statement": lsp.CompletionItemKind.Variable,
    "param": lsp.CompletionItemKind.Variable,
    "property": lsp.CompletionItemKind.Property,
    "path": lsp.CompletionItemKind.File,
}


def _item(c: Candidate, replace: lsp.Range) -> lsp.CompletionItem:
    kind = _KINDS.get(c.type or c.kind, lsp.CompletionItemKind.Text)
    return lsp.CompletionItem(
        label=c.label,
        kind=kind,
        detail=c.detail,
        sort_text=c.sort_text,
        filter_text=c.label,
        text_edit=lsp.TextEdit(range=replace, new_text=c.label),
    )


class _DaemonWorker(Executor):
    """One daemon thread running jobs in order (jedi is not thread-safe).

    A ThreadPoolExecutor's threads are joined at exit, so a server whose
    editor quit during jedi's slow first call would linger; this one exits.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Any, tuple[Any, ...]]] = queue.SimpleQueue()
        threading.Thread(target=self._work, name="pairls-jedi", daemon=True).start()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        self._jobs.put((fut, fn, args))
        return fut

    def _work(self) -> None:
        while True:
            fut, fn, args = self._jobs.get()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:
                fut.set_exception(exc)


def _arg(args: tuple[Any, ...]) -> dict[str, Any]:
    """Commands take one JSON object argument."""
    if args and isinstance(args[0], dict):
        return args[0]
    return {}


def _get(obj: Any, key: str) -> Any:
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


class CommandError(Exception):
    """A command failed for a reason the user can act on."""


def _user_error(exc: Exception) -> Exception:
    from pygls.exceptions import JsonRpcException

    err = JsonRpcException(message=str(exc))
    err.code = -32803  # LSP 3.17 RequestFailed
    return err
