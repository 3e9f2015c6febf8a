"""DeferredText: a text that takes ops without copying itself for each one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collab_core import deferred, ops
from collab_core.deferred import DeferredText
from tests.collab_core.ot_strategies import ops_on, texts


@pytest.mark.parametrize(
    "bounds", [(256, 4096, 0), (2, 3, 0), (2, 3, 8)], ids=["deferred", "tight", "tight-eager-when-small"]
)
@given(data=st.data())
def test_agrees_with_applying_each_op(bounds: tuple[int, int, int], data: st.DataObject) -> None:
    """After any run of ops: the length, every span and the text are the applied text's, read in
    any order; and every earlier value still reads as it did (``then`` leaves it as it was).
    (The texts are small: every text here is deferred, or those of up to 8 code points are not.)"""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(deferred, "EAGER_LENGTH", bounds[2])
        mp.setattr(deferred, "MAX_COMPONENTS", bounds[0])
        mp.setattr(deferred, "MAX_INSERTED", bounds[1])
        model = data.draw(texts(max_size=16), label="text")
        values = [(DeferredText(model), model)]
        for _ in range(data.draw(st.integers(0, 12), label="ops")):
            op = data.draw(ops_on(model, max_components=4), label="op")
            model = ops.apply(model, op)
            values.append((values[-1][0].then(op), model))
            d = values[-1][0]
            assert d.length == len(model)
            for _ in range(data.draw(st.integers(0, 3), label="spans")):
                start = data.draw(st.integers(0, len(model)), label="start")
                end = data.draw(st.integers(start, len(model)), label="end")
                assert d.span(start, end) == model[start:end]
            assert len(d.behind) <= bounds[0]
            assert sum(len(c) for c in d.behind if isinstance(c, str)) <= bounds[1]
            if data.draw(st.booleans(), label="read"):
                assert d.text == model
                assert d.behind == []
        for d, text in reversed(values):
            assert (d.text, d.length) == (text, len(text))


def test_typing_into_a_large_text_keeps_one_copy_until_it_is_read() -> None:
    """Keystrokes compose into a few components; spans and the length are read from them."""
    big = "x = 1\n" * 50_000
    d = DeferredText(big)
    for i in range(100):
        d = d.then([1000 + i, "y"])
    model = big[:1000] + "y" * 100 + big[1000:]
    assert len(d.behind) <= 3 and d.length == len(model)
    for start, end in [(0, 5), (995, 1005), (1000, 1100), (1099, 1200), (len(model) - 3, len(model))]:
        assert d.span(start, end) == model[start:end]
    assert d.text == model


def test_a_small_text_takes_each_op_at_once() -> None:
    d = DeferredText("abc").then([1, "x"]).then([4, "y"])
    assert d.behind == [] and d.text == "axbcy"
    big = DeferredText("-" * deferred.EAGER_LENGTH).then(["+"])  # grows past: the next op waits
    assert big.behind == [] and big.then([1, "+"]).behind


def test_ops_held_are_applied_at_their_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deferred, "EAGER_LENGTH", 0)
    d = DeferredText("abc")
    d = d.then(["z" * deferred.MAX_INSERTED])
    assert d.behind == ["z" * deferred.MAX_INSERTED]
    d = d.then(["!"])  # one code point over: applied
    assert d.behind == [] and d.text == "!" + "z" * deferred.MAX_INSERTED + "abc"
    d = DeferredText("-" * 1000)
    held = []
    for i in range(deferred.MAX_COMPONENTS):
        d = d.then([2 * i, "+"])  # a retain and an insert each: scattered, they do not merge
        held.append(len(d.behind))
    assert max(held) <= deferred.MAX_COMPONENTS
    assert any(b < a for a, b in zip(held, held[1:], strict=False))  # applied once over the bound
    assert d.text == "+-" * deferred.MAX_COMPONENTS + "-" * (1000 - deferred.MAX_COMPONENTS)


@pytest.mark.parametrize("eager", [0, 100], ids=["deferred", "eager"])
def test_an_op_past_the_end_is_refused(monkeypatch: pytest.MonkeyPatch, eager: int) -> None:
    monkeypatch.setattr(deferred, "EAGER_LENGTH", eager)
    d = DeferredText("abc").then([3, "d"])
    with pytest.raises(ops.InvalidOp):
        d.then([5, "e"])
    with pytest.raises(ops.InvalidOp):
        d.then([2, -3])
    assert d.text == "abcd"
