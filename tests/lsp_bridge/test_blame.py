"""lsp_bridge.blame: a line blame carried through ops, and its words in a hover."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collab_core import ops
from lsp_bridge.blame import LineBlame, _places, age, describe, line_blames, map_lines, parse_time
from tests.support.history_ref import RefHistory

OLD = [LineBlame("a", "Ada", "t", i) for i in range(10)]
BOB = LineBlame(None, "Bob", None, 99)


def carried(text: str, op: ops.Op) -> list[int | None]:
    lines = OLD[: text.count("\n") + 1]
    out = list(lines)
    map_lines(out, text, op, BOB)
    assert len(out) == ops.apply(text, op).count("\n") + 1
    return [b.rev for b in out]


@pytest.mark.parametrize(
    ("text", "op", "revs"),
    [
        # typing in a line makes it Bob's; the others keep theirs
        ("a\nb\nc", [2, "x"], [0, 99, 2]),
        # a new line inserted at a line's start: the new line only
        ("a\nb\nc", [2, "new\n"], [0, 99, 1, 2]),
        # Enter in the middle of a line: both halves hold a typed character or the new newline
        ("ab\nc", [1, "\n"], [99, 0, 1]),
        # a whole line deleted (with its newline): nobody's line changes
        ("a\nb\nc", [2, -2], [0, 2]),
        # deleted from the middle of a line: that line
        ("abc\nd", [1, -1], [99, 1]),
        # deleted at a line's start: its; at the end of the last line (nothing after it): not
        ("abc\nd", [-1], [99, 1]),
        ("abc\nd", [2, -1], [99, 1]),
        ("abc", [2, -1], [99]),
        # left empty: the last line has the blame of the newline before it
        ("a\nb\n", [2, -2], [0, 0]),
        ("a\nbc", [2, -2], [0, 99]),  # (what was deleted at its start counts)
        ("c\n", [-2], [0]),  # (a deleted whole line marks nothing)
        # two lines joined (the newline between them deleted)
        ("ab\ncd\ne", [1, -3], [99, 2]),
        # a replacement across lines
        ("ab\ncd\nef", [1, -4, "X\nY"], [99, 99, 2]),
        # a newline typed at the very end: the new empty last line is the newline's
        ("a\nb", [3, "\n"], [0, 99, 99]),
        # text typed before the final newline of a text that ends with one
        ("a\n", [1, "b"], [99, 1]),
        # two places in one op, on lines far apart
        ("a\nb\nc\nd", [1, "1", 4, "2"], [99, 1, 99, 3]),
        # two places on the same line
        ("abcdef\ng", [1, "x", 2, "y"], [99, 1]),
    ],
)
def test_lines_an_op_changes_are_its_authors_and_the_rest_keep_theirs(
    text: str, op: ops.Op, revs: list[int]
) -> None:
    assert carried(text, ops.check(op)) == revs


def test_without_a_mark_changed_lines_keep_the_blame_they_had() -> None:
    lines = OLD[:3]
    out = list(lines)
    map_lines(out, "a\nb\nc", [2, "x\ny\n"], None)
    assert [b.rev for b in out] == [0, 1, 1, 1, 2]


def test_a_blame_that_does_not_fit_the_text_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        map_lines(OLD[:2], "a\nb\nc", [1, "x"], BOB)


def test_stages_are_applied_in_turn() -> None:
    mine = LineBlame(None, "Ada", None, None)
    out = line_blames(OLD[:2], "a\nb", [([1, "x"], BOB), ([4, "\nz"], mine)])
    assert [b.rev for b in out] == [99, None, None]


_texts = st.text(alphabet="ab\n", max_size=30)


@st.composite
def _ops(draw: st.DrawFn, text: str) -> ops.Op:
    op: list[ops.Component] = []
    pos = 0
    while pos < len(text):
        kind = draw(st.sampled_from(["retain", "delete", "insert"]))
        n = draw(st.integers(1, len(text) - pos))
        if kind == "retain":
            op.append(n)
            pos += n
        elif kind == "delete":
            op.append(-n)
            pos += n
        else:
            op.append(draw(st.text(alphabet="xy\n", min_size=1, max_size=5)))
    if draw(st.booleans()):
        op.append(draw(st.text(alphabet="xy\n", min_size=1, max_size=5)))
    return ops.normalize(op)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_op_gives_one_blame_per_line_and_marks_every_line_holding_typed_text(data: st.DataObject) -> None:
    text = data.draw(_texts)
    op = data.draw(_ops(text))
    n = text.count("\n") + 1
    lines = [LineBlame("a", "Ada", "t", i) for i in range(n)]
    out = list(lines)
    map_lines(out, text, op, BOB)
    new = ops.apply(text, op)
    assert len(out) == new.count("\n") + 1
    # which characters of the new text the op inserted
    typed = []
    for c in op:
        if isinstance(c, str):
            typed += [True] * len(c)
        elif c > 0:
            typed += [False] * c
    typed += [False] * (len(new) - len(typed))
    line = 0
    for i, ch in enumerate(new):
        if typed[i]:
            assert out[line] is BOB, (text, op, i)
        if ch == "\n":
            line += 1
    # lines wholly before the first change and wholly after the last keep their blame, in order
    places = _places(op)
    if places:
        before = text[: places[0][0]].count("\n")
        assert out[:before] == lines[:before]
        after = text[places[-1][1] :].count("\n")
        if after:
            assert out[-after:] == lines[-after:]


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_from_lines_of_one_revision_each_it_is_the_hubs_blame_exactly(data: st.DataObject) -> None:
    """Where each line's characters share one revision (no deleted characters anywhere), one
    op gives exactly what the hub's definition does (tests/support/history_ref.py)."""
    text = data.draw(_texts.filter(bool))  # (an empty text has no characters to carry revisions)
    op = data.draw(_ops(text))
    n = text.count("\n") + 1
    ref = RefHistory.start(text)
    line = 0
    for c in ref.chars:  # line i's characters (its newline too) are revision i + 1
        c.vrev = line + 1
        line += c.ch == "\n"
    ref.rev = n
    lines = [LineBlame("a", "Ada", "t", r) for r in ref.blame_revs()]
    ref.apply(n + 1, op, "bob", None)
    map_lines(lines, text, op, LineBlame(None, "Bob", None, n + 1))
    assert [b.rev for b in lines] == ref.blame_revs(), (text, op)


def test_hub_times_are_read_as_utc() -> None:
    when = parse_time("2026-11-30T10:04:05.123Z")
    assert when == dt.datetime(2026, 11, 30, 10, 4, 5, 123000, tzinfo=dt.UTC).timestamp()
    assert parse_time("yesterday") is None and parse_time(None) is None


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (3, "just now"),
        (60, "1 minute ago"),
        (150, "2 minutes ago"),
        (3 * 3600, "3 hours ago"),
        (86400 * 2, "2 days ago"),
    ],
)
def test_ages_read_like_a_person_says_them(seconds: float, said: str) -> None:
    assert age(seconds) == said


def test_a_hover_names_who_when_and_which_revision() -> None:
    t = parse_time("2026-11-30T10:04:05.000Z")
    assert t is not None
    line = LineBlame("u1", "Ada", "2026-11-30T10:04:05.000Z", 41)
    assert describe(line, t + 120) == "**Ada**, 2 minutes ago · rev 41"
    assert describe(LineBlame(None, "Bob", None, 42), t) == "**Bob**, just now · rev 42"
    assert describe(LineBlame(None, "Ada", None, None), t, you="Ada") == "**Ada** (you), not yet committed"
    # a name is someone else's input: no markdown of theirs gets through
    assert (
        describe(LineBlame("u", "*[x](http://e)*", None, 1), t)
        == r"**\*\[x\]\(http://e\)\***, just now · rev 1"
    )
