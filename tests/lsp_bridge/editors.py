"""Simulated editors at the LSP boundary (sans-I/O), for the bridge's tests.

Each simulator is a text buffer, an LSP document version, a queue of changes
not yet notified and an *outbox* of what the editor says to the language
server, in the order it says it (JSON-RPC over stdio is ordered): a
:class:`Notification` (``textDocument/didChange``) or an :class:`Answer` to a
``workspace/applyEdit``.  The test drives it: :meth:`SimEditor.user_edit`
(the user typed, pasted or deleted), :meth:`SimEditor.flush` (the editor's
debounce ran out), :meth:`SimEditor.receive_edit` (an applyEdit arrived).

What each one models (docs/architecture.md, decision 2):

* :class:`VSCode`: applies a versioned edit only when its version equals the
  buffer's, else answers ``applied: false``; reports every change at once as
  its own didChange (version + 1 each), exactly as the edit said; the
  didChange of an applied edit goes out before the answer.
* :class:`Neovim07`: version is ``b:changedtick`` (steps by 1, sometimes 2);
  skips an edit older than the buffer ("newer than edits") and still answers
  ``applied: true``; debounces didChange (several changes in one
  notification, version of the last); expresses an applied edit as sent, as
  a minimal diff, or as a whole-line replacement.  UTF-16 or UTF-8.
* :class:`Eglot`: answers an error on a version mismatch; applies an edit the
  way ``replace-buffer-contents`` does, as a minimal diff that may be
  several changes (hunks, back to front or front to back); batches didChange
  until idle.  Starts at version 0.  UTF-32, UTF-16 or UTF-8.

Positions are computed here by a deliberately naive reference
(:func:`ref_position`, :func:`ref_offset`: a character walk with the codecs'
own lengths), independent of :mod:`lsp_bridge.positions`, so a bug there is
not mirrored here.  Lines end at ``\\n``, ``\\r\\n`` or ``\\r`` (LSP 3.17).

Not modelled: VS Code's per-document EOL normalisation (it rewrites a
``\\n`` inserted into a CRLF document as ``\\r\\n``, and a buffer never has
mixed line endings); Neovim's and Emacs' own line model (a lone ``\\r`` is a
character there, not a line break; CRLF files hide the ``\\r``; Neovim's
'fixeol' may delete a final empty line after an edit); undo groups;
eglot's confirmation prompt for server-initiated edits; full-document
sync (``range: None``), which :class:`~lsp_bridge.editor_sync.EditorSync`
handles by a diff.  A real editor can not address the place between the
``\\r`` and ``\\n`` of a CRLF, so neither can these (:func:`to_change`
widens a range over it, as an editor's own diff would).
"""

from __future__ import annotations

import bisect
import difflib
import random
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from lsp_bridge.editor_sync import ContentChange, EditToApply

__all__ = [
    "Answer",
    "Eglot",
    "FullSync",
    "Neovim07",
    "Notification",
    "SimEditor",
    "VSCode",
    "VersionBlind",
    "lines",
    "random_text",
    "random_user_edit",
    "ref_offset",
    "ref_position",
    "splits_crlf",
    "to_change",
]

UTF8 = "utf-8"
UTF16 = "utf-16"
UTF32 = "utf-32"


# -- reference position arithmetic ----------------------------------------------------


def units(s: str, encoding: str) -> int:
    """Length of *s* in code units of *encoding*, by the codec itself (half of a UTF-16 pair, alone,
    is one unit, as in an editor's UTF-16 string, and three bytes of UTF-8, as a buffer read as
    WTF-8 holds it)."""
    if encoding == UTF32:
        return len(s.encode("utf-32-le", "surrogatepass")) // 4
    if encoding == UTF16:
        return len(s.encode("utf-16-le", "surrogatepass")) // 2
    return len(s.encode("utf-8", "surrogatepass"))


_EOL = re.compile("\r\n|\r|\n")
#: the lines of the last few texts (by identity: the text is kept, so its id is not reused)
_LINES: dict[int, tuple[str, list[tuple[int, int, int]], list[int]]] = {}


def _lines_of(text: str) -> tuple[list[tuple[int, int, int]], list[int]]:
    """:func:`lines` of *text* and each line's next start, remembered for the last few texts
    (the same text is asked about many times in a row; multi-megabyte pastes stay cheap)."""
    hit = _LINES.get(id(text))
    if hit is not None and hit[0] is text:
        return hit[1], hit[2]
    out = []
    start = 0
    # a line ends at \r\n, \r or \n (the regex tries \r\n first)
    for m in _EOL.finditer(text):
        out.append((start, m.start(), m.end()))
        start = m.end()
    out.append((start, len(text), len(text)))
    nexts = [nxt for _, _, nxt in out]
    if len(_LINES) >= 16:
        del _LINES[next(iter(_LINES))]
    _LINES[id(text)] = (text, out, nexts)
    return out, nexts


def lines(text: str) -> list[tuple[int, int, int]]:
    """(start, content end, next line's start) of every line; the last one's next start is len."""
    return list(_lines_of(text)[0])


def _line_at(text: str, offset: int) -> int:
    """The line of a code point offset: the first whose next start is past it (or the last)."""
    ls, nexts = _lines_of(text)
    return min(bisect.bisect_right(nexts, offset), len(ls) - 1)


def ref_position(text: str, offset: int, encoding: str) -> tuple[int, int]:
    """The LSP position of a code point offset (inside a CRLF: the end of its line)."""
    ln = _line_at(text, offset)
    start, end, _ = _lines_of(text)[0][ln]
    return ln, units(text[start : min(offset, end)], encoding)


def ref_offset(text: str, line: int, character: int, encoding: str) -> int:
    """The code point offset of an LSP position, clamped as LSP 3.17 says; inside a
    character (half a surrogate pair, part of a UTF-8 sequence) means its start."""
    ls = _lines_of(text)[0]
    if line >= len(ls):
        return len(text)
    start, end, _ = ls[line]
    u = 0
    for i in range(start, end):
        w = units(text[i], encoding)
        if u + w > character:
            return i
        u += w
    return end


def splits_crlf(text: str, offset: int) -> bool:
    """True if *offset* is between the ``\\r`` and ``\\n`` of a CRLF."""
    return 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n"


def to_change(text: str, start: int, end: int, new_text: str, encoding: str) -> ContentChange:
    """The content change replacing *text[start:end]* by *new_text*, as an editor would say it."""
    if splits_crlf(text, start):
        start -= 1
        new_text = "\r" + new_text
    if splits_crlf(text, end):
        end += 1
        new_text += "\n"
    sl, sc = ref_position(text, start, encoding)
    el, ec = ref_position(text, end, encoding)
    return ContentChange((sl, sc, el, ec), new_text)


_TOKEN = re.compile("\r\n|.", re.DOTALL)


#: an edit's old and new text of more tokens than this (multiplied) is not diffed (_hunks)
_DIFF_COST = 4_000_000


def _tokens(s: str) -> list[str]:
    """Code points, a CRLF as one token (a diff never splits it)."""
    return _TOKEN.findall(s)


# -- messages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """A ``textDocument/didChange``."""

    version: int
    changes: list[ContentChange]


@dataclass(frozen=True)
class Answer:
    """The answer to a ``workspace/applyEdit``: a result, or an error (``error`` set)."""

    applied: bool
    error: str | None = None


# -- editors ---------------------------------------------------------------------------------


class SimEditor:
    """A buffer, its version, unsent changes and an outbox.  See the module docstring."""

    name = "editor"
    initial_version = 1
    avoid_fresh = False

    def __init__(self, text: str, encoding: str, rng: random.Random, version: int | None = None) -> None:
        self.text = text
        self.encoding = encoding
        self.rng = rng
        self.version = self.initial_version if version is None else version
        self.unsent: list[ContentChange] = []
        self.outbox: deque[Notification | Answer] = deque()
        #: what the editor printed (Neovim's "newer than edits")
        self.messages: list[str] = []
        self.edits_applied = 0
        self.edits_refused = 0
        self.edits_skipped = 0
        #: content changes used to express applied edits (> edits_applied when split)
        self.edit_changes = 0
        #: text our edits put in since the last didChange: a user has not seen it yet
        self.fresh: list[tuple[int, int]] = []
        self._applying = False

    def __repr__(self) -> str:
        return f"{self.name}({self.encoding}, v{self.version}, {self.text!r})"

    # -- the buffer changes --

    def _version_step(self) -> int:
        return 1

    def _change(self, start: int, end: int, new_text: str, change: ContentChange | None = None) -> None:
        """Replace text[start:end] by new_text; one content change, version steps."""
        if change is None:
            change = to_change(self.text, start, end, new_text, self.encoding)
        self.text = self.text[:start] + new_text + self.text[end:]
        delta = len(new_text) - (end - start)
        fresh = []
        for a, b in self.fresh:
            if b <= start:
                fresh.append((a, b))
            elif a >= end:
                fresh.append((a + delta, b + delta))
            else:  # the change cuts into it: keep what is left of it, around the change
                if a < start:
                    fresh.append((a, start))
                if b > end:
                    fresh.append((end + delta, b + delta))
        fresh.sort()
        if self._applying and new_text:
            # what is left of an earlier change of this edit and this one may touch (an edit
            # applied a line at a time rewrites part of a text it put in just before): one
            # span of fresh text, whose inside the user does not type into
            merged: list[tuple[int, int]] = []
            for a, b in sorted([*fresh, (start, start + len(new_text))]):
                if merged and a <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], b))
                else:
                    merged.append((a, b))
            fresh = merged
        self.fresh = fresh
        self.version += self._version_step()
        self.unsent.append(change)
        self._changed()

    def _changed(self) -> None:
        """A change was queued (debounced editors wait for :meth:`flush`)."""

    def flush(self) -> None:
        """Send the queued changes as one didChange, with the version of the last."""
        self.fresh = []
        if self.unsent:
            self.outbox.append(Notification(self.version, self.unsent))
            self.unsent = []

    def user_edit(self, start: int, end: int, new_text: str) -> None:
        """The user replaced text[start:end] (code points) by *new_text*."""
        assert 0 <= start <= end <= len(self.text)
        assert not splits_crlf(self.text, start) and not splits_crlf(self.text, end), "no editor can"
        if start == end and not new_text:
            return
        self._change(start, end, new_text)

    # -- a workspace/applyEdit --

    def _edit_spans(self, edit: EditToApply) -> list[tuple[int, int, str]]:
        """The edit's TextEdits as (start, end, new text) code point spans of the current text."""
        spans = []
        for e in edit.edits:
            start = ref_offset(self.text, *e.start, self.encoding)
            end = ref_offset(self.text, *e.end, self.encoding)
            assert start <= end, edit
            # the bridge must never address a place an editor can not
            assert ref_position(self.text, start, self.encoding) == e.start, (edit, self.text)
            assert ref_position(self.text, end, self.encoding) == e.end, (edit, self.text)
            spans.append((start, end, e.new_text))
        spans.sort()
        for (_, e1, _), (s2, _, _) in zip(spans, spans[1:], strict=False):
            assert e1 <= s2, f"overlapping TextEdits: {edit}"
        return spans

    def _apply_edit(
        self, edit: EditToApply, how: Callable[[int, int, str], None], *, backwards: bool
    ) -> None:
        """Apply every TextEdit with *how*, last first (positions stay valid) or first first."""
        self._applying = True
        try:
            self._apply_edit_spans(edit, how, backwards=backwards)
        finally:
            self._applying = False

    def _apply_edit_spans(
        self, edit: EditToApply, how: Callable[[int, int, str], None], *, backwards: bool
    ) -> None:
        spans = self._edit_spans(edit)
        if backwards:
            for start, end, new in reversed(spans):
                how(start, end, new)
            return
        shift = 0
        for start, end, new in spans:
            before = len(self.text)
            how(start + shift, end + shift, new)
            shift += len(self.text) - before

    def receive_edit(self, edit: EditToApply) -> None:
        raise NotImplementedError

    def _as_sent(self, start: int, end: int, new_text: str) -> None:
        self._change(start, end, new_text)
        self.edit_changes += 1

    def _minimal(self, start: int, end: int, new: str) -> None:
        """One change: the edit with the text it leaves alone trimmed off both ends."""
        old = self.text[start:end]
        p = 0
        while p < min(len(old), len(new)) and old[p] == new[p]:
            p += 1
        s = 0
        while s < min(len(old), len(new)) - p and old[-1 - s] == new[-1 - s]:
            s += 1
        if p == len(old) == len(new):
            return  # no change at all: nothing to report
        self._change(start + p, end - s, new[p : len(new) - s])
        self.edit_changes += 1

    def _lines(self, start: int, end: int, new: str) -> None:
        """One change replacing every whole line the edit touches (line breaks included)."""
        ls = _lines_of(self.text)[0]
        lo, hi = ls[_line_at(self.text, start)][0], ls[_line_at(self.text, end)][2]
        self._change(lo, hi, self.text[lo:start] + new + self.text[end:hi])
        self.edit_changes += 1

    def _hunks(self, start: int, end: int, new: str, backwards: bool) -> None:
        """Several changes: a diff of the edit's range against its new text, one change per hunk."""
        expected = self.text[:start] + new + self.text[end:]
        a, b = _tokens(self.text[start:end]), _tokens(new)
        a_at = [0]
        for t in a:
            a_at.append(a_at[-1] + len(t))
        if not a or not b:  # (what difflib finds too, without indexing a paste of megabytes)
            opcodes = [("replace", 0, len(a), 0, len(b))] if a or b else []
        elif len(a) * len(b) > _DIFF_COST:
            # Emacs' replace-buffer-contents gives up past its cost limit (MAX-COSTS, a
            # million by default) and replaces the text whole; difflib would take hours
            p = 0
            while p < min(len(a), len(b)) and a[p] == b[p]:
                p += 1
            q = 0
            while q < min(len(a), len(b)) - p and a[-1 - q] == b[-1 - q]:
                q += 1
            opcodes = [("equal", 0, p, 0, p), ("replace", p, len(a) - q, p, len(b) - q)]
        else:
            opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
        hunks = [
            (start + a_at[i1], start + a_at[i2], "".join(b[j1:j2]))
            for tag, i1, i2, j1, j2 in opcodes
            if tag != "equal"
        ]
        shift = 0
        for lo, hi, text in reversed(hunks) if backwards else hunks:
            self._change(lo + shift, hi + shift, text)
            self.edit_changes += 1
            if not backwards:
                shift += len(text) - (hi - lo)
        assert self.text == expected


class VSCode(SimEditor):
    """Applies a whole edit at once and reports it in one didChange (its TextEdits, last first).

    Its answer (``applied: true``) and that didChange come in either order: VS Code's
    language client answers ``workspace/applyEdit`` once the edit is applied and sends the
    didChange of it on its own schedule, usually after (the order the real one shows in
    tests/e2e/test_vscode.py).  *answer_first*: always first (True), always after (False),
    or at random for each edit (None).
    """

    name = "vscode"

    def __init__(
        self,
        text: str,
        rng: random.Random,
        encoding: str = UTF16,
        version: int | None = None,
        answer_first: bool | None = None,
    ) -> None:
        super().__init__(text, encoding, rng, version)
        self._batching = False
        self.answer_first = answer_first

    def _changed(self) -> None:
        if not self._batching:
            self.flush()  # every change is its own didChange, at once

    def receive_edit(self, edit: EditToApply) -> None:
        if edit.version != self.version:
            self.edits_refused += 1
            self.outbox.append(Answer(False))
            return
        self._batching = True
        try:
            self._apply_edit(edit, self._as_sent, backwards=True)
        finally:
            self._batching = False
        self.version = edit.version + 1  # one model change, one version
        first = self.rng.random() < 0.5 if self.answer_first is None else self.answer_first
        if first:
            self.outbox.append(Answer(True))
        if self.unsent:
            self.outbox.append(Notification(self.version, self.unsent))
            self.unsent = []
        self.edits_applied += 1
        if not first:
            self.outbox.append(Answer(True))


class Neovim07(SimEditor):
    """Skips an edit older than the buffer (still answers applied: true); each TextEdit is a
    buffer change, reported together or apart (debounce) and in one of three shapes."""

    name = "nvim"

    def __init__(
        self, text: str, rng: random.Random, encoding: str = UTF16, version: int | None = None
    ) -> None:
        super().__init__(text, encoding, rng, version if version is not None else rng.randint(2, 40))

    def _version_step(self) -> int:
        return self.rng.choice((1, 1, 1, 2))  # b:changedtick

    def receive_edit(self, edit: EditToApply) -> None:
        assert edit.version <= self.version, "an edit from the future"
        if edit.version < self.version:
            self.messages.append("Buffer newer than edits.")
            self.edits_skipped += 1
            self.outbox.append(Answer(True))
            return
        self.apply_unchecked(edit)

    def apply_unchecked(self, edit: EditToApply) -> None:
        """Apply *edit* whatever its version (Neovim never checks version 0), and answer."""
        how = self.rng.choice((self._as_sent, self._minimal, self._lines))
        # No debounce (debounce_text_changes = 0): a didChange per buffer change, every one
        # of them.  Neovim applies the whole edit in one go (its TextEdits, then on_lines for
        # each), so the user can not type before its last change is reported.
        eager = self.rng.random() < 0.25

        def one(start: int, end: int, new: str) -> None:
            how(start, end, new)
            if eager:
                self.flush()

        self._apply_edit(edit, one, backwards=True)
        self.edits_applied += 1
        self.outbox.append(Answer(True))


class FullSync(Neovim07):
    """Neovim with ``allow_incremental_sync = false`` (or any full-sync client): every didChange
    is one change holding the whole text."""

    name = "full"
    #: its user types only where they have seen the text (see :attr:`SimEditor.fresh`): a whole
    #: text says nothing of where the change was, and typing inside a peer's text in the
    #: moment it appears would pass for undoing or redoing it
    avoid_fresh = True

    def flush(self) -> None:
        self.fresh = []
        if self.unsent:
            self.outbox.append(Notification(self.version, [ContentChange(None, self.text)]))
            self.unsent = []


class VersionBlind(VSCode):
    """A client that ignores the edit's version: applies it as sent to whatever the buffer
    holds now (shifted places when the user typed before it), answers applied: true, and
    reports every change at once (a whole edit in one didChange, as VS Code does)."""

    name = "blind"

    def _edit_spans(self, edit: EditToApply) -> list[tuple[int, int, str]]:
        spans = []
        for e in edit.edits:  # positions as sent, clamped to the text as it is now
            start = ref_offset(self.text, *e.start, self.encoding)
            end = max(start, ref_offset(self.text, *e.end, self.encoding))
            spans.append((start, end, e.new_text))
        # shifted places may even overlap now: applied last first, each at its own offsets
        spans.sort()
        return spans

    def _apply_edit_spans(
        self, edit: EditToApply, how: Callable[[int, int, str], None], *, backwards: bool
    ) -> None:
        for start, end, new in reversed(self._edit_spans(edit)):
            end = min(end, len(self.text))
            how(min(start, end), end, new)

    def receive_edit(self, edit: EditToApply) -> None:
        self._batching = True
        try:
            self._apply_edit(edit, self._as_sent, backwards=True)
        finally:
            self._batching = False
        if self.unsent:
            self.outbox.append(Notification(self.version, self.unsent))
            self.unsent = []
        self.edits_applied += 1
        self.outbox.append(Answer(True))


class Eglot(SimEditor):
    name = "eglot"
    initial_version = 0

    def __init__(
        self, text: str, rng: random.Random, encoding: str = UTF32, version: int | None = None
    ) -> None:
        super().__init__(text, encoding, rng, version)

    def receive_edit(self, edit: EditToApply) -> None:
        if edit.version != self.version:
            self.edits_refused += 1
            self.outbox.append(
                Answer(False, f"Edits on buffer require version {edit.version}, you have {self.version}")
            )
            return
        backwards = self.rng.random() < 0.5
        self._apply_edit(edit, lambda s, e, t: self._hunks(s, e, t, backwards), backwards=True)
        self.edits_applied += 1
        if self.rng.random() < 0.25:
            self.flush()
        self.outbox.append(Answer(True))


# -- users -------------------------------------------------------------------------------------

#: what users type: ASCII, astral emoji, a ZWJ sequence, combining marks, CJK, line breaks
PIECES = ["a", "b", "x", " ", "é", "e\u0301", "\u0301", "中", "文", "😀", "🎉", "𝄞", "👩\u200d💻"]
PIECES += ["\r\n", "\n", "\r"]


def random_text(rng: random.Random, max_pieces: int = 8) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, max_pieces)))


def _places(text: str, avoid: list[tuple[int, int]]) -> list[int]:
    """Offsets a cursor can be at: not inside a CRLF, not strictly inside an *avoid* span."""
    return [
        o
        for o in range(len(text) + 1)
        if not splits_crlf(text, o) and not any(lo < o < hi for lo, hi in avoid)
    ]


def random_user_edit(
    rng: random.Random,
    text: str,
    *,
    marker: str | None = None,
    deletes: bool = True,
    avoid: list[tuple[int, int]] | None = None,
) -> tuple[int, int, str]:
    """A user action on *text* as (start, end, new text): typing (with *marker* in it,
    if given), a multi-line paste, or deleting a selection, never splitting a CRLF;
    with *avoid*, never touching the inside of those spans (and deleting none of them)."""
    avoid = avoid or []
    places = _places(text, avoid)
    kind = rng.choice(("type", "type", "paste", "delete") if deletes else ("type", "type", "paste"))
    if kind == "delete" and len(places) > 1:
        a, b = sorted(rng.sample(places, 2))
        if b - a > 12:
            b = min((p for p in places if p >= a + 1), key=lambda p: abs(p - a - rng.randint(1, 12)))
        if not any(a < hi and lo < b for lo, hi in avoid):
            return a, b, marker or ""
        kind = "type"
    at = rng.choice(places)
    if kind == "paste":
        body = rng.choice(("\n", "\r\n")).join(random_text(rng, 4) for _ in range(rng.randint(2, 4)))
    else:
        body = random_text(rng, 3)
    if marker is not None:
        cut = rng.randint(0, len(body))
        body = body[:cut] + marker + body[cut:]
    return at, at, body
