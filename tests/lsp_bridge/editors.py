"""Simulated editors at the LSP boundary (sans-I/O), for the bridge's tests.

Each simulator is a text buffer, an LSP document version, a queue of changes
not yet notified and an *outbox* of what the editor says to the language
server, in the order it says it (JSON-RPC over stdio is ordered): a
:class:`Notification` (``textDocument/didChange``) or an :class:`Answer` to a
``workspace/applyEdit``.  The test drives it: :meth:`SimEditor.user_edit`
(the user typed, pasted or deleted), :meth:`SimEditor.flush` (the editor's
debounce ran out), :meth:`SimEditor.receive_edit` (an applyEdit arrived).

What each one models (DESIGN.md decision 2):

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

import difflib
import random
from collections import deque
from dataclasses import dataclass

from lsp_bridge.editor_sync import ContentChange, EditToApply

__all__ = [
    "Answer",
    "Eglot",
    "Neovim07",
    "Notification",
    "SimEditor",
    "VSCode",
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
    """Length of *s* in code units of *encoding*, by the codec itself."""
    if encoding == UTF32:
        return len(s.encode("utf-32-le")) // 4
    if encoding == UTF16:
        return len(s.encode("utf-16-le")) // 2
    return len(s.encode("utf-8"))


def lines(text: str) -> list[tuple[int, int, int]]:
    """(start, content end, next line's start) of every line; the last one's next start is len."""
    out = []
    start = i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\n" or ch == "\r":
            nxt = i + 2 if ch == "\r" and i + 1 < n and text[i + 1] == "\n" else i + 1
            out.append((start, i, nxt))
            start = i = nxt
        else:
            i += 1
    out.append((start, n, n))
    return out


def ref_position(text: str, offset: int, encoding: str) -> tuple[int, int]:
    """The LSP position of a code point offset (inside a CRLF: the end of its line)."""
    ls = lines(text)
    for ln, (start, end, nxt) in enumerate(ls):
        if offset < nxt or ln == len(ls) - 1:
            return ln, units(text[start : min(offset, end)], encoding)
    raise AssertionError("unreachable")


def ref_offset(text: str, line: int, character: int, encoding: str) -> int:
    """The code point offset of an LSP position, clamped as LSP 3.17 says; inside a
    character (half a surrogate pair, part of a UTF-8 sequence) means its start."""
    ls = lines(text)
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


def _tokens(s: str) -> list[str]:
    """Code points, a CRLF as one token (a diff never splits it)."""
    out: list[str] = []
    i = 0
    while i < len(s):
        if s.startswith("\r\n", i):
            out.append("\r\n")
            i += 2
        else:
            out.append(s[i])
            i += 1
    return out


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
        self.version += self._version_step()
        self.unsent.append(change)
        self._changed()

    def _changed(self) -> None:
        """A change was queued (debounced editors wait for :meth:`flush`)."""

    def flush(self) -> None:
        """Send the queued changes as one didChange, with the version of the last."""
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

    def _edit_offsets(self, edit: EditToApply) -> tuple[int, int]:
        start = ref_offset(self.text, *edit.start, self.encoding)
        end = ref_offset(self.text, *edit.end, self.encoding)
        assert start <= end, edit
        # the bridge must never address a place an editor can not
        assert ref_position(self.text, start, self.encoding) == edit.start, (edit, self.text)
        assert ref_position(self.text, end, self.encoding) == edit.end, (edit, self.text)
        return start, end

    def receive_edit(self, edit: EditToApply) -> None:
        raise NotImplementedError

    def _apply_as_sent(self, edit: EditToApply) -> None:
        start, end = self._edit_offsets(edit)
        self._change(start, end, edit.new_text, ContentChange((*edit.start, *edit.end), edit.new_text))
        self.edit_changes += 1

    def _apply_minimal(self, edit: EditToApply) -> None:
        """One change: the edit with the text it leaves alone trimmed off both ends."""
        start, end = self._edit_offsets(edit)
        old, new = self.text[start:end], edit.new_text
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

    def _apply_lines(self, edit: EditToApply) -> None:
        """One change replacing every whole line the edit touches (line breaks included)."""
        start, end = self._edit_offsets(edit)
        ls = lines(self.text)
        first = next(ln for ln, (s, _, nxt) in enumerate(ls) if start < nxt or ln == len(ls) - 1)
        last = next(ln for ln, (s, _, nxt) in enumerate(ls) if end < nxt or ln == len(ls) - 1)
        lo, hi = ls[first][0], ls[last][2]
        new_text = self.text[lo:start] + edit.new_text + self.text[end:hi]
        self._change(lo, hi, new_text)
        self.edit_changes += 1

    def _apply_hunks(self, edit: EditToApply, backwards: bool) -> None:
        """Several changes: a diff of the edit's range against its new text, one change per hunk."""
        start, end = self._edit_offsets(edit)
        expected = self.text[:start] + edit.new_text + self.text[end:]
        a, b = _tokens(self.text[start:end]), _tokens(edit.new_text)
        a_at = [0]
        for t in a:
            a_at.append(a_at[-1] + len(t))
        hunks = [
            (start + a_at[i1], start + a_at[i2], "".join(b[j1:j2]))
            for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
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
    name = "vscode"

    def __init__(
        self, text: str, rng: random.Random, encoding: str = UTF16, version: int | None = None
    ) -> None:
        super().__init__(text, encoding, rng, version)

    def _changed(self) -> None:
        self.flush()  # every change is its own didChange, at once

    def receive_edit(self, edit: EditToApply) -> None:
        if edit.version != self.version:
            self.edits_refused += 1
            self.outbox.append(Answer(False))
            return
        self._apply_as_sent(edit)
        self.edits_applied += 1
        self.outbox.append(Answer(True))


class Neovim07(SimEditor):
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
        how = self.rng.choice((self._apply_as_sent, self._apply_minimal, self._apply_lines))
        how(edit)
        self.edits_applied += 1
        if self.rng.random() < 0.25:
            self.flush()
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
        self._apply_hunks(edit, backwards=self.rng.random() < 0.5)
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
