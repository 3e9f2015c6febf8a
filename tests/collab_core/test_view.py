"""collab_core.view: the LaggingView that shows remote ops later than the client learns them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collab_core import ops
from collab_core.view import LaggingView
from tests.collab_core.ot_strategies import ops_on, texts


@st.composite
def _chain(draw: st.DrawFn) -> tuple[str, list[ops.Op]]:
    """A text and ops that apply one after the other."""
    text = draw(texts(max_size=16))
    chain = []
    now = text
    for _ in range(draw(st.integers(0, 6))):
        op = ops.normalize(draw(ops_on(now)))
        chain.append(op)
        now = ops.apply(now, op)
    return text, chain


@given(case=_chain(), data=st.data())
def test_showing_several_at_once_is_showing_each(case: tuple[str, list[ops.Op]], data: st.DataObject) -> None:
    text, chain = case
    count = data.draw(st.integers(0, len(chain)), label="count")
    one, many = LaggingView(text), LaggingView(text)
    for i, op in enumerate(chain):
        one.receive_remote(op, i)
        many.receive_remote(op, i)
    for _ in range(count):
        one.show_next()
    many.show(count)
    assert many.text == one.text
    assert list(many.pending) == list(one.pending)


def test_a_catch_up_of_many_ops_rewrites_a_large_text_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of keystrokes caught up on a megabyte text: one rewrite of the text, not one
    each (seconds of a frozen language server)."""
    text = "x" * 1_000_000
    view = LaggingView(text)
    for i in range(3000):
        view.receive_remote([500_000 + i, "y"])
    applied = []
    real = ops.apply
    monkeypatch.setattr(ops, "apply", lambda t, op: applied.append(len(t)) or real(t, op))
    view.show(3000)
    assert view.text == text[:500_000] + "y" * 3000 + text[500_000:]
    assert applied == [1_000_000]


def test_a_result_given_is_the_text_shown_as_it_is_and_one_that_does_not_fit_is_refused() -> None:
    """Issue 14: the editor's own copy of its buffer, after the user's edit or once a remote
    edit is shown, becomes the view's text as it is: the whole text is not made again."""
    view = LaggingView("hello")
    typed = "".join(["hello", "!"])
    assert view.local([5, "!"], typed) == [5, "!"] and view.text is typed
    view.receive_remote(["<"])
    view.receive_remote([7, ">"])
    shown = "".join(["<hello!", ">"])
    view.show(2, shown)
    assert view.text is shown and not view.pending
    with pytest.raises(ops.InvalidOp):
        view.local([0, "x"], "<hello!>x")  # (the insert is not where the op puts it)
