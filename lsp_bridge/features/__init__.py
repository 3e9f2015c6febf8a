"""The language server's LSP handlers, one module per feature (as jedi-language-server groups them).

* :mod:`.lifecycle`: ``initialize``, ``shutdown``, workspace folders;
* :mod:`.text_sync`: ``didOpen``/``didChange``/``didClose`` (the keystroke path);
* :mod:`.commands`: the ``pairls.*`` commands (``workspace/executeCommand``);
* :mod:`.completion`: ``textDocument/completion``;
* :mod:`.presence`: cursors (``pairls/cursor``, hover, highlight) and inlay hints;
* :mod:`.run`: runs for the room (``pairls.run``, ``pairls.stopRun``, ``pairls.runs``);
* :mod:`.history`: undo and redo of the user's own changes, history, blame (and the
  hover that shows it), earlier revisions.

Each handler is short: it translates LSP into a call on the server's
session (``lsp_bridge/session.py``) and back.
"""

from __future__ import annotations

from lsprotocol import types as lsp

from ..server import PairlsServer
from . import commands, completion, history, lifecycle, presence, run, text_sync

__all__ = ["register"]


def register(server: PairlsServer) -> None:
    """Attach every handler to *server*."""
    server.feature(lsp.INITIALIZE)(lifecycle.initialize)
    server.feature(lsp.SHUTDOWN)(lifecycle.shutdown)
    server.feature(lsp.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)(lifecycle.did_change_workspace_folders)
    server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)(text_sync.did_open)
    server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)(text_sync.did_change)
    server.rpc.change_handler = lambda uri, version, changes: text_sync.did_change_json(
        server, uri, version, changes
    )
    server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)(text_sync.did_close)
    server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)(text_sync.did_save)
    server.feature(
        lsp.TEXT_DOCUMENT_COMPLETION,
        lsp.CompletionOptions(trigger_characters=["."], resolve_provider=False),
    )(completion.completion)
    server.feature("pairls/cursor")(presence.cursor)
    server.feature(lsp.TEXT_DOCUMENT_HOVER)(history.hover)
    server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_HIGHLIGHT)(presence.document_highlight)
    server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT)(presence.inlay_hint)
    for name, handler in {**commands.COMMANDS, **history.COMMANDS, **run.COMMANDS}.items():
        server.command(name)(handler)
