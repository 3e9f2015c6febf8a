"""A language server's room on a hub, as a state machine (sans-I/O).

See docs/architecture.md ("The language server").  :class:`Room` holds
everything the language server knows about its room: the connection's
state and limits, the client id of this room entry, the documents (each a
:class:`~collab_core.client.DocumentClient` towards the hub and one
:class:`~lsp_bridge.editor_sync.EditorSync` per editor buffer showing it),
requests in flight, held hub messages, peers and their cursors, timers.
Like python-websockets' protocol objects it does no I/O and never waits:

* inputs are method calls: the user's commands (:meth:`create`,
  :meth:`join`, :meth:`leave`, :meth:`share`, ...), the editor's
  notifications (:meth:`editor_changed`, :meth:`edit_answered`, ...), the
  connection's life (:meth:`connection_opened`, :meth:`receive`,
  :meth:`connection_closed`) and the clock (:meth:`tick`); every input that
  depends on time is given ``now``;
* outputs are :meth:`messages_to_send` (hub messages, already paced to the
  hub's rate limit) and :meth:`events` (what to do on the editor side or
  with the connection), and :meth:`next_wakeup` says when :meth:`tick` is
  due.

The asyncio shell (``session.py``) only moves messages and sleeps.

The detours a session meets are transitions here, each tested without
sockets (tests/lsp_bridge/test_room.py):

* every room entry gets a fresh client id (``hello`` carries it), so seq
  numbers that start again at 1 are never taken for old duplicates;
* leaving waits (``leave_timeout`` at most) until the hub has acknowledged
  what the user typed; past that the room is left, said once, and the
  unacknowledged documents are kept for the next entry into that room,
  which is the same client, its seq numbers going on (when the editor is
  going, they go to the shell to keep on disk, :class:`KeepCarry`, and the
  next server restores them, :meth:`Room.restore_carry`; what the hub has
  not acknowledged for ``hold_after`` is kept on disk already while the
  server runs, :class:`HoldCarry`, for a server killed without an exit, and
  so is what a leave kept, until an entry takes it back; an entry into
  another room has it kept on disk for a later one);
* one document per room path, however many buffers show it;
* ops larger than the hub's frame limit go in pieces (``welcome.limits``),
  a document larger than its document limit is refused once, in words;
* a reconnect re-joins and catches each document up with ``open since``,
  in revision order, then re-sends what was in flight, same seq;
* a refused op is re-sent (``unavailable``, ``rate_limited``), caught up
  (``revision_too_old``, ``not_open``), or, last resort, healed: the hub's
  text is read whole and the user's unacknowledged changes are rebased
  onto it (:meth:`DocumentClient.rebase`), never dropped; heals are counted;
* joining follows the room's documents a few at a time, retrying what
  failed, and reports progress;
* an edit the editor refuses is never sent again as it was: against the
  change that made it stale, or once more after a while, then it waits for
  the editor's next change (:meth:`edit_answered`);
* the connection backs off on repeated failures and says so once;
  a failure that retrying cannot fix (a hub certificate that does not
  verify) ends the entry or the room with the reason, without retrying;
* an undo or redo (a press) carries a key of its own; one whose answer was
  lost (a reconnect, a hub that could not answer) goes again with the same
  key until the hub says what it did, so each press undoes once;
* the owner's controls (:meth:`kick`, :meth:`set_role`,
  :meth:`rotate_invites`, :meth:`delete_room`) are requests like any other;
  a connection the hub ends for the owner (removed, invite withdrawn, room
  deleted: close codes 4403, 4401, 4410) ends the room here, in words, and
  is not reconnected; a role the owner changes takes effect at once.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import json
import logging
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from collab_core import ops
from collab_core.client import DocumentClient, Outgoing
from collab_core.errors import CloseCode
from collab_core.wire import bad_text, is_run_path, shareable, valid_path

from .blame import LineBlame, line_blames, map_lines
from .editor_sync import ContentChange, EditorSync, EditToApply
from .invite import InvalidInvite, Invite, parse_invite
from .positions import LineIndex, positions_of

__all__ = [
    "ApplyEdit",
    "Connect",
    "Disconnect",
    "Done",
    "DropHeld",
    "Event",
    "FollowTo",
    "HoldCarry",
    "KeepCarry",
    "Log",
    "Notify",
    "Progress",
    "RefreshInlayHints",
    "Restore",
    "Room",
    "RoomConfig",
    "ShowMessage",
    "TextChanged",
    "TextReplaced",
]

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
#: what the user is told when the hub ends their place in the room (by close code, then reason)
ENDED: dict[int, str] = {
    CloseCode.REMOVED: "pairls: you were removed from the room by the owner; your files stay as they are",
    CloseCode.INVITE_WITHDRAWN: (
        "pairls: the room's owner changed the invites, so you are no longer in the room; "
        "ask them for the new invite to join again"
    ),
    CloseCode.ROOM_DELETED: "pairls: the room was deleted",
}
DELETED_BY = {
    "room deleted by its owner": "pairls: the room was deleted by its owner",
    "room deleted by the hub's operator": "pairls: the room was deleted by the hub's operator",
    "room deleted after being idle": "pairls: the room was deleted after being idle",
}
OWNER_UNTOUCHABLE = "the owner cannot be removed or given another role"
COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c"]


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connect:
    """Open a websocket to *url* (closing any other); then call :meth:`Room.connection_opened`."""

    url: str


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the websocket, if any; do not reconnect."""


@dataclass(frozen=True, slots=True)
class ApplyEdit:
    """Send ``workspace/applyEdit``; answer with :meth:`Room.edit_answered`."""

    uri: str
    edit: EditToApply


@dataclass(frozen=True, slots=True)
class ShowMessage:
    text: str
    error: bool = False


@dataclass(frozen=True, slots=True)
class Log:
    text: str


@dataclass(frozen=True, slots=True)
class Notify:
    method: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RefreshInlayHints:
    """Peers' cursors moved: ask the editor for inlay hints again."""


@dataclass(frozen=True, slots=True)
class TextChanged:
    """The room text of *path* changed by *op* (for the completion index)."""

    path: str
    old: str
    op: ops.Op
    new: str
    author: str | None


@dataclass(frozen=True, slots=True)
class TextReplaced:
    """The room text of *path* is now *text* (``None``: forget it)."""

    path: str
    text: str | None


@dataclass(frozen=True, slots=True)
class Done:
    """A command finished: *result*, or *error* (a sentence for the user)."""

    ticket: int
    result: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """Work-done progress (LSP ``$/progress``): ``kind`` is begin, report or end."""

    kind: str
    message: str
    percentage: int | None = None


@dataclass(frozen=True, slots=True)
class KeepCarry:
    """The editor is going with changes the hub has not acknowledged (or this server enters
    another room than theirs): keep *saved* (plain JSON, :meth:`Room.restore_carry` reads it)
    where the next entry of this user into room *room_id* finds it (as client *client_id*)."""

    room_id: str
    client_id: str
    saved: dict[str, Any]


@dataclass(frozen=True, slots=True)
class HoldCarry:
    """Changes the hub has not acknowledged for ``hold_after``, or that a leave kept for this
    server's next entry: keep *saved* (as :class:`KeepCarry` would) on disk now, claimed by this
    server while it runs (a later copy replaces it), so that if the server is killed without a
    word (kill -9, the OOM killer, a crash) the next server of this user finds it, as it finds
    what an exit keeps."""

    room_id: str
    client_id: str
    saved: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DropHeld:
    """What :class:`HoldCarry` kept is done with: the hub acknowledged it all, or the room was
    left with it all acknowledged (a leave with changes unsent holds them again, an exit keeps
    them with :class:`KeepCarry`; either replaces the held copy)."""


@dataclass(frozen=True, slots=True)
class CarryTaken:
    """The carry of room *room_id* is this entry's: a kept copy of it is done with."""

    room_id: str


@dataclass(frozen=True, slots=True)
class FollowTo:
    """Show the followed participant's place: *uri* if a buffer shows *path*, else the file."""

    path: str
    uri: str | None
    #: (line, character) start and end in the editor's encoding, if known
    selection: tuple[tuple[int, int], tuple[int, int]] | None
    name: str


Event = (
    Connect
    | Disconnect
    | ApplyEdit
    | ShowMessage
    | Log
    | Notify
    | RefreshInlayHints
    | TextChanged
    | TextReplaced
    | Done
    | Progress
    | FollowTo
    | KeepCarry
    | HoldCarry
    | DropHeld
    | CarryTaken
)


# -- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoomConfig:
    """Timings and limits (seconds, counts); tests shorten them."""

    #: a create or join fails when the hub cannot be reached for this long
    enter_timeout: float = 10.0
    #: reconnect backoff: first delay, growth factor, cap
    backoff_min: float = 0.2
    backoff_max: float = 5.0
    #: a connection up this long counts as healthy: the backoff starts again from the bottom
    healthy_after: float = 10.0
    #: opens (follow, catch-up) in flight at once
    max_opens: int = 8
    #: an op refused with unavailable/rate_limited goes again after this (doubling, capped)
    resend_min: float = 0.25
    resend_max: float = 5.0
    #: a document's content hash is compared with the hub's after this much quiet
    check_after: float = 1.0
    #: an edit the editor answered but whose effect never came is given up after this
    edit_expire: float = 2.0
    #: an edit the editor refused goes again after its next didChange, or once after this
    edit_retry: float = 1.0
    #: our cursor goes to the hub at most this often
    presence_interval: float = 0.05
    #: ... and a cursor the peers already have (they move our cursor past what we type, as
    #: the hub's op arrives) at most this often: it only keeps the hub's copy, which
    #: newcomers are given, at a recent revision
    presence_implied_interval: float = 1.0
    #: inlay hint refreshes at most this often (a peer typing up to 20 characters a second has
    #: each refresh go with the edit and the cursors, not on a timer of its own: a wake-up
    #: of the server, a write and the editor's answer each)
    refresh_interval: float = 0.05
    #: the share of the hub's message rate we use
    rate_share: float = 0.8
    #: follow progress is reported for rooms with at least this many documents
    progress_threshold: int = 20
    #: leaving waits this long for the hub to take what the user typed (then leaves anyway,
    #: keeping it for the next entry into the room)
    leave_timeout: float = 5.0
    #: the same when the editor is going: editors give a server little time once they have
    #: asked it to shut down (VS Code's client SIGKILLs it 5 s after it asked, when it asks for
    #: 3 s), and what the hub did not take must be kept on disk before that
    exit_timeout: float = 2.0
    #: changes the hub has not acknowledged this long are kept on disk while the server runs
    #: (:class:`HoldCarry`), and again at most this often while more come; looked at this often
    #: until the hub has them all (then :class:`DropHeld`)
    hold_after: float = 1.0
    #: undo and redo wait this long for the hub to take what the user typed (then fail, in
    #: words, undoing nothing); history, blame and revisions wait this long for the document
    #: to be open on the hub (after a reconnect, say)
    history_wait: float = 5.0
    #: a document's blame is asked again this long after the last op that changed it ...
    blame_debounce: float = 0.5
    #: ... and at most this long after the first one
    blame_max_delay: float = 3.0
    #: a blame nobody looked at for this long is forgotten (no more refreshes)
    blame_idle: float = 600.0


# -- state ------------------------------------------------------------------------------------


class Conn(enum.Enum):
    DOWN = "disconnected"
    CONNECTING = "connecting"
    HELLO = "hello"
    UP = "connected"


class Restore(enum.Enum):
    """What :meth:`Room.restore_carry` made of a kept carry."""

    #: the next entry into its room takes it
    TAKEN = "taken"
    #: not now (in a room, or holding a carry of this server's own): keep it for another entry
    NOT_NOW = "not now"
    #: not a carry this version can read: set it aside, never to be offered again
    UNREADABLE = "unreadable"


class DocState(enum.Enum):
    #: nothing asked of the hub yet (offline, or waiting for its turn)
    NEW = "new"
    #: create_document sent
    CREATING = "creating"
    #: open sent (first open, catch-up with since, or a heal's full read)
    OPENING = "opening"
    OPEN = "open"
    #: refused for good (too large, not allowed): no longer shared
    FAILED = "failed"


@dataclass
class View:
    """One editor buffer showing a document."""

    uri: str
    sync: EditorSync
    applying: bool = False
    #: the editor's version when it refused our edit, until its next didChange: nothing is
    #: sent to it meanwhile, except once at ``retry_at``
    refused: int | None = None
    retry_at: float | None = None
    #: the version the timed retry was made at (one per version: never a loop)
    retried: int | None = None
    #: an answered edit whose effect has not come is given up at this time
    expire_at: float | None = None


#: how often an entry that waits for another server's carry looks again (seconds)
HELD_CARRY_LOOK = 0.05

#: revisions of a document kept to move a peer's cursor that comes late (its presence older
#: than our text) to our revision, and the most text they may hold (a paste is not kept)
RECENT_REVS = 64
RECENT_CHARS = 1 << 16


def _move_ranges(ranges: list[list[int]], op: ops.Op, mine: bool) -> list[list[int]]:
    """Cursor *ranges* after *op*; *mine*: the op is the cursor's owner's (its inserts push it on)."""
    return [[ops.transform_index(x, op, after_insert=mine) for x in r] for r in ranges]


@dataclass
class Doc:
    path: str
    state: DocState = DocState.NEW
    client: DocumentClient | None = None
    views: dict[str, View] = field(default_factory=dict)
    #: hub ops and acks that arrived ahead of their turn, by rev
    held: list[dict[str, Any]] = field(default_factory=list)
    #: what the next open must be: "since" (catch up), "full" (read the text whole), "zero" (since 0)
    need: str | None = None
    #: create_document must still be sent (we share our text)
    create: bool = False
    #: the request in flight for it
    request: int | None = None
    #: commands waiting for it to open
    tickets: list[int] = field(default_factory=list)
    resend_at: float | None = None
    resend_delay: float = 0.0
    check_at: float | None = None
    open_after: float = 0.0
    heals: int = 0
    #: why it is FAILED, in words for the user
    why: str = ""
    #: history requests (undo, redo, history, revision) waiting for their turn, in order
    asks: list[_Ask] = field(default_factory=list)
    #: who last changed each line (kept once someone asked: hover, pairls.blame)
    blame: _Blame | None = None
    #: the hub's latest revisions as (rev, op, author, characters inserted), oldest first and
    #: without gaps: a peer's cursor from a revision before ours moves past them
    #: (:meth:`Room._bring_up`); at most RECENT_REVS of them and RECENT_CHARS of text
    recent: deque[tuple[int, ops.Op, str | None, int]] = field(default_factory=deque)
    recent_chars: int = 0
    #: the text whose hash is cached in ``_hash``
    _hashed: str | None = None
    _hash: str = ""

    def sha256(self) -> str | None:
        if self.client is None:
            return None
        if self._hashed is not self.client.text:
            self._hashed = self.client.text
            self._hash = hashlib.sha256(self.client.text.encode("utf-8")).hexdigest()
        return self._hash


@dataclass
class Participant:
    id: str
    name: str
    role: str
    color: str
    path: str | None = None
    #: the revision of ``path`` the ranges are at
    rev: int = 0
    #: code point ranges [anchor, head] in the hub's text of ``path`` at ``rev``
    ranges: list[list[int]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "color": self.color, "role": self.role}
        if self.path is not None:
            out["path"] = self.path
            out["ranges"] = self.ranges
        return out


@dataclass
class _Request:
    kind: str
    path: str | None = None
    ticket: int | None = None
    ask: _Ask | None = None


@dataclass
class _Ask:
    """A history request (``undo``, ``redo``, ``history``, ``revision``) for one document.

    An undo or redo (a *press*) carries a key; once sent, the hub may have done it, so it is
    asked again with the same key (after a reconnect, or when the hub could not answer)
    until the hub says what it did: each press undoes once (docs/protocol.md, "History").
    """

    #: the command waiting for it (None: answered already, the press still under way)
    ticket: int | None
    #: the message to send (without its id)
    msg: dict[str, Any]
    #: its command fails (or, for a press sent already, is answered) in words if it could not
    #: be answered by then; None: no longer waited for
    deadline: float | None
    #: undo and redo: sent once the hub has acknowledged our ops up to this seq (the user's
    #: "last change" includes what they typed just before)
    upto: int | None = None
    #: not sent before this (the hub asked us to wait)
    not_before: float = 0.0
    #: times a press was sent (once sent, the hub may have done it)
    tries: int = 0
    #: the wait before asking again after the hub could not answer (doubles)
    delay: float = 0.0

    @property
    def press(self) -> bool:
        return self.msg["type"] in ("undo", "redo")

    @property
    def sent(self) -> bool:
        return self.tries > 0


@dataclass
class _Blame:
    """A document's blame as the hub last answered it, and the ops committed since.

    The ops are kept, not applied at once (each op costs a copy of the text): the lines are
    carried through them when someone reads the blame (:meth:`Room._settle`), or before the
    hub's next answer is merged in.  The hub is asked again after ops, for the window of
    lines they changed (their times are known only to it), or for every line.
    """

    #: one per line of :attr:`text`, the hub's text at :attr:`rev`; None until the hub's
    #: first answer (or after a whole-text read, which it does not fit)
    lines: list[LineBlame] | None = None
    text: str = ""
    rev: int = 0
    #: the ops committed since :attr:`rev`, each with the blame its lines get
    since: list[tuple[ops.Op, LineBlame]] = field(default_factory=list)
    #: the next ask is for every line (the first, after a whole-text read, pairls.blame)
    whole: bool = True
    #: the lines (start, end) the request in flight asked for; None: every line
    asked: tuple[int, int] | None = None
    #: last read (hover, pairls.blame): one unread for ``blame_idle`` is forgotten
    used_at: float = 0.0
    #: the hub must be asked (again): when
    refresh_at: float | None = None
    #: the oldest change since the last answer
    dirty_since: float | None = None
    #: the blame request in flight
    request: int | None = None
    #: changed while a request was in flight: ask again after it
    again: bool = False
    #: pairls.blame commands waiting for the next answer: (ticket, deadline)
    tickets: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class _Carry:
    """What a leave could not deliver, kept for the next entry into the same room.

    The next entry is the same client (``client_id``) with its seq numbers going on
    (``seqs``), so an op the hub committed without our hearing of it is recognised in
    the catch-up, and one it never got is sent again, never applied twice.
    """

    room_id: str
    client_id: str
    #: documents with changes the hub has not acknowledged, without their buffers
    docs: dict[str, Doc]
    #: the next seq of every document the entry had a client for
    seqs: dict[str, int]

    def saved(self) -> dict[str, Any]:
        """Plain JSON for :meth:`restored` in another process (the editor is going)."""
        docs = {}
        for path, doc in self.docs.items():
            assert doc.client is not None
            docs[path] = {"create": doc.create, "need": doc.need, "client": doc.client.saved()}
        return {
            "version": 1,
            "roomId": self.room_id,
            "clientId": self.client_id,
            "seqs": self.seqs,
            "docs": docs,
        }

    @classmethod
    def restored(cls, saved: Any) -> _Carry:
        """What :meth:`saved` wrote; ``ValueError`` on anything else."""
        if not isinstance(saved, dict) or saved.get("version") != 1:
            raise ValueError("not a carry of this version")
        room_id, client_id = saved.get("roomId"), saved.get("clientId")
        seqs, raw_docs = saved.get("seqs"), saved.get("docs")
        if not (isinstance(room_id, str) and room_id and isinstance(client_id, str) and client_id):
            raise ValueError("roomId or clientId")
        if not isinstance(seqs, dict) or not all(
            isinstance(p, str) and type(n) is int and n >= 1 for p, n in seqs.items()
        ):
            raise ValueError("seqs")
        if not isinstance(raw_docs, dict) or not raw_docs:
            raise ValueError("docs")
        docs = {}
        for path, raw in raw_docs.items():
            if not isinstance(path, str) or not isinstance(raw, dict):
                raise ValueError("a document")
            create, need = raw.get("create"), raw.get("need")
            if not isinstance(create, bool) or need not in (None, "since", "full", "zero"):
                raise ValueError("create or need")
            client = DocumentClient.restored(raw.get("client"), client_id)
            docs[path] = Doc(path, client=client, create=create, need=need)
        return cls(room_id, client_id, docs, dict(seqs))


class Room:
    """See the module docstring."""

    def __init__(
        self,
        *,
        name: str,
        encoding: str,
        config: RoomConfig | None = None,
        jitter: Callable[[], float] = lambda: 1.0,
        user: str = "",
    ) -> None:
        self.name = name
        #: the person (``hello.user``: lsp_bridge/user_id.py), the same in every room entry;
        #: "" says none (the hub then takes the client id: undo is per room entry)
        self.user = user
        self.encoding = encoding
        self.config = config or RoomConfig()
        self._jitter = jitter
        self.conn = Conn.DOWN
        self.hub_url: str | None = None
        self.client_id = ""
        #: how to get back in after a reconnect (the owner's secret for a creator)
        self.invite: Invite | None = None
        self.room_id: str | None = None
        self.role: str | None = None
        self.editor_invite: str | None = None
        self.viewer_invite: str | None = None
        self.participant = ""
        #: who the hub's history and blame say this user is in the room (``joined.author``;
        #: None until it says, or from an older hub)
        self.author: str | None = None
        self.participants: dict[str, Participant] = {}
        #: path -> revision, as the hub listed them
        self.room_documents: dict[str, int] = {}
        #: other participants' runs for the room, by output path, as the room told them
        #: (``document_added``, ``run_status``): ``{path, by, state, command?, exitCode?...}``
        self.room_runs: dict[str, dict[str, Any]] = {}
        #: this user's run statuses to tell the room, by output path (the newest each), each
        #: sent once the output before it is acknowledged (see :meth:`run_status`)
        self._run_statuses: dict[str, dict[str, Any]] = {}
        self.docs: dict[str, Doc] = {}
        self.by_uri: dict[str, Doc] = {}
        self.heals = 0
        self.follow: str | None = None
        self.limits: dict[str, Any] = {"maxMessageBytes": 1 << 20, "rate": 1000.0, "burst": 2000}
        #: counters for status and tests; bad_paths: paths the hub sent that are not of the
        #: protocol's shape (ignored); gave_up: connections that failed for good (certificates)
        #: left_unsent: leaves (or ends of the room for us, not its deletion) that went before
        #: the hub took everything typed (kept for the next entry); carried: entries that took
        #: such changes back; edits_refused: edits the editor refused; edit_retries: sent again
        #: with no change from the editor since; edits_held: refused again then, waiting for its
        #: next change; resyncs: buffers that moved without a didChange we saw (a bug: tests
        #: fail on any; see edit_answered)
        self.stats = {
            "connects": 0,
            "reconnects": 0,
            "resends": 0,
            "catchups": 0,
            "refused": 0,
            "bad_paths": 0,
            "gave_up": 0,
            "left_unsent": 0,
            "held": 0,
            "carried": 0,
            # carries kept by an earlier server that could not be read (not taken)
            "carries_unreadable": 0,
            # entries that waited for another server of this user to finish leaving their room
            # with changes the hub had not acknowledged (its carry, kept as it ends)
            "carry_waits": 0,
            # ... and went on without it: that server still held it at the end of the wait
            "carry_waits_given_up": 0,
            "edits_refused": 0,
            "edit_retries": 0,
            "edits_held": 0,
            "resyncs": 0,
            # history: blame answers at a revision we were not at (asked again), answers
            # from the hub that did not make sense (dropped, counted: tests fail on any)
            "blame_retries": 0,
            "bad_answers": 0,
            # undos and redos asked again with their key (the hub may have done them unheard)
            "presses_again": 0,
            # cursor moves the peers knew already (typing): their presence went later
            "presence_implied": 0,
            # peers' cursors from a revision older than the ones kept here: left where they were
            # until their next presence
            "cursors_too_old": 0,
            # texts and ops from the hub holding NUL or a lone surrogate, which no hub stores
            # (a broken or lying hub): made U+FFFD
            "bad_text_from_hub": 0,
        }
        #: ("create", (name, token), ticket) | ("join", invite, ticket)
        self._entry: tuple[str, Any, int] | None = None
        self._enter_deadline: float | None = None
        #: how far the create or join under way got, for the words if it times out: None (the
        #: hub was never reached), "welcome" (it answered hello), or the code it last refused
        #: the entry with for now ("unavailable", "rate_limited")
        self._entry_got: str | None = None
        self._entered = False
        self._ids = itertools.count(1)
        self._tickets = itertools.count(1)
        self._requests: dict[int, _Request] = {}
        self._out: deque[dict[str, Any]] = deque()
        self._events: list[Event] = []
        self._opening: set[str] = set()
        self._queue: deque[str] = deque()
        self._reconnect_at: float | None = None
        self._failures = 0
        self._up_since: float | None = None
        self._lost_said = False
        self._tokens = 0.0
        self._tokens_at = 0.0
        self._presence: tuple[str, int, list[list[int]]] | None = None
        self._presence_at = 0.0
        self._presence_due: float | None = None
        #: the presence waiting is one the peers hold already (see :meth:`_peers_hold`)
        self._presence_implied = False
        #: our cursor as the peers hold it: the last presence sent, moved by every op since as
        #: they move it (path, revision, ranges); None when they may not hold it
        self._shown: tuple[str, int, list[list[int]]] | None = None
        #: paths whose peers' cursors changed this step (one ``pairls/cursors`` each, at the end)
        self._cursors_dirty: dict[str, None] = {}
        self._refresh_due: float | None = None
        self._refresh_at = 0.0
        self._progress_open = False
        self._progress_pct = -1
        self._progress_total = 0
        self._viewer_warned = False
        self._too_large_warned: set[str] = set()
        #: paths whose text had characters the hub refuses, replaced (the user was told)
        self._replaced_warned: set[str] = set()
        #: the user was told the room holds as many documents as the hub allows
        self._room_full_said = False
        self._batching = 0
        self._to_pump: set[str] = set()
        #: when opens were last sent
        self._opens_at = 0.0
        #: documents open here (a count: a room may have thousands)
        self._open_count = 0
        #: paths of the documents with a timer set (a room may have thousands)
        self._timed: set[str] = set()
        #: the leave under way (its commands' tickets), and when it goes whatever is unsent
        self._leaving: list[int] = []
        self._leave_deadline: float | None = None
        #: the leave under way is the editor's last act (see leave)
        self._exiting = False
        #: what the last leave could not deliver (see _Carry)
        self._carry: _Carry | None = None
        #: that carry is held on disk too (HoldCarry at the leave), for a server killed before
        #: an entry takes it back or it is kept (KeepCarry)
        self._carry_held = False
        #: when an entry waiting for another server of this user to keep its carry gives up
        #: (:meth:`wait_for_carry`), while one waits
        self._carry_wait_until: float | None = None
        #: when the unacknowledged changes are next looked at, to be kept on disk (HoldCarry)
        self._hold_due: float | None = None
        #: a HoldCarry is on disk (until DropHeld), and changes came since the last one
        self._held = False
        self._hold_stale = False
        #: seq numbers to go on from, by path (an entry that took a carry back)
        self._next_seqs: dict[str, int] = {}
        #: paths of the documents with history requests waiting to be sent
        self._asking: set[str] = set()
        #: the key of each undo and redo press (docs/protocol.md, "History"): never counted
        #: again from 1, since an entry that takes a leave's changes back is the same client
        self._press_keys = itertools.count(1)

    # == outputs ====================================================================================

    def events(self, now: float | None = None) -> list[Event]:
        """What to do on the editor side (or with the connection), in order; a step's edits
        to the buffers come first (peers wait on the text, not on the cursors drawn around it).
        With *now*, an inlay hint refresh that is due goes in this step (with the cursors that
        moved), not at the next :meth:`tick`."""
        if self._cursors_dirty:
            dirty, self._cursors_dirty = self._cursors_dirty, {}
            for path in dirty:
                self._notify_cursors(path)
        if now is not None and self._refresh_due is not None and now >= self._refresh_due:
            self._refresh_due = None
            self._refresh_at = now
            self._events.append(RefreshInlayHints())
        out, self._events = self._events, []
        edits = [ev for ev in out if isinstance(ev, ApplyEdit)]
        if edits and len(edits) < len(out):
            out = edits + [ev for ev in out if not isinstance(ev, ApplyEdit)]
        return out

    def messages_to_send(self, now: float) -> list[dict[str, Any]]:
        """Hub messages to send now, within the hub's rate limit (the rest waits: :meth:`next_wakeup`)."""
        if not self._out:
            return []
        rate = float(self.limits.get("rate") or 1000.0) * self.config.rate_share
        burst = max(1.0, float(self.limits.get("burst") or 2000) * self.config.rate_share)
        self._tokens = min(burst, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        out = []
        while self._out and self._tokens >= 1.0 - 1e-6:  # (float sums fall just short)
            self._tokens -= 1.0
            out.append(self._out.popleft())
        return out

    def next_wakeup(self) -> float | None:
        """When :meth:`tick` is next due, if ever."""
        times = [
            self._reconnect_at,
            self._enter_deadline,
            self._presence_due,
            self._refresh_due,
            self._leave_deadline,
            self._hold_due,
        ]
        if self._out and self._tokens < 1.0 - 1e-6:
            rate = float(self.limits.get("rate") or 1000.0) * self.config.rate_share
            times.append(self._tokens_at + (1.0 - self._tokens) / rate + 1e-6)
        for path in self._timed:
            doc = self.docs.get(path)
            if doc is None:
                continue
            times += [doc.resend_at, doc.check_at]
            if doc.state is DocState.NEW and doc.open_after > self._opens_at:
                # (one that is due already waits for a free slot: a reply frees it, not time)
                times.append(doc.open_after)
            for view in doc.views.values():
                times += [view.retry_at, view.expire_at]
            if doc.blame is not None:
                times.append(doc.blame.refresh_at)
                times += [deadline for _, deadline in doc.blame.tickets]
        for path in self._asking:
            doc = self.docs.get(path)
            for ask in doc.asks if doc is not None else []:
                times.append(ask.deadline)
                if ask.not_before > self._opens_at:
                    times.append(ask.not_before)
        due = [t for t in times if t is not None]
        return min(due) if due else None

    # == commands ===================================================================================

    @property
    def in_room(self) -> bool:
        return self.room_id is not None

    @property
    def connected(self) -> bool:
        return self.conn is Conn.UP and self._entered

    def create(
        self, hub_url: str, room_name: str, client_id: str, now: float, token: str | None = None
    ) -> int:
        """Create a room on *hub_url* and enter it; :class:`Done` with ``{roomId, invite, viewerInvite}``.

        *token*: the hub's create-room token, if it needs one.
        """
        ticket = next(self._tickets)
        error = self._entry_check()
        if error is not None:
            self._done(ticket, error=error)
            return ticket
        self._begin_entry(hub_url, ("create", (room_name, token), ticket), client_id, now)
        return ticket

    def join(self, invite_text: str, client_id: str, now: float) -> int:
        """Join the room of an invite; :class:`Done` with ``{roomId, role, participants, documents}``."""
        ticket = next(self._tickets)
        error = self._entry_check()
        if error is not None:
            self._done(ticket, error=error)
            return ticket
        try:
            invite = parse_invite(invite_text)
        except InvalidInvite as exc:
            self._done(ticket, error=str(exc))
            return ticket
        carry = self._carry
        if carry is not None and carry.room_id == invite.room_id:
            # Back into the room a leave left with changes unsent: as the same client, so
            # that what the hub committed of them unheard is recognised (see _Carry).
            client_id = carry.client_id
        self._begin_entry(invite.hub_url, ("join", invite, ticket), client_id, now)
        return ticket

    def _entry_check(self) -> str | None:
        if self._leaving:
            return "still leaving the room (sending what you typed last); try again in a moment"
        if self.in_room or self._entry is not None:
            return "already in a room; leave it first"
        return None

    def _begin_entry(self, hub_url: str, entry: tuple[str, Any, int], client_id: str, now: float) -> None:
        # A new room entry is a new client: seq numbers start at 1 again, and the
        # hub must not take them for an earlier entry's (it keys ops by client id).
        # (Except an entry taking a leave's unsent changes back: see _Carry.)
        self.client_id = client_id
        self.hub_url = hub_url
        self._entry = entry
        self._enter_deadline = now + self.config.enter_timeout
        self._entry_got = None
        self._failures = 0
        self._connect(now)

    def leave(self, now: float, *, exiting: bool = False) -> int:
        """Leave the room (or give up entering one): the editors keep their text.

        What the user typed goes first: the room stays until the hub has acknowledged
        every change (reconnecting if need be), for at most ``leave_timeout``.  Past
        that it leaves anyway, says so once, and keeps the unsent changes for the next
        entry into the same room, which sends them (:class:`_Carry`).  :class:`Done`
        with ``{}``, or ``{unsent: [paths]}`` when changes were kept.

        *exiting*: the editor is going, and the server with it (``shutdown``, ``exit``, the
        end of stdin, a signal), even if a leave was already under way.  The wait is
        ``exit_timeout`` at most; past it, what the hub did not take goes to the shell to keep
        on disk for the next server (:class:`KeepCarry`), with a line in the log and no
        message (the editor is going).
        """
        ticket = next(self._tickets)
        self._leaving.append(ticket)
        self._exiting = self._exiting or exiting
        if self._entry is not None or not self.in_room:
            self._finish_leave(now)
            return ticket
        deadline = now + (self.config.exit_timeout if exiting else self.config.leave_timeout)
        if exiting and self._hold_due is not None:
            # the hub cannot take the typing (the timer runs only then): on disk now, not in
            # hold_after, since the next server of this user may start within the exit's wait
            # (an editor reloaded) and waits for a held carry of this room to be kept
            self._hold(now)
        if self._leave_deadline is None or deadline < self._leave_deadline:
            self._leave_deadline = deadline
            self._notify_status()
            self._maybe_left(now)
        return ticket

    def _unsent(self) -> list[str]:
        """Paths of documents with changes the hub has not acknowledged."""
        return sorted(
            doc.path
            for doc in self.docs.values()
            if doc.client is not None and doc.state is not DocState.FAILED and doc.client.unacknowledged
        )

    def _maybe_left(self, now: float) -> None:
        """A leave under way goes once everything typed is acknowledged, or at its deadline."""
        if not self._leaving or self._entry is not None:
            return
        if (self._unsent() or self._presses_under_way()) and (
            self._leave_deadline is None or now < self._leave_deadline
        ):
            return
        self._finish_leave(now)

    def _finish_leave(self, now: float) -> None:
        tickets, self._leaving = self._leaving, []
        self._leave_deadline = None
        exiting, self._exiting = self._exiting, False
        if self._entry is not None:
            self._done(self._entry[2], error="cancelled: left the room")
        unsent = self._unsent() if self.in_room else []
        if unsent:
            self._keep_unsent(unsent, exiting=exiting)
            # (what is held goes on as the carry: kept below at an exit, held again otherwise;
            # either replaces the held copy, so it is not dropped with the room)
            self._held = False
        if exiting and self._carry is not None:
            # (this leave's, or an earlier leave's that no entry took back)
            self._keep_carry()
        connected = self.connected
        for doc in self.docs.values():
            self._events.append(TextReplaced(doc.path, None))
        self._reset_room()
        if unsent and not exiting:
            self._hold_carry()
        if connected:
            self._send({"type": "leave"})  # goes before the close
        self._events.append(Disconnect())
        self._notify_status()
        self._events.append(Notify("pairls/participants", {"participants": []}))
        for ticket in tickets:
            self._done(ticket, result={"unsent": unsent} if unsent else {})

    def _hold_carry(self) -> None:
        """The carry just made is kept in memory for this server's next entry into its room, and
        on disk while the server runs (:class:`HoldCarry`): a server killed before that entry
        leaves it to the next server, as typing held offline."""
        carry = self._carry
        assert carry is not None
        self._carry_held = True
        self._events.append(HoldCarry(carry.room_id, carry.client_id, carry.saved()))

    def _keep_carry(self) -> None:
        """The carry no entry of this server takes back now goes to the shell to keep on disk
        for any later entry into its room (:class:`KeepCarry`: in place of its held copy)."""
        carry, self._carry = self._carry, None
        assert carry is not None
        self._carry_held = False
        self._events.append(KeepCarry(carry.room_id, carry.client_id, carry.saved()))

    def _carry_of(self, paths: list[str]) -> _Carry:
        """The documents *paths* (with changes the hub has not acknowledged) as a carry of this
        entry."""
        assert self.room_id is not None
        docs = {}
        for path in paths:
            doc = self.docs[path]
            docs[path] = Doc(path, client=doc.client, create=doc.create, need=doc.need, heals=doc.heals)
        seqs = dict(self._next_seqs)
        seqs.update({d.path: d.client.next_seq for d in self.docs.values() if d.client is not None})
        return _Carry(self.room_id, self.client_id, docs, seqs)

    def _unsent_changed(self, now: float) -> None:
        """Changes the hub has not acknowledged came: looked at in ``hold_after`` (HoldCarry)."""
        self._hold_stale = True
        if self._hold_due is None:
            self._hold_due = now + self.config.hold_after

    def _hold(self, now: float) -> None:
        """Kept on disk (HoldCarry) what the hub has not acknowledged since the last look, and
        looked at again; once it has it all, the copy is done with (DropHeld)."""
        unsent = self._unsent() if self.in_room else []
        if not unsent:
            self._hold_stale = False
            if self._held:
                self._held = False
                self._events.append(DropHeld())
            return
        if self._hold_stale or not self._held:
            assert self.room_id is not None
            self._hold_stale = False
            self._held = True
            self.stats["held"] += 1
            self._events.append(HoldCarry(self.room_id, self.client_id, self._carry_of(unsent).saved()))
        self._hold_due = now + self.config.hold_after

    def _left_unsent(self, *, deleted: bool) -> list[str]:
        """The room ends for us, not by a leave: what the hub has not acknowledged is kept for
        the next entry (:meth:`_keep_unsent`; the caller holds it once the room is reset), unless
        the room is *deleted* (no entry can take it: the editors keep the text); its paths."""
        unsent = self._unsent() if self.in_room and not deleted else []
        if unsent:
            self._keep_unsent(unsent)
            self._held = False  # (held again as the carry: it replaces the held copy)
        return unsent

    def _keep_unsent(self, paths: list[str], *, exiting: bool = False) -> None:
        """Leaving with *paths* unacknowledged: kept for the next entry, said once (logged
        only if the editor is going: the next entry is another server's, from what it kept)."""
        assert self.room_id is not None
        self.stats["left_unsent"] += 1
        old = self._carry
        if old is not None and old.room_id != self.room_id:
            # an earlier leave's, from another room, that no entry took back: kept on disk
            # rather than dropped for this one
            self._keep_carry()
        for path in paths:
            for ticket in self.docs[path].tickets:
                self._done(ticket, error="left the room")
        self._carry = self._carry_of(paths)
        if exiting:
            logger.warning(
                "exiting before the hub had the last edits to %d document(s): kept for the next "
                "entry into the room",
                len(paths),
            )
            return
        shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        logger.warning("left the room with %d document(s) unsent; kept for the next entry", len(paths))
        self._events.append(
            ShowMessage(
                f"pairls: left the room before the hub had your last edits to {shown}; "
                "they stay in your editor and go to the room when you join it again"
            )
        )

    def _reset_room(self) -> None:
        self._fail_requests("left the room")
        self._hold_due = None
        self._hold_stale = False
        if self._held:
            self._held = False
            self._events.append(DropHeld())
        # (a leave under way is over too: the room ended, or entering it failed)
        leaving, self._leaving = self._leaving, []
        self._leave_deadline = None
        self._exiting = False
        for ticket in leaving:
            self._done(ticket, result={})
        self._next_seqs = {}
        self.room_id = self.role = self.invite = self.author = None
        self.editor_invite = self.viewer_invite = None
        self.participants = {}
        self.room_documents = {}
        self.room_runs = {}
        self._run_statuses = {}
        for doc in self.docs.values():
            for ticket in doc.tickets:
                self._done(ticket, error="left the room")
            self._drop_history(doc, "left the room")
        self.docs = {}
        self._asking = set()
        self._open_count = 0
        self.by_uri = {}
        self.follow = None
        self._entry = None
        self._enter_deadline = None
        self._entered = False
        self._requests = {}
        self._out.clear()
        self._opening = set()
        self._queue = deque()
        self._reconnect_at = None
        self.conn = Conn.DOWN
        self._lost_said = False
        self._presence = None
        self._presence_due = None
        self._shown = None
        self._viewer_warned = False
        self._too_large_warned = set()
        self._replaced_warned = set()
        self._room_full_said = False
        self._end_progress()

    def share(self, uri: str, path: str, text: str, version: int, now: float) -> int:
        """Share the editor's buffer *uri* at room *path*; :class:`Done` with ``{path, rev}`` once open.

        If the room has *path* already, its text wins (the buffer is brought to
        it, typing since the share began included, rebased); else a document is
        created from the buffer's text.
        """
        ticket = next(self._tickets)
        if not self.in_room:
            self._done(ticket, error="join or create a room first")
            return ticket
        doc = self.docs.get(path)
        if doc is not None and uri in doc.views:
            return self._done_open(doc, ticket)
        old = self.by_uri.get(uri)
        if old is not None:
            self.unshare(uri)
        if doc is not None and doc.state is DocState.FAILED:
            self._done(ticket, error=doc.why or f"{path} is not shared: it is larger than the hub allows")
            return ticket
        if doc is None:
            if self.role == "viewer" and path not in self.room_documents:
                self._done(ticket, error="viewers cannot share documents")
                return ticket
            limit = self.limits.get("maxDocumentBytes")
            clean = self._shareable(path, text)
            size = len(clean.encode("utf-8"))
            if limit is not None and size > int(limit):
                self._done(ticket, error=self._too_large(path, size, int(limit)))
                return ticket
            doc = self.docs[path] = Doc(path)
            # Until the hub answers, the buffer's text is the base and typing waits in
            # the (held) client: nothing the user does meanwhile is lost.
            doc.client = self._new_client(path, clean, 0, held=True)
            doc.create = path not in self.room_documents
            doc.need = "zero" if doc.create else "full"
            view = View(uri, EditorSync(text, version, self.encoding))
            doc.views[uri] = view
            if clean is not text:
                view.sync.reset(clean)
            self.by_uri[uri] = doc
            doc.tickets.append(ticket)
            self._enqueue(doc, front=True)
            self._pump_opens(now)
            return ticket
        # The room has it (we follow it, or another buffer shows it): attach, the room's text wins.
        view = View(uri, EditorSync(text, version, self.encoding))
        doc.views[uri] = view
        self.by_uri[uri] = doc
        if doc.client is not None and doc.state is DocState.OPEN:
            if text != doc.client.text:
                view.sync.reset(doc.client.text)
            self._pump(doc, view, now)
            self._notify_status()
            self._cursors_changed(path)  # peers already here show up in the new buffer
            return self._done_open(doc, ticket)
        if doc.client is None:
            # Followed, not open yet: the buffer's text is the base until the room's
            # arrives; what the user types meanwhile is rebased onto it then.
            doc.client = self._new_client(path, self._shareable(path, text), 0, held=True)
            doc.need = "full"
        if text != doc.client.text:
            # being opened or caught up: the buffer shows the client's text
            view.sync.reset(doc.client.text)
        doc.tickets.append(ticket)
        self._enqueue(doc, front=True)
        self._pump_opens(now)
        return ticket

    def unshare(self, uri: str) -> None:
        """The editor closed *uri*: the document stays followed, without this buffer."""
        doc = self.by_uri.pop(uri, None)
        if doc is not None:
            doc.views.pop(uri, None)

    def publish(self, path: str, text: str, now: float) -> int:
        """Share a file no editor buffer shows (a folder being shared): created from *text*
        unless the room has *path* already; :class:`Done` with ``{path, rev, text}`` once open."""
        ticket = next(self._tickets)
        if not self.in_room:
            self._done(ticket, error="join or create a room first")
            return ticket
        if self.role == "viewer":
            self._done(ticket, error="viewers cannot share documents")
            return ticket
        doc = self.docs.get(path)
        if doc is not None:
            if doc.state is DocState.OPEN:
                return self._done_open(doc, ticket)
            doc.tickets.append(ticket)
            self._enqueue(doc)
            self._pump_opens(now)
            return ticket
        limit = self.limits.get("maxDocumentBytes")
        clean = self._shareable(path, text)
        size = len(clean.encode("utf-8"))
        if limit is not None and size > int(limit):
            self._done(ticket, error=self._too_large(path, size, int(limit)))
            return ticket
        doc = self.docs[path] = Doc(path)
        doc.client = self._new_client(path, clean, 0, held=True)
        doc.create = path not in self.room_documents
        doc.need = "zero" if doc.create else "full"
        doc.tickets.append(ticket)
        self._enqueue(doc)
        self._pump_opens(now)
        return ticket

    def append(self, path: str, text: str, now: float) -> bool:
        """Add *text* at the end of *path* (a run's output, published here): False if the
        document is not here (never published, failed, or the room was left).  While the
        connection is down it is kept, like typing, and goes after the catch-up."""
        doc = self.docs.get(path)
        if doc is None or doc.client is None or doc.state is DocState.FAILED or not text:
            return False
        self._user_ops(doc, None, [ops.insert(len(doc.client.text), text)], now)
        return True

    def run_status(self, status: dict[str, Any], now: float) -> None:
        """Tell the room how this user's run goes (``run_status``: *status* holds its path,
        state, command and, once ended, exitCode, stopped, endedAt).

        It goes once the hub has acknowledged everything appended to the output before it,
        so a peer told that the run ended has its last line already (a newer status of the
        same run replaces one not sent yet)."""
        if not self.in_room or not is_run_path(str(status.get("path"))):
            return
        self._run_statuses[status["path"]] = {"type": "run_status", **status}
        self._send_run_statuses()

    def _send_run_statuses(self) -> None:
        if not self._run_statuses or not self.connected or not self.in_room:
            return
        for path, msg in list(self._run_statuses.items()):
            doc = self.docs.get(path)
            if doc is None or doc.state is DocState.FAILED:
                # the output is no longer shared from here: nobody would follow it
                del self._run_statuses[path]
                logger.info("run status of %s not sent: the document is not shared", path)
                continue
            if doc.state is DocState.OPEN and doc.client is not None and not doc.client.unacknowledged:
                del self._run_statuses[path]
                self._send(msg)

    def send_run_message(self, msg: dict[str, Any]) -> bool:
        """A ``run_request`` or ``run_answer`` to the hub: False if not connected."""
        if not self.connected or not self.in_room:
            return False
        self._send(msg)
        return True

    def open_text(self, path: str, now: float) -> int:
        """The room's text of *path*, for a file to show: :class:`Done` with ``{path, text}``."""
        ticket = next(self._tickets)
        if not self.in_room:
            self._done(ticket, error="join or create a room first")
            return ticket
        if path not in self.room_documents and path not in self.docs:
            self._done(ticket, error="no such document in the room")
            return ticket
        doc = self.docs.get(path)
        if doc is None:
            doc = self.docs[path] = Doc(path, need="full")
        if doc.state is DocState.OPEN and doc.client is not None:
            self._done(ticket, result={"path": path, "text": doc.client.text})
            return ticket
        doc.tickets.append(ticket)
        self._enqueue(doc, front=True)
        self._pump_opens(now)
        return ticket

    def set_follow(self, participant: str | None) -> str | None:
        """Follow *participant* (``None`` stops); returns an error sentence, or None."""
        if participant is None:
            self.follow = None
            return None
        p = self.participants.get(participant)
        if p is None:
            return "no such participant"
        self.follow = participant
        if p.path is not None:
            self._follow_moved(p)
        return None

    # == the owner's controls ========================================================================

    def kick(self, participant: Any, now: float) -> int:
        """Remove *participant* from the room (the owner only); :class:`Done` with ``{}``."""
        ticket = next(self._tickets)
        error = self._owner_check() or self._target_check(participant)
        if error is not None:
            self._done(ticket, error=error)
            return ticket
        self._request({"type": "kick", "participant": participant}, "owner", ticket=ticket)
        return ticket

    def set_role(self, participant: Any, role: Any, now: float) -> int:
        """Make *participant* an ``editor`` or a ``viewer`` (the owner only); :class:`Done` with ``{}``."""
        ticket = next(self._tickets)
        error = self._owner_check() or self._target_check(participant)
        if error is None and role not in ("editor", "viewer"):
            error = "the role must be editor or viewer"
        if error is not None:
            self._done(ticket, error=error)
            return ticket
        self._request({"type": "set_role", "participant": participant, "role": role}, "owner", ticket=ticket)
        return ticket

    def rotate_invites(self, now: float) -> int:
        """New editor and viewer invites; who joined with the old ones is closed out (the owner
        only); :class:`Done` with ``{invite, viewerInvite}``."""
        ticket = next(self._tickets)
        error = self._owner_check()
        if error is not None:
            self._done(ticket, error=error)
            return ticket
        self._request({"type": "rotate_invites"}, "owner", ticket=ticket)
        return ticket

    def delete_room(self, now: float) -> int:
        """Delete the room with its documents (the owner only); everyone is disconnected.
        :class:`Done` with ``{}``, and the room is left."""
        ticket = next(self._tickets)
        error = self._owner_check()
        if error is not None:
            self._done(ticket, error=error)
            return ticket
        self._request({"type": "delete_room"}, "owner", ticket=ticket)
        return ticket

    def _owner_check(self) -> str | None:
        if not self.in_room:
            return "join or create a room first"
        if self.role != "owner":
            return "only the room's owner can do that"
        if not self.connected:
            return "not connected to the hub right now; try again once it is back"
        return None

    def _target_check(self, participant: Any) -> str | None:
        if not isinstance(participant, str) or not participant:
            return "no such participant"
        p = self.participants.get(participant)
        if participant == self.participant or (p is not None and p.role == "owner"):
            return OWNER_UNTOUCHABLE
        return None

    def _owner_reply(self, req: _Request, msg: dict[str, Any], now: float) -> None:
        assert req.ticket is not None
        kind = msg.get("type")
        if kind == "error":
            code = _code(msg)
            text = OWNER_UNTOUCHABLE if code == "forbidden" and self.role == "owner" else _explain(code)
            self._done(req.ticket, error=text)
        elif kind == "kicked":
            self._done(req.ticket, result={})
        elif kind == "role_set":
            p = self.participants.get(str(msg.get("participant")))
            if p is not None and msg.get("role") in ("editor", "viewer"):
                p.role = str(msg["role"])
                self._participants_changed()
            self._done(req.ticket, result={})
        elif kind == "invites_rotated":
            try:
                assert self.hub_url is not None and self.room_id is not None
                editor = parse_invite(str(Invite(self.hub_url, self.room_id, str(msg.get("editorSecret")))))
                viewer = parse_invite(str(Invite(self.hub_url, self.room_id, str(msg.get("viewerSecret")))))
            except InvalidInvite:
                self._done(req.ticket, error="the hub sent invites that are not valid")
                return
            self.editor_invite, self.viewer_invite = str(editor), str(viewer)
            self._done(req.ticket, result={"invite": self.editor_invite, "viewerInvite": self.viewer_invite})
        elif kind == "room_deleted":
            self._done(req.ticket, result={})
            self._room_ended("pairls: you deleted the room", deleted=True)
        else:
            self._done(req.ticket, error=_explain(_code(msg)))

    # == history: undo and redo of the user's own changes, history, blame, revisions ==============

    def undo(self, path: str, now: float) -> int:
        """Undo the user's last change to *path* (the hub builds the op and sends it to everyone,
        us included, like a peer's); :class:`Done` with ``{rev}`` of that op.

        What the user typed goes first: it is sent once the hub has acknowledged the user's
        edits up to now (``history_wait`` at most; past that it fails, undoing nothing)."""
        return self._ask_history(path, {"type": "undo"}, now)

    def redo(self, path: str, now: float) -> int:
        """Redo the user's change to *path* undone last; :class:`Done` with ``{rev}``."""
        return self._ask_history(path, {"type": "redo"}, now)

    def history(self, path: str, now: float, before: Any = None, limit: Any = None) -> int:
        """The changes to *path*, newest first: :class:`Done` with ``{changes, more}``; *before*
        (a revision: only changes that ended before it) and *limit* page through them."""
        msg: dict[str, Any] = {"type": "history"}
        if before is not None:
            if type(before) is not int or before < 0:
                return self._refuse("before must be a revision (a number, 0 or more)")
            msg["before"] = before
        if limit is not None:
            if type(limit) is not int or not 1 <= limit <= MAX_HISTORY_LIMIT:
                return self._refuse(f"limit must be a number from 1 to {MAX_HISTORY_LIMIT}")
            msg["limit"] = limit
        return self._ask_history(path, msg, now)

    def revision(self, path: str, rev: Any, now: float) -> int:
        """The text of *path* at revision *rev*: :class:`Done` with ``{path, rev, text}``."""
        if type(rev) is not int or rev < 0:
            return self._refuse("rev must be a revision (a number, 0 or more)")
        doc = self.docs.get(path)
        if doc is not None and doc.client is not None and rev > doc.client.rev:
            return self._refuse(f"{path} has no revision {rev} yet (it is at {doc.client.rev})")
        return self._ask_history(path, {"type": "revision", "rev": rev}, now)

    def _refuse(self, text: str) -> int:
        ticket = next(self._tickets)
        self._done(ticket, error=text)
        return ticket

    def _ask_history(self, path: str, msg: dict[str, Any], now: float) -> int:
        ticket = next(self._tickets)
        doc = self.docs.get(path)
        error = None
        if not self.in_room:
            error = "join or create a room first"
        elif doc is None:
            error = "this document is not shared in the room"
        elif doc.state is DocState.FAILED:
            error = doc.why or "this document is not shared in the room"
        elif msg["type"] in ("undo", "redo") and self.role == "viewer":
            error = "viewers cannot undo or redo changes"
        if error is not None or doc is None:
            self._done(ticket, error=error)
            return ticket
        msg["path"] = path
        upto = None
        if msg["type"] in ("undo", "redo"):
            # one key a press: asked again with it, the hub answers what it did then
            msg["key"] = next(self._press_keys)
        if msg["type"] in ("undo", "redo") and doc.client is not None:
            # the user's typing up to now: in flight, or waiting in the buffer (its seq is next)
            client = doc.client
            upto = client.next_seq if client.buffer is not None else client.next_seq - 1
        doc.asks.append(_Ask(ticket, msg, now + self.config.history_wait, upto))
        self._asking.add(path)
        self._pump_asks(now)
        return ticket

    @staticmethod
    def _acked(client: DocumentClient, upto: int) -> bool:
        """Has the hub acknowledged every op of ours up to seq *upto*?"""
        if client.outstanding is not None:
            return client.outstanding.seq > upto
        return client.buffer is None or client.next_seq > upto

    def _pump_asks(self, now: float) -> None:
        """Send the history requests whose turn has come (in order, per document)."""
        if not self._asking:
            return
        for path in list(self._asking):
            doc = self.docs.get(path)
            if doc is None or not doc.asks:
                self._asking.discard(path)
                continue
            if not self.connected or doc.state is not DocState.OPEN or doc.client is None:
                continue
            while doc.asks:
                ask = doc.asks[0]
                if ask.not_before > now or (ask.upto is not None and not self._acked(doc.client, ask.upto)):
                    break
                doc.asks.pop(0)
                if ask.press:
                    if ask.sent:
                        self.stats["presses_again"] += 1
                    ask.tries += 1
                    ask.upto = None
                self._request(dict(ask.msg), "history", path=path, ask=ask)
            if not doc.asks:
                self._asking.discard(path)

    def _expire_asks(self, doc: Doc, now: float) -> None:
        """History requests that could not be sent in time fail, in words; a press sent already
        is answered so, and goes on until the hub says what it did."""
        kept = []
        for ask in doc.asks:
            if ask.deadline is None or now < ask.deadline:
                kept.append(ask)
                continue
            kind = ask.msg["type"]
            if ask.sent:
                kept.append(ask)
                ask.deadline = None
                self._answer(
                    doc.path,
                    ask,
                    error=f"the hub has not confirmed your {kind} yet; it is asked again until it does "
                    f"(it is {kind}ne once at most)",
                )
                continue
            if not self.connected:
                text = "not connected to the hub right now; try again once it is back"
            elif kind in ("undo", "redo") and doc.state is DocState.OPEN:
                text = (
                    f"your last edits have not reached the hub yet, so nothing was {kind}ne; "
                    "try again in a moment"
                )
            else:
                text = "the document is not open in the room yet; try again in a moment"
            self._answer(doc.path, ask, error=text)
        doc.asks = kept

    def _history_reply(self, req: _Request, msg: dict[str, Any], now: float) -> None:
        ask = req.ask
        assert ask is not None and req.path is not None
        what = ask.msg["type"]
        kind = msg.get("type")
        if kind == "error":
            code = _code(msg)
            doc = self.docs.get(req.path)
            again = code in ("not_open", "unavailable", "rate_limited") and doc is not None
            if again and doc is not None and (ask.press or (ask.deadline is not None and now < ask.deadline)):
                # not open on the hub yet (a reopen under way), or busy: again, a little later; a
                # press (which the hub may have done unheard) with the same key, until it says
                ask.delay = min(self.config.resend_max, max(self.config.resend_min, ask.delay * 2))
                ask.not_before = now + ask.delay
                self._ask_again(doc, [ask])
                return
            error = _history_error(code, what)
            if ask.tries > 1 and code not in ("nothing_to_undo", "nothing_to_redo"):
                # (the hub checks the key after the role: an earlier try may have been done)
                error += f"; your {what} may have been done before the connection was lost"
            self._answer(req.path, ask, error=error)
            return
        expected = {"undo": "undone", "redo": "redone"}.get(what, what)
        result: dict[str, Any] | None = None
        if kind == expected and msg.get("path") == req.path:
            if what in ("undo", "redo"):
                rev = msg.get("rev")
                result = {"rev": rev} if type(rev) is int and rev > 0 else None
            elif what == "history":
                result = self._history_result(msg)
            else:
                text, rev = msg.get("text"), msg.get("rev")
                if isinstance(text, str) and rev == ask.msg["rev"]:
                    result = {"path": req.path, "rev": rev, "text": text}
        if result is None:
            self.stats["bad_answers"] += 1
            logger.warning("the hub answered %s with something else (%s)", what, str(kind)[:32])
            self._answer(req.path, ask, error="the hub sent an answer that makes no sense; try again")
            return
        self._answer(req.path, ask, result=result)

    def _answer(
        self, path: str, ask: _Ask, result: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        """The history request is over (or its command answered, for a press still under way):
        its command gets it; a press whose command was answered before is said in words."""
        ticket, ask.ticket = ask.ticket, None
        if ticket is not None:
            self._done(ticket, result=result, error=error)
        elif error is None:
            rev = (result or {}).get("rev")
            self._events.append(Log(f"pairls: your {ask.msg['type']} of {path} went through (rev {rev})"))
        else:
            self._events.append(
                ShowMessage(f"pairls: your {ask.msg['type']} of {path} asked earlier: {error}")
            )

    def _ask_again(self, doc: Doc, asks: list[_Ask]) -> None:
        """*asks* (sent, in the order they were) go again before those not sent yet; the
        presses among them in the order they were pressed (their keys count up)."""
        doc.asks[:0] = asks
        doc.asks.sort(key=lambda a: (not a.sent, a.msg["key"] if a.sent else 0))  # (stable)
        self._asking.add(doc.path)
        self._timed.add(doc.path)

    def _press_lost(self, path: str, ask: _Ask, text: str) -> None:
        """A press sent already can no longer be asked again (the room is over for us, or the
        document no longer shared): it may or may not have been done."""
        what = ask.msg["type"]
        said = text.split(";")[0]
        self._answer(
            path, ask, error=f"{said}: the {what} may or may not have happened; look before trying again"
        )

    def _presses_under_way(self) -> bool:
        """Is an undo or redo asked for and not answered yet (a leave waits for it)?"""
        if any(req.ask is not None and req.ask.press for req in self._requests.values()):
            return True
        return any(ask.press for doc in self.docs.values() for ask in doc.asks)

    def _history_result(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        changes = msg.get("changes")
        if not isinstance(changes, list):
            return None
        out = []
        skipped = 0
        for c in changes[: MAX_HISTORY_LIMIT + 1]:
            clean = _clean_change(c)
            if clean is None:
                skipped += 1
                continue
            out.append(clean)
        if skipped:
            self.stats["bad_answers"] += skipped
            logger.warning("%d changes in the hub's history page make no sense: skipped", skipped)
        return {"changes": out, "more": msg.get("more") is True}

    # -- blame --

    def blame(self, path: str, now: float) -> int:
        """Ask the hub who last changed each line of *path* now; :class:`Done` with ``{}`` once
        the answer is in (then :meth:`blame_lines` maps it onto a buffer's text)."""
        ticket = next(self._tickets)
        doc = self.docs.get(path)
        if not self.in_room:
            self._done(ticket, error="join or create a room first")
        elif doc is None or doc.state is DocState.FAILED:
            self._done(ticket, error="this document is not shared in the room")
        else:
            cache = self._blame_of(doc, now)
            cache.tickets.append((ticket, now + self.config.history_wait))
            cache.whole = True  # (asked for: every line from the hub, not a window)
            self._ask_blame(doc, now)
        return ticket

    def blame_lines(self, uri: str, now: float) -> list[LineBlame] | None:
        """Who last changed each line of buffer *uri*, one per line of its text (split on
        ``\\n``), or None if it is not shared or the hub has not answered yet (it is asked).

        The hub's answer at its revision is carried through every op since (module
        ``blame``): ops committed since are their author's (time not known yet: "just now"),
        what the user typed and the hub has not acknowledged is the user's, not yet
        committed, and ops the editor has not shown yet are taken back out."""
        doc = self.by_uri.get(uri)
        if doc is None or doc.client is None or doc.state is DocState.FAILED:
            return None
        cache = self._blame_of(doc, now)
        cache.used_at = now
        if cache.lines is None:
            if cache.refresh_at is None and cache.request is None:
                self._ask_blame(doc, now)
            return None
        client = doc.client
        mine = LineBlame(self.author, self.name, None, None)
        stages: list[tuple[ops.Op, LineBlame | None]] = []
        if client.outstanding is not None:
            stages.append((client.outstanding.op, mine))
        if client.buffer:
            stages.append((client.buffer, mine))
        view = doc.views[uri]
        try:
            self._settle(cache)
            assert cache.lines is not None
            lines = line_blames(cache.lines, cache.text, stages)
            # the editor does not show the pending ops yet: take them back, last first
            texts = [view.sync.text]
            pending = [op for _, op in view.sync.view.pending]
            for op in pending:
                texts.append(ops.apply(texts[-1], op))
            for i in reversed(range(len(pending))):
                map_lines(lines, texts[i + 1], ops.invert(pending[i], texts[i]), None)
        except (ValueError, ops.InvalidOp):
            # (a bug: the lines are kept at the hub's text, which our ops must fit)
            self.stats["bad_answers"] += 1
            logger.warning("%s: the blame does not fit the text; asking again", doc.path)
            self._forget_lines(cache)
            self._ask_blame(doc, now)
            return None
        return lines

    @staticmethod
    def _settle(cache: _Blame) -> None:
        """Carry the lines through the ops committed since the hub's answer (ValueError if
        they do not fit: a bug)."""
        if cache.lines is None or not cache.since:
            return
        text = cache.text
        for op, mark in cache.since:
            map_lines(cache.lines, text, op, mark)
            text = ops.apply(text, op)
        cache.text = text
        cache.rev += len(cache.since)
        cache.since = []

    @staticmethod
    def _forget_lines(cache: _Blame) -> None:
        cache.lines, cache.text, cache.since, cache.whole = None, "", [], True

    def _blame_of(self, doc: Doc, now: float) -> _Blame:
        if doc.blame is None:
            doc.blame = _Blame(used_at=now)
        return doc.blame

    def _ask_blame(self, doc: Doc, now: float) -> None:
        """Ask the hub for *doc*'s blame now if we can (else once the document is open): every
        line the first time (and when asked for), else the window of lines ops changed."""
        cache = doc.blame
        if cache is None:
            return
        cache.refresh_at = None
        if cache.request is not None:
            cache.again = True
            return
        if not self.connected or doc.state is not DocState.OPEN:
            cache.again = True  # asked once it is open (_open_reply)
            return
        cache.again = False
        cache.dirty_since = None
        msg: dict[str, Any] = {"type": "blame", "path": doc.path}
        cache.asked = None
        if cache.lines is not None and not cache.whole:
            try:
                self._settle(cache)
            except ValueError:
                self._lines_unfit(doc, cache)
        if cache.lines is not None and not cache.whole:
            # the lines ops changed since the last answer (their times are the hub's), and one
            # line around them (a line split in two keeps its blame here, not at the hub)
            changed = [i for i, b in enumerate(cache.lines) if b.time is None]
            if not changed:
                self._blame_done(cache)
                return
            cache.asked = (max(0, changed[0] - 1), min(len(cache.lines), changed[-1] + 2))
            msg["start"], msg["end"] = cache.asked
        cache.request = self._request(msg, "blame", path=doc.path)

    def _blame_later(self, doc: Doc, cache: _Blame, now: float) -> None:
        """Ask again a little after the last change (``blame_debounce``), and at most
        ``blame_max_delay`` after the first one not asked for yet."""
        if cache.dirty_since is None:
            cache.dirty_since = now
        cfg = self.config
        cache.refresh_at = min(now + cfg.blame_debounce, cache.dirty_since + cfg.blame_max_delay)
        self._timed.add(doc.path)

    def _lines_unfit(self, doc: Doc, cache: _Blame) -> None:
        """The kept lines do not fit the ops (a bug): counted, forgotten, asked again whole."""
        self.stats["bad_answers"] += 1
        logger.warning("%s: the blame does not fit the text; asking again", doc.path)
        self._forget_lines(cache)

    def _blame_changed(self, doc: Doc, op: ops.Op, mark: LineBlame, now: float) -> None:
        """*op* (on the hub's text at the client's revision) was committed: kept to carry the
        lines through when they are read, and the hub is asked again a little later (it knows
        the times)."""
        cache = doc.blame
        if cache is None:
            return
        if now - cache.used_at > self.config.blame_idle and not cache.tickets:
            doc.blame = None  # nobody looked for long: no more refreshes
            return
        if cache.lines is not None:
            cache.since.append((op, mark))  # (carried through when read: _settle)
        if cache.request is not None:
            cache.again = True  # (after the answer: _blame_reply)
            if cache.dirty_since is None:
                cache.dirty_since = now
            return
        self._blame_later(doc, cache, now)

    def _blame_reply(self, req: _Request, msg: dict[str, Any], now: float) -> None:
        doc = self.docs.get(req.path or "")
        cache = doc.blame if doc is not None else None
        if doc is None or cache is None:
            return
        cache.request = None
        asked, cache.asked = cache.asked, None
        client = doc.client
        if msg.get("type") == "error":
            code = _code(msg)
            if code in ("not_open", "unavailable", "rate_limited"):
                cache.refresh_at = now + self.config.resend_min
                self._timed.add(doc.path)
            else:
                logger.info("%s: the hub refused blame (%s)", doc.path, code)
                self._blame_done(cache, error=_history_error(code, "blame"))
            return
        rev = msg.get("rev")
        at = client.rev if client is not None and doc.state is DocState.OPEN else None
        if rev != at or msg.get("path") != doc.path or client is None:
            # an answer at a revision we are not at (held ops, a catch-up): ask again
            self.stats["blame_retries"] += 1
            cache.refresh_at = now + self.config.blame_debounce
            self._timed.add(doc.path)
            return
        if asked is not None and cache.lines is not None:
            try:
                self._settle(cache)  # (to the answer's revision: ours)
                if cache.rev != client.rev:
                    raise ValueError("the blame missed an op")
            except ValueError:
                self._lines_unfit(doc, cache)
        if asked is not None and cache.lines is None:
            cache.again = True  # (a window of lines we no longer have: every line, next)
        else:
            start, end = asked if asked is not None else (0, client.shadow.count("\n") + 1)
            lines = _clean_blame(msg.get("lines"), end - start, client.rev)
            if lines is None:
                self.stats["bad_answers"] += 1
                logger.warning("%s: the hub's blame does not fit its text; dropped", doc.path)
                self._blame_done(cache, error="the hub sent a blame that does not fit the document")
                return
            if asked is None:
                cache.lines, cache.text, cache.rev, cache.since = lines, client.shadow, client.rev, []
                cache.whole = False
            else:
                assert cache.lines is not None
                cache.lines[start:end] = lines
            self._blame_done(cache)
        if cache.again:
            cache.again = False
            self._blame_later(doc, cache, now)  # (changed meanwhile: not at once, debounced)

    def _drop_history(self, doc: Doc, text: str) -> None:
        """*doc* is no longer shared (or the room is over): its history requests fail with *text*."""
        asks, doc.asks = doc.asks, []
        for ask in asks:
            if ask.sent:
                self._press_lost(doc.path, ask, text)
            else:
                self._answer(doc.path, ask, error=text)
        if doc.blame is not None:
            self._blame_done(doc.blame, error=text)
            doc.blame = None

    def _blame_done(self, cache: _Blame, error: str | None = None) -> None:
        tickets, cache.tickets = cache.tickets, []
        for ticket, _ in tickets:
            self._done(ticket, error=error, result=None if error else {})

    def _expire_blame(self, doc: Doc, now: float) -> None:
        cache = doc.blame
        if cache is None or not cache.tickets:
            return
        late = [t for t in cache.tickets if now >= t[1]]
        cache.tickets = [t for t in cache.tickets if now < t[1]]
        for ticket, _ in late:
            if cache.lines is not None:
                self._done(ticket, result={})  # what we have, moved on by every op since
            else:
                text = (
                    "not connected to the hub right now; try again once it is back"
                    if not self.connected
                    else "the hub has not answered; try again in a moment"
                )
                self._done(ticket, error=text)

    def _room_ended(self, text: str, *, deleted: bool = False) -> None:
        """The room is over for us (removed, invite withdrawn, *deleted*): say so, and do not
        reconnect.  What the hub did not acknowledge is kept for an entry with a new invite,
        as a leave keeps it (:meth:`_left_unsent`), unless the room is gone."""
        self._events.append(ShowMessage(text))
        unsent = self._left_unsent(deleted=deleted)
        for doc in self.docs.values():
            self._events.append(TextReplaced(doc.path, None))
        self._reset_room()
        if unsent:
            self._hold_carry()
        self._events.append(Disconnect())
        self._notify_status()
        self._events.append(Notify("pairls/participants", {"participants": []}))

    def _fail_requests(self, text: str, *, presses_go_again: bool = False) -> None:
        """Commands waiting for a hub answer that will not come fail, in words; undos and redos
        go again with their key once the connection is back (*presses_go_again*), or may or
        may not have happened."""
        again: dict[str, list[_Ask]] = {}
        for req in self._requests.values():
            ask = req.ask
            if ask is not None and req.path is not None:
                if not ask.press:
                    self._answer(req.path, ask, error=text)
                elif presses_go_again and req.path in self.docs:
                    again.setdefault(req.path, []).append(ask)  # (in the order they went)
                else:
                    self._press_lost(req.path, ask, text)
            elif req.ticket is not None:
                self._done(req.ticket, error=text)
        for path, asks in again.items():
            self._ask_again(self.docs[path], asks)

    # == the editor =================================================================================

    def editor_changed(
        self,
        uri: str,
        version: int,
        changes: list[ContentChange],
        now: float,
        known: tuple[str, str] | None = None,
    ) -> bool:
        """``textDocument/didChange``; returns True if any of it was the user's typing.

        *known*: the buffer's text before and after *changes*, as the server tracks it
        (:meth:`EditorSync.did_change`): on a large document, every copy of the text a
        keystroke spares is time."""
        doc = self.by_uri.get(uri)
        if doc is None:
            return False
        view = doc.views[uri]
        client = doc.client
        shared = False
        if client is not None and not view.sync.view.pending:
            # Nothing of the hub's waits to be shown, so the room's text is the buffer's: one
            # string for both, and the buffer's text after the user's change is the room's
            # too, not made twice.  (They part when a peer's edit is shown, each made on its
            # own side: compared once then, equal, the room takes the buffer's.)
            if client.text is not view.sync.text and client.text == view.sync.text:
                client.text = view.sync.text
            shared = client.text is view.sync.text
        user_ops = view.sync.did_change(version, changes, known)
        # a refused edit was waiting for this change: it goes again, against the new version
        view.refused = view.retry_at = None
        self._after_sync(doc, view, now)
        if not user_ops:
            self._pump(doc, view, now)
            return False
        if self.role == "viewer" or is_run_path(doc.path):
            # The hub would refuse these; the buffer goes back to the room's text, said once.
            # (A run's output is read-only for everyone: its runner appends to it with append.)
            if doc.client is not None:
                view.sync.reset(doc.client.text)
            if is_run_path(doc.path):
                self._events.append(ShowMessage(f"pairls: {doc.path} is a run's output, read-only"))
            elif not self._viewer_warned:
                self._viewer_warned = True
                self._events.append(
                    ShowMessage(
                        "pairls: you are a viewer in this room; your edits are not shared and were undone"
                    )
                )
            self._pump(doc, view, now)
            return False
        # (the buffer's text is the room's only if the user's op is all that moved it: nothing
        # of the hub's was shown or put right meanwhile, which would leave something pending)
        alone = shared and len(user_ops) == 1 and not view.sync.view.pending
        self._user_ops(doc, view, user_ops, now, view.sync.text if alone else None)
        return True

    def edit_answered(
        self, uri: str, applied: bool, now: float, buffer: tuple[int, str] | None = None
    ) -> None:
        """The editor answered our ``workspace/applyEdit`` (an error counts as not applied).

        *buffer*: the editor's version and text as the LSP library tracked them from its
        notifications, if known.  A refused edit is never sent again as it was:

        * the buffer moved without a didChange reaching us (a bug): the difference is the
          user's, counted in ``stats["resyncs"]``, and the edit is computed against it;
        * a didChange came after the edit was sent: it goes again now, against it;
        * else the user's changes are on their way (eglot sends them up to 0.5 s later):
          it goes again once they are here, or once after ``edit_retry`` (counted in
          ``stats["edit_retries"]``); refused again at that version, it waits for the
          editor's next change (counted in ``stats["edits_held"]``).
        """
        doc = self.by_uri.get(uri)
        if doc is None:
            return
        view = doc.views[uri]
        view.applying = False
        sent_at = view.sync.sent_version
        user_ops = view.sync.edit_answered(applied)
        if not applied:
            self.stats["edits_refused"] += 1
            if buffer is not None and (buffer[0] != view.sync.version or buffer[1] != view.sync.text):
                self.stats["resyncs"] += 1
                logger.warning("%s: the editor's buffer moved without a change we saw; resyncing", doc.path)
                self._events.append(Log(f"pairls: {doc.path}: resynced with the editor's text"))
                user_ops += view.sync.did_change(buffer[0], [ContentChange(None, buffer[1])])
            elif sent_at is not None and view.sync.version == sent_at:
                view.refused = view.sync.version
                if view.retried != view.sync.version:
                    view.retry_at = now + self.config.edit_retry
                    self._timed.add(doc.path)
                else:
                    self.stats["edits_held"] += 1
                    logger.info("%s: the editor refused our edit twice at one version; waiting", doc.path)
        self._after_sync(doc, view, now)
        if user_ops:
            self._user_ops(doc, view, user_ops, now)
        else:
            self._pump(doc, view, now)

    def _after_sync(self, doc: Doc, view: View, now: float) -> None:
        view.expire_at = now + self.config.edit_expire if view.sync.waiting else None
        if view.expire_at is not None:
            self._timed.add(doc.path)

    def _shareable(self, path: str, text: str) -> str:
        """*text* as the room can hold it (:func:`collab_core.wire.shareable`), the user told once."""
        clean = shareable(text)
        if clean is not text:
            self._replaced(path)
        return clean

    def _replaced(self, path: str) -> None:
        if path in self._replaced_warned:
            return
        self._replaced_warned.add(path)
        self._events.append(
            ShowMessage(
                f"pairls: {path} held characters that cannot be shared (NUL, or half of a UTF-16 "
                "pair); they are U+FFFD (\ufffd) for everyone now"
            )
        )

    def editor_text(self, uri: str, text: str, now: float) -> None:
        """The editor's text as the LSP library tracked it: if ours disagrees (a bug), heal:
        the editor is brought to the room's text now (not whenever the document changes next:
        a run's output that has ended, or a viewer's buffer, may never change again)."""
        doc = self.by_uri.get(uri)
        if doc is None or doc.client is None or doc.state is not DocState.OPEN:
            return
        view = doc.views[uri]
        if not view.sync.quiet or view.sync.text == text:
            return
        self._count_heal(doc, "the editor's text drifted from ours")
        view.sync.view.text = text
        view.sync.reset(doc.client.text)
        self._pump(doc, view, now)

    def cursor_moved(self, uri: str, ranges: Iterable[tuple[int, int]], now: float) -> None:
        """The user's cursor or selections, as code point offsets in the buffer's text."""
        doc = self.by_uri.get(uri)
        if doc is None or doc.client is None or not self.in_room:
            return
        view = doc.views[uri]
        client = doc.client
        pending = [o for o in (client.outstanding.op if client.outstanding else None, client.buffer) if o]
        in_room = [[view.sync.to_room(anchor), view.sync.to_room(head)] for anchor, head in list(ranges)[:64]]
        hub_ranges = []
        for pair in in_room:
            back = []
            for pos in pair:
                for op in reversed(pending):
                    pos = ops.map_back(pos, op)
                back.append(pos)
            hub_ranges.append(back)
        held = self._peers_hold(doc.path, client.rev, pending, in_room)
        if held and (self._presence is None or self._presence_implied):
            # typing: the peers move our cursor past what we type as our op reaches them, so
            # this presence would tell them nothing new; it goes later, keeping the hub's copy
            # (newcomers get it) recent, unless the cursor moves some other way first
            if self._presence is None:
                self._presence_due = max(now, self._presence_at + self.config.presence_implied_interval)
            self._presence = (doc.path, client.rev, hub_ranges)
            self._presence_implied = True
            self.stats["presence_implied"] += 1
            return
        self._presence = (doc.path, client.rev, hub_ranges)
        self._presence_implied = False
        self._presence_due = max(now, self._presence_at + self.config.presence_interval)
        self._flush_presence(now)

    def _peers_hold(self, path: str, rev: int, pending: list[ops.Op], ranges: list[list[int]]) -> bool:
        """Whether the peers hold our cursor at *ranges* (the room's text with our *pending* ops,
        on revision *rev*) once those ops reach them: the last presence we sent, moved by every
        op since as they move it (our own inserts push our cursor past them)."""
        shown = self._shown
        if shown is None or shown[0] != path or shown[1] != rev or len(shown[2]) != len(ranges):
            return False
        for was, now in zip(shown[2], ranges, strict=True):
            for x, want in zip(was, now, strict=True):
                for op in pending:
                    x = ops.transform_index(x, op, after_insert=True)
                if x != want:
                    return False
        return True

    def _move_shown(self, path: str, rev: int, op: ops.Op, mine: bool) -> None:
        """The hub's op at *rev*: our cursor as the peers hold it moves as they move it."""
        shown = self._shown
        if shown is None or shown[0] != path:
            return
        if shown[1] != rev - 1:
            self._shown = None  # (a revision we did not see go by: no longer known)
            return
        moved = _move_ranges(shown[2], op, mine)
        self._shown = (path, rev, moved)

    # == the connection =============================================================================

    def connection_opened(self, now: float) -> None:
        """The websocket is open: say hello with this entry's client id."""
        self.conn = Conn.HELLO
        self._tokens = max(1.0, float(self.limits.get("burst") or 2000) * self.config.rate_share)
        self._tokens_at = now
        hello: dict[str, Any] = {
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "name": self.name,
            "clientId": self.client_id,
        }
        if self.user:
            hello["user"] = self.user
        self._request(hello, "hello")

    def connection_closed(self, code: int | None, now: float, reason: str | None = None) -> None:
        """The websocket closed (or could not open), with the hub's close *code* and *reason* if any."""
        if self.conn is Conn.DOWN and self._reconnect_at is not None:
            return
        self._fail_requests(
            "lost the connection to the hub before it answered; try again", presses_go_again=True
        )
        ended = ENDED.get(code) if code is not None else None
        if ended is not None and self.in_room:
            # The owner (or the hub's operator) ended our place in the room: reconnecting
            # would be refused, so we stop here and say why.
            if code == CloseCode.ROOM_DELETED:
                ended = DELETED_BY.get(reason or "", ended)
            logger.info("the hub ended our place in the room (code %s)", code)
            self._room_ended(ended, deleted=code == CloseCode.ROOM_DELETED)
            return
        healthy = self._up_since is not None and now - self._up_since >= self.config.healthy_after
        if self._entered and self._unsent():
            # (what was in flight waits for the next connection; a reconnect that fails before
            # it entered the room changes nothing of it)
            self._unsent_changed(now)
        self.conn = Conn.DOWN
        self._up_since = None
        self._entered = False
        self._requests = {}
        self._out.clear()
        self._opening = set()
        self._presence_due = None
        self._shown = None  # the hub forgets our presence with the connection
        for doc in self.docs.values():
            doc.request = None
            doc.resend_at = None
            doc.check_at = None
            doc.held = []  # (the catch-up on the next connection reads them, from its hub)
            if doc.blame is not None and doc.blame.request is not None:
                doc.blame.request = None
                doc.blame.asked = None
                doc.blame.again = True  # asked again once it is open
            if doc.state in (DocState.OPENING, DocState.CREATING, DocState.OPEN):
                self._set_state(doc, DocState.NEW)
                if doc.need is None:
                    doc.need = "since" if doc.client is not None and not doc.client.held else doc.need
        if not self.in_room and self._entry is None:
            self._notify_status()
            return
        if healthy:
            self._failures = 0
        delay = min(self.config.backoff_max, self.config.backoff_min * (2**self._failures)) * self._jitter()
        self._failures += 1
        self._reconnect_at = now + delay
        if self.in_room and not self._lost_said:
            self._lost_said = True
            self._events.append(
                ShowMessage(
                    "pairls: lost the connection to the hub; "
                    "your edits are kept and will be sent on reconnect"
                )
            )
        logger.info("hub connection closed (code %s); reconnecting in %.2fs", code, delay)
        self._notify_status()

    def connection_failed(self, reason: str, now: float) -> None:
        """The connection could not open, and trying again will not help until someone changes
        something (a certificate that does not verify, a hub without TLS: ``lsp_bridge/tls.py``).

        No backoff: a create or join fails with *reason*; in a room, the room is
        left with one error message (the editors keep their text, and the user
        joins again once it is fixed).  Counted in ``stats["gave_up"]``.
        """
        if self.conn is Conn.DOWN and self._reconnect_at is not None:
            return  # (a close already handled)
        if not self.in_room and self._entry is None:
            self.conn = Conn.DOWN
            self._notify_status()
            return
        self.stats["gave_up"] += 1
        logger.warning("giving up on the hub at %s: %s", self.hub_url, reason)
        self._give_up(reason, "disconnected from the hub")

    def receive_frame(self, msgs: list[dict[str, Any]], now: float) -> None:
        """The messages of one hub frame, in order; the editor gets one edit for all of them."""
        self._batching += 1
        try:
            for msg in msgs:
                self.receive(msg, now)
        finally:
            self._batching -= 1
        self._pump_batched(now)
        self._maybe_left(now)
        self._pump_asks(now)
        self._send_run_statuses()

    def _pump_batched(self, now: float) -> None:
        if self._batching:
            return
        uris, self._to_pump = self._to_pump, set()
        for uri in uris:
            doc = self.by_uri.get(uri)
            if doc is not None and uri in doc.views:
                self._pump(doc, doc.views[uri], now)

    def receive(self, msg: dict[str, Any], now: float) -> None:
        """One message from the hub (a JSON array frame: :meth:`receive_frame`)."""
        self._receive(msg, now)
        if not self._batching:
            self._maybe_left(now)  # (an ack may have been the last thing a leave waited for)
            self._pump_asks(now)  # (or what an undo waited for)
            self._send_run_statuses()  # (or what a run's status waited for)

    def _receive(self, msg: dict[str, Any], now: float) -> None:
        rid = msg.get("id")
        if rid is not None and type(rid) is int and rid in self._requests:
            self._reply(self._requests.pop(rid), msg, now)
            return
        kind = msg.get("type")
        path = self._path_of(msg)
        doc = self.docs.get(path) if path is not None else None
        if kind in ("op", "ack"):
            if doc is not None and type(msg.get("rev")) is int:
                doc.held.append(msg)
                self._deliver_held(doc, now)
        elif kind == "error":
            self._hub_error(doc, msg, now)
        elif kind == "presence":
            self._presence_received(msg)
        elif kind == "participant_joined" and isinstance(msg.get("participant"), dict):
            self._participant(msg["participant"])
            self._participants_changed()
        elif kind == "participant_changed" and isinstance(msg.get("participant"), dict):
            self._participant_changed(msg["participant"])
        elif kind == "participant_left":
            gone = self.participants.pop(str(msg.get("participant", "")), None)
            self._participants_changed()
            if gone is not None and gone.path is not None:
                self._cursors_changed(gone.path)
        elif kind in ("run_request", "run_answer"):
            # another participant's ask to run, or answer: a question for the user, never a run
            self._events.append(Notify("pairls/" + kind, dict(msg)))
        elif kind == "run_status" and path is not None:
            self._run_status_received(path, msg)
        elif kind == "document_added" and path is not None:
            rev = msg.get("rev")
            self.room_documents[path] = rev if type(rev) is int else 0
            if is_run_path(path) and path not in self.room_runs:
                who = self.participants.get(str(msg.get("by")))
                by = who.name if who is not None else "someone"
                self.room_runs[path] = {"path": path, "by": by, "state": "running"}
                self._events.append(Notify("pairls/runs", {"event": "started", "path": path, "by": by}))
            if path not in self.docs:
                self.docs[path] = Doc(path, need="full")
                self._enqueue(self.docs[path])
                self._pump_opens(now)

    def _run_status_received(self, path: str, msg: dict[str, Any]) -> None:
        """A peer's run goes on or ended: kept for ``pairls.runs``; what it runs is said once
        (``running``), and its end once (``ended``)."""
        state = msg.get("state")
        if not is_run_path(path) or state not in ("running", "ended"):
            self.stats["bad_answers"] += 1
            logger.warning("a run's status from the hub that makes no sense: dropped")
            return
        known = self.room_runs.get(path)
        if known is not None and known["state"] == "ended":
            return  # said already
        run: dict[str, Any] = {"path": path, "by": display_name(msg.get("name")), "state": state}
        command = msg.get("command")
        if isinstance(command, str):
            # shown to the user: nothing in it may hide what it says
            run["command"] = _UNSAFE_NAME.sub("?", command[:4096])
        for key in ("startedAt", "endedAt"):
            at = msg.get(key)
            if type(at) in (int, float):
                run[key] = at
        if state == "ended":
            code = msg.get("exitCode")
            run["exitCode"] = code if type(code) is int else None
            run["stopped"] = msg.get("stopped") is True
        self.room_runs[path] = run
        if state == "ended" or known is None or "command" not in known:
            # its end, or what it runs (first said now: "started" came with the document)
            self._events.append(Notify("pairls/runs", {"event": state, **run}))

    def tick(self, now: float) -> None:
        """Time passed: run what is due."""
        if self._enter_deadline is not None and now >= self._enter_deadline and self._entry is not None:
            self._done(self._entry[2], error=self._entry_timed_out())
            self._reset_room()
            self._events.append(Disconnect())
            self._notify_status()
            return
        if self._leave_deadline is not None and now >= self._leave_deadline:
            self._maybe_left(now)
            if not self.in_room:
                return
        if self._reconnect_at is not None and now >= self._reconnect_at:
            self._reconnect_at = None
            self._connect(now)
        if self._presence_due is not None and now >= self._presence_due:
            self._flush_presence(now)
        if self._hold_due is not None and now >= self._hold_due:
            self._hold_due = None
            self._hold(now)
        if self._refresh_due is not None and now >= self._refresh_due:
            self._refresh_due = None
            self._refresh_at = now
            self._events.append(RefreshInlayHints())
        for path in list(self._timed):
            doc = self.docs.get(path)
            if doc is None or not self._has_timers(doc, now):
                self._timed.discard(path)
                continue
            if doc.resend_at is not None and now >= doc.resend_at:
                doc.resend_at = None
                self._resend(doc)
            if doc.check_at is not None and now >= doc.check_at:
                doc.check_at = None
                self._check(doc, now)
            if doc.blame is not None:
                if doc.blame.refresh_at is not None and now >= doc.blame.refresh_at:
                    self._ask_blame(doc, now)
                self._expire_blame(doc, now)
            for view in list(doc.views.values()):
                if view.retry_at is not None and now >= view.retry_at:
                    # no change came: once more at this version (a second refusal waits)
                    view.retry_at = view.refused = None
                    view.retried = view.sync.version
                    self.stats["edit_retries"] += 1
                    self._pump(doc, view, now)
                if view.expire_at is not None and now >= view.expire_at:
                    view.expire_at = None
                    user_ops = view.sync.expire()
                    self._after_sync(doc, view, now)  # (given up on once: once more, later)
                    if user_ops:
                        self._user_ops(doc, view, user_ops, now)
                    else:
                        self._pump(doc, view, now)
        for path in list(self._asking):
            doc = self.docs.get(path)
            if doc is not None:
                self._expire_asks(doc, now)
        self._pump_opens(now)
        self._pump_asks(now)

    @staticmethod
    def _has_timers(doc: Doc, now: float) -> bool:
        if doc.resend_at is not None or doc.check_at is not None or doc.open_after > now:
            return True
        if doc.blame is not None and (doc.blame.refresh_at is not None or doc.blame.tickets):
            return True
        return any(v.retry_at is not None or v.expire_at is not None for v in doc.views.values())

    # == status =====================================================================================

    def status(self) -> dict[str, Any]:
        docs = {}
        for path, d in self.docs.items():
            c = d.client
            pending = bool(c and (c.unacknowledged or d.state is not DocState.OPEN))
            pending = pending or any(not v.sync.quiet or v.applying for v in d.views.values())
            docs[path] = {
                "rev": c.rev if c else None,
                "pending": pending,
                "open": bool(d.views),
                "state": d.state.value,
                "sha256": d.sha256(),
                "heals": d.heals,
                # per buffer: what is still to reach the editor (for diagnostics)
                "views": {
                    v.uri: {
                        "toShow": len(v.sync.view.pending),
                        "applying": v.applying,
                        "waiting": v.sync.waiting,
                        "retry": v.retry_at is not None,
                        "held": v.refused is not None and v.retry_at is None,
                        "stats": dict(v.sync.stats),
                    }
                    for v in d.views.values()
                },
            }
        return {
            "connected": self.connected,
            "state": self.conn.value,
            "leaving": bool(self._leaving),
            "roomId": self.room_id,
            "role": self.role,
            "hubUrl": self.hub_url,
            "participants": len(self.participants),
            "documents": docs,
            "following": self.following(),
            "heals": self.heals,
            "stats": dict(self.stats),
        }

    def following(self) -> dict[str, int]:
        """How many of the room's documents are open here."""
        return {"open": self._open_count, "total": len(self.room_documents)}

    def participants_list(self) -> list[dict[str, Any]]:
        out = []
        for p in self.participants.values():
            d = p.describe()
            d["self"] = p.id == self.participant
            out.append(d)
        return out

    def cursors(self, uri: str) -> list[tuple[Participant, list[tuple[tuple[int, int], tuple[int, int]]]]]:
        """Peers' cursors in buffer *uri*: (participant, [(anchor, head)] as (line, character))."""
        doc = self.by_uri.get(uri)
        if doc is None or doc.client is None:
            return []
        view = doc.views[uri]
        peers = [p for p in self.participants.values() if p.path == doc.path and p.id != self.participant]
        offsets = [self._to_editor(doc, view, p, x) for p in peers for r in p.ranges for x in r]
        places = iter(positions_of(view.sync.text, offsets, self.encoding))
        return [(p, [(next(places), next(places)) for _ in p.ranges]) for p in peers]

    def document_text(self, path: str) -> str | None:
        doc = self.docs.get(path)
        return doc.client.text if doc is not None and doc.client is not None else None

    # == internals: connection ======================================================================

    def _connect(self, now: float) -> None:
        assert self.hub_url is not None
        self.conn = Conn.CONNECTING
        self.stats["connects"] += 1
        self._events.append(Connect(self.hub_url))

    def _send(self, msg: dict[str, Any]) -> None:
        self._out.append(msg)

    def _request(
        self,
        msg: dict[str, Any],
        kind: str,
        *,
        path: str | None = None,
        ticket: int | None = None,
        ask: _Ask | None = None,
    ) -> int:
        rid = next(self._ids)
        self._requests[rid] = _Request(kind, path, ticket, ask)
        msg["id"] = rid
        self._send(msg)
        return rid

    def _reply(self, req: _Request, msg: dict[str, Any], now: float) -> None:
        kind = msg.get("type")
        if req.kind == "hello":
            if kind != "welcome":
                self._entry_failed(msg, now)
                return
            self.conn = Conn.UP
            self._up_since = now
            if self._entry is not None and self._entry_got is None:
                self._entry_got = "welcome"
            self.participant = str(msg.get("participant", ""))
            self.limits.update(hub_limits(msg.get("limits")))
            self._set_op_limits()
            if self._entry is not None:
                what, arg, _ = self._entry
                if what == "create":
                    name, token = arg
                    create: dict[str, Any] = {"type": "create_room", "name": name}
                    if token:
                        create["token"] = token
                    self._request(create, "enter")
                else:
                    self._request({"type": "join", "room": arg.room_id, "secret": arg.secret}, "enter")
            elif self.invite is not None:
                self._request(
                    {"type": "join", "room": self.invite.room_id, "secret": self.invite.secret}, "rejoin"
                )
        elif req.kind in ("enter", "rejoin"):
            if kind not in ("joined", "room_created"):
                self._entry_failed(msg, now)
                return
            if not self._entry_answer_valid(msg):
                self.stats["bad_answers"] += 1
                logger.warning("the hub's answer to entering the room makes no sense")
                self._entry_failed({"code": "bad_answer"}, now)
                return
            self._entered_room(msg, req.kind == "rejoin", now)
        elif req.kind == "create_document" and req.path is not None:
            doc = self.docs.get(req.path)
            if doc is None or doc.request is None:
                return
            doc.request = None
            self._set_state(doc, DocState.NEW)
            self._opening.discard(doc.path)
            if kind == "document_created":
                doc.create = False
                doc.need = "zero"
            elif msg.get("code") == "document_exists":
                doc.create = False
                doc.need = "full"
            else:
                self._open_failed(doc, msg, now)
                return
            self.room_documents.setdefault(doc.path, 0)
            self._enqueue(doc, front=True)
        elif req.kind == "open" and req.path is not None:
            doc = self.docs.get(req.path)
            self._opening.discard(req.path)
            if doc is None or doc.request is None:
                return
            doc.request = None
            if kind == "opened":
                self._opened(doc, msg, now)
            else:
                self._open_failed(doc, msg, now)
        elif req.kind == "digest" and req.path is not None:
            doc = self.docs.get(req.path)
            if doc is not None and kind == "digest":
                self._digest(doc, msg, now)
        elif req.kind == "owner":
            self._owner_reply(req, msg, now)
        elif req.kind == "history":
            self._history_reply(req, msg, now)
        elif req.kind == "blame":
            self._blame_reply(req, msg, now)
        self._pump_opens(now)

    def _set_op_limits(self) -> None:
        for doc in self.docs.values():
            if doc.client is not None:
                doc.client.max_op_bytes = self._max_op_bytes(doc.path)
                doc.client.max_op_components = self._max_op_components()

    def _max_op_components(self) -> int | None:
        """The hub's most components per op (an older hub says nothing: no limit)."""
        limit = self.limits.get("maxOpComponents")
        return max(4, limit) if type(limit) is int else None

    def _max_op_bytes(self, path: str) -> int:
        frame = int(self.limits.get("maxMessageBytes") or 1 << 20)
        envelope = {"type": "op", "path": path, "rev": 2**53, "seq": 2**53, "op": []}
        overhead = len(json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        return max(64, frame - overhead - 64)

    def _entry_failed(self, msg: dict[str, Any], now: float) -> None:
        code = _code(msg)
        if code == "unavailable" or code == "rate_limited":
            # the hub cannot serve it right now: the connection goes again, with backoff
            if self._entry is not None:
                self._entry_got = code
            self._events.append(Disconnect())
            self.connection_closed(None, now)
            return
        self._give_up(_explain(code), "could not rejoin the room", deleted=code == "no_such_room")

    def _entry_timed_out(self) -> str:
        """Why the create or join under way failed at its deadline, in words: by how far it got."""
        url, secs = self.hub_url, f"{self.config.enter_timeout:g}"
        got = self._entry_got
        if got == "unavailable":
            return (
                f"the hub at {url} is running but could not serve the request for {secs} s "
                "(it is busy, shutting down, or cannot reach its database); try again"
            )
        if got == "rate_limited":
            return f"the hub at {url} asked to slow down for {secs} s; try again in a moment"
        if got == "welcome":
            return f"the hub at {url} is running but did not answer in {secs} s; try again"
        return f"cannot reach the hub at {url}; is pairls-hub running?"

    def _give_up(self, text: str, doing: str, *, deleted: bool = False) -> None:
        """Fail the create or join under way with *text*, or leave the room saying why; no retry.
        What the hub did not acknowledge is kept for the next entry into the room (once what
        failed is put right), as a leave keeps it, unless the room is gone (*deleted*)."""
        unsent: list[str] = []
        if self._entry is not None:
            self._done(self._entry[2], error=text)
        else:
            self._events.append(ShowMessage(f"pairls: {doing}: {text}", error=True))
            unsent = self._left_unsent(deleted=deleted)
            for doc in self.docs.values():
                self._events.append(TextReplaced(doc.path, None))
        self._reset_room()
        if unsent:
            self._hold_carry()
        self._events.append(Disconnect())
        self._notify_status()

    def _entry_answer_valid(self, msg: dict[str, Any]) -> bool:
        """Whether a ``joined`` or ``room_created`` names a role, and the room asked for (a
        join) or a room and its three secrets an invite can hold (a create)."""
        room = msg.get("room")
        if msg.get("role") not in ("owner", "editor", "viewer") or not isinstance(room, str):
            return False
        if self._entry is None or self._entry[0] != "create":
            asked = self._entry[1] if self._entry is not None else self.invite
            return asked is not None and room == asked.room_id
        assert self.hub_url is not None
        secrets = [msg.get(key) for key in ("ownerSecret", "editorSecret", "viewerSecret")]
        try:
            for secret in secrets:
                if not isinstance(secret, str):
                    return False
                parse_invite(str(Invite(self.hub_url, room, secret)))
        except InvalidInvite:
            return False
        return True

    def _entered_room(self, msg: dict[str, Any], rejoin: bool, now: float) -> None:
        self._entered = True
        self._enter_deadline = None
        if self._lost_said:
            self._lost_said = False
            self._events.append(ShowMessage("pairls: reconnected to the hub"))
        self.room_id = str(msg.get("room"))
        self.role = str(msg.get("role"))
        self.author = _author(msg.get("author"))
        self.participants = {}
        for p in _list(msg.get("participants")):
            if isinstance(p, dict):
                self._participant(p)
        for pres in _list(msg.get("presence")):
            if isinstance(pres, dict):
                self._presence_received(pres)
        documents = msg.get("documents")
        self.room_documents = {
            d["path"]: d["rev"] if type(d.get("rev")) is int else 0
            for d in (documents if isinstance(documents, list) else [])
            if isinstance(d, dict) and self._path_of(d) is not None
        }
        if self._entry is not None:
            what, arg, ticket = self._entry
            self._entry = None
            assert self.hub_url is not None
            if self._carry is not None and self._carry.room_id != self.room_id:
                # another room's, that this entry does not take: on disk for a later entry
                # (this server holds one copy of typing on disk, this room's from now on)
                self._keep_carry()
            if what == "create":
                self.editor_invite = str(Invite(self.hub_url, self.room_id, msg["editorSecret"]))
                self.viewer_invite = str(Invite(self.hub_url, self.room_id, msg["viewerSecret"]))
                self.invite = Invite(self.hub_url, self.room_id, msg["ownerSecret"])
                self._done(
                    ticket,
                    result={
                        "roomId": self.room_id,
                        "invite": self.editor_invite,
                        "viewerInvite": self.viewer_invite,
                    },
                )
            else:
                self.invite = arg
                self._take_carry(now)
                if self.role == "viewer":
                    self.viewer_invite = str(arg)
                else:
                    self.editor_invite = str(arg)
                self._done(
                    ticket,
                    result={
                        "roomId": self.room_id,
                        "role": self.role,
                        "participants": self.participants_list(),
                        "documents": [{"path": p, "rev": r} for p, r in sorted(self.room_documents.items())],
                    },
                )
        else:
            self.stats["reconnects"] += 1
        # Every document: catch up (since our revision) or open; the room's others: follow.
        for path in self.room_documents:
            if path not in self.docs:
                self.docs[path] = Doc(path, need="full")
        for doc in self.docs.values():
            if doc.state is DocState.FAILED:
                continue
            self._set_state(doc, DocState.NEW)
            if doc.need is None:
                doc.need = "since" if doc.client is not None else "full"
            if doc.need == "since":
                self.stats["catchups"] += 1
        self._queue = deque()
        for doc in sorted(self.docs.values(), key=lambda d: (not d.views, d.path)):
            if doc.state is DocState.NEW:
                self._queue.append(doc.path)
        self._notify_status()
        self._participants_changed()
        self._pump_opens(now)

    def restore_carry(self, saved: Any) -> Restore:
        """What an earlier server kept at exit (:class:`KeepCarry`), for the next entry into its
        room: taken only before a join, with no carry of this server's own (else
        :attr:`Restore.NOT_NOW`: the caller keeps it for another entry), and only if it can be
        read (else :attr:`Restore.UNREADABLE`, logged and counted: the entry goes on without it)."""
        if not self.takes_carry():
            return Restore.NOT_NOW
        try:
            self._carry = _Carry.restored(saved)
        except (ValueError, TypeError) as exc:  # (ops.InvalidOp is a ValueError)
            self.stats["carries_unreadable"] += 1
            logger.warning("a kept carry could not be read (%s): not taken", type(exc).__name__)
            return Restore.UNREADABLE
        return Restore.TAKEN

    def takes_carry(self) -> bool:
        """Whether an entry starting now would take a kept carry (:meth:`restore_carry`): no
        room, no entry and no leave under way, and no carry of this server's own."""
        return self._carry is None and not self.in_room and self._entry is None and not self._leaving

    def wait_for_carry(self, held_elsewhere: Callable[[], bool], now: float) -> float | None:
        """Before an entry: whether it waits for another running server of this user that holds
        a carry of the room (*held_elsewhere*: the shell's look on disk, called only for an entry
        that would take a carry), most likely one in its exit's wait that keeps it as it ends (an
        editor reloaded offline); the seconds until the shell looks again, or None: go on with
        the entry.  It waits only if it would take a carry, and at most the exit's wait and a
        second (counted: ``carry_waits``); a holder still there then (another editor of the user,
        offline in the room) keeps its carry and the entry goes on without it (counted:
        ``carry_waits_given_up``)."""
        until = self._carry_wait_until
        if not self.takes_carry() or not held_elsewhere():
            self._carry_wait_until = None
            return None
        if until is None:
            until = self._carry_wait_until = now + self.config.exit_timeout + 1.0
            self.stats["carry_waits"] += 1
            logger.info(
                "another server of yours holds unsent changes to this room: waiting for it to keep them"
            )
        elif now >= until:
            self._carry_wait_until = None
            self.stats["carry_waits_given_up"] += 1
            logger.warning(
                "another server of yours still holds unsent changes to this room: joining without them "
                "(they stay with it)"
            )
            return None
        return min(HELD_CARRY_LOOK, until - now)

    def _take_carry(self, now: float) -> None:
        """Entering the room a leave left with changes unsent: they are ours again, caught up
        and sent like after a reconnect (the buffers that show them attach as they share)."""
        carry = self._carry
        if carry is None or carry.room_id != self.room_id or carry.client_id != self.client_id:
            return
        self._carry = None
        if self._carry_held:
            # its held copy is this entry's now: dropped once the hub has it all (_hold)
            self._carry_held = False
            self._held = True
        self._events.append(CarryTaken(carry.room_id))
        self.stats["carried"] += 1
        self._next_seqs = dict(carry.seqs)
        for path, doc in carry.docs.items():
            self.docs[path] = doc
        self._set_op_limits()
        self._unsent_changed(now)
        logger.info("took back %d document(s) with changes unsent at the last leave", len(carry.docs))

    def _set_state(self, doc: Doc, state: DocState) -> None:
        if (doc.state is DocState.OPEN) != (state is DocState.OPEN):
            self._open_count += 1 if state is DocState.OPEN else -1
        doc.state = state

    # == internals: opening documents ===============================================================

    def _enqueue(self, doc: Doc, *, front: bool = False) -> None:
        if doc.path in self._opening or doc.state is DocState.FAILED:
            return
        if doc.path in self._queue:
            if not front:
                return
            self._queue.remove(doc.path)
        if doc.state is DocState.OPEN:
            self._set_state(doc, DocState.NEW)
        if front:
            self._queue.appendleft(doc.path)
        else:
            self._queue.append(doc.path)

    def _pump_opens(self, now: float) -> None:
        """Send opens (and creates) from the queue, a few at a time."""
        self._opens_at = now
        if not self.connected:
            return
        later: list[str] = []
        while self._queue and len(self._opening) < self.config.max_opens:
            path = self._queue.popleft()
            doc = self.docs.get(path)
            if doc is None or doc.state is not DocState.NEW:
                continue
            if doc.open_after > now:
                later.append(path)
                continue
            self._opening.add(path)
            if doc.create:
                assert doc.client is not None
                limit = self.limits.get("maxDocumentBytes")
                size = len(doc.client.text.encode("utf-8"))
                if limit is not None and size > int(limit):
                    self._opening.discard(path)
                    self._fail(doc, self._too_large(path, size, int(limit)))
                    continue
                most = self.limits.get("maxDocumentsPerRoom")
                if most and len(self.room_documents) >= int(most) and path not in self.room_documents:
                    # the hub would refuse it: say so without asking
                    self._opening.discard(path)
                    self._room_full(doc)
                    continue
                self._set_state(doc, DocState.CREATING)
                doc.request = self._request(self._create_message(doc), "create_document", path=path)
                continue
            self._set_state(doc, DocState.OPENING)
            msg: dict[str, Any] = {"type": "open", "path": path}
            in_flight = doc.client is not None and doc.client.outstanding is not None
            if (doc.need == "since" or in_flight) and doc.client is not None:
                # (an op in flight may have been committed: reading the ops since tells)
                msg["since"] = doc.client.rev
            elif doc.need == "zero":
                msg["since"] = 0
            doc.request = self._request(msg, "open", path=path)
        self._queue.extendleft(reversed(later))
        self._report_progress()

    def _create_message(self, doc: Doc) -> dict[str, Any]:
        """``create_document`` with the buffer's text, or empty with the text to follow as ops."""
        client = doc.client
        assert client is not None
        text = client.shadow
        msg = {"type": "create_document", "path": doc.path, "text": text}
        size = len(json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode("utf-8")) + 32
        if size > int(self.limits.get("maxMessageBytes") or 1 << 20):
            # too big for one frame: create it empty; our text goes as ops that each fit
            typed = client.buffer
            fresh = self._new_client(doc.path, "", 0, held=True)
            fresh.apply_local(ops.insert(0, text) if text else [])
            if typed:
                fresh.apply_local(typed)
            doc.client = fresh
            msg["text"] = ""
        return msg

    def _new_client(self, path: str, text: str, rev: int, *, held: bool) -> DocumentClient:
        return DocumentClient(
            text,
            rev,
            self.client_id,
            # (1 in a new entry; an entry that took a carry back goes on from its seqs)
            next_seq=self._next_seqs.get(path, 1),
            held=held,
            max_op_bytes=self._max_op_bytes(path),
            max_op_components=self._max_op_components(),
        )

    def _open_failed(self, doc: Doc, msg: dict[str, Any], now: float) -> None:
        code = _code(msg)
        self._set_state(doc, DocState.NEW)
        if code in ("unavailable", "rate_limited"):
            doc.resend_delay = _grow(doc.resend_delay, self.config.resend_min, self.config.resend_max)
            doc.open_after = now + doc.resend_delay * self._jitter()
            self._timed.add(doc.path)
            self._enqueue(doc)
            return
        if code == "too_large":
            self._fail(doc, self._too_large(doc.path, None, self.limits.get("maxDocumentBytes")))
            return
        if code == "quota_exceeded":
            self._room_full(doc)
            return
        if code == "future_revision":
            # The hub is behind what we saw (a restored database; a hub reads the log before
            # it says so): read it whole.  An op in flight was made after what the hub has, so
            # the hub never took it: it goes back with our other changes, to be rebased onto
            # the hub's text (else it would ask "since" again, and be told the same, for ever).
            if doc.client is not None:
                doc.client.unsend()
            doc.need = "full"
            self._enqueue(doc)
            return
        # no such document (gone), forbidden, bad path: it cannot be had
        logger.warning("could not open %s: %s", doc.path, code)
        self._fail(doc, f"pairls: {doc.path} cannot be shared: {_explain(code)}")
        self.room_documents.pop(doc.path, None)

    def _room_full(self, doc: Doc) -> None:
        """The hub allows no more documents in this room: *doc* stays unshared; said once per room."""
        most = self.limits.get("maxDocumentsPerRoom")
        count = f" ({int(most)})" if isinstance(most, int | float) and most else ""
        text = (
            f"pairls: {doc.path} is not shared: this room has as many documents as the hub allows{count} "
            "(your text stays in your editor)"
        )
        said, self._room_full_said = self._room_full_said, True
        self._fail(doc, text, say=not said)
        self.room_documents.pop(doc.path, None)

    def _fail(self, doc: Doc, text: str, *, say: bool = True) -> None:
        """The document is not shared any more: its buffers keep their text, said once (*say*: shown)."""
        self._set_state(doc, DocState.FAILED)
        doc.why = text.removeprefix("pairls: ")
        for ticket in doc.tickets:
            self._done(ticket, error=text.removeprefix("pairls: "))
        doc.tickets = []
        self._drop_history(doc, text.removeprefix("pairls: "))
        if doc.path not in self._too_large_warned:
            self._too_large_warned.add(doc.path)
            if doc.views and say:
                self._events.append(ShowMessage(text, error=True))
            else:
                self._events.append(Log(text))
        for uri in list(doc.views):
            self.by_uri.pop(uri, None)
        doc.views = {}
        if doc.client is not None:
            # (this client's seq numbers on it are used: a carry must go on after them)
            self._next_seqs[doc.path] = doc.client.next_seq
        doc.client = None
        doc.held = []
        self._events.append(TextReplaced(doc.path, None))
        if self.connected:
            self._send({"type": "close", "path": doc.path})
        self._notify_status()

    def _too_large(self, path: str, size: int | None, limit: Any) -> str:
        lim = f"{int(limit) / (1 << 20):.1f} MB" if isinstance(limit, int | float) else "its limit"
        if size is None:
            return (
                f"pairls: {path} grew larger than this hub allows for a document ({lim}); "
                "it is no longer shared (your text stays in your editor)"
            )
        return (
            f"pairls: {path} is {size / (1 << 20):.1f} MB, more than this hub allows "
            f"for a document ({lim}); it is not shared"
        )

    def _opened(self, doc: Doc, msg: dict[str, Any], now: float) -> None:
        rev, client = msg.get("rev"), doc.client
        if isinstance(msg.get("text"), str):
            # (a whole text is asked for only with nothing in flight, whose fate it would hide)
            sensible = client is None or client.outstanding is None
        else:
            sensible = client is not None and isinstance(msg.get("ops"), list)
        if type(rev) is not int or rev < 0 or not sensible:
            self.stats["bad_answers"] += 1
            logger.warning("%s: the hub's answer to opening it makes no sense; asking again later", doc.path)
            self._open_failed(doc, {"code": "unavailable"}, now)
            return
        doc.resend_delay = 0.0
        self._batching += 1
        try:
            self._open_reply(doc, msg, rev, now)
        finally:
            self._batching -= 1
        self._pump_batched(now)

    def _open_reply(self, doc: Doc, msg: dict[str, Any], rev: int, now: float) -> None:
        client = doc.client
        if isinstance(msg.get("text"), str):
            text = self._hubs_text(doc, msg["text"])
            if client is None:
                doc.client = client = self._new_client(doc.path, text, rev, held=False)
                for view in doc.views.values():
                    # a buffer attached while it was being opened: the room's text wins
                    if view.sync.target != text:
                        view.sync.reset(text)
            else:
                # our unacknowledged changes (none in flight: see _pump_opens) move onto it
                client.hold()
                theirs = client.rebase(text, rev)
                for view in doc.views.values():
                    view.sync.receive_remote(theirs)
            if doc.blame is not None:
                self._forget_lines(doc.blame)  # (for another text): asked again below
                doc.blame.again = True
            doc.need = None
            self._events.append(TextReplaced(doc.path, client.text))
        else:
            if client is None:
                return
            # A catch-up (a reconnect's, or after a refusal) changes the text we had by the ops it
            # reads, each said as a change (TextChanged) as any op from the hub is: the completion
            # index counts only the words they touch. A first open (of a document we created)
            # says the whole text, which the index has not had.
            if doc.need != "since":
                self._events.append(TextReplaced(doc.path, client.text))
            for entry in _list(msg.get("ops")):
                if not isinstance(entry, dict) or entry.get("rev") != client.rev + 1:
                    continue
                try:
                    op = self._hubs_op(doc, ops.check(entry.get("op")))
                except ops.InvalidOp:
                    op = None
                if op is None or ops.base_length(op) > client.shadow_length:
                    client.hold()
                    self._count_heal(doc, "the hub sent an op that does not fit our text")
                    doc.need = "full"
                    break
                seq = entry.get("seq")
                self._hub_op(
                    doc, entry["rev"], op, seq if isinstance(seq, int) else None, entry.get("author"), now
                )
            if doc.need in ("since", "zero"):
                doc.need = None
        doc.held = [m for m in doc.held if m["rev"] > client.rev]
        self._set_state(doc, DocState.OPEN)
        self.room_documents[doc.path] = max(self.room_documents.get(doc.path, 0), client.rev)
        if doc.need == "full":
            # a heal waits for the op in flight: resend it; the whole read follows its ack
            out = client.resend()
            if out is not None:
                self._send_op(doc, out)
            else:
                self._enqueue(doc, front=True)
            return
        self._deliver_held(doc, now)
        # what was in flight goes again (same seq: the hub knows it if it took it), then, no
        # longer held, what waited behind it (a heal holds the client with an op in flight)
        out = client.resend()
        if client.held:
            out = client.release() or out
        if out is not None:
            self._send_op(doc, out)
        for ticket in doc.tickets:
            self._done_open(doc, ticket)
        doc.tickets = []
        for view in doc.views.values():
            self._pump(doc, view, now)
        if doc.views:
            self._cursors_changed(doc.path)  # peers who were here before it opened
        self._schedule_check(doc, now)
        self._report_progress()
        if doc.blame is not None and doc.blame.again:
            self._ask_blame(doc, now)
        if doc.views or self._open_count == len(self.room_documents):
            self._notify_status()

    def _done_open(self, doc: Doc, ticket: int) -> int:
        assert doc.client is not None
        self._done(ticket, result={"path": doc.path, "rev": doc.client.rev, "text": doc.client.text})
        return ticket

    def _report_progress(self) -> None:
        """Work-done progress while a backlog of documents is being opened (joining a big room)."""
        backlog = len(self._queue) + len(self._opening)
        if not self._progress_open:
            if backlog < self.config.progress_threshold:
                return
            self._progress_open = True
            self._progress_total = backlog
            self._progress_pct = 0
            self._events.append(Progress("begin", f"following {backlog} documents", 0))
            return
        if backlog == 0:
            self._end_progress()
            return
        self._progress_total = max(self._progress_total, backlog)
        done = self._progress_total - backlog
        pct = done * 100 // self._progress_total
        if pct >= self._progress_pct + 5:
            self._progress_pct = pct
            self._events.append(Progress("report", f"{done} of {self._progress_total} documents", pct))

    def _end_progress(self) -> None:
        if self._progress_open:
            self._progress_open = False
            self._events.append(Progress("end", "following every document"))

    # == internals: ops ==============================================================================

    def _deliver_held(self, doc: Doc, now: float) -> None:
        """Apply held hub ops and acks in revision order (those before our turn are dropped)."""
        client = doc.client
        if client is None or doc.state is not DocState.OPEN:
            return
        while doc.held:
            doc.held.sort(key=lambda m: m["rev"])
            msg = doc.held[0]
            if msg["rev"] > client.rev + 1:
                # A gap: an op never reached us.  Read what we missed.
                logger.warning(
                    "%s: revision %s arrived before %s; catching up", doc.path, msg["rev"], client.rev + 1
                )
                self._catch_up(doc, now)
                return
            doc.held.pop(0)
            if msg["rev"] <= client.rev:
                continue
            if msg["type"] == "ack":
                if client.outstanding is None or msg.get("seq") != client.outstanding.seq:
                    # not for what we have in flight: read what happened
                    logger.warning("%s: an ack for an op not in flight; catching up", doc.path)
                    self._catch_up(doc, now)
                    return
                if doc.blame is not None:
                    mark = LineBlame(self.author, self.name, None, msg["rev"])
                    self._blame_changed(doc, client.outstanding.op, mark, now)
                self._move_cursors(doc, msg["rev"], client.outstanding.op, self.participant)
                self._move_shown(doc.path, msg["rev"], client.outstanding.op, True)
                out = client.receive_ack(msg["rev"])
                doc.resend_delay = 0.0
                if doc.need == "full" and client.outstanding is None:
                    # a heal was waiting for this op's fate
                    self._set_state(doc, DocState.NEW)
                    self._enqueue(doc, front=True)
                    self._pump_opens(now)
                    return
                if out is not None:
                    self._send_op(doc, out)
            else:
                op = msg.get("op")
                try:
                    checked = self._hubs_op(doc, ops.check(op))
                except ops.InvalidOp:
                    self._heal(doc, "the hub sent an op that is not an op", now)
                    return
                if ops.base_length(checked) > client.shadow_length:
                    self._heal(doc, "the hub sent an op that does not fit our text", now)
                    return
                self._hub_op(doc, msg["rev"], checked, None, msg.get("author"), now)
            self._schedule_check(doc, now)

    def _hubs_text(self, doc: Doc, text: str) -> str:
        """A text the hub sent, as the room can hold it: a hub stores no NUL and no lone
        surrogate, so one that sends them is broken or lying; they become U+FFFD, one code
        point for one (offsets stay), counted and said in the log, never a crash further on
        (a digest, a frame to the hub, the editor's UTF-8)."""
        clean = shareable(text)
        if clean is not text:
            self._bad_text_from_hub(doc)
        return clean

    def _hubs_op(self, doc: Doc, op: ops.Op) -> ops.Op:
        """An op the hub sent, its inserts as :meth:`_hubs_text` makes a text."""
        clean = _shareable_op(op)
        if clean is not op:
            self._bad_text_from_hub(doc)
        return clean

    def _bad_text_from_hub(self, doc: Doc) -> None:
        self.stats["bad_text_from_hub"] += 1
        logger.warning(
            "%s: the hub sent text no hub stores (NUL or half a UTF-16 pair): made U+FFFD", doc.path
        )

    def _hub_op(self, doc: Doc, rev: int, op: ops.Op, seq: int | None, author: Any, now: float) -> None:
        client = doc.client
        assert client is not None
        self._move_cursors(doc, rev, op, author if isinstance(author, str) else None)
        self._move_shown(doc.path, rev, op, seq is not None or author == self.participant)
        if doc.blame is not None:
            peer = self.participants.get(author) if isinstance(author, str) else None
            mine = seq is not None or author == self.participant
            name = self.name if mine else peer.name if peer is not None else "?"
            self._blame_changed(doc, op, LineBlame(self.author if mine else None, name, None, rev), now)
        old = client.text
        local, out = client.receive_op(rev, op, self.client_id if seq is not None else None, seq)
        if local:
            peer = self.participants.get(author) if isinstance(author, str) else None
            self._events.append(TextChanged(doc.path, old, local, client.text, peer.name if peer else None))
            for view in doc.views.values():
                view.sync.receive_remote(local)
                self._pump(doc, view, now)
        if out is not None:
            self._send_op(doc, out)

    def _user_ops(
        self, doc: Doc, view: View | None, user_ops: list[ops.Op], now: float, after: str | None = None
    ) -> None:
        """Edits the user made in *view*: to the hub, and to the other buffers of the document.
        *after*: the room's text after the one op of *user_ops*, if known already."""
        client = doc.client
        if client is None:
            return
        replaced = False
        for op in user_ops:
            clean = _shareable_op(op)
            given = after
            if clean is not op:
                # NUL or half a UTF-16 pair (a program's output, an editor's odd buffer), which
                # the hub refuses: it goes as U+FFFD, and the editor is brought to that below
                # (so the room's text is not the buffer's)
                op, replaced, given = clean, True, None
            old = client.text
            out = client.apply_local(op, given)
            self._events.append(TextChanged(doc.path, old, op, client.text, self.name))
            for other in doc.views.values():
                if other is not view:
                    other.sync.receive_remote(op)
            if out is not None:
                self._send_op(doc, out)
        limit = self.limits.get("maxDocumentBytes")
        if (
            limit is not None
            and len(client.text) * 4 > int(limit)
            and len(client.text.encode("utf-8")) > int(limit)
        ):
            self._fail(doc, self._too_large(doc.path, None, limit))
            return
        if replaced and view is not None:
            view.sync.reset(client.text)
            self._replaced(doc.path)
        for v in doc.views.values():
            self._pump(doc, v, now)
        self._schedule_check(doc, now)
        if not self.connected:
            self._unsent_changed(now)  # (the hub has it in ms when connected: no timer for that)

    def _send_op(self, doc: Doc, out: Outgoing) -> None:
        """Send an op now if the document is open here; otherwise it goes after the catch-up."""
        if self.connected and doc.state is DocState.OPEN:
            self._send({"type": "op", "path": doc.path, "rev": out.base_rev, "seq": out.seq, "op": out.op})

    def _resend(self, doc: Doc) -> None:
        if doc.client is None or doc.state is not DocState.OPEN:
            return
        out = doc.client.resend()
        if out is not None:
            self.stats["resends"] += 1
            self._send_op(doc, out)

    def _hub_error(self, doc: Doc | None, msg: dict[str, Any], now: float) -> None:
        code = _code(msg)
        seq = msg.get("seq")
        if doc is None or doc.client is None:
            logger.warning("hub error: %s", code)
            return
        client = doc.client
        if not isinstance(seq, int):
            if code == "unavailable" and doc.state is DocState.OPEN:
                # the hub lost the document (its task failed): read what we missed, later
                doc.resend_delay = _grow(doc.resend_delay, self.config.resend_min, self.config.resend_max)
                doc.open_after = now + doc.resend_delay
                self._timed.add(doc.path)
                self._catch_up(doc, now)
            else:
                logger.warning("hub error on %s: %s", doc.path, code)
            return
        if client.outstanding is None or seq != client.outstanding.seq:
            return  # about an op already settled
        self.stats["refused"] += 1
        if code in ("rate_limited", "unavailable"):
            doc.resend_delay = _grow(doc.resend_delay, self.config.resend_min, self.config.resend_max)
            doc.resend_at = now + doc.resend_delay * self._jitter()
            self._timed.add(doc.path)
            self._unsent_changed(now)  # (the hub cannot take it now: kept on disk meanwhile)
        elif code in ("revision_too_old", "not_open"):
            self._catch_up(doc, now)
        elif code == "forbidden":
            self.role = "viewer"
            client.unsend()
            client.discard_local()
            for view in doc.views.values():
                view.sync.reset(client.text)
                self._pump(doc, view, now)
            if not self._viewer_warned:
                self._viewer_warned = True
                self._events.append(
                    ShowMessage("pairls: the hub refused your edit: you are a viewer in this room")
                )
            self._notify_status()
        elif code == "too_large":
            self._fail(doc, self._too_large(doc.path, None, self.limits.get("maxDocumentBytes")))
        else:
            client.unsend()
            self._heal(doc, f"the hub refused an op ({code})", now)

    def _catch_up(self, doc: Doc, now: float) -> None:
        """Read the ops we missed (``open since``), then re-send what was in flight."""
        doc.need = "since"
        doc.held = []
        self.stats["catchups"] += 1
        if doc.state is DocState.OPEN:
            self._set_state(doc, DocState.NEW)
        self._enqueue(doc, front=True)
        self._pump_opens(now)

    def _heal(self, doc: Doc, reason: str, now: float) -> None:
        """Last resort: read the hub's text whole; our unacknowledged changes are rebased onto it.

        An op still in flight may be committed: its fate comes first (the
        open is a catch-up then, which reports it), the whole read after.
        """
        self._count_heal(doc, reason)
        assert doc.client is not None
        doc.client.hold()
        doc.need = "full"
        doc.held = []
        if doc.state is DocState.OPEN:
            self._set_state(doc, DocState.NEW)
        self._enqueue(doc, front=True)
        self._pump_opens(now)

    def _count_heal(self, doc: Doc, reason: str) -> None:
        self.heals += 1
        doc.heals += 1
        logger.warning("healing %s (heal #%d): %s", doc.path, self.heals, reason)
        self._events.append(Log(f"pairls: healed {doc.path}: {reason}"))

    def _schedule_check(self, doc: Doc, now: float) -> None:
        if doc.views:
            doc.check_at = now + self.config.check_after
            self._timed.add(doc.path)

    def _check(self, doc: Doc, now: float) -> None:
        client = doc.client
        if client is None or doc.state is not DocState.OPEN or client.unacknowledged or not self.connected:
            return
        self._request({"type": "digest", "path": doc.path}, "digest", path=doc.path)

    def _digest(self, doc: Doc, msg: dict[str, Any], now: float) -> None:
        client = doc.client
        if client is None or doc.state is not DocState.OPEN:
            return
        rev = msg.get("rev")
        if client.unacknowledged:
            return  # things moved on; a later check tells
        if type(rev) is int and rev < client.rev:
            # the hub has lost revisions we saw (a restored database): no op will come to
            # bring us back to its text, so read it whole
            self._heal(doc, "the hub is at a revision older than ours", now)
            return
        if rev != client.rev:
            return  # ops on their way; a later check tells
        if doc.sha256() != msg.get("sha256"):
            self._heal(doc, "content hash differs from the hub's", now)

    # == internals: the editor ======================================================================

    def _pump(self, doc: Doc, view: View, now: float) -> None:
        """Send the editor what it has not shown yet, one applyEdit at a time."""
        if self._batching:
            # several hub ops at once (a catch-up, a frame of a batch): one edit for all
            self._to_pump.add(view.uri)
            return
        if view.applying or view.refused is not None:
            return
        edit = view.sync.edit_to_send()
        if edit is None:
            return
        view.applying = True
        self._events.append(ApplyEdit(view.uri, edit))

    # == internals: people ==========================================================================

    def _path_of(self, msg: dict[str, Any]) -> str | None:
        """The message's ``path`` if it has the protocol's shape; else None, counted (a hub
        that sends ``../x`` or ``/etc/x`` gets nothing done with it)."""
        path = msg.get("path")
        if path is None:
            return None
        if isinstance(path, str) and valid_path(path):
            return path
        self.stats["bad_paths"] += 1
        return None

    def _participant(self, p: dict[str, Any]) -> Participant:
        pid = str(p.get("id"))[:64]
        old = self.participants.get(pid)
        if old is not None:
            return old
        color = COLORS[len(self.participants) % len(COLORS)]
        part = Participant(pid, display_name(p.get("name")), str(p.get("role", "editor"))[:16], color)
        self.participants[pid] = part
        return part

    def _participant_changed(self, p: dict[str, Any]) -> None:
        """The owner gave someone (maybe us) another role: it takes effect at once."""
        role = p.get("role")
        if role not in ("editor", "viewer"):
            return
        pid = str(p.get("id"))
        part = self.participants.get(pid) or self._participant(p)
        part.role = role
        if pid == self.participant and self.role != role and self.role != "owner":
            self.role = role
            if role == "viewer":
                # what we typed and the hub has not taken yet is refused (forbidden) and undone
                self._viewer_warned = True
                self._events.append(
                    ShowMessage("pairls: the room's owner made you a viewer: your edits are no longer shared")
                )
            else:
                self._viewer_warned = False
                self._events.append(
                    ShowMessage("pairls: the room's owner made you an editor: your edits are shared")
                )
            self._notify_status()
        self._participants_changed()

    def _participants_changed(self) -> None:
        self._events.append(Notify("pairls/participants", {"participants": self.participants_list()}))

    def _presence_received(self, msg: dict[str, Any]) -> None:
        pid = msg.get("participant")
        path = self._path_of(msg)
        rev = msg.get("rev")
        ranges = msg.get("ranges")
        if not isinstance(pid, str) or path is None or type(rev) is not int:
            return
        if not isinstance(ranges, list):
            return
        clean = []
        for r in ranges[:64]:
            if isinstance(r, list) and len(r) == 2 and all(type(x) is int and x >= 0 for x in r):
                clean.append([r[0], r[1]])
        part = self.participants.get(pid) or self._participant({"id": pid, "name": msg.get("name", "?")})
        old_path = part.path
        part.path, part.rev, part.ranges = path, rev, clean
        doc = self.docs.get(path)
        if doc is not None and doc.client is not None and rev < doc.client.rev:
            self._bring_up(doc, part)
        if old_path is not None and old_path != path:
            self._cursors_changed(old_path)
        self._cursors_changed(path)
        if self.follow == pid:
            self._follow_moved(part)

    def _move_cursors(self, doc: Doc, rev: int, op: ops.Op, author: str | None) -> None:
        """A hub op of *doc* at *rev* (ours too, when acknowledged): cursors at the revision
        before it move with it, and it is kept for cursors that come later (:meth:`_bring_up`)."""
        recent = doc.recent
        size = sum(len(c) for c in op if type(c) is str)
        if (recent and recent[-1][0] != rev - 1) or size > RECENT_CHARS:
            # a revision we did not see go by (a catch-up, a fresh text), or one too big to keep
            recent.clear()
            doc.recent_chars = 0
        if size <= RECENT_CHARS:
            recent.append((rev, op, author, size))
            doc.recent_chars += size
            while len(recent) > RECENT_REVS or doc.recent_chars > RECENT_CHARS:
                doc.recent_chars -= recent.popleft()[3]
        moved = False
        for p in self.participants.values():
            if p.path != doc.path or p.rev != rev - 1:
                continue
            mine = p.id == author
            p.ranges = _move_ranges(p.ranges, op, mine)
            p.rev = rev
            moved = True
        if moved:
            self._cursors_changed(doc.path)

    def _bring_up(self, doc: Doc, p: Participant) -> None:
        """*p*'s cursor is at a revision before ours (its presence came after ops of later
        revisions): moved past those ops as if it had come in time, its own inserts pushing
        it on.  Older than the revisions kept, it stays where it is until its next
        presence (counted)."""
        client = doc.client
        assert client is not None
        recent = doc.recent
        if not recent or recent[0][0] > p.rev + 1 or recent[-1][0] != client.rev:
            self.stats["cursors_too_old"] += 1
            return
        for rev, op, author, _ in recent:
            if rev > p.rev:
                mine = p.id == author
                p.ranges = _move_ranges(p.ranges, op, mine)
                p.rev = rev

    def _to_editor(self, doc: Doc, view: View, p: Participant, pos: int) -> int:
        """A peer's cursor (hub text at ``p.rev``) in the buffer's text."""
        client = doc.client
        assert client is not None
        pos = min(pos, client.shadow_length) if p.rev == client.rev else pos
        for op in (client.outstanding.op if client.outstanding else None, client.buffer):
            if op:
                pos = ops.transform_index(pos, op)
        pos = min(pos, len(client.text))
        return view.sync.to_editor(pos)

    def _cursors_changed(self, path: str) -> None:
        """Peers' cursors in *path* moved: the editor hears of it once, at the end of the step
        (an op and a presence in one frame move them twice)."""
        doc = self.docs.get(path)
        if doc is None or not doc.views:
            return
        self._cursors_dirty[path] = None
        if self._refresh_due is None:
            self._refresh_due = self._refresh_at + self.config.refresh_interval

    def _notify_cursors(self, path: str) -> None:
        doc = self.docs.get(path)
        if doc is None:
            return
        for view in doc.views.values():
            cursors = [
                {
                    "participantId": p.id,
                    "name": p.name,
                    "color": p.color,
                    "ranges": [
                        {"start": {"line": a[0], "character": a[1]}, "end": {"line": h[0], "character": h[1]}}
                        for a, h in ranges
                    ],
                }
                for p, ranges in self.cursors(view.uri)
            ]
            self._events.append(Notify("pairls/cursors", {"uri": view.uri, "cursors": cursors}))

    def _follow_moved(self, p: Participant) -> None:
        if p.path is None:
            return
        doc = self.docs.get(p.path)
        uri = next(iter(doc.views), None) if doc is not None else None
        selection = None
        if uri is not None and doc is not None and p.ranges:
            for part, ranges in self.cursors(uri):
                if part is p and ranges:
                    selection = ranges[0]
        elif doc is not None and doc.client is not None and p.ranges:
            # no buffer here yet: where it is in the room's text, which the file opens with
            idx = LineIndex.of(doc.client.text)
            anchor, head = (min(x, len(doc.client.text)) for x in p.ranges[0])
            selection = (idx.position(anchor, self.encoding), idx.position(head, self.encoding))
        self._events.append(FollowTo(p.path, uri, selection, p.name))

    def _flush_presence(self, now: float) -> None:
        if self._presence is None or now < (self._presence_due or 0.0):
            return
        self._presence_due = None
        if not self.connected:
            return
        path, rev, ranges = self._presence
        doc = self.docs.get(path)
        self._presence = None
        if doc is None or doc.state is not DocState.OPEN or doc.client is None:
            return
        shown = self._shown
        if self._presence_implied and shown is not None and shown[0] == path and shown[1] == doc.client.rev:
            # what the peers hold now, at the newest revision (the hub's copy for newcomers)
            rev, ranges = shown[1], shown[2]
        self._presence_at = now
        self._shown = (path, rev, ranges)
        self._send({"type": "presence", "path": path, "rev": rev, "ranges": ranges})

    # == internals: misc =============================================================================

    def _done(self, ticket: int, result: dict[str, Any] | None = None, error: str | None = None) -> None:
        self._events.append(Done(ticket, result, error))

    def _notify_status(self) -> None:
        self._events.append(Notify("pairls/status", self.status()))


#: control characters and the bidirectional overrides and isolates, which can make a name
#: read as something else in the editor
_UNSAFE_NAME = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _shareable_op(op: ops.Op) -> ops.Op:
    """*op* with the text it inserts made :func:`~collab_core.wire.shareable` (the same op, if
    it needed nothing: the keystroke's way)."""
    for c in op:
        if type(c) is str and bad_text(c):
            return [shareable(c) if type(c) is str else c for c in op]
    return op


def display_name(name: object) -> str:
    """A peer's name as the editor shows it: text, without control or direction-changing
    characters, at most 64 characters."""
    text = _UNSAFE_NAME.sub("", name if isinstance(name, str) else "").strip()[:64]
    return text or "?"


#: the hub's limits (``welcome.limits``) the room paces and cuts by
HUB_LIMITS = (
    "maxMessageBytes",
    "maxDocumentBytes",
    "maxOpComponents",
    "rate",
    "burst",
    "maxDocumentsPerRoom",
)


def hub_limits(raw: object) -> dict[str, int | float]:
    """What a ``welcome``'s *raw* limits say that the room can go by: each a positive, finite
    number of at most 2**53 under one of :data:`HUB_LIMITS`' names.  A limit said otherwise
    (NaN, a string, a bool, -1) keeps what the room had, as if the hub had not said it."""
    if not isinstance(raw, dict):
        return {}
    out: dict[str, int | float] = {}
    for name in HUB_LIMITS:
        value = raw.get(name)
        if isinstance(value, int | float) and type(value) is not bool and 0 < value <= 2**53:
            out[name] = value  # (NaN compares false)
    return out


def _grow(delay: float, low: float, high: float) -> float:
    return min(high, max(low, delay * 2))


def _explain(code: str) -> str:
    return {
        "bad_invite": "the invite is not valid for this room (check that it was copied whole)",
        "no_such_room": "that room does not exist on this hub",
        "forbidden": "your role in this room does not allow that",
        "document_exists": "a document with that path already exists in the room",
        "no_such_document": "no such document in the room",
        "bad_path": "that path cannot be shared",
        "too_large": "it is larger than the hub allows",
        "quota_exceeded": "this hub has as many rooms as it allows; ask whoever runs it",
        "bad_token": (
            "this hub needs its create-room token: set createToken in initializationOptions "
            "or PAIRLS_CREATE_TOKEN, or pass {token} to pairls.createRoom"
        ),
        "unavailable": "the hub is busy or shutting down; try again",
        "removed": "the room's owner removed you or withdrew this invite; ask them for a new invite",
        "no_such_participant": "no such participant in the room",
        "bad_answer": "the hub's answer made no sense (is it a pairls-hub?)",
    }.get(code, f"the hub refused the request ({code})")


#: the most changes one history page may hold (the hub's limit)
MAX_HISTORY_LIMIT = 500
_AUTHOR_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _history_error(code: str, what: str) -> str:
    """A hub's refusal of a history request, in words."""
    if code == "nothing_to_undo":
        return "Nothing of yours to undo in this document"
    if code == "nothing_to_redo":
        return "Nothing of yours to redo in this document"
    if code == "forbidden" and what in ("undo", "redo"):
        return "viewers cannot undo or redo changes"
    if code == "unknown_type":
        return "this hub keeps no history (it runs an older pairls-hub); ask whoever runs it to update it"
    if code == "bad_message" and what == "revision":
        return "the document has no such revision"
    return _explain(code)


#: an error code as the protocol spells them (docs/protocol.md, "Errors")
_CODE = re.compile(r"[a-z_]{1,40}")


def _code(msg: dict[str, Any]) -> str:
    """A hub error's code, or ``?`` if it is not one: it goes into the log and before the
    user (:func:`_explain`), where a hub's 5,000 characters or line breaks do not belong."""
    code = msg.get("code")
    return code if isinstance(code, str) and _CODE.fullmatch(code) else "?"


def _list(value: object) -> list[Any]:
    """*value* if the hub sent a list there, else nothing."""
    return value if isinstance(value, list) else []


def _author(value: object) -> str | None:
    return value if isinstance(value, str) and _AUTHOR_RE.fullmatch(value) else None


def _time(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 40 and value.isprintable() else None


def _count(value: object) -> int | None:
    return value if type(value) is int and 0 <= value <= 2**53 else None


def _clean_change(c: object) -> dict[str, Any] | None:
    """One entry of a hub's ``history`` answer, checked and cleaned (None: not one)."""
    if not isinstance(c, dict):
        return None
    out: dict[str, Any] = {}
    for key in ("rev", "firstRev", "inserted", "deleted", "line"):
        n = _count(c.get(key))
        if n is None:
            return None
        out[key] = n
    out["author"] = _author(c.get("author"))
    out["name"] = "" if c.get("name") == "" else display_name(c.get("name"))
    out["time"] = _time(c.get("time"))
    if c.get("kind") in ("undo", "redo"):
        out["kind"] = c["kind"]
        toggles = _count(c.get("toggles"))
        if toggles is not None:
            out["toggles"] = toggles
    return out


def _clean_blame(lines: object, count: int, head: int) -> list[LineBlame] | None:
    """A hub's ``blame`` lines, checked (*count* of them, revisions up to *head*), or None."""
    if not isinstance(lines, list) or len(lines) != count:
        return None
    out = []
    names: dict[object, str] = {}  # (a document's lines share a few names: clean each once)
    # (and many lines one blame: kept once, a big document's blame is a list of references)
    seen: dict[tuple[str | None, str, str | None, int], LineBlame] = {}
    for line in lines:
        if not isinstance(line, dict):
            return None
        rev = _count(line.get("rev"))
        if rev is None or rev > head:
            return None
        raw = line.get("name")
        name = names.get(raw) if isinstance(raw, str) else None
        if name is None:
            # ("": nobody, the text a document was created with before the hub kept creators)
            name = "" if raw == "" else display_name(raw)
            if isinstance(raw, str):
                names[raw] = name
        key = (_author(line.get("author")), name, _time(line.get("time")), rev)
        blame = seen.get(key)
        if blame is None:
            blame = seen[key] = LineBlame(*key)
        out.append(blame)
    return out
