"""The per-document sequencer: the hub's half of server-ordered OT (sans-I/O).

A :class:`Sequencer` holds one document's text at the last *committed*
revision plus the ops sequenced since but not yet committed (*pending*).
Feeding it a :class:`Submission` (an op with the revision it was made
against) gives back one of:

* :class:`Sequenced`: the op transformed past everything since its base,
  with its new revision; it is pending until :meth:`Sequencer.commit`;
* :class:`Duplicate`: the client already sent this (client id, seq); the
  answer is the revision it got then (``None`` when only the store knows);
* :class:`Refusal`: a coded refusal; nothing changed.

Ops the hub makes itself (an undo or a redo, built from the document's
history against the head) go in with :meth:`Sequencer.submit_made`: they are
never transformed, and after a rollback the hub makes them again from the new
head (:meth:`Sequencer.rollback` hands back their :class:`Made` request).
Each is kept under its requester's :func:`toggle_client` id and the request's
``key`` as its seq, so :meth:`Sequencer.duplicate` (and the log's uniqueness on
client id and seq) recognise a request sent again: it gets the revision of the
op it made then, never a second undo.

Attribution: each sequenced op carries its user, the time the hub sequenced
it (passed in), the change it belongs to (``change_rev``, decided by the
``group`` callback when the hub has one, else ``None``) and, for an undo or
redo, the change it ``toggles``.  The history the sequencer keeps for
transforming drops them.

Size limit: with ``max_bytes`` the sequencer refuses (``too_large``) an op
that would grow the document past that many bytes of UTF-8.  It keeps the
byte length of the text (and of each pending revision) up to date as ops
arrive, so the check costs what the op spans, never a pass over the document.

Transform budget: an op made against an old revision is transformed past
every op since, which costs about its components plus theirs for each of
them.  With ``transform_budget`` the sequencer refuses (``revision_too_old``)
an op whose transformation would cost more than that many units
(:meth:`Sequencer.transform_cost`); the client catches up and sends it again
against a newer revision.  The sequencer keeps a running count of the
history's components, so the estimate costs nothing.  :attr:`Sequencer.work`
counts the units spent, for the shell to let others run between large pieces
of work.

History: the sequencer keeps the newest ``history_limit`` ops (and, with
a :class:`HistoryLedger` such as the hub's
:class:`~collab_server.quotas.HistoryBudget`, reports each one's size in
bytes, :func:`history_cost`, which may evict the oldest ones hub-wide).  A
submission based before the oldest kept op is refused ``revision_too_old``.
Each kept op is one flat tuple of numbers and strings (:data:`Kept`), its op a
tuple too: the garbage collector stops tracking such a tuple at one of its
first collections, so a hub holding hundreds of thousands of ops does not make every
full collection walk them (three tracked objects an op made each full
collection about 15 times longer: docs/benchmarks.md, "The history and the
garbage collector").

Group commit: the shell takes :meth:`Sequencer.take_unsent` as one batch,
stores it, then calls :meth:`commit` or, if another hub won the race,
:meth:`rollback` (which hands back the original submissions to sequence
again after :meth:`receive_committed` has caught up).  No I/O, no clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Final, NewType, Protocol

from collab_core import ops
from collab_core.deferred import DeferredText
from collab_core.errors import ErrorCode, InvalidState

__all__ = [
    "MADE_CLIENT",
    "ClientId",
    "Duplicate",
    "Made",
    "Refusal",
    "Rev",
    "Sequenced",
    "Sequencer",
    "Submission",
    "history_cost",
    "toggle_client",
    "utf8_length",
]

Rev = NewType("Rev", int)
ClientId = NewType("ClientId", str)

#: the client id of the ops the hub made itself before undo and redo requests carried a key
#: (no client's: client ids have 8 to 64 characters); their seq is their revision
MADE_CLIENT = ClientId("")


def toggle_client(client_id: str) -> ClientId:
    """The client id the undos and redos *client_id* asks for are kept under, each with the
    request's ``key`` as its seq (no client's id: those have no colon)."""
    return ClientId("undo:" + client_id)


@dataclass(frozen=True, slots=True)
class Submission:
    """An op as a client sent it."""

    client_id: ClientId
    seq: int
    base_rev: Rev
    op: ops.Op
    author: str = ""
    #: who made it, across reconnects and room entries (the hub never sends it out)
    user: str = ""


@dataclass(frozen=True, slots=True)
class Made:
    """What asked for an op the hub made itself (an undo or redo); opaque to the sequencer."""

    request: object


@dataclass(frozen=True, slots=True)
class Sequenced:
    """An op in the document's order: applying it to revision ``rev - 1`` gives ``rev``."""

    rev: Rev
    op: ops.Op
    client_id: ClientId
    seq: int
    author: str = ""
    # The attribution rides along (an op is its rev, op, client, seq and author: equality
    # leaves these out, as the sequencer's own history drops them).
    #: who made it (see Submission.user)
    user: str = field(default="", compare=False)
    #: seconds since the epoch (a whole number of microseconds) when the hub sequenced it
    time: float = field(default=0.0, compare=False)
    #: the first revision of the change it belongs to; None: not decided when sequenced
    change_rev: int | None = field(default=None, compare=False)
    #: an undo or redo: the first revision of the change it undid or redid
    toggles: int | None = field(default=None, compare=False)
    #: what the client sent (or the hub made), kept so a rolled-back op can be sequenced again
    submission: Submission | Made | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The (client id, seq) was seen before; ``rev`` is its revision if known here."""

    client_id: ClientId
    seq: int
    rev: Rev | None
    committed: bool


@dataclass(frozen=True, slots=True)
class Refusal:
    code: ErrorCode
    submission: Submission


Outcome = Sequenced | Duplicate | Refusal

#: A kept op (the history's entry): its rev, op (a tuple), client id, seq and author, the
#: document's length before it, the history's components before it, its serial (serials grow
#: and are never reused) and its cost in bytes.  Only numbers, strings and a tuple of them:
#: untracked by the garbage collector (see the module docstring).
Kept = tuple[int, tuple[ops.Component, ...], str, int, str, int, int, int, int]
_REV: Final = 0
_OP: Final = 1
_CLIENT: Final = 2
_SEQ: Final = 3
_AUTHOR: Final = 4
_LENGTH: Final = 5
_COMPONENTS: Final = 6
_SERIAL: Final = 7
_COST: Final = 8


def _sequenced_of(e: Kept) -> Sequenced:
    return Sequenced(Rev(e[_REV]), list(e[_OP]), ClientId(e[_CLIENT]), e[_SEQ], e[_AUTHOR])


#: what transforming past one more op costs beyond the components of both, in
#: components (calling transform, reading the op): measured, about 8
TRANSFORM_STEP = 8


#: bytes a history entry costs besides its inserted text, as tracemalloc sees a
#: sequencer and its budget grow (CPython 3.11, 64-bit): the entry's tuple, the op's
#: tuple, the revision, seq, length, components, stamp and cost ints; and per op
#: component (a pointer and an int or a str's header).
#: tests/collab_server/test_document.py checks the estimate against tracemalloc.
HISTORY_ENTRY_BYTES = 320
HISTORY_COMPONENT_BYTES = 48


def history_cost(op: ops.Op, inserted: int | None = None) -> int:
    """What keeping *op* in the history costs, in bytes (approximate; inserted text as UTF-8).
    *inserted*: the UTF-8 length of what *op* inserts, if the caller has it (a 1 MiB paste's
    is a pass over it)."""
    if inserted is None:
        inserted = sum(utf8_length(c) for c in op if type(c) is str)
    return HISTORY_ENTRY_BYTES + HISTORY_COMPONENT_BYTES * len(op) + inserted


class HistoryLedger(Protocol):
    """Where a sequencer reports the bytes its history keeps (see collab_server.quotas.HistoryBudget)."""

    def register(self, holder: Sequencer) -> int: ...

    def stamp(self) -> int: ...

    def remembered(self, hid: int, serial: int, nbytes: int) -> None: ...

    def forgot(self, nbytes: int, count: int = 1) -> None: ...

    def detach(self, hid: int) -> None: ...


class Sequencer:
    """Orders the ops of one document.  See the module docstring."""

    def __init__(
        self,
        text: str,
        rev: int,
        *,
        history: list[Sequenced] | None = None,
        history_limit: int = 10_000,
        max_bytes: int | None = None,
        transform_budget: int | None = None,
        ledger: HistoryLedger | None = None,
    ) -> None:
        if history_limit < 1:
            raise ValueError("history_limit must be positive")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        if transform_budget is not None and transform_budget < 0:
            raise ValueError("transform_budget must not be negative")
        if history and history[-1].rev != rev:
            raise InvalidState("history does not end at rev")
        # the texts at committed_rev and at rev (ops are applied to them when they are read)
        self._committed = self._text = DeferredText(text)
        self.committed_rev = Rev(rev)
        self.rev = Rev(rev)
        self.history_limit = history_limit
        #: the largest document, in bytes of UTF-8, an op may leave (None: no limit)
        self.max_bytes = max_bytes
        #: the most units (see the module docstring) one op's transformation may cost
        self.transform_budget = transform_budget
        #: units of work done by :meth:`submit` so far (normalizing and transforming)
        self.work = 0
        #: ``group(user, op, time)``: the change an op about to get revision ``rev + 1`` joins
        #: (None: undecided); set by the hub while it has the document's history at ``rev``
        self.group: Callable[[str, ops.Op, float], int | None] | None = None
        # components of every op remembered so far (minus those rolled back);
        # each history entry keeps the count before it, so the components of
        # the last k entries are a subtraction
        self._components = 0
        #: UTF-8 length of :attr:`text` and of :attr:`committed_text`
        self.bytes = self.committed_bytes = utf8_length(text)
        # UTF-8 length of the text after each pending op, parallel to _pending
        self._pending_bytes: list[int] = []
        # ops with rev in (rev - len(history), rev], oldest first (Kept); the
        # component count before each makes the components of the last k a subtraction
        self._history: deque[Kept] = deque()
        self._next_serial = 1
        #: bytes the history costs (history_cost of each op kept)
        self.history_bytes = 0
        self._ledger = ledger
        self._ledger_id = ledger.register(self) if ledger is not None else 0
        self._pending: list[Sequenced] = []
        self._unsent = 0  # index into _pending of the first op not yet taken
        # client id -> (last seq, its rev); covers committed and pending ops
        self._clients: dict[ClientId, tuple[int, Rev]] = {}
        if history:
            # rebuild lengths backwards from the current text
            length = len(text)
            rebuilt: list[tuple[Sequenced, int]] = []
            for s in reversed(history):
                length = _length_before(s.op, length)
                rebuilt.append((s, length))
            for s, before in reversed(rebuilt):
                self._remember(s, before)

    # -- queries ---------------------------------------------------------

    @property
    def text(self) -> str:
        """The text at :attr:`rev` (pending ops included)."""
        return self._text.text

    @property
    def committed_text(self) -> str:
        """The text at :attr:`committed_rev`."""
        return self._committed.text

    @property
    def oldest_base(self) -> Rev:
        """The oldest base revision a submission may have."""
        return Rev(self.rev - len(self._history))

    @property
    def pending(self) -> list[Sequenced]:
        return list(self._pending)

    def knows_client(self, client_id: ClientId) -> bool:
        return client_id in self._clients

    def has_committed(self, client_id: ClientId, seq: int) -> bool:
        """True if the client's last op known here is committed and numbered *seq* or later.

        False when this sequencer does not know (a client whose last op was
        rolled back is forgotten until the store is asked again).
        """
        last = self._clients.get(client_id)
        return last is not None and seq <= last[0] and last[1] <= self.committed_rev

    def ops_since(self, rev: int) -> list[Sequenced] | None:
        """Committed ops after *rev*, or ``None`` if they are no longer kept here."""
        if rev > self.committed_rev:
            return None
        first = self.rev - len(self._history)
        if rev < first:
            return None
        committed = self.committed_rev
        return [_sequenced_of(e) for e in islice(self._history, rev - first, None) if e[_REV] <= committed]

    def transform_cost(self, base_rev: int, components: int) -> int:
        """Units it costs to transform an op of *components* components made
        against *base_rev* (kept in history) to the current revision."""
        k = self.rev - base_rev
        if k <= 0:
            return 0
        past = self._components - self._history[-k][_COMPONENTS]
        return k * (components + TRANSFORM_STEP) + past

    # -- input -----------------------------------------------------------

    def learn_client(self, client_id: ClientId, seq: int, rev: int | None) -> None:
        """Tell the sequencer the last (seq, rev) the store holds for *client_id*."""
        if client_id in self._clients:
            return
        if seq > 0 and rev is None:
            raise InvalidState("a known seq needs its rev")
        self._clients[client_id] = (seq, Rev(rev or 0))

    def duplicate(self, client_id: ClientId, seq: int) -> Duplicate | None:
        """The (client id, seq) was seen before (sequenced, or committed as the store said:
        :meth:`learn_client`): its revision if it is the client's last one, else ``None``
        (only the store knows).  None: it is new."""
        last = self._clients.get(client_id)
        if last is None or seq > last[0]:
            return None
        if seq == last[0]:
            return Duplicate(client_id, seq, last[1], last[1] <= self.committed_rev)
        return Duplicate(client_id, seq, None, True)

    def submit(self, sub: Submission, time: float = 0.0) -> Sequenced | Duplicate | Refusal:
        """Sequence one submission at *time* (see the module docstring)."""
        seen = self.duplicate(sub.client_id, sub.seq)
        if seen is not None:
            return seen
        if sub.base_rev > self.rev:
            return Refusal(ErrorCode.FUTURE_REVISION, sub)
        first = self.rev - len(self._history)
        if sub.base_rev < first:
            return Refusal(ErrorCode.REVISION_TOO_OLD, sub)
        if sub.base_rev == self.rev:
            length = self._text.length
        else:
            length = self._history[sub.base_rev - first][_LENGTH]
        cost = self.transform_cost(sub.base_rev, len(sub.op))
        if self.transform_budget is not None and cost > self.transform_budget:
            # catching up and sending it against a newer revision costs the hub less
            return Refusal(ErrorCode.REVISION_TOO_OLD, sub)
        self.work += len(sub.op)
        if ops.base_length(sub.op) > length:
            return Refusal(ErrorCode.INVALID_OP, sub)
        # canonical form: transform's tie-breaking depends on it (see client.apply_local)
        op = ops.normalize(sub.op)
        if sub.base_rev < self.rev:
            self.work += cost
            # index from the right: islice from the left walks the whole deque
            # (up to history_limit entries) to reach the few newest ops
            history = self._history
            for i in range(sub.base_rev - self.rev, 0):
                op, _ = ops.transform(op, history[i][_OP])
        inserted, deleted = _utf8_change(self._text, op)
        size = self.bytes + inserted - deleted
        if self.max_bytes is not None and size > self.max_bytes and size > self.bytes:
            # an op that shrinks (or keeps) an oversized document is still taken
            return Refusal(ErrorCode.TOO_LARGE, sub)
        try:
            text = self._text.then(op)
        except ops.InvalidOp:  # pragma: no cover - base_length check above
            return Refusal(ErrorCode.INVALID_OP, sub)
        change = self.group(sub.user, op, time) if self.group is not None else None
        seq = Sequenced(
            Rev(self.rev + 1), op, sub.client_id, sub.seq, sub.author, sub.user, time, change, None, sub
        )
        self._remember(seq, self._text.length, inserted)
        self._text = text
        self.bytes = size
        self.rev = seq.rev
        self._pending.append(seq)
        self._pending_bytes.append(size)
        return seq

    def submit_made(
        self,
        op: ops.Op,
        made: Made,
        *,
        client_id: ClientId,
        seq: int,
        author: str,
        user: str,
        time: float,
        toggles: int,
    ) -> Sequenced | ErrorCode:
        """Sequence an op the hub made against the head (an undo or redo of change *toggles*).

        It is kept as (*client_id*, *seq*): the requester's :func:`toggle_client` and
        the request's key, which the hub checked with :meth:`duplicate` first.
        ``too_large`` if it would grow the document past ``max_bytes``; nothing
        changes then.
        """
        if ops.base_length(op) > self._text.length:  # (a trailing retain may be left out)
            raise InvalidState("a made op must apply to the head")
        inserted, deleted = _utf8_change(self._text, op)
        size = self.bytes + inserted - deleted
        if self.max_bytes is not None and size > self.max_bytes and size > self.bytes:
            return ErrorCode.TOO_LARGE
        text = self._text.then(op)
        rev = Rev(self.rev + 1)
        out = Sequenced(rev, op, client_id, seq, author, user, time, None, toggles, made)
        self._remember(out, self._text.length, inserted)
        self._text = text
        self.bytes = size
        self.rev = rev
        self._pending.append(out)
        self._pending_bytes.append(size)
        return out

    def take_unsent(self) -> list[Sequenced]:
        """The pending ops not yet handed to the store, in order."""
        batch = self._pending[self._unsent :]
        self._unsent = len(self._pending)
        return batch

    def commit(self, rev: int) -> list[Sequenced]:
        """The store committed every pending op up to *rev*; returns them."""
        n = rev - self.committed_rev
        if n < 0 or n > self._unsent:
            raise InvalidState("commit of a revision that was not taken")
        done = self._pending[:n]
        del self._pending[:n]
        self._unsent -= n
        if done:
            self.committed_bytes = self._pending_bytes[n - 1]
            del self._pending_bytes[:n]
            self.committed_rev = Rev(rev)
            if not self._pending:
                self._committed = self._text
            else:
                text = self._committed
                for s in done:
                    text = text.then(s.op)
                self._committed = text
        return done

    def rollback(self) -> list[Submission | Made]:
        """Drop every pending op; returns their submissions (and made requests) to sequence again."""
        subs = [s.submission for s in self._pending if s.submission is not None]
        # history_limit may already have dropped the oldest pending ops
        for _ in range(min(len(self._pending), len(self._history))):
            entry = self._history.pop()
            self._components -= len(entry[_OP])
            self._forget(entry[_COST])
        self._pending.clear()
        self._pending_bytes.clear()
        self._unsent = 0
        self._text = self._committed
        self.bytes = self.committed_bytes
        self.rev = self.committed_rev
        self._clients = {c: v for c, v in self._clients.items() if v[1] <= self.rev}
        # clients whose last op was rolled back: forget them so the store is asked
        return subs

    def receive_committed(self, s: Sequenced) -> None:
        """An op another hub committed (read back from the store)."""
        if self._pending:
            raise InvalidState("roll back pending ops before receiving committed ones")
        if s.rev != self.rev + 1:
            raise InvalidState("committed op out of order")
        inserted, deleted = _utf8_change(self._text, s.op)
        size = self.bytes + inserted - deleted
        text = self._text.then(s.op)
        self._remember(s, self._text.length, inserted)
        self._text = self._committed = text
        self.bytes = self.committed_bytes = size
        self.rev = self.committed_rev = s.rev

    def _remember(self, s: Sequenced, length_before: int, inserted: int | None = None) -> None:
        """Keep *s* in the history (*inserted*: the UTF-8 length of its inserted text, if known)."""
        last = self._clients.get(s.client_id)
        if last is None or s.seq > last[0]:
            self._clients[s.client_id] = (s.seq, s.rev)
        if self._ledger is not None:
            serial = self._ledger.stamp()  # hub-wide: the budget's age order
        else:
            serial = self._next_serial
            self._next_serial += 1
        cost = history_cost(s.op, inserted)
        # the history only transforms and catches up: the submission (the op as the client
        # sent it, for a rollback) and the attribution stay with the pending op, not here
        op = tuple(s.op)
        self._history.append(
            (s.rev, op, s.client_id, s.seq, s.author, length_before, self._components, serial, cost)
        )
        self._components += len(op)
        self.history_bytes += cost
        if len(self._history) > self.history_limit:
            self._forget(self._history.popleft()[_COST])
        if self._ledger is not None:
            # last: the ledger may evict from this very history
            self._ledger.remembered(self._ledger_id, serial, cost)

    def _forget(self, cost: int, count: int = 1) -> None:
        self.history_bytes -= cost
        if self._ledger is not None:
            self._ledger.forgot(cost, count)

    # -- the history budget (HistoryHolder) ---------------------------------

    def oldest_history(self) -> int | None:
        history = self._history
        return history[0][_SERIAL] if history else None

    def evict_history_through(self, serial: int) -> int:
        """Drop the kept ops numbered up to *serial*, oldest first; returns how many."""
        history, n, freed = self._history, 0, 0
        while history and history[0][_SERIAL] <= serial:
            freed += history.popleft()[_COST]
            n += 1
        if n:
            self._forget(freed, n)
        return n

    def release_history(self) -> None:
        """The document is done with: drop the history and leave the ledger."""
        if self._history:
            self._forget(self.history_bytes, len(self._history))
        self._history.clear()
        self.history_bytes = 0
        if self._ledger is not None:
            self._ledger.detach(self._ledger_id)
            self._ledger = None


def _length_before(op: ops.Op, length_after: int) -> int:
    for c in op:
        if type(c) is str:
            length_after -= len(c)
        elif c < 0:  # type: ignore[operator]
            length_after -= c  # type: ignore[operator]
    return length_after


def utf8_length(text: str) -> int:
    """Bytes of *text* in UTF-8 (a lone surrogate counts the 3 bytes it would take)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def _utf8_change(text: DeferredText, op: ops.Op) -> tuple[int, int]:
    """The bytes of UTF-8 applying *op* to *text* inserts, and those it deletes.

    Looks only at the inserted strings and the deleted spans of *text* (without applying the
    ops it holds).
    """
    inserted = deleted = 0
    pos = 0
    for c in op:
        if type(c) is str:
            inserted += utf8_length(c)
        elif c > 0:  # type: ignore[operator]
            pos += c  # type: ignore[operator]
        else:
            end = pos - c  # type: ignore[operator]
            deleted += utf8_length(text.span(pos, end))
            pos = end
    return inserted, deleted
