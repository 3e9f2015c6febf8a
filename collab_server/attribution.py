"""The hub's side of a document's history (sans-I/O): its attribution index and the replies.

A document task keeps one :class:`HistoryIndex` around the core's
:class:`~collab_core.history.DocumentHistory` (who inserted and deleted
every character, the changes, undo and redo).  The index is built only when
someone first asks for the history, blame, an undo or a redo of the
document, and then kept up to date with every op the document commits or
learns from another hub, until the document is unloaded or the index is
evicted (:class:`IndexBudget`).

Building (the shell reads, this decides)::

    ABSENT --want()--> BUILDING --finish(committed_rev)--> READY
       ^                  |  begin(origin), feed(page)...      |
       +----- failed() ---+                                    |
       +----------------------------- drop() ------------------+

While it builds, the requests that need it are *parked* here, in order,
and the document goes on sequencing: the shell reads the log a page at a
time and :meth:`HistoryIndex.feed`\\ s it, and once the index has every op
the document committed (:meth:`HistoryIndex.finish`, called with nothing
awaited between it and the document's own commits) the index is ready and
the parked requests are handed back.  From then on :meth:`committed` applies
each committed op as the document publishes it.

A commit the index refuses (``HistoryMismatch``: an undo's op is not what
the history computes, the hub's bug) drops the index, counted in
:attr:`HistoryIndex.mismatches`; the next request builds it again.

Replies: :func:`history_reply` and :func:`blame_reply` turn the core's
answers into the wire's (docs/protocol.md, "History"): users become
:func:`author_id` (an opaque id per room: user ids never leave the hub) and
the name the room knows for them, times ISO 8601 UTC with milliseconds.
No clock, no I/O.
"""

from __future__ import annotations

import base64
import enum
import hashlib
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from collab_core import ops, wire
from collab_core.history import Change, DocumentHistory, HistoryMismatch, LineBlame

from .document import Sequenced

__all__ = [
    "HistoryIndex",
    "IndexBudget",
    "IndexState",
    "author_id",
    "blame_reply",
    "history_reply",
    "iso_time",
]

_Item = TypeVar("_Item")

#: characters of the base64url SHA-256 that make an author id
AUTHOR_CHARS = 12


def author_id(room_id: str, user: str) -> str:
    """The id peers see for *user* in *room_id*: stable, opaque, different in every room.

    ``""`` for no user (the initial text of a document created before the
    hub recorded who created documents).
    """
    if not user:
        return ""
    digest = hashlib.sha256(f"{room_id}\x00{user}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:AUTHOR_CHARS]


def iso_time(seconds: float) -> str:
    """*seconds* since the epoch as ISO 8601 UTC with milliseconds: ``2026-11-30T10:04:05.123Z``."""
    stamp = datetime.fromtimestamp(seconds, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class IndexState(enum.Enum):
    ABSENT = "absent"
    BUILDING = "building"
    READY = "ready"


class HistoryIndex(Generic[_Item]):
    """One document's attribution index and the requests waiting for it (see the module docstring).

    *_Item* is whatever the shell parks (its queued requests); this class
    only keeps them in order.
    """

    def __init__(self) -> None:
        self.state = IndexState.ABSENT
        self.history: DocumentHistory | None = None
        #: requests waiting for the index, oldest first
        self.parked: deque[_Item] = deque()
        #: builds begun (the first, and one after each drop)
        self.builds = 0
        #: commits the index refused (each dropped it)
        self.mismatches = 0

    @property
    def ready(self) -> bool:
        return self.state is IndexState.READY

    @property
    def rev(self) -> int:
        """The revision the index is at (-1 without one)."""
        return self.history.rev if self.history is not None else -1

    @property
    def nbytes(self) -> int:
        """About what the index takes in memory (0 without one); costs a pass over its blocks."""
        return self.history.size().nbytes if self.history is not None else 0

    def want(self, item: _Item) -> bool:
        """*item* needs the index: True if it is ready; else *item* is parked and the answer
        is whether the shell must start a build (:meth:`begin`)."""
        if self.state is IndexState.READY:
            raise ValueError("the index is ready: serve the request")
        self.parked.append(item)
        if self.state is IndexState.ABSENT:
            self.state = IndexState.BUILDING
            self.builds += 1
            return True
        return False

    def begin(self, text: str, user: str, time: float) -> None:
        """The build starts from revision 0: the document's initial *text*, by *user* at *time*."""
        if self.state is not IndexState.BUILDING:
            raise ValueError("begin without want")
        self.history = DocumentHistory(text, user=user, time=time)

    def feed(self, page: Iterable[Sequenced]) -> None:
        """Ops from the log, in order, following the index's revision (while building)."""
        history = self.history
        if self.state is not IndexState.BUILDING or history is None:
            raise ValueError("feed outside a build")
        for s in page:
            self._apply(history, s)

    def finish(self, committed_rev: int) -> list[_Item] | None:
        """If the index has every op up to *committed_rev* (the document's), it is ready: the
        parked requests, in order, to serve now.  None: read on."""
        history = self.history
        if self.state is not IndexState.BUILDING or history is None:
            raise ValueError("finish outside a build")
        if history.rev > committed_rev:
            raise ValueError("the index went past the document")
        if history.rev < committed_rev:
            return None
        self.state = IndexState.READY
        parked = list(self.parked)
        self.parked.clear()
        return parked

    def failed(self) -> list[_Item]:
        """The build could not read the log: back to no index; the parked requests, to refuse."""
        self.state = IndexState.ABSENT
        self.history = None
        parked = list(self.parked)
        self.parked.clear()
        return parked

    def drop(self) -> None:
        """Forget the index (evicted, or the document unloaded); the next request builds it again.

        A build under way is not dropped (its requests wait for it).
        """
        if self.state is IndexState.READY:
            self.state = IndexState.ABSENT
            self.history = None

    def committed(self, done: Iterable[Sequenced]) -> bool:
        """The document committed (or learnt) *done*, in order: apply it if the index is ready.

        False if the index refused one (it is dropped, and counted).
        """
        history = self.history
        if self.state is not IndexState.READY or history is None:
            return True  # a build reads them from the log
        try:
            for s in done:
                self._apply(history, s)
        except HistoryMismatch:
            self.mismatches += 1
            self.drop()
            return False
        return True

    def group(self, user: str, op: ops.Op, time: float, rev: int) -> int | None:
        """The change the op about to get revision ``rev + 1`` joins, if the index is at *rev*."""
        history = self.history
        if self.state is not IndexState.READY or history is None or history.rev != rev:
            return None
        return history.group(user, op, time)

    @staticmethod
    def _apply(history: DocumentHistory, s: Sequenced) -> None:
        history.apply(s.rev, s.op, user=s.user, time=s.time, change_rev=s.change_rev, toggles=s.toggles)


class IndexBudget:
    """The bytes all documents' indexes take together; past ``limit`` the least recently used go.

    Each index is registered under a key the shell chooses, and charged
    with its size whenever it is used or grows; :meth:`charge` answers the
    keys to drop (never the one being charged).  A ``limit`` of 0 never drops.
    """

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        self.limit = limit
        self.used = 0
        #: indexes dropped to stay within the limit
        self.evicted = 0
        self._sizes: OrderedDict[int, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sizes)

    def charge(self, key: int, nbytes: int) -> list[int]:
        """Index *key* is in use and takes *nbytes*; returns the keys to drop to fit."""
        self.used += nbytes - self._sizes.pop(key, 0)
        self._sizes[key] = nbytes
        victims: list[int] = []
        if self.limit:
            while self.used > self.limit and len(self._sizes) > 1:
                victim, size = next(iter(self._sizes.items()))
                if victim == key:
                    break
                del self._sizes[victim]
                self.used -= size
                self.evicted += 1
                victims.append(victim)
        return victims

    def release(self, key: int) -> None:
        """Index *key* is gone (dropped, or its document unloaded)."""
        self.used -= self._sizes.pop(key, 0)


def _name(names: Mapping[str, str], user: str) -> str:
    return names.get(user, "")


def history_reply(
    path: str, room_id: str, changes: list[Change], more: bool, names: Mapping[str, str]
) -> dict[str, Any]:
    """The ``history`` reply for *changes* (newest first)."""
    out: list[dict[str, Any]] = []
    for c in changes:
        entry: dict[str, Any] = {
            "rev": c.rev,
            "firstRev": c.first_rev,
            "author": author_id(room_id, c.user),
            "name": _name(names, c.user),
            "time": iso_time(c.time),
            "inserted": c.inserted,
            "deleted": c.deleted,
            "line": c.line,
        }
        if c.kind != "edit":
            entry["kind"] = c.kind
            entry["toggles"] = c.toggles
        out.append(entry)
    return {"type": "history", "path": path, "changes": out, "more": more}


def blame_reply(
    path: str, room_id: str, rev: int, lines: list[LineBlame], names: Mapping[str, str]
) -> dict[str, Any]:
    """The ``blame`` reply for *lines* of the text at *rev*."""
    return {
        "type": "blame",
        "path": path,
        "rev": rev,
        "lines": [
            {
                "author": author_id(room_id, b.user),
                "name": _name(names, b.user),
                "time": iso_time(b.time),
                "rev": b.rev,
            }
            for b in lines
        ],
    }


def users_of(items: Iterable[Change | LineBlame]) -> set[str]:
    """The users a reply names (to look up the names the room does not know yet)."""
    return {i.user for i in items if i.user}


def blame_range(text_lines: int, start: int | None, end: int | None) -> tuple[int, int]:
    """The lines [start, end) of a text of *text_lines* lines a ``blame`` asks for, clamped."""
    lo = min(start or 0, text_lines)
    hi = text_lines if end is None else min(end, text_lines)
    return lo, max(lo, hi)


def history_page(before: int | None, limit: int | None) -> tuple[int | None, int]:
    """A ``history`` request's page: (before, limit), the limit defaulted."""
    return before, wire.HISTORY_LIMIT if limit is None else limit
