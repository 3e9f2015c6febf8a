"""Where people are: the user's cursor to the room, peers' cursors to the editor.

No standard LSP message says where the user's cursor is: the VS Code
extension sends ``pairls/cursor``; for other editors, hover and
documentHighlight requests (sent where the cursor rests) and the last
change (``text_sync.py``) tell (the hover itself, who last changed the line, is
``history.py``'s).  Peers' cursors come back as inlay hints
(``‸Name``), which every LSP editor shows, and as ``pairls/cursors``
notifications for a plugin.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types as lsp

from ..positions import LineIndex
from ..server import PairlsServer


def cursor(ls: PairlsServer, params: Any) -> None:
    """``pairls/cursor`` ``{uri, ranges: [Range]}`` from the VS Code extension."""
    session = ls.session
    if session is None:
        return
    uri = _get(params, "uri")
    ranges = _get(params, "ranges")
    if not isinstance(uri, str) or not isinstance(ranges, list):
        return
    doc = session.room.by_uri.get(uri)
    if doc is None:
        return
    idx = LineIndex.of(doc.views[uri].sync.text)
    out = []
    for r in ranges[:64]:
        try:
            s, e = _get(r, "start"), _get(r, "end")
            a = idx.offset(int(_get(s, "line")), int(_get(s, "character")), ls.encoding)
            h = idx.offset(int(_get(e, "line")), int(_get(e, "character")), ls.encoding)
        except (TypeError, ValueError, KeyError, AttributeError):
            continue
        out.append((a, h))
    session.cursor_moved(uri, out)


def guess_cursor(ls: PairlsServer, uri: str, position: lsp.Position) -> None:
    """A request at *position* (hover, highlight): the cursor is likely there."""
    session = ls.session
    doc = session.room.by_uri.get(uri) if session else None
    if session is None or doc is None:
        return
    off = LineIndex.of(doc.views[uri].sync.text).offset(position.line, position.character, ls.encoding)
    session.cursor_moved(uri, [(off, off)])


def document_highlight(ls: PairlsServer, params: lsp.DocumentHighlightParams) -> None:
    if not ls.cursor_notifications:
        guess_cursor(ls, params.text_document.uri, params.position)


def inlay_hint(ls: PairlsServer, params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
    session = ls.session
    if session is None or not ls.cursor_hints:
        return []
    hints = []
    for p, ranges in session.room.cursors(params.text_document.uri):
        for _, (line, char) in ranges[:1]:
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


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)
