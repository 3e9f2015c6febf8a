"""The editor as an OT peer whose revisions are LSP versions (sans-I/O).

DESIGN.md decision 2.  An :class:`EditorSync` stands between one editor
buffer and the document's :class:`~collab_server.client.DocumentClient`:

* :meth:`did_change` takes a ``textDocument/didChange`` (version and content
  changes, positions in the negotiated encoding) and returns the user's
  edits as ops for the client state machine.
* :meth:`receive_remote` takes a remote op (as the client returned it);
  :meth:`edit_to_send` then says which ``workspace/applyEdit`` to send: one
  ``TextEdit`` covering every remote op the editor has not shown yet,
  versioned with the last version seen (never ``null``).
* :meth:`edit_answered` takes the editor's answer.

The bridge never trusts an editor's ``applied: true``: Neovim answers it even
when it skipped a stale edit ("newer than edits").  It recognises its own
edit by its *effect*: if applying a prefix of the first change batch after
the edit was sent turns the shown text into exactly the text the edit would
give, that prefix is the edit; every other change is the user's.  An edit
that was refused (VS Code ``applied: false``, eglot's error) or skipped is
sent again, transformed past the user's changes (the
:class:`~collab_server.view.LaggingView` keeps it transformed).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from collab_server import ops
from collab_server.view import LaggingView

from .positions import UTF8, UTF16, UTF32, LineIndex

__all__ = ["ContentChange", "EditToApply", "EditorSync", "diff"]


@dataclass(frozen=True, slots=True)
class ContentChange:
    """One ``TextDocumentContentChangeEvent``: a range (editor units) or ``None`` for the whole text."""

    range: tuple[int, int, int, int] | None
    text: str


@dataclass(frozen=True, slots=True)
class EditToApply:
    """A ``workspace/applyEdit`` to send: replace ``start``..``end`` (editor units) at ``version``."""

    version: int
    start: tuple[int, int]
    end: tuple[int, int]
    new_text: str


@dataclass(slots=True)
class _Sent:
    version: int
    expected: str
    count: int


def _places(op: ops.Op) -> int:
    """How many separate places *op* changes (runs of inserts/deletes between retains)."""
    n = 0
    changing = False
    for c in op:
        if type(c) is int and c > 0:
            changing = False
        elif not changing:
            n += 1
            changing = True
    return n


def _same_but_eol(a: str, b: str) -> bool:
    """Equal once CRLF is read as LF and a final newline is ignored."""
    if "\r" in a or "\r" in b:
        a = a.replace("\r\n", "\n")
        b = b.replace("\r\n", "\n")
    return a.removesuffix("\n") == b.removesuffix("\n")


def diff(old: str, new: str) -> ops.Op:
    """A minimal single-region op turning *old* into *new* (common prefix and suffix kept)."""
    if old == new:
        return []
    n = min(len(old), len(new))
    p = 0
    while p < n and old[p] == new[p]:
        p += 1
    s = 0
    while s < n - p and old[len(old) - 1 - s] == new[len(new) - 1 - s]:
        s += 1
    return ops.normalize([p, new[p : len(new) - s], -(len(old) - s - p)])


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
        #: edits recognised as our own / sent / refused or skipped (for logs and tests)
        self.stats = {"sent": 0, "confirmed": 0, "missed": 0}

    @property
    def text(self) -> str:
        """The editor's text as of :attr:`version`."""
        return self.view.text

    @property
    def target(self) -> str:
        """The text the editor will show once every pending remote op is applied."""
        text = self.view.text
        for _, op in self.view.pending:
            text = ops.apply(text, op)
        return text

    @property
    def quiet(self) -> bool:
        """Nothing to show and nothing in flight."""
        return not self.view.pending and self._sent is None and not self._awaiting_answer

    # -- from the editor ---------------------------------------------------

    def did_change(self, version: int, changes: list[ContentChange]) -> list[ops.Op]:
        """The editor reports *changes* reaching *version*; returns the user's edits as ops."""
        rest = changes
        out: list[ops.Op] = []
        sent = self._sent
        if sent is not None and changes:
            self._sent = None
            texts = []
            scratch = self.view.text
            for change in changes:
                scratch = ops.apply(scratch, self._change_op(scratch, change))
                texts.append(scratch)
            # Our edit is the shortest prefix with exactly its effect; failing
            # that, with its effect up to line endings (VS Code writes the
            # document's EOL, Neovim keeps a final newline it cannot drop).
            k = next((i for i, t in enumerate(texts) if t == sent.expected), None)
            loose = k is None
            if loose:
                k = next((i for i, t in enumerate(texts) if _same_but_eol(t, sent.expected)), None)
            if k is not None:
                for _ in range(sent.count):
                    self.view.show_next()
                rest = changes[k + 1 :]
                self.stats["confirmed"] += 1
                if loose:
                    # The editor wrote it its way: that difference is the editor's
                    # (the user's) edit, sent once, so the room follows the buffer.
                    out.append(self.view.local(diff(self.view.text, texts[k])))
            else:
                # The first changes after our edit's version are not it: the
                # editor refused or skipped it.  It stays pending and goes
                # again, transformed past these changes.
                self.stats["missed"] += 1
        for change in rest:
            op = self._change_op(self.view.text, change)
            if op:
                out.append(self.view.local(op))
        self.version = version
        return out

    def _change_op(self, text: str, change: ContentChange) -> ops.Op:
        if change.range is None:
            return diff(text, change.text)
        idx = LineIndex.of(text)
        sl, sc, el, ec = change.range
        start = idx.offset(sl, sc, self.encoding)
        end = max(start, idx.offset(el, ec, self.encoding))
        return ops.normalize([start, change.text, -(end - start)])

    # -- from the hub --------------------------------------------------------

    def receive_remote(self, op: ops.Op) -> None:
        """A remote op, transformed by the client state machine for the local text."""
        if op:
            self.view.receive_remote(op)

    def reset(self, text: str) -> None:
        """The hub's text is *text*: bring the editor to it with one minimal edit (a heal)."""
        self.view.pending.clear()
        sent = self._sent
        if sent is not None:
            # An edit is still on its way to the editor, which may yet apply
            # it: keep it recognisable (else its effect would pass for the
            # user's typing and go to the hub a second time), then go on to *text*.
            self.view.receive_remote(diff(self.view.text, sent.expected))
            self._sent = _Sent(sent.version, sent.expected, len(self.view.pending))
            self.view.receive_remote(diff(sent.expected, text))
            return
        self.view.receive_remote(diff(self.view.text, text))

    # -- to the editor --------------------------------------------------------

    def edit_to_send(self) -> EditToApply | None:
        """The ``workspace/applyEdit`` to send now, if any (one at a time)."""
        if self._awaiting_answer or self._sent is not None or not self.view.pending:
            return None
        # The oldest pending ops, composed while they still change one place:
        # a peer's burst of typing goes as one edit, but two peers typing at
        # two places go as two, so the user's cursor between them stays put
        # (one edit spanning both would replace the text in between).
        while True:
            base = self.view.text
            op = self.view.pending[0][1]
            count = 1
            for _, more in itertools.islice(self.view.pending, 1, None):
                joined = ops.compose(op, more)
                if _places(joined) > max(1, _places(op)):
                    break
                op, count = joined, count + 1
            expected = ops.apply(base, op)
            if expected != base:
                break
            # They change nothing (e.g. "b" replaced by "b"): an editor that
            # applies an edit as a diff would report no change, and we would
            # wait for its effect forever.  Show them; send none.
            for _ in range(count):
                self.view.show_next()
            if not self.view.pending:
                return None
        start = op[0] if type(op[0]) is int and op[0] > 0 else 0
        end = ops.base_length(op)
        new_text = expected[start : len(expected) - (len(base) - end)]
        # LSP cannot address the place between the \r and \n of a CRLF:
        # widen the edit over that line break so it says the same thing.
        if 0 < start < len(base) and base[start - 1] == "\r" and base[start] == "\n":
            start -= 1
            new_text = "\r" + new_text
        if 0 < end < len(base) and base[end - 1] == "\r" and base[end] == "\n":
            end += 1
            new_text += "\n"
        # Neovim applies an edit that reaches the position after the final line break in two
        # buffer changes (a line too many, then 'fixeol' deletes it), two didChange when it does
        # not debounce: say the same edit without that position (keep the final "\n" out of it).
        at_end = end == len(base) and base.endswith("\n") and not base.endswith("\r\n")
        if at_end and new_text.endswith("\n"):
            if start < end:
                end -= 1
                new_text = new_text[:-1]
            else:
                start = end = end - 1
                new_text = "\n" + new_text[:-1]
        idx = LineIndex.of(base)
        self._sent = _Sent(self.version, expected, count)
        self._awaiting_answer = True
        self.stats["sent"] += 1
        return EditToApply(
            self.version, idx.position(start, self.encoding), idx.position(end, self.encoding), new_text
        )

    def edit_answered(self, applied: bool) -> list[ops.Op]:
        """The editor answered the last applyEdit (an error counts as ``applied=False``).

        Returns the user's edits to send, if any: when the editor says it
        applied an edit whose effect it already shows up to line endings
        (Neovim asked to drop the final newline it always keeps changes
        nothing and reports nothing), the edit is taken as applied and the
        difference is the editor's edit.
        """
        self._awaiting_answer = False
        sent = self._sent
        if sent is None:
            return []
        if not applied:
            self._sent = None
            self.stats["missed"] += 1
            return []
        if sent.version == self.version and _same_but_eol(self.view.text, sent.expected):
            self._sent = None
            shown = self.view.text
            for _ in range(sent.count):
                self.view.show_next()
            self.stats["confirmed"] += 1
            op = diff(self.view.text, shown)
            return [self.view.local(op)] if op else []
        return []

    def abandon(self) -> None:
        """Stop waiting for the effect of an edit the editor said it applied (it never came)."""
        self._awaiting_answer = False
        self._sent = None
