"""An independent, slow history of one document, from its op log: the check on the hub's
answers (history, blame, undo) and on the language server's blame.

One object per character ever inserted, in document order, deleted ones kept
(docs/protocol.md, "History"): which change inserted it, which changes deleted
it, and the revision that last changed whether it shows.  An undo or redo
("toggles" a change) flips the change; which characters show then follows, and
must be exactly what the logged op did to the text (checked as it is replayed).
Blame is read per line the way the protocol defines it.  Plain lists: O(n) per
op, for tests only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from collab_core import ops

__all__ = ["Char", "RefHistory"]


@dataclass
class Char:
    ch: str
    #: the change (its first revision) that inserted it
    change: int
    #: the changes that deleted it
    deleted_by: set[int] = field(default_factory=set)
    #: the revision that last changed whether it shows (insert, delete, undo, redo)
    vrev: int = 0
    visible: bool = True


@dataclass
class RefHistory:
    chars: list[Char] = field(default_factory=list)
    #: change (first rev) -> active
    active: dict[int, bool] = field(default_factory=dict)
    #: rev -> (user, time) of every op (0: the creation)
    who: dict[int, tuple[str, Any]] = field(default_factory=dict)
    rev: int = 0

    @classmethod
    def start(cls, text: str, user: str = "", time: Any = None) -> RefHistory:
        h = cls([Char(c, 0) for c in text], {0: True}, {0: (user, time)})
        return h

    @property
    def text(self) -> str:
        return "".join(c.ch for c in self.chars if c.visible)

    def _shows(self, c: Char) -> bool:
        return self.active.get(c.change, False) and not any(self.active.get(d, False) for d in c.deleted_by)

    def apply(
        self,
        rev: int,
        op: ops.Op,
        user: str,
        time: Any,
        change: int | None = None,
        toggles: int | None = None,
    ) -> None:
        """The logged op at *rev*: an ordinary op of *change* (None: its own rev), or an undo or
        redo of change *toggles*, whose effect on the text must be *op* (AssertionError if not)."""
        assert rev == self.rev + 1, (rev, self.rev)
        self.rev = rev
        self.who[rev] = (user, time)
        before = self.text
        if toggles is not None:
            self.active[toggles] = not self.active.get(toggles, True)
            for c in self.chars:
                shows = self._shows(c)
                if shows != c.visible:
                    c.visible = shows
                    c.vrev = rev
            assert self.text == ops.apply(before, op), f"the toggle at {rev} is not what it did"
            return
        change = rev if change is None else change
        self.active.setdefault(change, True)
        pos = 0  # in visible characters
        for comp in op:
            if isinstance(comp, str):
                at = self._after_visible(pos)
                self.chars[at:at] = [Char(ch, change, vrev=rev) for ch in comp]
                pos += len(comp)
            elif comp > 0:
                pos += comp
            else:
                for _ in range(-comp):
                    c = self.chars[self._visible_at(pos)]
                    c.deleted_by.add(change)
                    c.visible = False
                    c.vrev = rev
        assert self.text == ops.apply(before, op)

    def _after_visible(self, p: int) -> int:
        """Where an insert at visible position *p* goes: right after visible character p - 1,
        before the deleted ones that follow it (0 for p == 0)."""
        if p == 0:
            return 0
        seen = 0
        for i, c in enumerate(self.chars):
            if c.visible:
                seen += 1
                if seen == p:
                    return i + 1
        raise AssertionError("insert past the end")

    def _visible_at(self, p: int) -> int:
        seen = -1
        for i, c in enumerate(self.chars):
            if c.visible:
                seen += 1
                if seen == p:
                    return i
        raise AssertionError("delete past the end")

    def blame_revs(self) -> list[int]:
        """Per line of the text (split on "\\n"): the newest revision that changed one of its
        characters' visibility: the ones that show (its newline included), hidden ones inside
        it, hidden ones at its start back to the newline before (a hidden newline ends that:
        a deleted line marks nothing); an empty last line also counts the newline before it;
        an empty document that never held anything is revision 0."""
        out: list[int] = []
        best = lead = prev_nl = -1
        seen = False
        for c in self.chars:
            if c.visible:
                if not seen:
                    seen = True
                    best = max(best, lead)
                best = max(best, c.vrev)
                if c.ch == "\n":
                    out.append(best)
                    prev_nl = c.vrev
                    best = lead = -1
                    seen = False
            elif seen:
                best = max(best, c.vrev)
            elif c.ch == "\n":
                lead = -1
            else:
                lead = max(lead, c.vrev)
        out.append(best if seen else max(lead, prev_nl))
        return [max(r, 0) for r in out]
