"""History: undo and redo of the user's own changes, the list of changes, who last changed
each line (``pairls.blame``, and hovers), and any earlier revision.

Commands take one JSON object argument (docs/protocol.md, "History", and the README):

* ``pairls.undoMine`` / ``pairls.redoMine`` ``{uri}`` -> ``{rev}``: the hub builds the op
  (it never touches anyone else's text) and sends it to everyone, this editor included,
  like a peer's op (``workspace/applyEdit``); asked once the hub has what the user typed,
  and asked again with the same key if the answer is lost (a press undoes once);
* ``pairls.history`` ``{uri, before?, limit?}`` -> ``{changes, more}``;
* ``pairls.blame`` ``{uri}`` -> ``{lines}``, one per line of the editor's text;
* ``pairls.openRevision`` ``{uri, rev}`` -> ``{uri}``: a read-only file in the user's cache
  folder, shown with ``window/showDocument``; or, for a client that shows revisions itself
  (the VS Code extension), a ``pairls-rev:`` URI whose text ``pairls.revisionText`` ``{uri}``
  gives.

``textDocument/hover`` on a shared document says who last changed the line under the cursor;
on any other document it is null, so other servers' hovers show alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from lsprotocol import types as lsp

from collab_core.wire import ROOM_ID_RE, valid_path

from ..blame import describe
from ..server import PairlsServer
from ..session import Session, SessionError
from .commands import _arg, show_file, user_error
from .presence import guess_cursor

#: a hover waits this long for the hub's first blame of a document (then shows nothing)
HOVER_WAIT = 0.5
#: the scheme of revisions the client shows itself (the VS Code extension)
REVISION_SCHEME = "pairls-rev"
#: revision texts kept for pairls.revisionText (a diff view asks again when it is reopened)
KEEP_REVISIONS = 8


def _shared(ls: PairlsServer, arg: dict[str, Any]) -> tuple[Session, str, str]:
    """(session, uri, room path) of the document the command names, which must be shared."""
    session = ls.require_session()
    if not session.room.in_room:
        raise user_error("join or create a room first")
    uri = arg.get("uri")
    doc = session.room.by_uri.get(uri) if isinstance(uri, str) else None
    if doc is None or not isinstance(uri, str):
        raise user_error("this document is not shared in the room")
    return session, uri, doc.path


async def _ask(request: Any) -> Any:
    try:
        return await request
    except SessionError as exc:
        raise user_error(str(exc)) from None


async def undo_mine(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """Undo the user's last change to the document ``{uri}``: ``{rev}`` of the op that did."""
    session, _, path = _shared(ls, _arg(args))
    result: dict[str, Any] = await _ask(session.undo(path))
    return result


async def redo_mine(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """Redo the user's change undone last in ``{uri}``: ``{rev}``."""
    session, _, path = _shared(ls, _arg(args))
    result: dict[str, Any] = await _ask(session.redo(path))
    return result


async def history(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """The changes to ``{uri}``, newest first: ``{changes: [{rev, firstRev, author, name, time,
    inserted, deleted, line, kind?, toggles?}], more}``; ``before`` and ``limit`` page."""
    arg = _arg(args)
    session, _, path = _shared(ls, arg)
    result: dict[str, Any] = await _ask(session.history(path, arg.get("before"), arg.get("limit")))
    return result


async def blame(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """Who last changed each line of ``{uri}`` as the editor has it: ``{lines: [{author, name,
    time, rev}]}`` (``rev`` null: typed here, not yet committed)."""
    session, uri, path = _shared(ls, _arg(args))
    await _ask(session.blame(path))
    lines = session.call(session.room.blame_lines, uri)
    if lines is None:
        raise user_error("the hub has not said who changed the lines yet; try again in a moment")
    return {"lines": [b.describe() for b in lines]}


async def open_revision(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """Show revision ``rev`` of ``{uri}``, read-only: ``{uri}`` of what shows it."""
    arg = _arg(args)
    session, _, path = _shared(ls, arg)
    rev = arg.get("rev")
    if type(rev) is not int or rev < 0:
        raise user_error(
            "openRevision needs {uri, rev}: rev is a revision number (pairls.history lists them)"
        )
    room_id = session.room.room_id or ""
    text = await _revision_text(ls, session, room_id, path, rev)
    if ls.virtual_revisions:
        return {"uri": revision_uri(room_id, path, rev)}
    local = ls.paths.revision_file(room_id, rev, path, text)
    if local is None:
        raise user_error(f"could not write revision {rev} of {path} in the cache folder")
    return await show_file(ls, local, f"revision {rev} of {path}")


async def revision_text(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """The text of a ``pairls-rev:`` URI (``{uri}``) that ``pairls.openRevision`` gave:
    ``{text, path, rev}``."""
    uri = _arg(args).get("uri")
    parsed = parse_revision_uri(uri) if isinstance(uri, str) else None
    if parsed is None:
        raise user_error("not a pairls revision")
    room_id, path, rev = parsed
    session = ls.require_session()
    if room_id != session.room.room_id:
        kept = ls.revisions.get((room_id, path, rev))
        if kept is None:
            raise user_error("that revision is of a room you are no longer in")
        return {"text": kept, "path": path, "rev": rev}
    return {"text": await _revision_text(ls, session, room_id, path, rev), "path": path, "rev": rev}


async def _revision_text(ls: PairlsServer, session: Session, room_id: str, path: str, rev: Any) -> str:
    key = (room_id, path, rev)
    kept = ls.revisions.pop(key, None) if type(rev) is int else None
    if kept is None:
        kept = await _ask(session.revision(path, rev))
        assert isinstance(kept, str)
    ls.revisions[key] = kept  # newest last
    while len(ls.revisions) > KEEP_REVISIONS:
        ls.revisions.pop(next(iter(ls.revisions)))
    return kept


def revision_uri(room_id: str, path: str, rev: int) -> str:
    """``pairls-rev:/<path>?room=<room>&rev=<rev>`` (the path keeps its name for the editor's title)."""
    return f"{REVISION_SCHEME}:/{quote(path)}?room={room_id}&rev={rev}"


def parse_revision_uri(uri: str) -> tuple[str, str, int] | None:
    """(room id, room path, rev) of a ``pairls-rev:`` URI, or None.  Percent-encoded or not
    (editors re-encode URIs their own way)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.scheme != REVISION_SCHEME:
        return None
    path = unquote(parts.path).lstrip("/")
    query = parse_qs(unquote(parts.query))
    room = query.get("room", [""])[0]
    rev = query.get("rev", [""])[0]
    if not valid_path(path) or not ROOM_ID_RE.fullmatch(room) or not rev.isdigit() or len(rev) > 15:
        return None
    return room, path, int(rev)


async def hover(ls: PairlsServer, params: lsp.HoverParams) -> lsp.Hover | None:
    """Who last changed the line under the cursor, in a shared document (else null).

    From the document's blame, kept and refreshed in the background: only the first hover of
    a document waits for the hub, and at most ``HOVER_WAIT``."""
    uri = params.text_document.uri
    if not ls.cursor_notifications:
        guess_cursor(ls, uri, params.position)  # where the cursor rests, for peers to see
    session = ls.session
    if session is None or uri not in session.room.by_uri:
        return None
    lines = session.call(session.room.blame_lines, uri)
    if lines is None:
        path = session.room.by_uri[uri].path
        first = session.begin(lambda now: session.room.blame(path, now))
        with contextlib.suppress(TimeoutError, SessionError):
            await asyncio.wait_for(asyncio.shield(first), HOVER_WAIT)
        if not first.done():
            first.add_done_callback(_quiet)
        lines = session.call(session.room.blame_lines, uri)
    line = params.position.line
    if lines is None or not 0 <= line < len(lines):
        return None
    text = describe(lines[line], time.time(), you=ls.display_name if lines[line].rev is None else None)
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text))


def _quiet(fut: asyncio.Future[Any]) -> None:
    """A hover stopped waiting for this answer: whatever it was, nobody waits for it now."""
    if not fut.cancelled():
        fut.exception()


COMMANDS = {
    "pairls.undoMine": undo_mine,
    "pairls.redoMine": redo_mine,
    "pairls.history": history,
    "pairls.blame": blame,
    "pairls.openRevision": open_revision,
    "pairls.revisionText": revision_text,
}
