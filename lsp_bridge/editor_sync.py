"""The editor as an OT peer whose revisions are LSP versions (sans-I/O).

See docs/architecture.md ("The editor boundary").  An :class:`EditorSync`
stands between one editor buffer and the document's
:class:`~collab_core.client.DocumentClient`:

* :meth:`did_change` takes a ``textDocument/didChange`` (version and content
  changes, positions in the negotiated encoding) and returns the user's
  edits as ops for the client state machine.
* :meth:`receive_remote` takes a remote op (as the client returned it);
  :meth:`edit_to_send` then says which ``workspace/applyEdit`` to send: one
  ``TextDocumentEdit`` holding everything the editor has not shown yet, one
  ``TextEdit`` per place it changes, versioned with the last version seen
  (never ``null``).
* :meth:`edit_answered` takes the editor's answer.

The bridge never trusts an editor's ``applied: true``: Neovim answers it even
when it skipped a stale edit ("newer than edits").  It recognises its own
edit by its *effect* on the changes that follow the version it was sent at
(:meth:`_recognize`):

* the changes start with it: some prefix of them turns the text into exactly
  what the edit gives (or that up to line endings: an editor writes the
  document's EOL, Neovim keeps a final newline);
* it is arriving in pieces (an editor that reports each ``TextEdit`` as its
  own ``didChange``): every text so far is the old one with some of the
  edit's places done; the changes wait for the rest;
* a whole-text change (full-sync clients, eglot after its "messup"
  fallback): the new text is compared with the text the edit predicts and
  with the text without it; the closer one wins, and only the difference
  from it is the user's;
* a client that ignores versions applied it, as sent, after the user's own
  changes (at shifted places): the difference from where it belonged is
  the user's edit, so the room ends with what the buffer shows.

Otherwise the editor refused or skipped it (VS Code ``applied: false``,
eglot's error, Neovim's silence): every change is the user's, and the edit
goes again, transformed past them (the
:class:`~collab_core.view.LaggingView` keeps it transformed).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

from collab_core import ops
from collab_core.deferred import DeferredText
from collab_core.view import LaggingView

from .positions import UTF8, UTF16, UTF32, LineIndex, carry_count, positions_of

__all__ = ["ContentChange", "EditToApply", "EditorSync", "TextEdit", "apply_changes", "diff"]

#: a version-ignoring client is looked for among at most this many changes
_RAW_SEARCH = 16

diff = ops.diff


@dataclass(frozen=True, slots=True)
class ContentChange:
    """One ``TextDocumentContentChangeEvent``: a range (editor units) or ``None`` for the whole text."""

    range: tuple[int, int, int, int] | None
    text: str


@dataclass(frozen=True, slots=True)
class TextEdit:
    """Replace ``start``..``end`` (editor units: line, character) by ``new_text``."""

    start: tuple[int, int]
    end: tuple[int, int]
    new_text: str


@dataclass(frozen=True, slots=True)
class EditToApply:
    """A ``workspace/applyEdit`` to send: ``edits`` (non-overlapping, in document
    order, all relative to the text at ``version``)."""

    version: int
    edits: tuple[TextEdit, ...]


@dataclass(slots=True)
class _Sent:
    version: int
    #: the text the editor showed when the edit was sent
    base: str
    #: what the edit makes of ``base``: the pending ops it shows, composed (normalized)
    op: ops.Op
    #: the text it gives (a large one is made only if it is read: see :attr:`expected`)
    after: DeferredText
    #: how many pending remote ops the edit shows
    count: int
    #: (start, end, new text) in ``base``, in order: the places the edit changes
    regions: list[tuple[int, int, str]]
    edits: tuple[TextEdit, ...]
    #: changes seen since, while the edit was arriving in pieces, and what was read of them
    deferred: list[ContentChange] = field(default_factory=list)
    scan: _Scan | None = None
    deferred_version: int = 0
    #: the editor answered the applyEdit
    answered: bool = False
    #: the user's changes came before any sign of the edit (it may still come: see did_change)
    user_seen: bool = False

    @property
    def expected(self) -> str:
        """The text the edit gives."""
        return self.after.text


class _Reader:
    """Reads a run of content changes as ops, each on the text the ones before it left.

    Editors report an edit of many places as many changes, each at its place in the text
    the ones before it left, mostly from the end of the text to its start.  A change whose
    line starts before everything changed so far is found with the first text's line index
    (:meth:`LineIndex.offset_in`): one index serves the whole run (one index per change cost
    a pass over the text each, minutes for thousands of changes to a megabyte).

    The same holds from one ``didChange`` to the next: a reader leaves its index for the
    text it ended with (:meth:`done`), and the next reader of that text takes it, so a
    keystroke on the line of the last one, or on one above it, finds its place without
    indexing the text again (a pass over 10,000 lines cost about 1 ms per keystroke).
    """

    __slots__ = ("encoding", "idx", "same", "span")

    #: (a text a reader ended with, the index it used, how far that text is the index's)
    _left: list[tuple[str, LineIndex, int]] = []
    #: (a text an edit was sent for, the encoding, the offset of each position the edit names)
    _known: list[tuple[str, str, dict[tuple[int, int], int]]] = []

    @staticmethod
    def know(text: str, encoding: str, positions: list[tuple[int, int]], offsets: list[int]) -> None:
        """*positions* (of an edit sent to the editor) are at *offsets* of *text*: the
        editor's report of that edit is read without indexing the text (a peer's keystroke
        sent to the editor comes back as a change at the positions sent)."""
        _Reader._known = [(text, encoding, dict(zip(positions, offsets, strict=True))), *_Reader._known[:1]]

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.idx: LineIndex | None = None
        #: how far the text read next is the same as ``idx``'s
        self.same = 0
        #: the last change read, as (start, end) in the text it was made to (None: a whole text)
        self.span: tuple[int, int] | None = None

    def op(self, text: str, change: ContentChange) -> ops.Op:
        """*change*, made to *text*, as an op."""
        if change.range is None:
            self.idx = self.span = None
            return ops.diff(text, change.text)
        sl, sc, el, ec = change.range
        enc = self.encoding
        if self.idx is None:
            for left, left_idx, same in _Reader._left:
                if left is text:
                    self.idx, self.same = left_idx, same
                    break
        idx = self.idx
        start = end = None
        if idx is None:
            for known_text, known_enc, known in _Reader._known:
                if known_text is text and known_enc == enc:
                    start, end = known.get((sl, sc)), known.get((el, ec))
                    break
        if idx is not None:
            if idx.text is text:
                start, end = idx.offset(sl, sc, enc), idx.offset(el, ec, enc)
            else:
                start = idx.offset_in(text, sl, sc, enc, self.same)
                end = None if start is None else idx.offset_in(text, el, ec, enc, self.same)
        if start is None or end is None:
            idx = self.idx = LineIndex.of(text)
            self.same = len(text)
            start, end = idx.offset(sl, sc, enc), idx.offset(el, ec, enc)
        end = max(start, end)
        self.same = min(self.same, start)
        self.span = (start, end)
        return ops.normalize([start, change.text, -(end - start)])

    def done(self, text: str) -> None:
        """The changes read made *text*: the next reader of it may take this one's index."""
        if self.idx is not None:
            _Reader._left = [(text, self.idx, self.same), *_Reader._left[:3]]


def apply_changes(text: str, changes: list[ContentChange], encoding: str) -> tuple[str, int | None]:
    """*changes* (a ``didChange``'s, each made to the text the ones before it left) applied to
    *text*; and the end of what the last one inserted, where the cursor likely is (None if
    it replaced the whole text).  A ``str`` index of the text is reused between keystrokes
    (:meth:`LineIndex.of`), so the buffer the language server tracks and the room's view of
    it are best the same object."""
    read = _Reader(encoding)
    cursor = None
    for change in changes:
        before, text = text, ops.apply(text, read.op(text, change))
        if read.span is None:
            cursor = None
        else:
            cursor = read.span[0] + len(change.text)
            carry_count(before, text, read.span[0])
    read.done(text)
    return text, cursor


def _crlfs_after(count: int, old: str, new: str, span: tuple[int, int] | None) -> int:
    """How many CRLFs *new* has, *old* having *count* and *span* of it having been replaced
    (only the pairs that start around the span can have changed)."""
    if span is None:
        return _crlfs(new)
    start, end = span
    lo = max(0, start - 1)
    return count - old[lo : end + 2].count("\r\n") + new[lo : end + len(new) - len(old) + 2].count("\r\n")


def _crlfs(text: str) -> int:
    """The CRLFs in *text* (most texts have no \\r at all: that is seen 80 times faster)."""
    return text.count("\r\n") if "\r" in text else 0


def _eol_length(text: str, crlfs: int) -> int:
    """The length of *text* once CRLF is read as LF and a final newline is dropped."""
    return len(text) - crlfs - text.endswith("\n")


class _Scan:
    """What the recognition of an edit (:meth:`EditorSync._recognize`) keeps of the texts a
    run of changes went through, read one change at a time: the first few texts (the
    version-blind search starts from them) and the last, what matched, and how each text
    compares with the edit's; not every text (thousands of changes to a megabyte were
    gigabytes)."""

    __slots__ = ("count", "texts", "crlfs", "exact", "eol", "shifted", "raw")

    def __init__(self, base: str) -> None:
        #: changes read
        self.count = 0
        #: the texts after the first _RAW_SEARCH changes (the first is the base), then the last
        self.texts = [base]
        #: CRLFs in the last text (None: not counted yet; counted once a text is not the
        #: expected one exactly: a pass over the whole text a keystroke spared otherwise)
        self.crlfs: int | None = None
        #: the first text equal to the expected one, and equal up to line endings: (k, text)
        self.exact: tuple[int, str] | None = None
        self.eol: tuple[int, str] | None = None
        #: each of the first texts with the edit applied as sent (None: no difference), once
        #: a run is longer than them; and the first (j, k, text) that matched a later text
        self.shifted: list[str | None] | None = None
        self.raw: tuple[int, int, str] | None = None

    @property
    def last(self) -> str:
        return self.texts[-1]

    def add(
        self,
        before: str,
        op: ops.Op,
        text: str,
        span: tuple[int, int] | None,
        expected: _Expected | None,
        shift: _Shift,
    ) -> None:
        """The text after the next change: *op* applied to *before* (*span* of it replaced)."""
        k = self.count = self.count + 1
        if self.crlfs is not None:
            self.crlfs = _crlfs_after(self.crlfs, self.texts[-1], text, span)
        if expected is not None and self.exact is None:
            if expected.given(before, op, text):
                self.exact = (k, text)
            elif self.eol is None:
                if self.crlfs is None:
                    self.crlfs = _crlfs(text)
                same_length = _eol_length(text, self.crlfs) == expected.eol_length
                if same_length and _same_but_eol(text, expected.text):
                    self.eol = (k, text)
        if k <= _RAW_SEARCH:
            self.texts.append(text)
            return
        # a long run: the texts after the first are compared as they come, not kept
        if self.shifted is None:
            self.shifted = [self._shift(shift, j) for j in range(_RAW_SEARCH)]
        for j, shifted in enumerate(self.shifted):
            if shifted is not None and shifted == text:
                if self.raw is None or j < self.raw[0]:
                    self.raw = (j, k, shifted)
                break
        if k == _RAW_SEARCH + 1:
            self.texts.append(text)
        else:
            self.texts[-1] = text

    def _shift(self, shift: _Shift, j: int) -> str | None:
        shifted = shift(self.texts[j])
        return None if shifted is None or shifted == self.texts[j] else shifted

    def raw_match(self, shift: _Shift) -> tuple[int, int, str] | None:
        """The first text j (in the first few) whose edit, applied as sent, gives a later text
        k, the first such: (j, k, text k)."""
        kept = min(self.count, _RAW_SEARCH)
        for j in range(kept):
            if self.raw is not None and self.raw[0] < j:
                break
            shifted = self.shifted[j] if self.shifted is not None else self._shift(shift, j)
            if shifted is None:
                continue
            for k in range(j + 1, kept + 1):
                if self.texts[k] == shifted:
                    return j, k, shifted
            if self.raw is not None and self.raw[0] == j:
                return self.raw
        return self.raw


_Shift = Callable[[str], "str | None"]


class _Expected:
    """The text an edit gives, and its length once CRLF is read as LF and a final newline
    dropped (each made when first asked for: an editor that reports the edit exactly, as one
    change made of the edit's own op, never makes them needed)."""

    __slots__ = ("_eol_length", "_sent")

    def __init__(self, sent: _Sent) -> None:
        self._sent = sent
        self._eol_length: int | None = None

    @property
    def text(self) -> str:
        return self._sent.expected

    def given(self, before: str, op: ops.Op, text: str) -> bool:
        """Is *text* (*op* applied to *before*) the text expected?  Without comparing the two
        when *op* is the edit's own, applied to the text it was sent for."""
        sent = self._sent
        if before is sent.base and ops.normalize(op) == sent.op:
            return True
        return len(text) == sent.after.length and text == self.text

    @property
    def eol_length(self) -> int:
        if self._eol_length is None:
            self._eol_length = _eol_length(self.text, _crlfs(self.text))
        return self._eol_length


@dataclass(frozen=True, slots=True)
class _Verdict:
    """How the changes after an edit was sent relate to it (see :meth:`EditorSync._recognize`)."""

    kind: str  # "applied" | "after_user" | "partial" | "missed"
    #: applied: our edit is stream[:k] (its effect); after_user: stream[j:k]
    j: int = 0
    k: int = 0
    #: the editor's text once our edit is in (the user's difference from what we expected follows)
    text: str = ""
    #: applied, and *text* is what was expected, exactly (compared already)
    exact: bool = False


def _places(op: ops.Op) -> list[tuple[int, int, str]]:
    """(start, end, inserted text) of every place *op* changes, in base positions."""
    out: list[tuple[int, int, str]] = []
    pos = 0
    start = -1
    ins = ""
    for c in op:
        if type(c) is int and c > 0:
            if start >= 0:
                out.append((start, pos, ins))
                start, ins = -1, ""
            pos += c
            continue
        if start < 0:
            start = pos
        if type(c) is str:
            ins += c
        else:
            pos -= c  # type: ignore[operator]
    if start >= 0:
        out.append((start, pos, ins))
    return out


def _cost(op: ops.Op) -> int:
    """How many code points *op* inserts and deletes."""
    n = 0
    for c in op:
        if isinstance(c, str):
            n += len(c)
        elif c < 0:
            n -= c
    return n


#: occurrences of an edit's text tried when reading a whole text
_FIT_CANDIDATES = 16


def _rough_cost(a: str, b: str) -> int:
    """What turning *a* into *b* costs as one replacement between their common ends."""
    p = ops.common_prefix(a, b)
    q = ops.common_suffix(a, b, limit=min(len(a), len(b)) - p)
    return len(a) + len(b) - 2 * (p + q)


def _fit(base: str, regions: list[tuple[int, int, str]], text: str) -> int | None:
    """The least the user must have changed if *text* is *base* with *regions* done (each
    inserted piece found whole in *text*, in order, between the user's versions of the old
    text around it), or None if a piece is not there."""
    at_text = 0
    at_base = 0
    total = 0
    for start, end, new in regions:
        if not new:
            continue
        # where the piece would be if the user changed nothing before it
        guess = at_text + (start - at_base)
        found: list[int] = []
        i = text.find(new, at_text)
        while i >= 0 and len(found) < 4 * _FIT_CANDIDATES:
            found.append(i)
            i = text.find(new, i + 1)
        if not found:
            return None
        found.sort(key=lambda i: abs(i - guess))
        best = min((_rough_cost(base[at_base:start], text[at_text:i]), i) for i in found[:_FIT_CANDIDATES])
        total += best[0]
        at_text = best[1] + len(new)
        at_base = end
    return total + _rough_cost(base[at_base:], text[at_text:])


def _touches(op: ops.Op, regions: list[tuple[int, int, str]]) -> tuple[bool, bool]:
    """How *op* (on the text after the edit of *regions*) meets the edit: does it undo it
    (delete text the edit inserted, or put back text it deleted, at its place), and does
    it insert into the middle of the edit's text?"""
    spans = []  # (start, end, deleted count) of each region in the edited text, in order
    shift = 0
    for start, end, new in regions:
        spans.append((start + shift, start + shift + len(new), end - start))
        shift += len(new) - (end - start)
    ends = [e for _, e, _ in spans]
    pos = 0
    inside = False
    for c in op:
        if type(c) is int and c > 0:
            pos += c
        elif type(c) is int:
            lo, hi = pos, pos - c
            # (spans do not overlap: the first that ends after lo is the one to look at)
            i = bisect.bisect_right(ends, lo)
            if i < len(spans) and spans[i][0] < hi:
                return True, inside
            pos = hi
        else:
            # (spans do not touch: at most one holds pos)
            i = bisect.bisect_left(ends, pos)
            if i < len(spans) and spans[i][0] <= pos:
                s, e, gone = spans[i]
                if gone:
                    return True, inside
                inside = inside or s < pos < e
    return False, inside


def _redoes(op: ops.Op, regions: list[tuple[int, int, str]]) -> bool:
    """Does *op* (on the text before the edit of *regions*) do the edit: insert its text
    at its place, or delete what it deletes?"""
    deleting = [(start, end) for start, end, _ in regions if start < end]
    starts = [start for start, _ in deleting]
    inserting = [(start, end, new) for start, end, new in regions if new]
    ends = [end for _, end, _ in inserting]
    pos = 0
    for c in op:
        if type(c) is int and c > 0:
            pos += c
        elif type(c) is int:
            lo, hi = pos, pos - c
            # (in order: the first that starts at lo or after ends first)
            i = bisect.bisect_left(starts, lo)
            if i < len(deleting) and deleting[i][1] <= hi:
                return True
            pos = hi
        elif isinstance(c, str):
            i = bisect.bisect_left(ends, pos)
            while i < len(inserting) and inserting[i][0] <= pos:
                if inserting[i][2] in c:
                    return True
                i += 1
    return False


def _same_but_eol(a: str, b: str) -> bool:
    """Equal once CRLF is read as LF and a final newline is ignored."""
    if "\r" in a or "\r" in b:
        a = a.replace("\r\n", "\n")
        b = b.replace("\r\n", "\n")
    return a.removesuffix("\n") == b.removesuffix("\n")


def _shows_already(shown: str, expected: DeferredText) -> bool:
    """Does an editor that answered "applied" and reported no change since the edit went,
    showing *shown*, show the edit's effect (*expected*) as far as it ever will? Yes if the
    edit only drops a final newline the editor keeps (Neovim while 'eol' is set). An edit
    that adds a final newline adds a line every editor shows, and reports, perhaps after
    answering; so does an edit of line endings alone (the room's CRLF brought to a buffer
    opened from a copy with LF): the text it has not changed yet is not its effect.
    (Told by the lengths first: the expected text is made, and compared, only if they fit.)"""
    n = expected.length
    if len(shown) - n not in (0, 1, 2):
        return False
    return shown == expected.text or (shown.startswith(expected.text) and shown[n:] in ("\n", "\r\n"))


def _splits_crlf(text: str, i: int) -> bool:
    return 0 < i < len(text) and text[i - 1] == "\r" and text[i] == "\n"


def _partial(base: str, regions: list[tuple[int, int, str]], text: str) -> bool:
    """True if *text* is *base* with some (not all, not none needed) of *regions* done."""
    at = {0}  # possible positions in text where the next unchanged run starts
    prev = 0
    for start, end, new in regions:
        same = base[prev:start]
        old = base[start:end]
        nxt = set()
        for p in at:
            if text[p : p + len(same)] != same:
                continue
            q = p + len(same)
            if text[q : q + len(old)] == old:
                nxt.add(q + len(old))
            if text[q : q + len(new)] == new:
                nxt.add(q + len(new))
        if not nxt:
            return False
        at = set(sorted(nxt)[:8])
        prev = end
    tail = base[prev:]
    return any(text[p:] == tail for p in at)


class EditorSync:
    """See the module docstring."""

    def __init__(self, text: str, version: int, encoding: str) -> None:
        if encoding not in (UTF8, UTF16, UTF32):
            # positions.py would count any other name as UTF-8 and misplace every
            # edit after a non-ASCII character (cf. 'PositionEncodingKind.Utf16')
            raise ValueError(f"unknown position encoding {encoding!r}")
        self.view = LaggingView(text)
        self.version = version
        self.encoding = encoding
        self._sent: _Sent | None = None
        self._awaiting_answer = False
        #: the last edit given up on by :meth:`expire` while nothing changed since: its effect
        #: may still come (an editor slower than the timeout)
        self._late: _Sent | None = None
        #: edits sent / recognised as applied / refused or skipped, and how (for logs and tests);
        #: late: recognised after they had been given up on
        self.stats = {
            "sent": 0,
            "confirmed": 0,
            "missed": 0,
            "pieces": 0,
            "full": 0,
            "shifted": 0,
            "late": 0,
        }

    @property
    def text(self) -> str:
        """The editor's text as of :attr:`version`."""
        return self.view.text

    @property
    def target(self) -> str:
        """The text the editor will show once every pending remote op is applied."""
        op: ops.Op = []
        for _, more in self.view.pending:
            op = ops.compose(op, more)
        return ops.apply(self.view.text, op)

    @property
    def quiet(self) -> bool:
        """Nothing to show and nothing in flight."""
        return not self.view.pending and self._sent is None and not self._awaiting_answer

    # -- from the editor ---------------------------------------------------

    def did_change(
        self, version: int, changes: list[ContentChange], known: tuple[str, str] | None = None
    ) -> list[ops.Op]:
        """The editor reports *changes* reaching *version*; returns the user's edits as ops.

        *known*: ``(before, after)``, the caller's own copy of the buffer and that copy with
        *changes* applied (:func:`apply_changes`).  Where *changes* are the user's alone and
        *before* is the text here, *after* becomes the text here as it is, not made again:
        one copy of the whole text per keystroke, not two."""
        late, self._late = self._late, None
        if late is not None and self._sent is None and late.version == self.version and changes:
            # An edit given up on (expire) with nothing changed since: if these changes are
            # it, the editor was only slow; it is in flight again (pieces of it wait for the
            # rest as ever).  Otherwise they are the user's, and it goes again.
            late.deferred, late.scan = [], None
            first = self._recognize(late, changes, known)
            if first.kind in ("applied", "after_user"):
                self.stats["late"] += 1
                out = self._resolve(late, changes, first)
                self.version = version
                return out
            if first.kind == "partial":
                self.stats["late"] += 1
                self.stats["pieces"] += 1
                self._sent = late
                late.deferred = list(changes)
                late.deferred_version = version
                return []
        sent = self._sent
        if sent is None or not changes:
            after = known[1] if known is not None and known[0] is self.view.text else None
            out = self._user_changes(changes, after)
            self.version = version
            return out
        if not sent.deferred and all(self._changes_nothing(change) for change in changes):
            # Changes that change nothing (the whole text again, a text replaced by itself)
            # are no sign of the edit, nor of the user typing first (after which the edit's
            # pieces would pass for more typing): it is still awaited.
            self.version = version
            return []
        if sent.user_seen:
            # The user's changes came first; only a client that ignores versions
            # can still apply our edit, as sent, on top of them.
            verdict = self._recognize_raw(self.view.text, changes, sent.edits)
            if verdict is None:
                out = self._user_changes(changes)
            else:
                out = self._resolve(sent, changes, verdict)
            self.version = version
            return out
        stream = sent.deferred + changes
        verdict = self._recognize(sent, stream, known)
        if verdict.kind == "partial":
            sent.deferred = stream
            sent.deferred_version = version
            self.stats["pieces"] += 1
            return []
        if verdict.kind == "missed":
            # The changes after our edit's version are not it: the editor refused
            # or skipped it, or (a client that ignores versions) it is yet to come.
            # They are the user's; the edit stays pending and, once the editor has
            # answered, goes again, transformed past them.
            out = self._user_changes(stream)
            if sent.answered:
                self._missed()
            else:
                sent.user_seen = True
                sent.deferred = []
                sent.scan = None
        else:
            out = self._resolve(sent, stream, verdict)
        self.version = version
        return out

    def _resolve(self, sent: _Sent, stream: list[ContentChange], verdict: _Verdict) -> list[ops.Op]:
        """Our edit is in *stream* (see :class:`_Verdict`): show it; the rest is the user's."""
        self._sent = None
        out = []
        if verdict.kind == "after_user":
            out = self._user_changes(stream[: verdict.j])
            self.stats["shifted"] += 1
        # (what the edit's places make of the text it was sent for is known, unless the text
        # shown moved since: the editor's text if it is the one expected (found as it was
        # read), shown as the editor's own copy, one object for both from here on; else the
        # expected text.  The whole text is not made again.)
        unmoved = sent.count and self.view.text is sent.base
        self.view.show(sent.count, (verdict.text if verdict.exact else sent.expected) if unmoved else None)
        self.stats["confirmed"] += 1
        if verdict.kind == "after_user":
            # A version-blind client put it at shifted places: the room has it
            # where it belongs, so the editor is put right (the next edit moves
            # it), and the room never sees the misplacement (two such clients
            # "moving" the same text would each insert a copy).
            right = self.view.text
            self.view.text = verdict.text
            self.view.pending.appendleft((None, ops.diff(verdict.text, right)))
        elif not (verdict.exact and self.view.text is verdict.text):
            # The editor wrote it its way (line endings, a final newline, the
            # user's typing in a whole-text change): that difference is the
            # user's edit, sent once, so the room follows the buffer.
            extra = ops.diff(self.view.text, verdict.text)
            if extra:
                out.append(self.view.local(extra))
        return out + self._user_changes(stream[verdict.k :])

    def _missed(self) -> None:
        self._sent = None
        self.stats["missed"] += 1

    def _user_changes(self, changes: list[ContentChange], after: str | None = None) -> list[ops.Op]:
        """*changes* as the user's ops; *after*: the text they make of this one, if known."""
        out = []
        read = _Reader(self.encoding)
        last = len(changes) - 1
        for i, change in enumerate(changes):
            op = read.op(self.view.text, change)
            if op:
                out.append(self.view.local(op, after if i == last else None))
        read.done(self.view.text)
        return out

    def _changes_nothing(self, change: ContentChange) -> bool:
        """Does *change* leave the editor's text as it is?"""
        text = self.view.text
        if change.range is None:
            return change.text == text
        if len(change.text) > len(text):
            return False
        sl, sc, el, ec = change.range
        if (sl, sc) == (el, ec):
            return not change.text  # an insertion (no need to index the text's lines to see it)
        idx = LineIndex.of(text)
        start = idx.offset(sl, sc, self.encoding)
        end = max(start, idx.offset(el, ec, self.encoding))
        return text[start:end] == change.text

    def _scan(
        self,
        scan: _Scan,
        stream: list[ContentChange],
        sent: _Sent | None,
        shift: _Shift,
        known: tuple[str, str] | None = None,
    ) -> None:
        """Read the changes of *stream* that *scan* has not read yet, against the edit *sent*
        if any; *known*: a text and what the last change makes of it, if the caller has it
        (see :meth:`did_change`)."""
        read = _Reader(self.encoding)
        want = None if sent is None else _Expected(sent)
        text = scan.last
        last = len(stream) - 1
        for i in range(scan.count, len(stream)):
            op = read.op(text, stream[i])
            if i == last and known is not None and known[0] is text:
                before, text = text, ops.applied(text, op, known[1])
            else:
                before, text = text, ops.apply(text, op)
            scan.add(before, op, text, read.span if text is not before else (0, 0), want, shift)

    def _recognize(
        self, sent: _Sent, stream: list[ContentChange], known: tuple[str, str] | None = None
    ) -> _Verdict:
        # The changes that arrived earlier (``deferred``) were all partial, none the whole
        # edit: only the texts after the new changes need looking at (``scan`` read them).
        scan = sent.scan or _Scan(sent.base)
        sent.scan = None

        def shift(text: str) -> str | None:
            return self._apply_raw(text, sent.edits)

        self._scan(scan, stream, sent, shift, known)
        last = scan.last
        # 1. it comes first, exactly; 2. or up to line endings
        if scan.exact is not None:
            return _Verdict("applied", k=scan.exact[0], text=scan.exact[1], exact=True)
        if scan.eol is not None:
            return _Verdict("applied", k=scan.eol[0], text=scan.eol[1])
        # 3. arriving in pieces: the text so far has some of its places done
        if len(sent.regions) > 1 and last != sent.base and _partial(sent.base, sent.regions, last):
            sent.scan = scan
            return _Verdict("partial")
        # 4. whole-text changes (possibly after pieces of the edit): with our edit in the
        #    last text, or without?
        if any(change.range is None for change in stream):
            self.stats["full"] += 1
            # pieces of it arrived already: the editor applied it (all at once), the rest
            # is the user's typing since
            if sent.deferred or self._applied_in(sent, last):
                return _Verdict("applied", k=len(stream), text=last)
            return _Verdict("missed")
        # 5. a client that ignores versions applied it as sent after the user's changes
        raw = scan.raw_match(shift)
        return _Verdict("after_user", j=raw[0], k=raw[1], text=raw[2]) if raw else _Verdict("missed")

    @staticmethod
    def _applied_in(sent: _Sent, text: str) -> bool:
        """Is our edit in *text* (a whole-text change), the user's typing around it?

        If it is, *text* holds the text our edit inserted, each piece where
        it belongs: between what the user made of the old text before it
        and after it.  :func:`_fit` finds the best such reading and what it
        leaves to the user; the other reading leaves the user everything,
        our text included.  The reading that leaves the user less wins.  An
        edit that only deletes has no text to find: the difference that
        would have to undo it, or redo it, is the wrong one; failing that,
        the smaller one wins.
        """
        inserts = any(new for _, _, new in sent.regions)
        if inserts:
            fit = _fit(sent.base, sent.regions, text)
            if fit is None:
                return False
            if fit <= _rough_cost(sent.base, text):
                return True
        # (With text to find, a fit that costs more than the rough reading is not the end of
        # it: rough costs count one replacement between common ends, so with the user's typing
        # in two places each reading pays for the text between them, and a common prefix that
        # runs into our text (a peer's «m.1» inserted before «m.2») tips the scale to the wrong
        # one (seed 16906 of the convergence test: the peer's text went to the hub again as
        # the user's). The two readings' own differences decide.)
        with_it = ops.diff(sent.expected, text)
        without = ops.diff(sent.base, text)
        if not inserts:
            undoes, _ = _touches(with_it, sent.regions)
            redoes = _redoes(without, sent.regions)
            if undoes != redoes:
                return redoes
        return _cost(with_it) <= _cost(without)

    def _recognize_raw(
        self, text: str, stream: list[ContentChange], edits: tuple[TextEdit, ...]
    ) -> _Verdict | None:
        """Some changes of *stream* (on *text*) are *edits* applied as sent after those before them."""

        def shift(text: str) -> str | None:
            return self._apply_raw(text, edits)

        scan = _Scan(text)
        self._scan(scan, stream, None, shift)
        raw = scan.raw_match(shift)
        return _Verdict("after_user", j=raw[0], k=raw[1], text=raw[2]) if raw else None

    def _apply_raw(self, text: str, edits: tuple[TextEdit, ...]) -> str | None:
        """*edits* applied to *text* at their positions as sent (what a version-blind client does)."""
        idx = LineIndex.of(text)
        spans = []
        for e in edits:
            start = idx.offset(*e.start, self.encoding)
            end = idx.offset(*e.end, self.encoding)
            if end < start:
                return None
            spans.append((start, end, e.new_text))
        spans.sort()
        if any(e1 > s2 for (_, e1, _), (s2, _, _) in zip(spans, spans[1:], strict=False)):
            # places clamped onto each other: one after the other, the last first
            out = text
            for start, end, new in reversed(spans):
                out = out[:start] + new + out[end:]
            return out
        pieces: list[str] = []
        at = 0
        for start, end, new in spans:
            pieces += (text[at:start], new)
            at = end
        pieces.append(text[at:])
        return "".join(pieces)

    # -- from the hub --------------------------------------------------------

    def receive_remote(self, op: ops.Op) -> None:
        """A remote op, transformed by the client state machine for the local text."""
        if op:
            self.view.receive_remote(op)

    def reset(self, text: str) -> None:
        """Bring the editor to *text* with a minimal edit (the room's text wins)."""
        self.view.pending.clear()
        self._late = None
        sent = self._sent
        if sent is not None and sent.user_seen:
            # The user's changes came first: the editor refused or skipped it, or (a
            # version-blind client) it may still come, shifted, and is then put right.
            # Either way the diff to *text* shows what it would have shown.
            sent.count = 0
            self.view.receive_remote(ops.diff(self.view.text, text))
            return
        if sent is not None:
            # An edit is still on its way to the editor, which may yet apply
            # it: keep it recognisable (else its effect would pass for the
            # user's typing and go to the hub a second time), then go on to *text*.
            self.view.receive_remote(ops.diff(self.view.text, sent.expected))
            sent.count = len(self.view.pending)
            self.view.receive_remote(ops.diff(sent.expected, text))
            return
        self.view.receive_remote(ops.diff(self.view.text, text))

    # -- to the editor --------------------------------------------------------

    def edit_to_send(self) -> EditToApply | None:
        """The ``workspace/applyEdit`` to send now, if any (one at a time).

        Everything pending goes in one edit, one ``TextEdit`` per place, so a
        catch-up after an outage is one round trip, and the user's cursor
        between two places stays put.
        """
        if self._awaiting_answer or self._sent is not None or self._late is not None or not self.view.pending:
            return None
        base = self.view.text
        op: ops.Op = []
        for _, more in self.view.pending:
            op = ops.compose(op, more)
        count = len(self.view.pending)
        op = ops.normalize(op)
        expected = DeferredText(base).then(op)
        if expected.length == len(base) and expected.text == base:
            # They change nothing (e.g. "b" replaced by "b"): an editor that
            # applies an edit as a diff would report no change, and we would
            # wait for its effect forever.  Show them; send none.
            self.view.show(count)
            return None
        regions = self._regions(base, expected, _places(op))
        offsets = [x for s, e, _ in regions for x in (s, e)]
        positions = positions_of(base, offsets, self.encoding)
        # (no place splits a CRLF: each position names its offset alone)
        _Reader.know(base, self.encoding, positions, offsets)
        places = iter(positions)
        edits = tuple(TextEdit(next(places), next(places), new) for _, _, new in regions)
        self._sent = _Sent(self.version, base, op, expected, count, regions, edits)
        self._awaiting_answer = True
        self.stats["sent"] += 1
        return EditToApply(self.version, edits)

    @staticmethod
    def _regions(
        base: str, expected: DeferredText, places: list[tuple[int, int, str]]
    ) -> list[tuple[int, int, str]]:
        """The places to send, widened where an editor cannot address them, as (start, end, new text)."""
        spans: list[list[int]] = []
        for start, end, _ in places:
            # LSP cannot address the place between the \r and \n of a CRLF:
            # widen the edit over that line break so it says the same thing.
            if _splits_crlf(base, start):
                start -= 1
            if _splits_crlf(base, end):
                end += 1
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])

        # where a span's ends are in the expected text: spans hold whole places, and
        # touching places share a span, so a place is before a span's start iff it starts
        # before it, and inside or before its end iff it starts at or before it
        # (the spans, and so the positions asked about, go forward: one sweep of the places)
        shifts = [(s, len(new) - (e - s)) for s, e, new in places]
        seen = 0
        shift = 0

        def moved(pos: int, *, end: bool) -> int:
            nonlocal seen, shift
            while seen < len(shifts) and (shifts[seen][0] < pos or (end and shifts[seen][0] == pos)):
                shift += shifts[seen][1]
                seen += 1
            return pos + shift

        out = []
        for s, e in spans:
            lo = moved(s, end=False)
            out.append((s, e, expected.span(lo, moved(e, end=True))))
        # A place that changes nothing (a CR deleted and one inserted, widened over its CRLF
        # to "\r\n" for "\r\n") is left out: an editor would report it as a change of its
        # own, the text not moving, before the edit's real places.  (The edit changes
        # something, see edit_to_send, so some place is left.)
        out = [(s, e, new) for s, e, new in out if base[s:e] != new]
        # Neovim applies an edit that reaches the position after the final line break
        # in two buffer changes (a line too many, then 'fixeol' deletes it), two didChange
        # when it does not debounce: say the same edit without that position.
        s, e, new = out[-1]
        at_end = e == len(base) and base.endswith("\n") and not base.endswith("\r\n")
        if at_end and new.endswith("\n"):
            if s < e:
                out[-1] = (s, e - 1, new[:-1])
            elif len(out) == 1 or out[-2][1] < e - 1:
                out[-1] = (e - 1, e - 1, "\n" + new[:-1])
        return out

    def edit_answered(self, applied: bool) -> list[ops.Op]:
        """The editor answered the last applyEdit (an error counts as ``applied=False``).

        Returns the user's edits to send, if any: when the editor says it
        applied an edit that only drops a final newline it keeps (Neovim
        while 'eol' is set changes nothing and reports nothing), the edit is
        taken as applied and the difference is the editor's edit.  Otherwise
        its effect is still to come: VS Code answers before it sends the
        didChange of the edit (also of an edit of line endings alone).
        """
        self._awaiting_answer = False
        sent = self._sent
        if sent is None:
            return []
        sent.answered = True
        if not applied or sent.user_seen:
            # refused; or the user's changes came first and the edit's did not
            # follow (Neovim skips a stale edit yet answers applied: true)
            self._missed()
            return self._flush_deferred(sent)
        if not sent.deferred and sent.version == self.version and _shows_already(self.view.text, sent.after):
            self._sent = None
            shown = self.view.text
            self.view.show(sent.count)
            self.stats["confirmed"] += 1
            op = ops.diff(self.view.text, shown)
            return [self.view.local(op)] if op else []
        return []

    def expire(self) -> list[ops.Op]:
        """The editor answered the last edit a while ago and its effect never came (or only
        part of it): it was not applied, and what did arrive was the user's.

        The owner calls this on a timer (an editor reports an applied edit within its
        didChange debounce), so an edit a client silently dropped goes again.  An edit
        none of whose effect came goes again only at the next call (:attr:`waiting` says
        it is due): an editor slower than the timer (under load, a big edit) may still
        report it, and it is recognised then (:meth:`did_change`), not taken for typing.
        """
        if self._sent is None and self._late is not None:
            self._late = None  # twice the time: it is not coming
            return []
        sent = self._sent
        if sent is None or not sent.answered:
            return []
        self._missed()
        if not sent.deferred:
            self._late = sent
        return self._flush_deferred(sent)

    @property
    def sent_version(self) -> int | None:
        """The version the edit in flight was sent at, if any."""
        return self._sent.version if self._sent is not None else None

    @property
    def waiting(self) -> bool:
        """An answered edit whose effect has not (fully) arrived, or one given up on once whose
        effect may still come: :meth:`expire` is due later."""
        return (self._sent is not None and self._sent.answered) or self._late is not None

    def _flush_deferred(self, sent: _Sent) -> list[ops.Op]:
        if not sent.deferred:
            return []
        out = self._user_changes(sent.deferred)
        self.version = sent.deferred_version
        sent.deferred = []
        sent.scan = None
        return out

    def abandon(self) -> None:
        """Stop waiting for the effect of an edit the editor said it applied (it never came)."""
        self._awaiting_answer = False
        self._sent = None
        self._late = None

    # -- positions ---------------------------------------------------------------

    def to_room(self, offset: int) -> int:
        """A position in the editor's text as a position in the room's text (the client's)."""
        for _, op in self.view.pending:
            offset = ops.transform_index(offset, op)
        return offset

    def to_editor(self, offset: int) -> int:
        """A position in the room's text (the client's) as a position in the editor's text."""
        for _, op in reversed(self.view.pending):
            offset = ops.map_back(offset, op)
        return min(offset, len(self.view.text))
