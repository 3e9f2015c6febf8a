"""The two OT implementations under test, behind one interface in our op format.

``OURS`` is :mod:`collab_core.ops`.  ``OTTYPE`` is python-ottype (its C
functions from ``ottype.core_boost``; ``OTTYPE_PY`` the pure-Python ones in
``ottype.core``), which speaks ot-text-unicode: ``int`` skip, ``str`` insert,
``{"d": text}`` delete.  The adapter only translates formats; every decision
(validation, tie-breaking, merging) is left to the library so the property
tests judge the library and not the adapter:

* deletes are given their text from the document they apply to; a delete
  reaching past the end is padded with U+FFFD so the library itself has to
  notice the mismatch;
* ``ValueError`` / ``TypeError`` that ottype documents for bad input become
  :class:`InvalidOp`; anything else propagates;
* ``transform(a, b)`` is ``(transform(a, b, "left"), transform(b, a, "right"))``:
  by experiment ``"left"`` puts the first argument's insert first (the
  opposite of what ottype's docstring says), matching our tie rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import ottype.core
import ottype.core_boost

from collab_core import ops
from collab_core.ops import InvalidOp, Op


class Ours:
    name = "ours"

    def check(self, raw: Any) -> Op:
        return ops.check(raw)

    def normalize(self, text: str, op: Op) -> Op:
        return ops.normalize(op)

    def apply(self, text: str, op: Op) -> str:
        return ops.apply(text, op)

    def transform(self, text: str, a: Op, b: Op) -> tuple[Op, Op]:
        return ops.transform(a, b)

    def compose(self, text: str, a: Op, b: Op) -> Op:
        return ops.compose(a, b)

    def unapply(self, after: str, op: Op, before: str) -> str:
        """Undo *op* (which turned *before* into *after*)."""
        return ops.apply(after, ops.invert(op, before))

    def __repr__(self) -> str:
        return self.name


def to_ot(text: str, op: Op) -> list[Any]:
    """Our op on *text* -> ot-text-unicode (deletes carry the text they remove)."""
    out: list[Any] = []
    pos = 0
    for c in op:
        if type(c) is str:
            out.append(c)
        elif c > 0:  # type: ignore[operator]
            out.append(c)
            pos += c  # type: ignore[operator]
        else:
            n = -c  # type: ignore[operator]
            gone = text[pos : pos + n]
            out.append({"d": gone + "\ufffd" * (n - len(gone))})
            pos += n
    return out


def from_ot(ot: Any) -> Op:
    """ot-text-unicode -> our format, component for component (no normalizing)."""
    out: Op = []
    for c in ot:
        if isinstance(c, dict):
            out.append(-len(c["d"]))
        else:
            out.append(c)
    return out


@dataclass
class OtType:
    mod: ModuleType
    name: str

    def _norm(self, text: str, op: Op) -> list[Any]:
        try:
            return list(self.mod.normalize(to_ot(text, op)))
        except (ValueError, TypeError) as e:
            raise InvalidOp(str(e)) from e

    def check(self, raw: Any) -> Op:
        try:
            ok = self.mod.check(raw, check_unoptimized=False)
        except TypeError as e:  # documented for a non-list
            raise InvalidOp(str(e)) from e
        if not ok:
            raise InvalidOp("ottype.check() is false")
        return from_ot(self.mod.normalize(raw))

    def normalize(self, text: str, op: Op) -> Op:
        return from_ot(self._norm(text, op))

    def apply(self, text: str, op: Op) -> str:
        try:
            return str(self.mod.apply(text, to_ot(text, op), check_unoptimized=False))
        except (ValueError, TypeError) as e:
            raise InvalidOp(str(e)) from e

    def transform(self, text: str, a: Op, b: Op) -> tuple[Op, Op]:
        aa, bb = self._norm(text, a), self._norm(text, b)
        return from_ot(self.mod.transform(aa, bb, "left")), from_ot(self.mod.transform(bb, aa, "right"))

    def compose(self, text: str, a: Op, b: Op) -> Op:
        mid = ops.apply(text, a)
        return from_ot(self.mod.compose(self._norm(text, a), self._norm(mid, b)))

    def unapply(self, after: str, op: Op, before: str) -> str:
        return str(self.mod.inverse_apply(after, self._norm(before, op)))

    def __repr__(self) -> str:
        return self.name


OURS = Ours()
OTTYPE = OtType(ottype.core_boost, "ottype")
OTTYPE_PY = OtType(ottype.core, "ottype-py")
