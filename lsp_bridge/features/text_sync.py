"""Text synchronisation: the keystroke path.

``didChange`` (incremental, as advertised) goes to the session, which turns
the changes into ops for the hub (``room.py``, ``editor_sync.py``); then the
cursor is guessed from the last change, for peers to see (no plugin tells
us where it is).
"""

from __future__ import annotations

from lsprotocol import types as lsp

from ..editor_sync import ContentChange
from ..positions import LineIndex
from ..server import PairlsServer


def did_open(ls: PairlsServer, params: lsp.DidOpenTextDocumentParams) -> None:
    td = params.text_document
    ls.begin_share(td.uri, td.text, td.version)


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
    pygls's own handler does, then :func:`changed`."""
    ident = lsp.VersionedTextDocumentIdentifier(uri=uri, version=version)
    for c in changes:
        event: lsp.TextDocumentContentChangeEvent
        if c.range is None:
            event = lsp.TextDocumentContentChangeWholeDocument(text=c.text)
        else:
            sl, sc, el, ec = c.range
            where = lsp.Range(
                start=lsp.Position(line=sl, character=sc), end=lsp.Position(line=el, character=ec)
            )
            event = lsp.TextDocumentContentChangePartial(range=where, text=c.text)
        ls.workspace.update_text_document(ident, event)
    changed(ls, uri, version, changes)


def changed(ls: PairlsServer, uri: str, version: int, changes: list[ContentChange]) -> None:
    """The user's changes to buffer *uri* (now at *version*): to the room."""
    session = ls.session
    if session is None:
        return
    typed = session.editor_changed(uri, version, changes)
    room = session.room
    doc = room.by_uri.get(uri)
    if doc is None:
        return
    view = doc.views[uri]
    if typed and changes[-1].range is not None:
        # the end of the last change is a good guess at the cursor
        sl, sc, _, _ = changes[-1].range
        text = view.sync.text
        pos = min(len(text), LineIndex.of(text).offset(sl, sc, ls.encoding) + len(changes[-1].text))
        session.cursor_moved(uri, [(pos, pos)])
    tdoc = ls.workspace.text_documents.get(uri)
    if tdoc is not None and view.sync.quiet:
        # the text as pygls tracked it must be ours; if not, that is a bug (counted as a heal)
        source = tdoc.source
        session.call(lambda now: room.editor_text(uri, source, now))


def did_close(ls: PairlsServer, params: lsp.DidCloseTextDocumentParams) -> None:
    if ls.session is not None:
        ls.session.room.unshare(params.text_document.uri)


def did_save(ls: PairlsServer, params: lsp.DidSaveTextDocumentParams) -> None:
    """Nothing to do: the room has every keystroke already."""
