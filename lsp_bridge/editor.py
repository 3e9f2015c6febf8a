"""The editor, as the session sees it: standard LSP requests and notifications (pygls).

:class:`LspEditor` is the session's :class:`~lsp_bridge.session.EditorPort`:
a room's edit becomes ``workspace/applyEdit`` (one ``TextDocumentEdit``,
versioned, never ``null``), messages become ``window/showMessage`` or
``window/logMessage``, progress becomes ``$/progress`` when the editor
offers it, following a peer becomes ``window/showDocument``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from .editor_sync import EditToApply
from .room import FollowTo, Progress, TextChanged
from .runs import is_run_path, output_change, run_outcome

if TYPE_CHECKING:
    from .server import PairlsServer

__all__ = ["LspEditor"]

logger = logging.getLogger(__name__)

PROGRESS_TOKEN = "pairls/follow"


class LspEditor:
    """See the module docstring."""

    def __init__(self, server: PairlsServer) -> None:
        self.server = server
        self._progress_token: str | None = None
        self._progress_runs = 0
        self._progress_ready: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: tasks of the editor port that ended in an exception (a bug: status counts them)
        self.failed_tasks = 0

    def apply_edit(self, uri: str, edit: EditToApply) -> Awaitable[Any]:
        """Write the ``workspace/applyEdit`` request now; the awaitable is the editor's answer
        (``ApplyWorkspaceEditResult`` as plain JSON: ``{"applied": bool, ...}``)."""
        version = edit.version
        if version == 0 and self.server.client_name == "Neovim":
            # Neovim opens documents at version 0 and never checks an edit's version 0 against
            # the buffer (only versions > 0): it would apply it over changes not yet reported.
            # It checks 1, and a change since didOpen makes the buffer's version (b:changedtick) >= 3.
            version = 1
        edits = [
            {
                "range": {
                    "start": {"line": e.start[0], "character": e.start[1]},
                    "end": {"line": e.end[0], "character": e.end[1]},
                },
                "newText": e.new_text,
            }
            for e in edit.edits
        ]
        # ApplyWorkspaceEditParams as JSON (lsp_bridge/rpc.py: the keystroke path's short way);
        # no label: Neovim prints it for every edit
        params = {
            "edit": {"documentChanges": [{"textDocument": {"uri": uri, "version": version}, "edits": edits}]}
        }
        # (written before this returns: the edit is on its way before anything else this step
        # produced, such as peers' cursors)
        return self.server.rpc.request_json(lsp.WORKSPACE_APPLY_EDIT, params)

    def buffer(self, uri: str) -> tuple[int, str] | None:
        doc = self.server.text_document(uri)
        return None if doc is None else (doc.version or 0, doc.source)

    def show_message(self, text: str, *, error: bool = False) -> None:
        kind = lsp.MessageType.Error if error else lsp.MessageType.Warning
        self.server.window_show_message(lsp.ShowMessageParams(type=kind, message=text))

    def log(self, text: str) -> None:
        self.server.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Info, message=text))

    def notify(self, method: str, params: dict[str, Any]) -> None:
        if method in ("pairls/run_request", "pairls/run_answer"):
            # a peer's ask to run (a question for the user) or answer: not for the editor
            from .features import run

            handler = run.request_received if method == "pairls/run_request" else run.answer_received
            self._spawn(handler(self.server, params))
            return
        self.server.rpc.notify_json(method, params)
        if method == "pairls/runs" and params.get("event") in ("started", "ended"):
            # someone in the room started a run, or it ended: say so, with "Open output"
            self._spawn(self._offer_output(params))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.failed_tasks += 1
            logger.error("pairls task failed", exc_info=task.exception())

    async def _offer_output(self, params: dict[str, Any]) -> None:
        path = str(params.get("path"))
        if params.get("event") == "ended":
            message = f"pairls: {params.get('by')}'s run {run_outcome(params)} ({path})"
        else:
            message = f"pairls: {params.get('by')} started a run for the room ({path})"
        try:
            answer = await self.server.window_show_message_request_async(
                lsp.ShowMessageRequestParams(
                    type=lsp.MessageType.Info,
                    message=message,
                    actions=[lsp.MessageActionItem(title="Open output")],
                )
            )
        except Exception:  # an editor that cannot ask: the notification said it
            logger.info("window/showMessageRequest failed")
            return
        if answer is None or answer.title != "Open output":
            return
        local = await self.server.ensure_local(path)
        if local is None:
            self.log(f"pairls: could not open {path}")
            return
        await self.show_document(self.server.paths.uri(local), None, f"pairls: the output is at {local}")

    def refresh_inlay_hints(self) -> None:
        if self.server.can_refresh_inlay_hints and self.server.cursor_hints:
            self.server.rpc.request_json(lsp.WORKSPACE_INLAY_HINT_REFRESH, None).add_done_callback(_refreshed)

    def text_changed(self, event: TextChanged) -> None:
        if not is_run_path(event.path):
            self.server.completions.index.apply_op(event.path, event.old, event.op, event.new, event.author)
        elif self.server.run_output:
            # a run's output grew: to the client's terminal for it (the VS Code extension)
            change = output_change(event.path, event.old, event.op, event.new)
            self.server.rpc.notify_json("pairls/runOutput", change)

    def text_replaced(self, path: str, text: str | None) -> None:
        # (a run's output is no source of words to complete: a flood of it would only cost)
        if not is_run_path(path):
            self.server.completions.replaced(path, text)

    def progress(self, event: Progress) -> None:
        """``$/progress`` for following a room's documents, if the editor shows progress.

        Each run gets its own token, created (``window/workDoneProgress/create``)
        before anything is reported on it, as LSP 3.17 asks.
        """
        if not self.server.can_show_progress:
            return
        if event.kind == "begin":
            self._progress_runs += 1
            token = f"{PROGRESS_TOKEN}/{self._progress_runs}"
            self._progress_token = token
            self._progress_ready = asyncio.get_running_loop().create_task(self._create(token, event))
            return
        current, ready = self._progress_token, self._progress_ready
        if current is None or ready is None:
            return
        if event.kind == "end":
            self._progress_token = None
        ready.add_done_callback(lambda _: self._report(current, event))

    async def _create(self, token: str, begin: Progress) -> None:
        try:
            await self.server.work_done_progress.create_async(token)
        except Exception:  # the editor refused: no progress then
            logger.debug("workDoneProgress/create refused")
            raise
        self.server.work_done_progress.begin(
            token,
            lsp.WorkDoneProgressBegin(title="pairls", message=begin.message, percentage=begin.percentage),
        )

    def _report(self, token: str, event: Progress) -> None:
        ready = self._progress_ready
        if ready is not None and (ready.cancelled() or ready.exception() is not None):
            return
        if event.kind == "report":
            self.server.work_done_progress.report(
                token, lsp.WorkDoneProgressReport(message=event.message, percentage=event.percentage)
            )
        else:
            self.server.work_done_progress.end(token, lsp.WorkDoneProgressEnd(message=event.message))

    async def follow_to(self, event: FollowTo) -> None:
        """Show where a followed peer is: their buffer here, else the room's file on disk."""
        uri = event.uri
        if uri is None:
            local = await self.server.ensure_local(event.path)
            if local is None:
                return
            uri = self.server.paths.uri(local)
        selection = None
        if event.selection is not None:
            (sl, sc), (el, ec) = event.selection
            selection = lsp.Range(
                start=lsp.Position(line=sl, character=sc), end=lsp.Position(line=el, character=ec)
            )
        where = f"{event.path}:{event.selection[0][0] + 1}" if event.selection else event.path
        await self.show_document(uri, selection, f"pairls: {event.name} is at {where}")

    async def confirm(self, question: str, yes: str) -> bool:
        """Ask the user (``window/showMessageRequest``); True only if they chose *yes*."""
        try:
            answer = await self.server.window_show_message_request_async(
                lsp.ShowMessageRequestParams(
                    type=lsp.MessageType.Warning,
                    message=question,
                    actions=[lsp.MessageActionItem(title=yes), lsp.MessageActionItem(title="Cancel")],
                )
            )
        except Exception:  # an editor that cannot ask: the answer is no
            logger.info("window/showMessageRequest failed")
            return False
        return answer is not None and answer.title == yes

    async def show_document(self, uri: str, selection: lsp.Range | None, fallback: str | None) -> None:
        """``window/showDocument`` if the editor said it can; else (or if it failed) tell the
        user *fallback*, where to look (None: the caller opens it some other way)."""
        shown = False
        if self.server.can_show_document:
            try:
                result = await self.server.window_show_document_async(
                    lsp.ShowDocumentParams(uri=uri, take_focus=True, selection=selection)
                )
                shown = bool(result and result.success)
            except Exception:  # the editor failed the request: the fallback says where it is
                logger.info("window/showDocument failed")
        if not shown and fallback is not None:
            self.server.window_show_message(
                lsp.ShowMessageParams(type=lsp.MessageType.Info, message=fallback)
            )


def _refreshed(answer: asyncio.Future[Any]) -> None:
    """The editor's answer to an inlay hint refresh: nothing to do (an editor that failed it
    shows the hints at its next request)."""
    if not answer.cancelled() and answer.exception() is not None:
        logger.debug("workspace/inlayHint/refresh failed")
