"""A document's attribution index: who wrote what, blame, history and per-person undo.

The index keeps every character ever inserted into the document, in document
order, the deleted ones as tombstones (a CRDT-like view of the OT log).
Characters that share their attributes are stored together as *runs*, and
runs in *blocks* of at most :data:`MAX_RUNS`, with per-block visible lengths
and newline counts summed in Fenwick trees, so applying an op, finding a
line or a position costs O(log blocks + MAX_RUNS), not O(n).

Per run: the change that inserted it and the rev of each character (a run
typed keystroke by keystroke holds revs ``r0, r0+step, ...``), the changes
that deleted it, whether it is visible, and the rev that last changed its
visibility (insert, delete, undo, redo).

A **change** is a run of one user's ordinary ops in one place, each within
:data:`GAP` seconds of the previous one and touching where that one acted
(:meth:`DocumentHistory.group`), named by the rev of its first op.  Other
users' ops in between do not end it (their positions move it along); the
user's own undo or redo does.  Each change is active or undone; a character
is visible iff the change that inserted it is active and no active change
deleted it.  Undoing a change marks it undone, redoing it marks it active
again; the op either commits is the difference in visibility, an ordinary op
against the head (:meth:`~DocumentHistory.undo_op`,
:meth:`~DocumentHistory.redo_op`).  Every user has an undo list (their
active ordinary changes, oldest first) and a redo list (the changes they
undid since their last ordinary op, the next redo last); a press passes
over changes whose toggle would change nothing (marking them all the same)
and takes the first that changes something.  All state is derived from the
log in order: ``apply`` with the stored ``change_rev`` (or none: the index
decides it again) and ``toggles`` of every op rebuilds the same index.

Pure: no I/O, no clock (times are passed in, float seconds since the epoch),
no randomness.  Nothing here holds a lock; the hub's document task owns the
index.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from dataclasses import dataclass
from sys import getsizeof
from typing import NamedTuple

from collab_core import ops
from collab_core.errors import InvalidState
from collab_core.ops import Op

__all__ = [
    "GAP",
    "Change",
    "DocumentHistory",
    "HistoryMismatch",
    "HistorySize",
    "LineBlame",
]

#: seconds: an op more than this after the previous op of a user's change starts a new change
GAP = 1.0
#: a block is split in two when it holds more runs than this
MAX_RUNS = 64
#: inserted text is stored in runs of at most this many code points (splitting a run copies it)
CHUNK = 512


class HistoryMismatch(InvalidState):
    """An op given to :meth:`DocumentHistory.apply` does not fit the index.

    A toggle op that differs from what :meth:`~DocumentHistory.undo_op` or
    :meth:`~DocumentHistory.redo_op` computes, a rev out of sequence, an op
    reaching past the text, or a ``change_rev`` that names no open change of
    that user.  The index is left as it was.
    """


class HistorySize(NamedTuple):
    """:meth:`DocumentHistory.size`: revs, history entries (changes and toggles), runs, blocks,
    code points stored (deleted ones included) and about how many bytes all that takes."""

    revs: int
    changes: int
    runs: int
    blocks: int
    stored: int
    nbytes: int


# Bytes per item for HistorySize.nbytes, measured with tracemalloc on the automerge-paper trace
# (one user, two taking turns, two alternating every keystroke); tests/collab_core/test_history.py
# checks the estimate against tracemalloc.
_REV_BYTES = 12  # a user index and a time per rev
_RUN_BYTES = 150  # the run object, its text's header, its ints
_CHANGE_BYTES = 250  # the change object, its dict slot, its ints and float
_BLOCK_BYTES = 200  # the block object (its run list and change set are measured)


class LineBlame(NamedTuple):
    """Who last changed a line: the rev, its user (``""``: nobody) and its time."""

    rev: int
    user: str
    time: float


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the history (:meth:`DocumentHistory.changes`).

    ``rev`` is the rev of the change's last op, ``time`` its time;
    ``inserted`` and ``deleted`` count code points, net of the change's own
    ops; ``line`` is the 0-based line where it happened, in the text at its
    first rev.  ``kind`` is ``"edit"`` for a change of ordinary ops,
    ``"undo"`` or ``"redo"`` for a toggle op (``toggles``: the first rev of
    the change it undid or redid; ``first_rev == rev``).
    """

    rev: int
    first_rev: int
    user: str
    time: float
    inserted: int
    deleted: int
    line: int
    kind: str = "edit"
    toggles: int | None = None


class _Run:
    """Characters that share their attributes (see the module docstring)."""

    __slots__ = ("text", "ins", "r0", "step", "dels", "vis", "vr", "nl")

    def __init__(
        self, text: str, ins: int, r0: int, step: int, dels: tuple[int, ...], vis: bool, vr: int
    ) -> None:
        self.text = text
        #: the change (first rev) that inserted these characters
        self.ins = ins
        #: character k was inserted at rev r0 + k * step
        self.r0 = r0
        self.step = step
        #: the changes that deleted them, sorted
        self.dels = dels
        self.vis = vis
        #: the rev that last changed their visibility; -1: their insert (per character)
        self.vr = vr
        self.nl = text.count("\n")

    def split(self, k: int) -> _Run:
        """Keep characters [0, k) and return a new run of the rest."""
        text = self.text
        right = _Run(text[k:], self.ins, self.r0 + k * self.step, self.step, self.dels, self.vis, self.vr)
        self.text = text[:k]
        self.nl -= right.nl
        return right

    def rev_at(self, k: int) -> int:
        """The rev that last changed character k's visibility."""
        return self.vr if self.vr >= 0 else self.r0 + k * self.step


def _merge(a: _Run, b: _Run) -> bool:
    """Append *b* to *a* if that loses nothing blame needs; True if it did."""
    if a.ins != b.ins or a.vis != b.vis or a.dels != b.dels:
        return False
    la, lb = len(a.text), len(b.text)
    if la + lb > CHUNK:
        return False
    if a.vr >= 0 or b.vr >= 0:
        if a.vr != b.vr:
            # hidden runs without newlines are always counted together by blame: keep the max
            if a.vis or a.nl or b.nl or a.vr < 0 or b.vr < 0:
                return False
            a.vr = max(a.vr, b.vr)
    else:
        sa = a.step if la > 1 else -1
        sb = b.step if lb > 1 else -1
        s = sa if sa >= 0 else sb if sb >= 0 else b.r0 - a.r0
        if s < 0 or b.r0 != a.r0 + la * s or (sb >= 0 and sb != s):
            return False
        a.step = s
    a.text += b.text
    a.nl += b.nl
    return True


class _Block:
    __slots__ = ("runs", "vis", "nl", "chg")

    def __init__(self, runs: list[_Run]) -> None:
        self.runs = runs
        self.vis = 0
        self.nl = 0
        #: the changes that inserted or deleted something here (a superset, refreshed on split)
        self.chg: set[int] = set()
        self.recount()

    def recount(self) -> None:
        vis = nl = 0
        chg: set[int] = set()
        for r in self.runs:
            if r.vis:
                vis += len(r.text)
                nl += r.nl
            chg.add(r.ins)
            chg.update(r.dels)
        self.vis, self.nl, self.chg = vis, nl, chg


class _Change:
    """An entry of the history: a change of ordinary ops, or a toggle op (kind undo/redo)."""

    __slots__ = (
        "first_rev",
        "user",
        "rev",
        "time",
        "inserted",
        "deleted",
        "line",
        "active",
        "kind",
        "toggles",
        "shown",
    )

    def __init__(self, first_rev: int, user: str, time: float, line: int, kind: str = "edit") -> None:
        self.first_rev = first_rev
        self.user = user
        self.rev = first_rev
        self.time = time
        self.inserted = 0
        #: code points it inserted that are visible now
        self.shown = 0
        self.deleted = 0
        self.line = line
        self.active = True
        self.kind = kind
        self.toggles: int | None = None

    def public(self) -> Change:
        return Change(
            self.rev,
            self.first_rev,
            self.user,
            self.time,
            self.inserted,
            self.deleted,
            self.line,
            self.kind,
            self.toggles,
        )


class _Open:
    """A user's current change while it may still grow: where it is, in head positions."""

    __slots__ = ("change", "time", "lo", "hi")

    def __init__(self, change: int, time: float, lo: int, hi: int) -> None:
        self.change = change
        self.time = time
        self.lo = lo
        self.hi = hi


def _extent(op: Op) -> tuple[int, int, int] | None:
    """Where *op* acts: (first position, base position after its last insert/delete, the same in
    the new text); None for an op that changes nothing."""
    pos = out = 0
    lo = -1
    hi_b = hi_n = 0
    for c in op:
        if type(c) is str:
            if lo < 0:
                lo = pos
            out += len(c)
            hi_b, hi_n = pos, out
        elif c > 0:  # type: ignore[operator]
            pos += c  # type: ignore[operator]
            out += c  # type: ignore[operator]
        else:
            if lo < 0:
                lo = pos
            pos -= c  # type: ignore[operator]
            hi_b, hi_n = pos, out
    if lo < 0:
        return None
    return lo, hi_b, hi_n


class DocumentHistory:
    """The attribution index of one document, fed every committed op in rev order.

    ``DocumentHistory(text, user=creator, time=created)`` is rev 0.  Then the
    hub calls :meth:`group` as it sequences an ordinary op (and stores the
    answer with the op as ``change_rev``) and :meth:`apply` for every op
    committed, ordinary or toggle (``toggles``); :meth:`undo_op` and
    :meth:`redo_op` build the op an undo or redo commits; :meth:`blame` and
    :meth:`changes` answer the history requests.
    """

    def __init__(self, text: str = "", *, user: str = "", time: float = 0.0) -> None:
        self.rev = 0
        self._created_time = time
        self._users: list[str] = [user]
        self._user_ix: dict[str, int] = {user: 0}
        #: per rev: who made it and when (blame reads them for the rev of a character)
        self._rev_user = array("I", [0])
        self._rev_time = array("d", [time])
        runs = [_Run(text[i : i + CHUNK], 0, 0, 0, (), True, -1) for i in range(0, len(text), CHUNK)]
        self._blocks = [_Block(runs[i : i + MAX_RUNS // 2]) for i in range(0, len(runs), MAX_RUNS // 2)]
        if not self._blocks:
            self._blocks.append(_Block([]))
        self._fv: list[int] = []  # Fenwick trees over the blocks' visible lengths and newlines
        self._fn: list[int] = []
        self._top = 1
        self._rebuild()
        self._vis_total = len(text)
        self._nl_total = text.count("\n")
        # change 0: the text the document was created with (never on an undo list)
        c0 = _Change(0, user, time, 0)
        c0.inserted = c0.shown = len(text)
        self._changes: dict[int, _Change] = {0: c0}
        #: the history in the order of the entries' last revs: (last rev, first rev) pairs,
        #: appended as ops come; an entry that moved on leaves a stale pair behind
        self._hist_revs = array("q")
        self._hist_keys = array("q")
        self._hist_stale = 0
        self._undo: dict[str, list[int]] = {}
        self._redo: dict[str, list[int]] = {}
        self._open: dict[str, _Open] = {}
        #: one tuple for every set of deleting changes the runs have (runs share them)
        self._dels: dict[tuple[int, ...], tuple[int, ...]] = {}
        #: code points stored, tombstones included
        self._stored = len(text)
        #: where the last ordinary op ended: (its block's run list, a run, the visible characters
        #: before that run in the block); valid until the runs before it change
        self._hit: tuple[list[_Run], int, int] | None = None

    # -- public API ------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The visible text (O(n): for tests and checks)."""
        return "".join(r.text for b in self._blocks for r in b.runs if r.vis)

    @property
    def length(self) -> int:
        """Code points of the visible text."""
        return self._vis_total

    @property
    def line_count(self) -> int:
        return self._nl_total + 1

    def stacks(self, user: str) -> tuple[list[int], list[int]]:
        """*user*'s undo list (active changes, oldest first) and redo list (next redo last)."""
        return list(self._undo.get(user, ())), list(self._redo.get(user, ()))

    def size(self) -> HistorySize:
        """How big the index is, with an estimate of its memory in bytes (O(blocks))."""
        blocks = self._blocks
        runs = 0
        nbytes = _REV_BYTES * (self.rev + 1) + 16 * len(self._hist_revs) + self._stored
        nbytes += _CHANGE_BYTES * len(self._changes) + 80 * len(self._dels)
        for b in blocks:
            runs += len(b.runs)
            nbytes += _BLOCK_BYTES + getsizeof(b.runs) + getsizeof(b.chg)
        nbytes += _RUN_BYTES * runs
        return HistorySize(self.rev, len(self._changes), runs, len(blocks), self._stored, nbytes)

    def is_active(self, change: int) -> bool:
        ch = self._changes.get(change)
        return ch is not None and ch.active

    def group(self, user: str, op: Op, time: float) -> int:
        """The change the ordinary *op* by *user* at *time* would join if it were the next rev:
        the first rev of the user's current change if *op* continues it (within :data:`GAP`
        seconds of its last op and touching what that op touched: where its text or its
        deletion is, ends included), else ``rev + 1``."""
        return self._group(user, _extent(op), time)

    def _group(self, user: str, ext: tuple[int, int, int] | None, time: float) -> int:
        o = self._open.get(user)
        if o is None or not (0.0 <= time - o.time <= GAP):
            return self.rev + 1
        if ext is None:
            return o.change
        lo, hi_b, _ = ext
        if lo <= o.hi and hi_b >= o.lo:
            return o.change
        return self.rev + 1

    def apply(
        self,
        rev: int,
        op: Op,
        *,
        user: str,
        time: float,
        change_rev: int | None = None,
        toggles: int | None = None,
    ) -> None:
        """Take the op committed at *rev* (which must be ``self.rev + 1``).

        An ordinary op joins change *change_rev* (*rev* itself when it starts
        one; ``None``: :meth:`group` decides).  A toggle op (*toggles*: the
        first rev of the change it undoes or redoes) must be exactly what
        :meth:`undo_op` or :meth:`redo_op` answers for *user* now.  Raises
        :class:`HistoryMismatch` (and changes nothing) when the op does not fit.
        """
        if rev != self.rev + 1:
            raise HistoryMismatch(f"rev {rev} after {self.rev}")
        if ops.base_length(op) > self._vis_total:
            raise HistoryMismatch("op reaches past the text")
        if toggles is not None:
            self._apply_toggle(rev, op, user, time, toggles)
            return
        ext = _extent(op)
        cr = self._group(user, ext, time) if change_rev is None else change_rev
        if cr == rev:
            ch = _Change(rev, user, time, self._line_at(ext[0]) if ext else 0)
            self._changes[rev] = ch
            self._undo.setdefault(user, []).append(rev)
        else:
            found = self._changes.get(cr)
            if found is None or found.kind != "edit" or found.user != user or not found.active or cr == 0:
                raise HistoryMismatch(f"op {rev} joins change {cr}, not an active change of its user")
            ch = found
            ch.rev = rev
            ch.time = time
        self._listed(cr, rev)
        redo = self._redo.get(user)
        if redo:
            redo.clear()
        self._record_rev(user, time)
        self._edit(rev, op, ch)
        self.rev = rev
        self._track(user, cr, op, ext, time)

    def undo_op(self, user: str) -> tuple[int, Op] | None:
        """What *user*'s undo would commit now: (first rev of the change it undoes, the op
        against the head), or None when nothing of theirs is left to undo.  Changes whose undo
        would change nothing are passed over (:meth:`apply` marks them undone too)."""
        plan = self._plan(user, undo=True)
        return None if plan is None else (plan[0], plan[1])

    def redo_op(self, user: str) -> tuple[int, Op] | None:
        """What *user*'s redo would commit now, like :meth:`undo_op`."""
        plan = self._plan(user, undo=False)
        return None if plan is None else (plan[0], plan[1])

    def blame(self, start_line: int = 0, end_line: int | None = None) -> list[LineBlame]:
        """Who last changed each line in [start_line, end_line) (0-based; None: to the end).

        A line's rev is the latest rev that changed the visibility of one of
        its characters: its visible ones (its newline included), the hidden
        ones after its first visible character (up to its newline; for the
        last line, to the end), and the hidden ones just before its first
        visible character back to the previous newline, visible or hidden
        (what was deleted at the line's start; a hidden newline ends that
        stretch: a deleted whole line does not mark the next one).  The last
        line, when empty, also counts the newline before it.  An empty
        document that never held anything is rev 0 with no user.
        """
        lines = self._nl_total + 1
        end = lines if end_line is None else min(end_line, lines)
        if start_line < 0 or start_line >= end:
            return []
        users, ru, rt = self._users, self._rev_user, self._rev_time
        made: dict[int, LineBlame] = {-1: LineBlame(0, "", self._created_time)}
        out = []
        for r in self._blame_revs(start_line, end - start_line):
            b = made.get(r)
            if b is None:
                b = made[r] = LineBlame(r, users[ru[r]], rt[r])
            out.append(b)
        return out

    def changes(self, before: int | None = None, limit: int = 50) -> tuple[list[Change], bool]:
        """The history, newest first by the rev of each entry's last op: at most *limit* entries
        whose last rev is below *before* (None: all), and whether there are more."""
        out: list[Change] = []
        changes = self._changes
        revs, keys = self._hist_revs, self._hist_keys
        j = (len(revs) if before is None else bisect_left(revs, before)) - 1
        while j >= 0:
            ch = changes[keys[j]]
            if ch.rev == revs[j]:  # else a stale pair: the change went on later
                if len(out) >= limit:
                    return out, True
                out.append(ch.public())
            j -= 1
        return out, False

    def _listed(self, key: int, rev: int) -> None:
        """History entry *key* has an op at *rev* (the newest rev)."""
        revs, keys = self._hist_revs, self._hist_keys
        if keys and keys[-1] == key:
            revs[-1] = rev  # typing on with nobody in between: no stale pair
            return
        if key != rev:
            self._hist_stale += 1
        revs.append(rev)
        keys.append(key)
        if self._hist_stale > 1024 and 2 * self._hist_stale > len(keys):
            changes = self._changes
            live = [(r, k) for r, k in zip(revs, keys, strict=True) if changes[k].rev == r]
            self._hist_revs = array("q", [r for r, _ in live])
            self._hist_keys = array("q", [k for _, k in live])
            self._hist_stale = 0

    def check_invariants(self) -> None:
        """Assert the index's own bookkeeping (for tests; O(n))."""
        shown: dict[int, int] = {}
        vis_total = nl_total = 0
        for bi, b in enumerate(self._blocks):
            assert b.runs or len(self._blocks) == 1
            vis = nl = 0
            for r in b.runs:
                assert r.text and len(r.text) <= CHUNK and r.nl == r.text.count("\n")
                assert r.dels == tuple(sorted(set(r.dels)))
                assert r.ins in b.chg and b.chg.issuperset(r.dels)
                changes = self._changes
                want = changes[r.ins].active and not any(changes[d].active for d in r.dels)
                assert r.vis == want and (r.vis or r.vr >= 0)
                if r.vis:
                    vis += len(r.text)
                    nl += r.nl
                    shown[r.ins] = shown.get(r.ins, 0) + len(r.text)
            assert (b.vis, b.nl) == (vis, nl)
            assert self._prefix(self._fv, bi) == vis_total and self._prefix(self._fn, bi) == nl_total
            vis_total += vis
            nl_total += nl
        assert (self._vis_total, self._nl_total) == (vis_total, nl_total)
        for key, ch in self._changes.items():
            assert ch.shown == shown.get(key, 0)
        assert len(self._rev_user) == len(self._rev_time) == self.rev + 1

    # -- ordinary ops ----------------------------------------------------------------------

    def _record_rev(self, user: str, time: float) -> None:
        ix = self._user_ix.get(user)
        if ix is None:
            ix = self._user_ix[user] = len(self._users)
            self._users.append(user)
        self._rev_user.append(ix)
        self._rev_time.append(time)

    def _edit(self, rev: int, op: Op, ch: _Change) -> None:
        """Apply the ordinary *op* of change *ch*, walking a cursor forward through the index.

        The cursor (block, run, offset) is right after the visible character
        ``vp - 1`` (at the very start when ``vp == 0``) and before any tombstones
        that follow it: an insert goes there.  A retain that leaves the cursor's
        block jumps with the Fenwick tree; blocks that grew past MAX_RUNS are
        split once the op is done (the block indices stay put meanwhile).
        """
        blocks = self._blocks
        c = ch.first_rev
        bi = ri = off = 0
        bpre = 0  # visible characters of block bi before the cursor
        vp = 0
        grown: list[int] = []
        hit = self._hit  # valid until this op changes something
        for comp in op:
            if type(comp) is str:
                hit = None
                b = blocks[bi]
                runs = b.runs
                k = len(comp)
                if off == 0:  # the very start of the document
                    left = None
                    at = ri
                else:
                    left = runs[ri]
                    if off < len(left.text):
                        runs.insert(ri + 1, left.split(off))
                    at = ri + 1
                if k == 1 and left is not None and left.ins == c and left.vis and left.vr < 0:
                    new = _Run(comp, c, rev, 0, (), True, -1)
                    if _merge(left, new):
                        self._stored += 1
                        off = len(left.text)
                        bpre += 1
                        vp += 1
                        self._grew(bi, b, 1, new.nl)
                        ch.inserted += 1
                        ch.shown += 1
                        continue
                pieces = [_Run(comp[i : i + CHUNK], c, rev, 0, (), True, -1) for i in range(0, k, CHUNK)]
                self._stored += k
                runs[at:at] = pieces
                ri = at + len(pieces) - 1
                off = len(pieces[-1].text)
                bpre += k
                vp += k
                b.chg.add(c)
                self._grew(bi, b, k, sum(r.nl for r in pieces))
                ch.inserted += k
                ch.shown += k
                if len(runs) > MAX_RUNS:
                    grown.append(bi)
            elif comp > 0:  # type: ignore[operator]
                n: int = comp  # type: ignore[assignment]
                b = blocks[bi]
                if n > b.vis - bpre:
                    # past this block: land right after the character vp + n - 1
                    q = vp + n - 1
                    bi, start = self._find_vis(q)
                    k = q - start
                    bpre = k + 1
                    runs = blocks[bi].runs
                    ri = 0
                    if hit is not None and hit[0] is runs and k >= hit[2]:
                        # typing on where the last op ended: start from there
                        ri = hit[1]
                        k -= hit[2]
                    while True:
                        r = runs[ri]
                        if r.vis:
                            if k < len(r.text):
                                break
                            k -= len(r.text)
                        ri += 1
                    off = k + 1
                else:
                    runs = b.runs
                    bpre += n
                    while n:
                        r = runs[ri]
                        if not r.vis or off == len(r.text):
                            ri += 1
                            off = 0
                            continue
                        avail = len(r.text) - off
                        if n <= avail:
                            off += n
                            break
                        n -= avail
                        ri += 1
                        off = 0
                vp += comp  # type: ignore[operator]
            else:
                hit = None
                self._hide(bi, ri, off, -comp, rev, ch, grown)  # type: ignore[operator]
        # the cursor's run, and the visible characters before it in its block
        self._hit = (blocks[bi].runs, ri, bpre - off) if off else None
        if grown:
            self._hit = None
            for i in sorted(set(grown), reverse=True):
                runs = blocks[i].runs
                if len(runs) > MAX_RUNS:
                    half = MAX_RUNS // 2
                    blocks[i : i + 1] = [_Block(runs[j : j + half]) for j in range(0, len(runs), half)]
            self._rebuild()

    def _grew(self, bi: int, b: _Block, dvis: int, dnl: int) -> None:
        b.vis += dvis
        b.nl += dnl
        self._vis_total += dvis
        self._nl_total += dnl
        self._fadd(bi, dvis, dnl)

    def _hide(self, bi: int, ri: int, off: int, n: int, rev: int, ch: _Change, grown: list[int]) -> None:
        """Delete the *n* visible characters after the cursor (bi, ri, off) for change *ch*.

        The cursor stays valid: a run split at it keeps its left part at ``ri``,
        and nothing merges with the visible run the cursor is in.
        """
        c = ch.first_rev
        blocks = self._blocks
        changes = self._changes
        interned = self._dels
        while n > 0:
            b = blocks[bi]
            runs = b.runs
            dvis = dnl = 0
            while ri < len(runs) and n > 0:
                r = runs[ri]
                if not r.vis or off == len(r.text):
                    ri += 1
                    off = 0
                    continue
                if off:
                    r = r.split(off)
                    ri += 1
                    runs.insert(ri, r)
                    off = 0
                if n < len(r.text):
                    runs.insert(ri + 1, r.split(n))
                k = len(r.text)
                n -= k
                dvis -= k
                dnl -= r.nl
                if r.ins == c:
                    ch.inserted -= k
                    ch.shown -= k
                else:
                    ch.deleted += k
                    changes[r.ins].shown -= k
                r.vis = False
                dels = tuple(sorted((*r.dels, c)))
                r.dels = interned.setdefault(dels, dels)
                r.vr = rev
                # backspacing and forward deleting make neighbouring tombstones: one run
                if ri + 1 < len(runs) and _merge(r, runs[ri + 1]):
                    del runs[ri + 1]
                if ri > 0 and _merge(runs[ri - 1], r):
                    del runs[ri]
                    ri -= 1
                ri += 1
            b.chg.add(c)
            self._grew(bi, b, dvis, dnl)
            if len(runs) > MAX_RUNS:
                grown.append(bi)
            bi += 1
            ri = off = 0

    # -- open changes (grouping) -----------------------------------------------------------

    def _track(self, user: str, change: int, op: Op, ext: tuple[int, int, int] | None, time: float) -> None:
        """Move every open change through *op* (by *user*, of *change*; None: a toggle op)."""
        opens = self._open
        stale = []
        for u, o in opens.items():
            if u == user:
                continue
            if time - o.time > GAP:
                stale.append(u)
                continue
            # text someone else puts right at the change's end joins its place: the user may
            # type on before it or after it
            o.lo = ops.transform_index(o.lo, op)
            o.hi = ops.transform_index(o.hi, op, after_insert=True)
        for u in stale:
            del opens[u]
        if change < 0:
            opens.pop(user, None)
            return
        mine = opens.get(user)
        if mine is None or mine.change != change:
            # an op that changes nothing gives its change no place yet (lo > hi)
            opens[user] = _Open(change, time, ext[0], ext[2]) if ext else _Open(change, time, 0, -1)
            return
        mine.time = time
        if ext is not None:
            # the place of the change is where its last op acted (the text it typed or pasted,
            # the point it deleted at): typing on, backspacing, editing what was just pasted
            mine.lo, mine.hi = ext[0], ext[2]

    # -- undo and redo ---------------------------------------------------------------------

    def _plan(self, user: str, *, undo: bool) -> tuple[int, Op, list[int]] | None:
        """(the change to toggle, the op, the changes passed over before it), or None."""
        stack = (self._undo if undo else self._redo).get(user)
        if not stack:
            return None
        state: dict[int, bool] = {}
        skipped: list[int] = []
        changes = self._changes
        for c in reversed(stack):
            state[c] = not undo
            ch = changes[c]
            if undo and not ch.shown and not ch.deleted:
                # nothing it inserted is visible and it deleted nobody else's text: its undo
                # would change nothing (the changes passed over changed nothing either)
                skipped.append(c)
                continue
            op = self._toggle_diff(c, state)
            if op:
                return c, op, skipped
            skipped.append(c)
        return None

    def _toggle_diff(self, c: int, state: dict[int, bool]) -> Op:
        """The op that shows and hides what changes when change *c* takes its state in *state*
        (the states there override the index's)."""
        changes = self._changes
        out: Op = []
        pending = 0
        for b in self._blocks:
            if c not in b.chg:
                pending += b.vis
                continue
            for r in b.runs:
                if r.ins == c or c in r.dels:
                    ins = r.ins
                    nv = state[ins] if ins in state else changes[ins].active
                    if nv:
                        for d in r.dels:
                            if state[d] if d in state else changes[d].active:
                                nv = False
                                break
                    if nv != r.vis:
                        if pending:
                            out.append(pending)
                            pending = 0
                        out.append(r.text if nv else -len(r.text))
                        continue
                if r.vis:
                    pending += len(r.text)
        return ops.normalize(out)

    def _apply_toggle(self, rev: int, op: Op, user: str, time: float, toggles: int) -> None:
        target = self._changes.get(toggles)
        if target is None or target.kind != "edit" or target.user != user or toggles == 0:
            raise HistoryMismatch(f"op {rev} toggles {toggles}, not a change of its user")
        undo = target.active
        plan = self._plan(user, undo=undo)
        if plan is None or plan[0] != toggles or plan[1] != ops.normalize(op):
            raise HistoryMismatch(f"op {rev} is not the {'undo' if undo else 'redo'} of {toggles}")
        _, diff, skipped = plan
        ext = _extent(diff)
        assert ext is not None
        entry = _Change(rev, user, time, self._line_at(ext[0]), "undo" if undo else "redo")
        entry.toggles = toggles
        src = (self._undo if undo else self._redo)[user]
        dst = (self._redo if undo else self._undo).setdefault(user, [])
        for c in [*skipped, toggles]:
            popped = src.pop()
            assert popped == c
            self._changes[c].active = not undo
            dst.append(c)
        for comp in diff:
            if type(comp) is str:
                entry.inserted += len(comp)
            elif comp < 0:  # type: ignore[operator]
                entry.deleted -= comp  # type: ignore[operator]
        self._changes[rev] = entry
        self._listed(rev, rev)
        self._record_rev(user, time)
        self._show(toggles, rev)
        self.rev = rev
        self._track(user, -1, diff, ext, time)

    def _show(self, c: int, rev: int) -> None:
        """Bring every run change *c* touches to the visibility the changes' states give it."""
        self._hit = None
        changes = self._changes
        for bi, b in enumerate(self._blocks):
            if c not in b.chg:
                continue
            dvis = dnl = 0
            for r in b.runs:
                if r.ins == c or c in r.dels:
                    nv = changes[r.ins].active and not any(changes[d].active for d in r.dels)
                    if nv != r.vis:
                        r.vis = nv
                        r.vr = rev
                        k = len(r.text)
                        changes[r.ins].shown += k if nv else -k
                        dvis += k if nv else -k
                        dnl += r.nl if nv else -r.nl
            if dvis or dnl:
                self._grew(bi, b, dvis, dnl)

    # -- blame -----------------------------------------------------------------------------

    def _blame_revs(self, start: int, count: int) -> list[int]:
        """The rev of each of *count* lines from line *start* (-1: nothing, see :meth:`blame`)."""
        out: list[int] = []
        blocks = self._blocks
        prev_nl = -1  # the rev of the newline before the current line
        off = 0
        if start == 0:
            bi, ri = 0, 0
        else:
            bi, nl_before = self._find_nl(start)
            k = start - nl_before
            runs = blocks[bi].runs
            ri = 0
            while True:
                r = runs[ri]
                if r.vis and r.nl:
                    if k <= r.nl:
                        j = -1
                        for _ in range(k):
                            j = r.text.find("\n", j + 1)
                        prev_nl = r.rev_at(j)
                        off = j + 1
                        break
                    k -= r.nl
                ri += 1
        best = -1  # max over the counted characters of the current line
        lead = -1  # max over the hidden characters before its first visible one (since a newline)
        seen = False  # a visible character of the current line was met
        nblocks = len(blocks)
        while bi < nblocks:
            runs = blocks[bi].runs
            nruns = len(runs)
            while ri < nruns:
                r = runs[ri]
                ri += 1
                text = r.text
                if r.vis:
                    if not r.nl:
                        if not seen:
                            seen = True
                            if lead > best:
                                best = lead
                        m = r.vr if r.vr >= 0 else r.r0 + (len(text) - 1) * r.step
                        if m > best:
                            best = m
                        off = 0
                        continue
                    if r.vr >= 0 or r.step == 0:
                        # one rev for the whole run (loaded text, a paste, a toggle): lines
                        # wholly inside it need no look at their characters
                        m = r.vr if r.vr >= 0 else r.r0
                        k = r.nl if off == 0 else text.count("\n", off)
                        if k:
                            if not seen and lead > best:
                                best = lead
                            out.append(best if best > m else m)
                            if k > 1:
                                out.extend([m] * min(k - 1, count - len(out)))
                            if len(out) >= count:
                                return out
                            prev_nl = m
                            lead = -1
                            if text[-1] == "\n":
                                best = -1
                                seen = False
                            else:
                                best = m
                                seen = True
                            off = 0
                            continue
                    i = off
                    n = len(text)
                    while i < n:
                        j = text.find("\n", i)
                        end = n if j < 0 else j + 1
                        if not seen:
                            seen = True
                            if lead > best:
                                best = lead
                        m = r.vr if r.vr >= 0 else r.r0 + (end - 1) * r.step
                        if m > best:
                            best = m
                        if j >= 0:
                            out.append(best)
                            if len(out) == count:
                                return out
                            prev_nl = m
                            best = lead = -1
                            seen = False
                        i = end
                    off = 0
                else:
                    m = r.vr
                    if seen:
                        if m > best:
                            best = m
                    elif r.nl:
                        lead = m if text[-1] != "\n" else -1
                    elif m > lead:
                        lead = m
            bi += 1
            ri = 0
        # the last line (no newline ends it)
        out.append(best if seen else max(lead, prev_nl))
        return out

    # -- positions -------------------------------------------------------------------------

    def _line_at(self, p: int) -> int:
        """The 0-based line of visible position *p* (the newlines before it)."""
        if p >= self._vis_total:
            return self._nl_total
        bi, start = self._find_vis(p)
        nl = self._prefix(self._fn, bi)
        q = p - start
        for r in self._blocks[bi].runs:
            if r.vis:
                n = len(r.text)
                if q < n:
                    return nl + r.text.count("\n", 0, q)
                nl += r.nl
                q -= n
        raise AssertionError("block counts out of step")  # pragma: no cover

    # Fenwick trees over the blocks (1-based inside)

    def _rebuild(self) -> None:
        n = len(self._blocks)
        fv = [0] * (n + 1)
        fn = [0] * (n + 1)
        for i, b in enumerate(self._blocks, 1):
            fv[i] += b.vis
            fn[i] += b.nl
            j = i + (i & -i)
            if j <= n:
                fv[j] += fv[i]
                fn[j] += fn[i]
        self._fv, self._fn = fv, fn
        top = 1
        while top * 2 <= n:
            top *= 2
        self._top = top

    def _fadd(self, bi: int, dvis: int, dnl: int) -> None:
        fv, fn = self._fv, self._fn
        n = len(fv) - 1
        i = bi + 1
        while i <= n:
            fv[i] += dvis
            fn[i] += dnl
            i += i & -i

    @staticmethod
    def _prefix(tree: list[int], bi: int) -> int:
        """Sum over the blocks before block *bi*."""
        s = 0
        i = bi
        while i > 0:
            s += tree[i]
            i -= i & -i
        return s

    def _find(self, tree: list[int], p: int) -> tuple[int, int]:
        """(the block where the sum passes *p*, the sum before it)."""
        n = len(tree) - 1
        pos = 0
        rem = p
        step = self._top
        while step:
            nxt = pos + step
            if nxt <= n and tree[nxt] <= rem:
                pos = nxt
                rem -= tree[nxt]
            step >>= 1
        return pos, p - rem

    def _find_vis(self, p: int) -> tuple[int, int]:
        return self._find(self._fv, p)

    def _find_nl(self, k: int) -> tuple[int, int]:
        """(the block holding the k-th visible newline (1-based), the newlines before it)."""
        return self._find(self._fn, k - 1)
