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

import difflib
import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "Component",
    "InvalidOp",
    "Op",
    "apply",
    "applied",
    "base_length",
    "check",
    "common_prefix",
    "common_suffix",
    "compose",
    "delete",
    "diff",
    "encoded_size",
    "insert",
    "invert",
    "is_noop",
    "map_back",
    "normalize",
    "split",
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


def normalize(op: Sequence[Component]) -> Op:
    """Canonical form: merged neighbours, inserts before deletes, no trailing retain.

    Linear in the number of components and the inserted text: a run of
    inserts is joined once, at its end (see :class:`_Builder`).
    """
    b = _Builder()
    push = b.push
    for c in op:
        push(c)
    return b.op()


class _Builder:
    """Builds a canonical op, component by component, in linear time.

    Between two retains a canonical op has at most one insert and then one
    delete.  The run being built (inserts and deletes since the last retain)
    stays open, its inserted strings in a list that is joined once when the
    run ends: merging each insert into the last string as it comes would copy
    the run again and again (quadratic in an op of many small inserts).
    """

    __slots__ = ("out", "ins", "dels")

    def __init__(self, start: Op | None = None) -> None:
        #: closed components; ends with a retain (or is empty) while a run is open
        self.out: Op = list(start) if start else []
        self.ins: list[str] = []
        self.dels = 0
        self._reopen()

    def _reopen(self) -> None:
        """The canonical tail of :attr:`out` (an insert and/or a delete) becomes the open run."""
        out = self.out
        if out and type(out[-1]) is int and out[-1] < 0:
            self.dels = out.pop()  # type: ignore[assignment]
        if out and type(out[-1]) is str:
            self.ins.append(out.pop())  # type: ignore[arg-type]

    def _close(self) -> None:
        ins = self.ins
        if ins:
            self.out.append(ins[0] if len(ins) == 1 else "".join(ins))
            self.ins = []
        if self.dels:
            self.out.append(self.dels)
            self.dels = 0

    def push(self, c: Component) -> None:
        if type(c) is str:
            if c:
                self.ins.append(c)
        elif c < 0:  # type: ignore[operator]
            self.dels += c  # type: ignore[operator]
        elif c:
            if self.ins or self.dels:
                self._close()
                self.out.append(c)
                return
            out = self.out
            if out:  # no open run: the last component is a retain
                out[-1] += c  # type: ignore[operator]
            else:
                out.append(c)

    def extend(self, rest: Op) -> None:
        """Push the canonical *rest*: only its first components can meet what is
        already here, the others are copied as they are (at C speed)."""
        i, n = 0, len(rest)
        while i < n:
            c = rest[i]
            i += 1
            self.push(c)
            if type(c) is int and c > 0:
                break
        if i < n:
            self.out.extend(rest[i:])
            self._reopen()

    def op(self, *, trim: bool = True) -> Op:
        """The op built (without its trailing retain unless *trim* is false); the builder is spent."""
        self._close()
        out = self.out
        if trim and out and type(out[-1]) is int and out[-1] > 0:
            out.pop()
        return out


def base_length(op: Sequence[Component]) -> int:
    """The smallest document length *op* can apply to."""
    n = 0
    for c in op:
        if type(c) is int:
            n += c if c > 0 else -c
    return n


def target_length(op: Sequence[Component], length: int) -> int:
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


def applied(text: str, op: Op, result: str) -> str:
    """*result*, which the caller holds as ``apply(text, op)`` already (made another way: an
    editor's own copy of its buffer), so that the whole text is not copied again.

    Checked for what costs nothing next to a copy: *op* reaches no further than *text*,
    *result* has the length *op* makes, and each insert of *op* stands at its place in
    *result*.  Raises :class:`InvalidOp` if not (the caller's result is not this op's).
    """
    if base_length(op) > len(text) or target_length(op, len(text)) != len(result):
        raise InvalidOp("the given result is not the op applied to the text")
    at = 0
    for c in op:
        if type(c) is str:
            if not result.startswith(c, at):
                raise InvalidOp("the given result is not the op applied to the text")
            at += len(c)
        elif c > 0:  # type: ignore[operator]
            at += c  # type: ignore[operator]
    return result


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
    out = _Builder()
    i = 0
    for c in op:
        if type(c) is str:
            out.push(-len(c))
        elif c > 0:  # type: ignore[operator]
            out.push(c)
            i += c  # type: ignore[operator]
        else:
            j = i - c  # type: ignore[operator]
            if j > len(text):
                raise InvalidOp("delete past the end of the document")
            out.push(text[i:j])
            i = j
    if i > len(text):
        raise InvalidOp("operation past the end of the document")
    return out.op()


class _Reader:
    """Walks an operation component by component, splitting on demand."""

    __slots__ = ("op", "i", "head")

    def __init__(self, op: Sequence[Component]) -> None:
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


def transform(a: Op, b: Sequence[Component]) -> tuple[Op, Op]:
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
    ea = _edit(a)
    if ea is not None:
        eb = _edit(b)
        if eb is not None:
            # the usual pair (a keystroke against a keystroke): no walk through both ops
            return _transform_edits(ea[0], ea[1], eb[0], eb[1])
    if len(a) > 2 * len(b) + 8:
        # A long op (a user's typing all over the document, buffered through an
        # outage) against a short one: only the part of the long one where the
        # short one acts needs transforming; the rest is copied as it is.
        return _transform_window(a, b)
    return _transform(a, b)


def _edit(op: Sequence[Component]) -> tuple[int, Component] | None:
    """``(position, component)`` of a canonical op that is one insert or one delete, else None."""
    n = len(op)
    if n == 1:
        p: Component = 0
        c = op[0]
    elif n == 2:
        p, c = op
        if type(p) is not int or p <= 0:
            return None
    else:
        return None
    if (type(c) is str and c) or (type(c) is int and c < 0):
        return p, c  # type: ignore[return-value]
    return None


def _at(pos: int, *rest: Component) -> Op:
    """The canonical op of *rest* at base position *pos*."""
    return [pos, *rest] if pos else list(rest)


def _transform_edits(pa: int, ca: Component, pb: int, cb: Component) -> tuple[Op, Op]:
    """:func:`_transform` of two single edits (an insert or a delete each), the same result
    computed from their positions (``test_ops`` holds the two to each other)."""
    if type(ca) is str:
        if pa <= pb:  # a's text first where both insert, and before what b deletes
            return _at(pa, ca), _at(pb + len(ca), cb)
        if type(cb) is str:
            return _at(pa + len(cb), ca), _at(pb, cb)
        end = pb - cb  # type: ignore[operator]
        if pa >= end:
            return _at(pa + cb, ca), _at(pb, cb)  # type: ignore[operator]
        # a inserts into what b deletes: b' deletes around a's text
        return _at(pb, ca), _at(pb, pb - pa, len(ca), pa - end)
    if type(cb) is str:
        end = pa - ca  # type: ignore[operator]
        if pb <= pa:
            return _at(pa + len(cb), ca), _at(pb, cb)
        if pb >= end:
            return _at(pa, ca), _at(pb + ca, cb)  # type: ignore[operator]
        return _at(pa, pa - pb, len(cb), pb - end), _at(pa, cb)
    # two deletes: what both delete is gone for both
    ea = pa - ca  # type: ignore[operator]
    eb = pb - cb  # type: ignore[operator]
    both = max(min(ea, eb) - max(pa, pb), 0)
    a_left = -ca - both  # type: ignore[operator]
    b_left = -cb - both  # type: ignore[operator]
    # each moves back by what the other deleted before it
    a_pos = pa - max(min(eb, pa) - pb, 0)
    b_pos = pb - max(min(ea, pb) - pa, 0)
    return (_at(a_pos, -a_left) if a_left else []), (_at(b_pos, -b_left) if b_left else [])


def _transform(a: Sequence[Component], b: Sequence[Component]) -> tuple[Op, Op]:
    a_b = _Builder()
    b_b = _Builder()
    a_push = a_b.push
    b_push = b_b.push
    ra = _Reader(a)
    rb = _Reader(b)
    while ra.head is not None or rb.head is not None:
        ha = ra.head
        hb = rb.head
        if type(ha) is str:
            a_push(ha)
            b_push(len(ha))
            ra.next()
            continue
        if type(hb) is str:
            a_push(len(hb))
            b_push(hb)
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
                a_push(n)
                b_push(n)
            else:
                b_push(-n)
        elif cb > 0:  # type: ignore[operator]
            a_push(-n)
        # both delete the same text: it is gone for both, nothing to emit
    return a_b.op(), b_b.op()


def _cut(op: Op, at: int, *, inserts_at_cut: bool) -> tuple[Op, Op]:
    """Split *op* at base position *at*: (the part before, the rest).  Inserts exactly at
    *at* go to the rest if *inserts_at_cut* is false, else stay before."""
    pos = 0
    for i, c in enumerate(op):
        if isinstance(c, str):
            if pos < at or (pos == at and inserts_at_cut):
                continue
            return op[:i], op[i:]
        n = abs(c)
        if pos + n <= at:
            pos += n
            if pos == at and not inserts_at_cut:
                return op[: i + 1], op[i + 1 :]
            continue
        if pos >= at:
            return op[:i], op[i:]
        k = at - pos  # c straddles the cut
        sign = 1 if c > 0 else -1
        return [*op[:i], sign * k], [sign * (n - k), *op[i + 1 :]]
    return list(op), []


def _transform_window(a: Op, b: Sequence[Component]) -> tuple[Op, Op]:
    first = b[0]
    lo = first if isinstance(first, int) and first > 0 else 0
    hi = base_length(b)
    pre, rest = _cut(a, lo, inserts_at_cut=False)
    short = lo - _base_span(pre)
    if short > 0:  # a ends before the window: its implied retain reaches it
        grown = _Builder(pre)
        grown.push(short)
        pre = grown.op(trim=False)
    mid, post = _cut(rest, hi - lo, inserts_at_cut=True)
    b_mid = b[1:] if lo else b
    mid_t, b_t = _transform(mid, b_mid)
    # what b' skips: a's output over the part before the window
    skip = target_length(pre, lo)
    b_out = _Builder()
    b_out.push(skip)
    b_out.extend(b_t)
    a_out = _Builder(pre)
    a_out.extend(mid_t)
    if post:
        # the window's part of a' must reach the window's end in b's text before post goes on
        window = target_length(b_mid, hi - lo)
        gap = window - base_length(mid_t)
        a_out.push(gap)
        a_out.extend(post)
    return a_out.op(), b_out.op()


def _base_span(op: Op) -> int:
    """The base positions *op* spans (retains and deletes)."""
    return sum(abs(c) for c in op if isinstance(c, int))


def _output_span(op: Op) -> int:
    """The output positions *op* spans (retains and inserts)."""
    return sum(len(c) if isinstance(c, str) else c for c in op if isinstance(c, str) or c > 0)


def compose(a: Op, b: Op) -> Op:
    """One operation with the effect of *a* followed by *b*."""
    if not a:
        return normalize(b)
    if not b:
        return normalize(a)
    if len(a) > 2 * len(b) + 8:
        # a long op (typing buffered through an outage, edits waiting for the editor)
        # and a short one: only the part of the long one's text the short one touches
        return _compose_window(a, b)
    return _compose(a, b)


def _cut_output(op: Op, at: int) -> tuple[Op, Op]:
    """Split *op* at position *at* of its output: (the part before, with the deletes at *at*;
    the rest)."""
    pos = 0
    for i, c in enumerate(op):
        if isinstance(c, int) and c < 0:
            continue  # no output: stays with what comes before
        n = len(c) if isinstance(c, str) else c
        if pos + n <= at:
            pos += n
            continue
        if pos >= at:
            return op[:i], op[i:]
        k = at - pos  # c straddles the cut
        if isinstance(c, str):
            return [*op[:i], c[:k]], [c[k:], *op[i + 1 :]]
        return [*op[:i], k], [c - k, *op[i + 1 :]]
    return list(op), []


def _compose_window(a: Op, b: Op) -> Op:
    first = b[0]
    lo = first if isinstance(first, int) and first > 0 else 0
    hi = base_length(b)
    pre, rest = _cut_output(a, lo)
    out_pre = _output_span(pre)
    out = _Builder(pre)
    if out_pre < lo:  # a ends before the window: its implied retain reaches it
        out.push(lo - out_pre)
    mid, post = _cut_output(rest, hi - lo)
    mid_c = _compose(mid, b[1:] if lo else b)
    out.extend(mid_c)
    if post:
        out.push(_base_span(mid) - _base_span(mid_c))
        # post is canonical: only its first components can meet what is before them
        out.extend(post)
    return out.op()


def _compose(a: Op, b: Op) -> Op:
    out = _Builder()
    push = out.push
    ra = _Reader(a)
    rb = _Reader(b)
    while ra.head is not None or rb.head is not None:
        ha = ra.head
        hb = rb.head
        # Deletes in a act on the original document: b never sees that text.
        if type(ha) is int and ha < 0:
            push(ha)
            ra.next()
            continue
        # Inserts in b come from nowhere in a's output.
        if type(hb) is str:
            push(hb)
            rb.next()
            continue
        if hb is None:
            # implied trailing retain of b keeps the rest of a
            push(ha)  # type: ignore[arg-type]
            ra.next()
            continue
        if ha is None:
            # implied trailing retain of a: b acts on the original text
            push(hb)
            rb.next()
            continue
        # ha is a retain or an insert (spans output of a); hb is a retain or delete.
        la = len(ha) if type(ha) is str else ha
        n = min(la, _span(hb))
        ca = ra.take(n)  # type: ignore[arg-type]
        cb = rb.take(n)  # type: ignore[arg-type]
        if cb > 0:  # type: ignore[operator]
            push(ca)
        elif type(ca) is not str:
            push(cb)
        # else: b deletes what a inserted; both vanish
    return out.op()


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


def map_back(index: int, op: Op) -> int:
    """Where the position *index* of the text after *op* was before it.

    The inverse of :func:`transform_index`: a position inside text that *op*
    inserted maps to the place of the insert.
    """
    base = 0  # position in the text before op
    out = 0  # position in the text after op
    for c in op:
        if type(c) is str:
            n = len(c)
            if index <= out + n:
                return base
            out += n
        elif c > 0:  # type: ignore[operator]
            if index <= out + c:  # type: ignore[operator]
                return base + (index - out)
            out += c  # type: ignore[operator]
            base += c  # type: ignore[operator]
        else:
            if index <= out:
                return base  # at a deletion: its start
            base -= c  # type: ignore[operator]
    return base + (index - out)


def encoded_size(op: Op) -> int:
    """Bytes of *op* as compact JSON in UTF-8 (``ensure_ascii=False``), as it goes on the wire."""
    return _size_up_to(op, None)


def _size_up_to(op: Op, budget: int | None) -> int:
    """:func:`encoded_size`, or, once an insert longer than what is left of *budget* shows the op
    is over it, a size over *budget* without measuring that insert (a character is a byte at
    least)."""
    size = 2 + max(len(op) - 1, 0)  # brackets and commas
    for c in op:
        if type(c) is str:
            if budget is not None and size + len(c) + 2 > budget:
                return size + len(c) + 2
            size += _json_size(c)
        else:
            size += len(str(c))
    return size


#: bytes JSON writes as a two-character escape (one byte more each)
_SHORT_ESCAPES = b'"\\\n\r\t\b\f'
#: the other control characters, written ``\\u00XX`` (five bytes more each)
_LONG_ESCAPES = bytes(c for c in range(0x20) if c not in _SHORT_ESCAPES)


def _json_size(s: str) -> int:
    """Bytes of *s* as a JSON string in UTF-8 (``ensure_ascii=False``), counted without writing it.

    Counted in its UTF-8 bytes (which hold an ASCII character's byte only where that character
    is): what deleting the escaped characters takes away is how many there are."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return len(s) + 2
    b = s.encode("utf-8")
    n = len(b)
    short = n - len(b.translate(None, _SHORT_ESCAPES))
    return n + 2 + short + 5 * (n - len(b.translate(None, _LONG_ESCAPES)))


def split(op: Op, max_bytes: int | None, *, max_components: int | None = None) -> tuple[Op, Op]:
    """Split *op* into ``(head, tail)`` with ``compose(head, tail) == op``,
    ``encoded_size(head) <= max_bytes`` and ``len(head) <= max_components``
    (``tail`` is ``[]`` when *op* fits; ``None`` is no limit).

    Inserted text makes an op large in bytes: a long insert is cut at a code
    point boundary.  *max_bytes* must leave room for a few components (at
    least 64 bytes), *max_components* at least 4.
    """
    if max_bytes is not None and max_bytes < 64:
        raise ValueError("max_bytes too small to hold an op")
    if max_components is not None and max_components < 4:
        raise ValueError("max_components too small to hold an op")
    limit_components = max_components if max_components is not None else len(op)
    if len(op) <= limit_components and (max_bytes is None or _size_up_to(op, max_bytes) <= max_bytes):
        return normalize(op), []
    limit_bytes = max_bytes if max_bytes is not None else math.inf
    head = _Builder()
    used = 2
    base = 0  # base positions consumed by head
    out = 0  # target positions produced by head
    for i, c in enumerate(op):
        if max_bytes is None:
            cost = 0
        elif type(c) is str and len(c) + 3 > limit_bytes - used:
            cost = len(c) + 3  # at least (a byte a character, quotes, comma): it will not fit
        else:
            cost = (_json_size(c) if type(c) is str else len(str(c))) + 1
        if used + cost <= limit_bytes and i < limit_components:
            head.push(c)
            used += cost
            if type(c) is str:
                out += len(c)
            elif c > 0:  # type: ignore[operator]
                base += c  # type: ignore[operator]
                out += c  # type: ignore[operator]
            else:
                base -= c  # type: ignore[operator]
            continue
        rest: Op = op[i:]
        if type(c) is str and i < limit_components:
            # cut the insert to fill what is left of the byte budget
            assert max_bytes is not None  # (without one, only the component count stops us)
            piece = _prefix_within(c, max_bytes - used - 1)
            if piece:
                head.push(piece)
                out += len(piece)
                rest = [c[len(piece) :], *op[i + 1 :]]
        tail = _Builder()
        tail.push(out)
        for r in rest:
            tail.push(r)
        return head.op(), tail.op()
    raise AssertionError("unreachable: the op fitted")  # pragma: no cover


#: code points :func:`_prefix_within` measures at a time
_PREFIX_CHUNK = 1 << 14


def _prefix_within(s: str, budget: int) -> str:
    """The longest prefix of *s* whose JSON string form is at most *budget* bytes.

    A character's bytes do not depend on its neighbours, so the sizes of pieces add up: whole
    chunks while they fit, then halves of the chunk that does not (linear in the prefix).
    """
    room = budget - 2  # (the quotes)
    n = 0
    while n < len(s):
        cost = _json_size(s[n : n + _PREFIX_CHUNK]) - 2
        if cost > room:
            break
        room -= cost
        n += _PREFIX_CHUNK
    else:
        return s
    lo, hi = 0, min(_PREFIX_CHUNK, len(s) - n)  # s[n:n+lo] fits, s[n:n+hi] does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _json_size(s[n : n + mid]) - 2 <= room:
            lo = mid
        else:
            hi = mid
    return s[: n + lo]


# -- diff ----------------------------------------------------------------------------------

#: middles up to this many code points (old + new) are diffed character by character
_CHAR_DIFF_LIMIT = 4000
#: and up to this many lines line by line
_LINE_DIFF_LIMIT = 20000
#: code points of the old side looked up in the new where a middle is too large to compare
#: (:func:`_diff_anchored`): long enough to occur once in the new side unless the text repeats
_ANCHOR = 256
#: the most pieces one diff looks up (each a pass or two over the new side, at C speed)
_ANCHORS = 16
#: the most work one diff may do in difflib's longest-match search (steps of its inner loop,
#: about 0.2 microseconds each) before what is left of it is replaced whole: the search walks
#: every occurrence of each line (or character) in the other text, so its work grows with the
#: square of how often one repeats (a diff of 8000 identical lines took 15 s)
_DIFF_WORK = 1_000_000


def diff(old: str, new: str) -> Op:
    """An op turning *old* into *new* that changes little: unchanged runs are retained.

    Common prefix and suffix are found at C speed; what lies between is
    compared by lines, then by characters inside changed lines, so two
    edits far apart come out as two places, not one replacement of all the
    text between them (which would undo a concurrent edit in between).
    A middle too large to compare is split at pieces of it found once in
    the new text (:func:`_diff_anchored`); what is left after that, or
    once the comparisons used up their budget (``_DIFF_WORK``), is replaced
    whole: the time a diff takes is bounded, whatever the text.
    """
    if old == new:
        return []
    out = _Builder()
    _diff_part(old, new, out, _Budget())
    return out.op()


class _Budget:
    """What is left to one whole diff: *steps* of difflib's longest-match search
    (``_DIFF_WORK``) and pieces of a large middle to look up (``_ANCHORS``)."""

    __slots__ = ("steps", "anchors")

    def __init__(self) -> None:
        self.steps = _DIFF_WORK
        self.anchors = _ANCHORS


class _OverBudget(Exception):
    pass


class _Matcher(difflib.SequenceMatcher[str]):
    """difflib's matcher, charged for its work: ``find_longest_match`` over ``a[alo:ahi]``
    walks, for each element there, the list of its places in ``b`` (to ``bhi`` at most),
    so it costs at most the sum of their lengths (kept as prefix sums over ``a``).  A
    search that would take more steps than the whole diff has left (*work*) raises
    :class:`_OverBudget` before it starts."""

    def __init__(self, a: list[str] | str, b: list[str] | str, work: _Budget, *, autojunk: bool) -> None:
        super().__init__(None, a, b, autojunk=autojunk)
        places: dict[str, list[int]] = self.b2j  # type: ignore[attr-defined]
        cost = [0]
        total = 0
        for x in a:
            total += 1 + len(places.get(x, ()))
            cost.append(total)
        self._cost = cost
        self._len = len(a)
        self._work = work

    def find_longest_match(
        self, alo: int = 0, ahi: int | None = None, blo: int = 0, bhi: int | None = None
    ) -> difflib.Match:
        cost = self._cost[self._len if ahi is None else ahi] - self._cost[alo]
        if cost > self._work.steps:
            raise _OverBudget
        self._work.steps -= cost
        return super().find_longest_match(alo, ahi, blo, bhi)


def _opcodes(
    a: list[str] | str, b: list[str] | str, work: _Budget, *, autojunk: bool
) -> Sequence[tuple[str, int, int, int, int]] | None:
    """difflib's opcodes turning *a* into *b*, or None if finding them would pass *work*."""
    try:
        return _Matcher(a, b, work, autojunk=autojunk).get_opcodes()
    except _OverBudget:
        return None


def _diff_around(a: str, b: str, out: _Builder) -> bool:
    """If one of *a* and *b* holds the other whole, push the inserts (or deletes) around it
    and say so: a paste beside typing, or a cut beside it, keeps the text it did not touch,
    however big (found at C speed, and no cheaper difference exists)."""
    if len(a) < len(b):
        i = b.find(a)
        if i < 0:
            return False
        out.push(b[:i])
        out.push(len(a))
        out.push(b[i + len(a) :])
    else:
        i = a.find(b)
        if i < 0:
            return False
        out.push(-i)
        out.push(len(b))
        out.push(-(len(a) - i - len(b)))
    return True


def _diff_middle(a: str, b: str, out: _Builder, work: _Budget) -> None:
    if not a or not b:
        out.push(b)
        out.push(-len(a))
        return
    if _diff_around(a, b, out):
        return
    if len(a) + len(b) <= _CHAR_DIFF_LIMIT:
        blocks = _opcodes(a, b, work, autojunk=False)
        if blocks is None:
            out.push(b)
            out.push(-len(a))
            return
        for tag, i1, i2, j1, j2 in blocks:
            if tag == "equal":
                out.push(i2 - i1)
            else:
                out.push(b[j1:j2])
                out.push(-(i2 - i1))
        return
    la = a.splitlines(keepends=True)
    lb = b.splitlines(keepends=True)
    # (lines that repeat often, such as blank ones, anchor no match but are matched around
    # the others: difflib's "popular" lines, which keep the search cheap in ordinary files)
    lines = _opcodes(la, lb, work, autojunk=True) if len(la) + len(lb) <= _LINE_DIFF_LIMIT else None
    if lines is None:
        _diff_anchored(a, b, out, work)
        return
    for tag, i1, i2, j1, j2 in lines:
        sa = "".join(la[i1:i2])
        if tag == "equal":
            out.push(len(sa))
            continue
        sb = "".join(lb[j1:j2])
        if tag == "replace" and len(sa) + len(sb) <= _CHAR_DIFF_LIMIT:
            _diff_part(sa, sb, out, work)
        elif tag == "replace":
            if not _diff_around(sa, sb, out):
                _diff_anchored(sa, sb, out, work)
        else:
            out.push(sb)
            out.push(-len(sa))


def _diff_anchored(a: str, b: str, out: _Builder, work: _Budget) -> None:
    """*a* into *b*, too large to compare line by line (or past the budget): a piece from the
    middle of *a* (else from one of its quarters) that occurs exactly once in *b* anchors an
    equal run, grown both ways at C speed and retained, and what lies on either side is diffed
    the same way.  Two edits far apart in a large text stay two places, and the text between
    them is not deleted and typed again (which would move a concurrent insert there past it and
    undo a concurrent delete).  With no such piece, or once the diff has looked up as many
    pieces as *work* allows (``_ANCHORS``), what is left is replaced whole: the time stays
    bounded."""
    if len(a) >= _ANCHOR and len(b) >= _ANCHOR:
        for at in (len(a) // 2, len(a) // 4, 3 * len(a) // 4):
            if work.anchors <= 0:
                break
            work.anchors -= 1
            i = min(max(0, at - _ANCHOR // 2), len(a) - _ANCHOR)
            piece = a[i : i + _ANCHOR]
            j = b.find(piece)
            if j < 0 or b.find(piece, j + 1) >= 0:
                continue
            left = common_suffix(a[:i], b[:j])
            right = common_prefix(a[i + _ANCHOR :], b[j + _ANCHOR :])
            i0, j0, i1, j1 = i - left, j - left, i + _ANCHOR + right, j + _ANCHOR + right
            _diff_part(a[:i0], b[:j0], out, work)
            out.push(i1 - i0)
            _diff_part(a[i1:], b[j1:], out, work)
            return
    out.push(b)
    out.push(-len(a))


def _diff_part(a: str, b: str, out: _Builder, work: _Budget) -> None:
    """*a* into *b*, their common ends retained and what lies between compared (the whole
    diff, a replaced block of lines, one side of an anchor); *work*: what the whole diff has
    left."""
    p = common_prefix(a, b)
    s = common_suffix(a, b, limit=min(len(a), len(b)) - p)
    out.push(p)
    _diff_middle(a[p : len(a) - s], b[p : len(b) - s], out, work)
    out.push(s)


_BLOCK = 4096


def common_prefix(a: str, b: str) -> int:
    """Length of the common prefix of *a* and *b* (compares blocks at C speed)."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i : i + _BLOCK] == b[i : i + _BLOCK]:
        i += _BLOCK
    if i >= n:
        return n
    j = min(i + _BLOCK, n)
    while i < j and a[i] == b[i]:
        i += 1
    return i


def common_suffix(a: str, b: str, *, limit: int | None = None) -> int:
    """Length of the common suffix of *a* and *b*, at most *limit*."""
    n = min(len(a), len(b)) if limit is None else max(0, limit)
    la, lb = len(a), len(b)
    i = 0
    while i < n and a[la - i - min(_BLOCK, n - i) : la - i] == b[lb - i - min(_BLOCK, n - i) : lb - i]:
        i += min(_BLOCK, n - i)
    if i >= n:
        return n
    j = min(i + _BLOCK, n)
    while i < j and a[la - 1 - i] == b[lb - 1 - i]:
        i += 1
    return i
