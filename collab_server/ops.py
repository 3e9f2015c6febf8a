"""Text operations over Unicode code points: apply, transform, compose, invert.

An operation is a list of components, the ot.js format:

* a positive ``int`` *n* retains (skips over) *n* code points,
* a non-empty ``str`` inserts that text,
* a negative ``int`` *-n* deletes *n* code points.

Positions count code points, i.e. Python ``str`` indices, so an emoji or any
other astral character is one position and CRLF is two.  A trailing retain
is implied: an operation need not span the whole document, but it may not
reach past its end.  ``normalize`` gives the canonical form (adjacent
components merged, insert before delete where they touch, no trailing
retain); every function here returns canonical operations.

This module is the sans-I/O heart of pairls: no I/O, no clock, no
randomness, and it never raises on peer input except :class:`InvalidOp`,
which the callers turn into a coded refusal.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Component",
    "InvalidOp",
    "Op",
    "apply",
    "base_length",
    "check",
    "compose",
    "delete",
    "insert",
    "invert",
    "is_noop",
    "normalize",
    "target_length",
    "transform",
    "transform_index",
]

Component = int | str
Op = list[Component]


class InvalidOp(ValueError):
    """An operation is malformed or does not fit the document it is applied to."""


def check(raw: Any) -> Op:
    """Validate an operation received from outside and return it normalized.

    Raises :class:`InvalidOp` if *raw* is not a list of non-zero ints and
    non-empty strings.  ``bool`` is refused even though it is an ``int``.
    """
    if not isinstance(raw, list):
        raise InvalidOp("operation must be a list")
    for c in raw:
        t = type(c)
        if t is int:
            if c == 0:
                raise InvalidOp("zero-length component")
        elif t is str:
            if not c:
                raise InvalidOp("empty insert")
        else:
            raise InvalidOp("component must be an int or a string")
    return normalize(raw)


def normalize(op: list[Component]) -> Op:
    """Canonical form: merged neighbours, inserts before deletes, no trailing retain."""
    out: Op = []
    for c in op:
        _push(out, c)
    _trim(out)
    return out


def _push(out: Op, c: Component) -> None:
    """Append component *c* to *out*, keeping *out* canonical (bar the trailing retain)."""
    if type(c) is str:
        if not c:
            return
        if out:
            last = out[-1]
            if type(last) is str:
                out[-1] = last + c
                return
            if last < 0:  # type: ignore[operator]
                # Insert and delete at the same place commute; keep insert first.
                if len(out) >= 2 and type(out[-2]) is str:
                    out[-2] = out[-2] + c
                else:
                    out.insert(len(out) - 1, c)
                return
        out.append(c)
        return
    if c == 0:
        return
    if out:
        last = out[-1]
        if type(last) is int and (last > 0) == (c > 0):  # type: ignore[operator]
            out[-1] = last + c  # type: ignore[operator]
            return
    out.append(c)


def _trim(out: Op) -> None:
    if out and type(out[-1]) is int and out[-1] > 0:
        out.pop()


def base_length(op: Op) -> int:
    """The smallest document length *op* can apply to."""
    n = 0
    for c in op:
        if type(c) is int:
            n += c if c > 0 else -c
    return n


def target_length(op: Op, length: int) -> int:
    """Length of a document of *length* code points after *op*."""
    for c in op:
        if type(c) is str:
            length += len(c)
        elif c < 0:  # type: ignore[operator]
            length += c  # type: ignore[operator]
    return length


def is_noop(op: Op) -> bool:
    return not op


def insert(pos: int, text: str) -> Op:
    """The operation inserting *text* at *pos*."""
    return normalize([pos, text])


def delete(pos: int, count: int) -> Op:
    """The operation deleting *count* code points at *pos*."""
    return normalize([pos, -count])


def apply(text: str, op: Op) -> str:
    """Apply *op* to *text*.  Raises :class:`InvalidOp` if it reaches past the end."""
    n = len(op)
    # Fast paths for the shapes a keystroke makes: [pos?, ins?, del?].
    if n == 0:
        return text
    c0 = op[0]
    if n == 1:
        if type(c0) is str:
            return c0 + text
        if c0 < 0 and -c0 <= len(text):  # type: ignore[operator]
            return text[-c0:]  # type: ignore[operator]
    elif n == 2 and type(c0) is int and c0 > 0:
        c1 = op[1]
        if c0 <= len(text):
            if type(c1) is str:
                return text[:c0] + c1 + text[c0:]
            elif c1 < 0 and c0 - c1 <= len(text):  # type: ignore[operator]
                return text[:c0] + text[c0 - c1 :]  # type: ignore[operator]
    parts: list[str] = []
    i = 0
    size = len(text)
    for c in op:
        if type(c) is str:
            parts.append(c)
        elif c > 0:  # type: ignore[operator]
            j = i + c  # type: ignore[operator]
            if j > size:
                raise InvalidOp("retain past the end of the document")
            parts.append(text[i:j])
            i = j
        else:
            i -= c  # type: ignore[operator]
            if i > size:
                raise InvalidOp("delete past the end of the document")
    if i > size:
        raise InvalidOp("operation past the end of the document")
    parts.append(text[i:])
    return "".join(parts)


def invert(op: Op, text: str) -> Op:
    """The operation that undoes *op*, given the *text* it was applied to."""
    out: Op = []
    i = 0
    for c in op:
        if type(c) is str:
            _push(out, -len(c))
        elif c > 0:  # type: ignore[operator]
            _push(out, c)
            i += c  # type: ignore[operator]
        else:
            j = i - c  # type: ignore[operator]
            if j > len(text):
                raise InvalidOp("delete past the end of the document")
            _push(out, text[i:j])
            i = j
    if i > len(text):
        raise InvalidOp("operation past the end of the document")
    _trim(out)
    return out


class _Reader:
    """Walks an operation component by component, splitting on demand."""

    __slots__ = ("op", "i", "head")

    def __init__(self, op: Op) -> None:
        self.op = op
        self.i = 0
        self.head: Component | None = op[0] if op else None

    def next(self) -> None:
        self.i += 1
        self.head = self.op[self.i] if self.i < len(self.op) else None

    def take(self, n: int) -> Component:
        """Consume up to *n* units of the head (a retain or a delete, or insert text)."""
        h = self.head
        assert h is not None
        if type(h) is str:
            if len(h) <= n:
                self.next()
                return h
            self.head = h[n:]
            return h[:n]
        if h > 0:  # type: ignore[operator]
            if h <= n:  # type: ignore[operator]
                self.next()
                return h
            self.head = h - n  # type: ignore[operator]
            return n
        if -h <= n:  # type: ignore[operator]
            self.next()
            return h
        self.head = h + n  # type: ignore[operator]
        return -n


def _span(c: Component) -> int:
    """How many base-document code points component *c* covers (0 for inserts)."""
    if type(c) is str:
        return 0
    return c if c > 0 else -c  # type: ignore[operator,return-value]


def transform(a: Op, b: Op) -> tuple[Op, Op]:
    """Transform concurrent *a* and *b* (same base) into ``(a', b')``.

    ``apply(apply(s, a), b') == apply(apply(s, b), a')`` (TP1).  Where both
    insert at the same position, *a*'s text goes first: the hub passes the
    incoming client op as *a* and the already-sequenced op as *b*, and the
    client passes its own pending op as *a* and the hub's as *b*, so both
    sides break the tie the same way.
    """
    if not b:
        return normalize(a), []
    if not a:
        return [], normalize(b)
    a_out: Op = []
    b_out: Op = []
    ra = _Reader(a)
    rb = _Reader(b)
    while ra.head is not None or rb.head is not None:
        ha = ra.head
        hb = rb.head
        if type(ha) is str:
            _push(a_out, ha)
            _push(b_out, len(ha))
            ra.next()
            continue
        if type(hb) is str:
            _push(a_out, len(hb))
            _push(b_out, hb)
            rb.next()
            continue
        # Both heads span base text (or one side has run out: implied retain).
        if ha is None:
            n = _span(hb)  # type: ignore[arg-type]
            ca: Component = n
            cb = rb.take(n)
        elif hb is None:
            n = _span(ha)
            ca = ra.take(n)
            cb = n
        else:
            n = min(_span(ha), _span(hb))
            ca = ra.take(n)
            cb = rb.take(n)
        if ca > 0:  # type: ignore[operator]
            if cb > 0:  # type: ignore[operator]
                _push(a_out, n)
                _push(b_out, n)
            else:
                _push(b_out, -n)
        elif cb > 0:  # type: ignore[operator]
            _push(a_out, -n)
        # both delete the same text: it is gone for both, nothing to emit
    _trim(a_out)
    _trim(b_out)
    return a_out, b_out


def compose(a: Op, b: Op) -> Op:
    """One operation with the effect of *a* followed by *b*."""
    if not a:
        return normalize(b)
    if not b:
        return normalize(a)
    out: Op = []
    ra = _Reader(a)
    rb = _Reader(b)
    while ra.head is not None or rb.head is not None:
        ha = ra.head
        hb = rb.head
        # Deletes in a act on the original document: b never sees that text.
        if type(ha) is int and ha < 0:
            _push(out, ha)
            ra.next()
            continue
        # Inserts in b come from nowhere in a's output.
        if type(hb) is str:
            _push(out, hb)
            rb.next()
            continue
        if hb is None:
            # implied trailing retain of b keeps the rest of a
            _push(out, ha)  # type: ignore[arg-type]
            ra.next()
            continue
        if ha is None:
            # implied trailing retain of a: b acts on the original text
            _push(out, hb)
            rb.next()
            continue
        # ha is a retain or an insert (spans output of a); hb is a retain or delete.
        la = len(ha) if type(ha) is str else ha
        n = min(la, _span(hb))
        ca = ra.take(n)  # type: ignore[arg-type]
        cb = rb.take(n)  # type: ignore[arg-type]
        if cb > 0:  # type: ignore[operator]
            _push(out, ca)
        elif type(ca) is not str:
            _push(out, cb)
        # else: b deletes what a inserted; both vanish
    _trim(out)
    return out


def transform_index(index: int, op: Op, *, after_insert: bool = False) -> int:
    """Where the position *index* moves to when *op* is applied.

    A cursor at an insert position stays before the inserted text unless
    *after_insert* (the author's own cursor moves past what it typed).
    """
    pos = 0
    new = index
    for c in op:
        if pos > index or (pos == index and not after_insert and type(c) is str):
            break
        if type(c) is str:
            new += len(c)
        elif c > 0:  # type: ignore[operator]
            pos += c  # type: ignore[operator]
        else:
            n = min(-c, index - pos)  # type: ignore[operator]
            new -= n
            pos -= c  # type: ignore[operator]
    return new
