"""Text synchronisation: the keystroke path.

``didChange`` (incremental, as advertised) goes to the session, which turns
the changes into ops for the hub (``room.py``, ``editor_sync.py``); then the
cursor is guessed from the last change, for peers to see (no plugin tells
us where it is).
"""

from __future__ import annotations

import logging

from lsprotocol import types as lsp

from ..editor_sync import ContentChange, apply_changes
from ..positions import LineIndex
from ..server import PairlsServer

logger = logging.getLogger(__name__)


def did_open(ls: PairlsServer, params: lsp.DidOpenTextDocumentParams) -> None:
    td = params.text_document
    ls.opened(td.uri, td.version, td.text)


def did_change(ls: PairlsServer, params: lsp.DidChangeTextDocumentParams) -> None:
    """pygls's way (pygls updated the workspace's document before)."""
    changes = []
    for c in params.content_changes:
        if isinstance(c, lsp.TextDocumentContentChangePartial):
            r = c.range
            changes.append(
                ContentChange((r.start.line, r.start.character, r.end.line, r.end.character), c.text)
            )
        else:
            changes.append(ContentChange(None, c.text))
    changed(ls, params.text_document.uri, params.text_document.version, changes)


def did_change_json(ls: PairlsServer, uri: str, version: int, changes: list[ContentChange]) -> None:
    """The short way (``lsp_bridge/rpc.py``): the workspace's document is updated here, as
    pygls's own handler would, then :func:`changed`."""
    doc = ls.text_document(uri)
    if doc is None:  # the editor's mistake (LSP: didOpen first), not the server's
        logger.warning("a didChange of a document that is not open: ignored")
        return
    before = doc.source
    text, cursor = apply_changes(before, changes, ls.encoding)
    doc._source = text
    doc.version = version
    changed(ls, uri, version, changes, cursor, (before, text))
    session = ls.session
    view = session.room.by_uri[uri].views[uri] if session is not None and uri in session.room.by_uri else None
    if view is not None and view.sync.text is not text and view.sync.text == text:
        # one object for both: the next keystroke's positions are read with one line index
        doc._source = view.sync.text


def changed(
    ls: PairlsServer,
    uri: str,
    version: int,
    changes: list[ContentChange],
    cursor: int | None = None,
    known: tuple[str, str] | None = None,
) -> None:
    """The user's changes to buffer *uri* (now at *version*): to the room; *cursor*: the end
    of the last change, if known already; *known*: the buffer's text before and after them,
    as tracked here.  One room step: the changes, the cursor guessed from them, the check of
    the text as pygls tracked it."""
    session = ls.session
    if session is None:
        return
    room = session.room
    tdoc = ls.text_document(uri)

    def step(now: float) -> None:
        nonlocal cursor
        typed = room.editor_changed(uri, version, changes, now, known)
        doc = room.by_uri.get(uri)
        if doc is None:
            return
        view = doc.views[uri]
        if typed and changes[-1].range is not None:
            # the end of the last change is a good guess at the cursor
            text = view.sync.text
            if cursor is None:
                sl, sc, _, _ = changes[-1].range
                cursor = LineIndex.of(text).offset(sl, sc, ls.encoding) + len(changes[-1].text)
            pos = min(len(text), cursor)
            room.cursor_moved(uri, [(pos, pos)], now)
        if tdoc is not None and view.sync.quiet:
            # the text as pygls tracked it must be ours; if not, that is a bug (counted as a heal)
            room.editor_text(uri, tdoc.source, now)

    session.call(step)


def did_close(ls: PairlsServer, params: lsp.DidCloseTextDocumentParams) -> None:
    ls.closed(params.text_document.uri)


def did_save(ls: PairlsServer, params: lsp.DidSaveTextDocumentParams) -> None:
    """Nothing to do: the room has every keystroke already."""
