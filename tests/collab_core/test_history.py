"""The attribution index (collab_core.history): grouping, undo/redo, blame, history."""

from __future__ import annotations

from collab_core.history import DocumentHistory, LineBlame


def test_undo_then_redo_of_a_typed_word() -> None:
    h = DocumentHistory("hello\nworld", user="ada", time=0.0)
    h.apply(1, [5, " "], user="ada", time=10.0)
    h.apply(2, [6, "t"], user="ada", time=10.2)
    h.apply(3, [0, "X"], user="bob", time=10.3)
    assert h.text == "Xhello t\nworld"
    undo = h.undo_op("ada")
    assert undo == (1, [6, -2])
    h.apply(4, undo[1], user="ada", time=11.0, toggles=undo[0])
    assert h.text == "Xhello\nworld"
    redo = h.redo_op("ada")
    assert redo is not None
    h.apply(5, redo[1], user="ada", time=12.0, toggles=redo[0])
    assert h.text == "Xhello t\nworld"
    assert h.blame() == [LineBlame(5, "ada", 12.0), LineBlame(0, "ada", 0.0)]
