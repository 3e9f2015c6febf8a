"""``pairls-lsp``: the language server every participant's editor runs (pygls 2, LSP 3.17).

:class:`PairlsServer` holds the pieces and their settings; the handlers are
module-level functions grouped by feature in :mod:`lsp_bridge.features`.
Where to read what:

* the keystroke path: ``features/text_sync.py`` -> ``session.py`` ->
  ``room.py`` (sans-I/O) -> ``editor_sync.py`` (the editor boundary) and
  ``collab_core/client.py`` (the OT client towards the hub);
* a room's edit to the editor: ``room.py`` -> ``editor.py``
  (``workspace/applyEdit``);
* room paths <-> files: ``paths.py``; completions: ``features/completion.py``.

Everything a user does is standard LSP where LSP has a way (see
docs/architecture.md): room actions are ``workspace/executeCommand``
commands, opening and following use ``window/showDocument``, completions
are ``textDocument/completion``; ``pairls/*`` notifications carry only what
LSP has no word for (peers' cursors, room status).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInternalError
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from . import __version__
from .carries import CarryStore
from .completion_service import CompletionService
from .editor import LspEditor
from .editor_sync import ContentChange
from .paths import PathMapper
from .rpc import PairlsProtocol, converter
from .runs import RunRequests
from .session import Session, SessionError
from .user_id import UserId, load_user_id, state_folder

__all__ = ["PairlsServer"]

logger = logging.getLogger(__name__)


class PairlsServer(LanguageServer):
    """The language server; one per editor."""

    def __init__(self) -> None:
        super().__init__(
            "pairls-lsp",
            __version__,
            text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
            protocol_cls=PairlsProtocol,
            converter_factory=converter,
        )
        self.hub_url = os.environ.get("PAIRLS_HUB_URL", "ws://127.0.0.1:8765")
        self.display_name = os.environ.get("USER", "someone")
        #: the create-room token of hubs that need one (initializationOptions.createToken)
        self.create_token: str | None = os.environ.get("PAIRLS_CREATE_TOKEN") or None
        self.auto_share = True
        self.encoding = "utf-16"
        self.client_name = ""
        self.can_refresh_inlay_hints = False
        self.can_show_progress = False
        #: the ``completions`` setting: a mode for every language (``"*"``) and per language id
        self.completions_by_language: dict[str, str] = {"*": "all"}
        self.session: Session | None = None
        #: who reads stdin: ``"loop"``, the event loop itself (a pipe or a socket:
        #: serve.py), or ``"pygls"``, pygls's threads (a file, a terminal)
        self.stdio_reader = "pygls"
        #: the editor has gone or is going (:meth:`depart`)
        self._departure: asyncio.Future[None] | None = None
        #: objects frozen out of full collections at start (serve.py); counted once there, as
        #: ``gc.get_freeze_count`` walks them all
        self.gc_frozen = 0
        self.editor = LspEditor(self)
        self.completions = CompletionService()
        self.paths = PathMapper.for_workspace([])
        #: files autoShare left out (said once each)
        self._not_shared: set[str] = set()
        #: while a create or join is under way: the buffers as they were when it began, and
        #: those opened since as they were opened (:meth:`share_open_documents` shares them so)
        self.entering_buffers: dict[str, tuple[int, str]] | None = None
        self.can_show_document = False
        #: who "mine" is for undo and redo (``hello.user``), read at the first session
        self.user: UserId | None = None
        #: the client shows earlier revisions itself (``pairls-rev:`` documents: the VS Code
        #: extension, initializationOptions.virtualRevisions); else they are read-only files
        self.virtual_revisions = False
        #: the client says where the cursor is (``pairls/cursor``: the VS Code extension,
        #: initializationOptions.cursorNotifications): a hover is no sign of it then
        self.cursor_notifications = False
        #: peers' cursors are shown as inlay hints, redrawn with ``workspace/inlayHint/refresh``
        #: (initializationOptions.cursorHints); the VS Code extension draws them itself from
        #: ``pairls/cursors`` and turns this off: no refresh at each peer's keystroke
        self.cursor_hints = True
        #: the client follows runs' output with ``pairls/runOutput`` (the VS Code extension's
        #: terminals): initializationOptions.runOutput
        self.run_output = False
        #: revision texts lately read, (room, path, rev) -> text, newest last (a few)
        self.revisions: dict[tuple[str, str, int], str] = {}
        #: this user's runs for the room, by run id (lsp_bridge/features/run.py)
        self.runs: dict[str, Any] = {}
        #: other participants' requests to run, each a question until the user answers
        self.run_requests = RunRequests()
        #: this user's requests to others, by request id: (participant, its answer)
        self.run_asks: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        #: failures of the server's own code that pygls caught and answered for (a handler that
        #: raised, a message it could not write): in the status's ``serverErrors``
        self.server_errors = 0

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls's hook for what it caught (it has logged most of it with its traceback, not a
        notification's handler that failed later: each one counted is logged here too, by its
        class alone: pygls's message for it quotes the value that failed).

        What the editor caused is not counted: a message that could not be read
        (``source`` is :class:`JsonRpcException`, the reader's), a method or command we do
        not have, a request refused with the user's message (a :class:`JsonRpcException`).
        What is left is a bug of ours, counted: a handler that raised anything else (pygls
        makes it a :class:`JsonRpcInternalError` for a request) or a failed write."""
        if source is JsonRpcException:
            return
        if isinstance(error, JsonRpcException) and not isinstance(error, JsonRpcInternalError):
            return
        self.server_errors += 1
        logger.error("an error of the server's own (%s, %s): %d so far", type(error).__name__,
                     getattr(source, "__name__", "?"), self.server_errors)  # fmt: skip

    @property
    def rpc(self) -> PairlsProtocol:
        """The JSON-RPC protocol with the editor (with the keystroke path's short way)."""
        assert isinstance(self.protocol, PairlsProtocol)
        return self.protocol

    def completion_mode(self, language_id: str | None) -> str:
        modes = self.completions_by_language
        return modes.get(language_id or "", modes.get("*", "all"))

    # -- set-up ---------------------------------------------------------------------------

    def set_folders(self, folders: list[tuple[str, str]]) -> None:
        self.paths = PathMapper.for_workspace(folders)

    def start_session(self) -> None:
        self.completions.engine.me = self.display_name
        self.require_session()

    def require_session(self) -> Session:
        if self.session is None:
            self.session = Session(
                self.editor,
                name=self.display_name,
                encoding=self.encoding,
                carries=CarryStore(None if (folder := state_folder()) is None else folder / "carries"),
            )
        return self.session

    def require_user(self) -> str:
        """Who the user is for undo and redo (``hello.user``): read, or made, on first use
        (creating or joining a room), and said once if it cannot be kept."""
        if self.user is None:
            self.user = load_user_id()
            if self.user.source == "process":
                where = f" in {self.user.path}" if self.user.path is not None else ""
                self.editor.log(
                    f"pairls: cannot keep your user id{where} ({self.user.problem}); "
                    "undoing your own changes works until this editor closes"
                )
        self.require_session().room.user = self.user.value
        return self.user.value

    def depart(self) -> asyncio.Future[None]:
        """The editor is going (``shutdown``) or has gone (``exit``, the end of stdin, SIGTERM,
        SIGHUP): leave the room as ``pairls.leaveRoom`` does, so that what the user typed last
        reaches the hub first (the room waits ``exit_timeout`` at most for its
        acknowledgements, and has what it did not get kept on disk), then close.  Once,
        however many of those come: each awaits the same departure."""
        if self._departure is None:
            self._departure = asyncio.ensure_future(self._depart())
        return self._departure

    async def _depart(self) -> None:
        session = self.session
        if session is None:
            return
        await session.leave(exiting=True)  # (what it could not send, the room logs)
        await session.close()

    # -- sharing -----------------------------------------------------------------------------

    def open_buffers(self) -> dict[str, tuple[int, str]]:
        """Every open document's version and text, as the editor's notifications left them, by
        its URI as the editor writes it."""
        return {doc.uri: (doc.version or 0, doc.source) for doc in self.workspace.text_documents.values()}

    def text_document(self, uri: str) -> TextDocument | None:
        """The open document *uri* names (as the editor writes it: pygls keys its documents by
        the URI percent-decoded, ``file:///my notes.txt`` for ``file:///my%20notes.txt``)."""
        doc: TextDocument | None = self.workspace.text_documents.get(unquote(uri))
        return doc

    def begin_entering(self) -> dict[str, tuple[int, str]]:
        """A create or join begins: the open buffers as they are (:meth:`open_buffers`), to
        which the editor's opens add theirs until :meth:`share_open_documents`."""
        self.entering_buffers = self.open_buffers()
        return self.entering_buffers

    def opened(self, uri: str, version: int, text: str) -> None:
        """``didOpen``: while entering, the buffer's text as opened is what it shares from (the
        typing that follows before the room answers is the user's); else shared now."""
        if self.entering_buffers is not None:
            self.entering_buffers.setdefault(uri, (version, text))
        self.begin_share(uri, text, version)

    def closed(self, uri: str) -> None:
        """``didClose``: the buffer leaves the room (the document stays followed)."""
        if self.entering_buffers is not None:
            self.entering_buffers.pop(uri, None)
        if self.session is not None:
            self.session.room.unshare(uri)

    def share_open_documents(
        self, before: dict[str, tuple[int, str]] | None = None
    ) -> list[asyncio.Task[None]]:
        """Share every open document under a workspace folder (autoShare); returns the shares.

        *before*: the buffers as they were when the create or join began (or as they were
        opened, since: :meth:`begin_entering`).  A buffer is shared as it was then, and what the
        user typed since (while the hub answered) is their typing during the share: kept on top
        of the room's text, never replaced by it.
        """
        shares = []
        for doc in list(self.workspace.text_documents.values()):
            # (by the URI the editor writes, as its didChange and didClose name the buffer; not
            # pygls's key, percent-decoded: a buffer shared by that took no keystroke)
            uri = doc.uri
            now = (doc.version or 0, doc.source)
            version, text = (before or {}).get(uri, now)
            share = self.begin_share(uri, text, version)
            if share is None:
                continue
            shares.append(share)
            if (version, text) != now and self.session is not None:
                self.session.editor_changed(uri, now[0], [ContentChange(None, now[1])])
        return shares

    def begin_share(self, uri: str, text: str, version: int) -> asyncio.Task[None] | None:
        """autoShare: share *uri* unless it is outside the workspace, in ``.git``, ignored
        (``.gitignore``, ``.pairlsignore``) or named like a secret (then say so, once per file)."""
        session = self.session
        if session is None or not session.room.in_room or not self.auto_share or uri in session.room.by_uri:
            return None
        path = self.paths.room_path(uri)
        if path is None:
            return None
        why = self.paths.share_block(uri)
        if why is not None:
            if uri not in self._not_shared:
                self._not_shared.add(uri)
                self.editor.log(
                    f"pairls: not sharing {path}: {why} (pairls.shareDocument shares it if you want)"
                )
            return None
        # started here, not in the task: the didChange that may follow at once is the room's
        shared = session.share(uri, path, text, version)
        return asyncio.get_running_loop().create_task(self._share(shared, path))

    async def _share(self, shared: Awaitable[dict[str, Any]], path: str) -> None:
        try:
            await shared
        except SessionError as exc:
            self.editor.log(f"pairls: could not share {path}: {exc}")

    async def ensure_local(self, path: str) -> Path | None:
        """Make the room's document *path* exist on disk (its current text) if it does not yet;
        None if the path does not lead inside the workspace (the user is told once)."""
        session = self.require_session()
        room_id = session.room.room_id
        local = self.paths.local_path(path, room_id)
        if local is None:
            self.path_refused()
            return None
        if not local.exists():
            text = session.room.document_text(path)
            if text is None:
                try:
                    text = await session.open_text(path)
                except SessionError as exc:
                    self.editor.log(f"pairls: could not open {path}: {exc}")
                    return None
            local = self.paths.create(path, room_id, text)
            if local is None:
                self.path_refused()
                return None
        return local

    def path_refused(self) -> None:
        message = self.paths.refusal_message()
        if message is not None:
            self.window_show_message(lsp.ShowMessageParams(type=lsp.MessageType.Warning, message=message))
        else:
            logger.info("a room path outside the workspace refused (%d so far)", self.paths.refusals)
