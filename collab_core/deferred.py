"""A text that takes ops without copying itself for each one.

Applying an op to a ``str`` copies the whole text: on a document of a megabyte, a few hundred
microseconds a keystroke, most of it the allocator faulting in fresh pages.  A
:class:`DeferredText` of a large text keeps the text and the ops since, composed, and applies them
only when the whole text is read, or once the ops held would cost about as much to compose as to
apply (many components, or much inserted text).  Its length and any span of it are read without
applying.  A small text is copied at once: composing in Python costs more than that copy.

It is a value: :meth:`DeferredText.then` returns a new one and leaves the old as it was, so a
holder may keep an older text (the hub's committed text beside its head) at no cost.
"""

from __future__ import annotations

from . import ops

__all__ = ["DeferredText", "EAGER_LENGTH", "MAX_COMPONENTS", "MAX_INSERTED"]

#: texts of at most this many code points take each op at once (measured here: a copy of 256 K
#: code points costs 14 us, composing an op into 128 components 21 us; a copy of 1 M, 585 us)
EAGER_LENGTH = 1 << 17

#: components the ops held may have before they are applied
MAX_COMPONENTS = 256
#: code points of inserted text the ops held may have before they are applied: a document
#: created empty and sent as pieces would otherwise compose into one large insert, which each
#: later op would copy whole
MAX_INSERTED = 4096


class DeferredText:
    """A text as a base and the ops applied to it since (see the module docstring)."""

    __slots__ = ("_base", "_since", "length")

    def __init__(self, text: str) -> None:
        self._base = text
        self._since: ops.Op = []
        #: the text's length in code points
        self.length = len(text)

    @property
    def text(self) -> str:
        """The whole text (the ops held are applied once, here)."""
        if self._since:
            self._base = ops.apply(self._base, self._since)
            self._since = []
        return self._base

    @property
    def behind(self) -> ops.Op:
        """The ops held, composed (empty when the text is applied)."""
        return self._since

    def then(self, op: ops.Op) -> DeferredText:
        """This text with *op* applied.  Raises :class:`ops.InvalidOp` if *op* reaches past the end."""
        if not self._since and self.length <= EAGER_LENGTH:
            return DeferredText(ops.apply(self._base, op))
        if ops.base_length(op) > self.length:
            raise ops.InvalidOp("operation past the end of the document")
        out = DeferredText.__new__(DeferredText)
        out.length = ops.target_length(op, self.length)
        since = ops.compose(self._since, op) if self._since else op
        if (
            max(self.length, out.length) <= EAGER_LENGTH
            or len(since) > MAX_COMPONENTS
            or _inserted(since) > MAX_INSERTED
        ):
            out._base, out._since = ops.apply(self._base, since), []
        else:
            out._base, out._since = self._base, since
        return out

    def span(self, start: int, end: int) -> str:
        """``text[start:end]`` (0 <= start <= end <= length), read without applying the ops held."""
        since = self._since
        base = self._base
        if not since:
            return base[start:end]
        parts: list[str] = []
        at = 0  # in this text
        i = 0  # in the base
        for c in since:
            if at >= end:
                break
            if type(c) is str:
                n = len(c)
                if at + n > start:
                    parts.append(c[max(start - at, 0) : end - at])
                at += n
            elif c > 0:  # type: ignore[operator]
                n = c  # type: ignore[assignment]
                if at + n > start:
                    lo = max(start, at)
                    parts.append(base[i + lo - at : i + min(end, at + n) - at])
                at += n
                i += n
            else:
                i -= c  # type: ignore[operator]
        if at < end:  # the retain a trailing op may leave out
            lo = max(start, at)
            parts.append(base[i + lo - at : i + end - at])
        return "".join(parts)


def _inserted(op: ops.Op) -> int:
    """Code points *op* inserts."""
    return sum(len(c) for c in op if type(c) is str)
