"""Who last changed each line, as the editor shows it (sans-I/O).

The hub answers ``blame`` for its text at one revision (docs/protocol.md,
"History"): per line (split on ``\\n``), the last revision that changed it,
its author, name and time.  By the time the editor asks, that text has moved
on: peers' ops came in, the user typed things the hub has not acknowledged,
and the editor may not show the latest ops yet.  :func:`map_lines` carries a
list of lines through one op, the way the hub's attribution index defines it:

* a line holding a character the op inserted is the op's (``mark``);
* a line the op deleted characters from (inside it, at its start, or at the
  end of the last line) is the op's too; whole lines deleted change no line;
* every other line keeps its blame (a line moved up or down by lines
  inserted or deleted around it is not changed);
* the empty last line of a text ending in ``\\n`` counts the newline before it.

This is the hub's definition at the resolution of lines: where the hub knows
more (the revision of each character), the next answer from the hub says
it; a document's blame is asked again after every change (debounced).

So the language server keeps a per-document list at the hub's revision,
moves it with every op the hub commits (until its next answer replaces it),
and, when asked, maps it through the user's unacknowledged ops (their lines
are "not yet committed") and back through the ops the editor has not shown.

:func:`describe` words one line's blame for a hover ("**Ada**, 2 minutes ago
· rev 41").
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collab_core import ops

__all__ = ["LineBlame", "describe", "line_blames", "map_lines", "parse_time"]


@dataclass(frozen=True, slots=True)
class LineBlame:
    """One line's blame: *rev* None means typed here and not yet committed by the hub;
    *time* None means not known yet (committed since the hub's last answer: just now);
    *author* is the hub's opaque per-room id of the person (None until the hub says; the
    user's own lines carry the one the hub gave the user in ``joined``)."""

    author: str | None
    name: str
    time: str | None
    rev: int | None

    def describe(self) -> dict[str, Any]:
        """As ``pairls.blame`` returns it."""
        return {"author": self.author, "name": self.name, "time": self.time, "rev": self.rev}


#: the one line of an empty document that never held anything
NOBODY = LineBlame(None, "", None, 0)


def _places(op: ops.Op) -> list[tuple[int, int, str]]:
    """(start, end, inserted text) of each place *op* changes, in the text before it."""
    out: list[tuple[int, int, str]] = []
    pos = 0
    start = -1
    ins: list[str] = []
    for c in op:
        if type(c) is int and c > 0:
            if start >= 0:
                out.append((start, pos, "".join(ins)))
                start, ins = -1, []
            pos += c
            continue
        if start < 0:
            start = pos
        if type(c) is str:
            ins.append(c)
        else:
            pos -= c  # type: ignore[operator]
    if start >= 0:
        out.append((start, pos, "".join(ins)))
    return out


def map_lines(lines: list[LineBlame], text: str, op: ops.Op, mark: LineBlame | None) -> None:
    """Carry *lines* (one per line of *text*) through *op* applied to *text*, in place.

    Lines the op changes (module docstring) get *mark*, or, when *mark* is None, the blame
    the first of the lines it replaces had (for an op whose author is not known: one the
    editor has not shown yet, taken back).  Raises ValueError if *lines* does not fit *text*.
    """
    if len(lines) != text.count("\n") + 1:
        raise ValueError("the blame does not fit the text")
    places = _places(op)
    # line of each place's start and how many line breaks it deletes, counted forwards once
    where: list[tuple[int, int]] = []
    line = 0
    pos = 0
    for start, end, _ in places:
        line += text.count("\n", pos, start)
        deleted = text.count("\n", start, end)
        where.append((line, deleted))
        line += deleted
        pos = end
    # applied from the last place back: an earlier place's lines are where they were
    n = len(text)
    for (start, end, ins), (first, deleted) in zip(reversed(places), reversed(where), strict=True):
        before = start > 0 and text[start - 1] != "\n"  # the first line keeps characters before it
        after = end < n  # characters (a newline at least) follow it on its last line
        breaks = ins.count("\n")
        tail = ins.rsplit("\n", 1)[-1] if breaks else ins
        # what it deleted after the last newline it deleted: hidden at the start of a line
        gone = text.rfind("\n", start, end)
        hidden_start = end > (gone + 1 if gone >= 0 else start)
        old_first = lines[first]
        old_last = lines[first + deleted]
        made = mark if mark is not None else old_first
        new = [made] * breaks  # each of these lines holds an inserted newline
        if tail:
            new.append(made)  # inserted characters on the last line
        elif breaks:
            # the last line starts after the inserted newline: what it deleted, then the old
            # line's rest; or it is the empty last line (the newline before it is inserted)
            new.append(made if hidden_start or not after else old_last)
        elif not after:
            # the last line: deleted at its end or its start; or whole lines deleted, which
            # leaves it empty: the blame of the newline before it (its line's is the closest)
            if before or hidden_start:
                new.append(made)
            else:
                new.append(lines[first - 1] if first else NOBODY)
        elif before or hidden_start:
            new.append(made)  # deleted inside the line, or at its start
        else:
            new.append(old_last)  # whole lines deleted: the line after them is not changed
        lines[first : first + deleted + 1] = new


def line_blames(
    lines: Sequence[LineBlame], text: str, stages: Sequence[tuple[ops.Op, LineBlame | None]]
) -> list[LineBlame]:
    """*lines* of *text* carried through each (op, mark) of *stages* in turn; a new list."""
    out = list(lines)
    for op, mark in stages:
        map_lines(out, text, op, mark)
        text = ops.apply(text, op)
    return out


def parse_time(value: object) -> float | None:
    """Seconds since the epoch of the hub's ISO 8601 UTC time (``2026-11-30T10:04:05.123Z``)."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        when = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return when.timestamp()


def age(seconds: float) -> str:
    """ "just now", "2 minutes ago", "3 days ago"."""
    if seconds < 45:
        return "just now"
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400), ("hour", 3600)):
        if seconds >= size * 0.95:
            n = max(1, round(seconds / size))
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    n = max(1, round(seconds / 60))
    return f"{n} minute{'s' if n > 1 else ''} ago"


def describe(blame: LineBlame, now: float, *, you: str | None = None) -> str:
    """One line's blame in markdown, for a hover: ``**Ada**, 2 minutes ago · rev 41``.

    *now*: seconds since the epoch; *you*: the user's own name (their typing the hub has
    not taken yet reads ``**Ada** (you), not yet committed``)."""
    if not blame.name:
        return f"the document's first text · rev {blame.rev}"
    name = _markdown_text(blame.name)
    if blame.rev is None:
        return f"**{name}** (you), not yet committed" if you is not None else f"**{name}**, not yet committed"
    when = parse_time(blame.time)
    said = "just now" if when is None else age(max(0.0, now - when))
    return f"**{name}**, {said} · rev {blame.rev}"


def _markdown_text(text: str) -> str:
    """*text* with markdown's special characters escaped (a name is someone else's input)."""
    out = []
    for ch in text:
        if ch in "\\`*_{}[]()<>#+-.!|~&":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)
