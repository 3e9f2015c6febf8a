"""Counting the work of difflib's longest-match search, which ``collab_core.ops.diff`` uses.

``SequenceMatcher.find_longest_match`` over ``a[alo:ahi]`` and ``b[blo:bhi]``
walks, for each element of ``a`` there, the places of that element in ``b``
(``b2j``) up to ``bhi``: its work grows with the square of how often a line
or character repeats.  :func:`search_steps` counts those steps (one per
element of ``a`` and one per place walked) for every search that runs, so a
test can bound the work of a diff without timing it.
"""

from __future__ import annotations

import difflib
from typing import Any

import pytest

__all__ = ["search_steps"]


def search_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, every search adds its steps to the returned one-item list."""
    steps = [0]
    real = difflib.SequenceMatcher.find_longest_match

    def counting(
        self: Any, alo: int = 0, ahi: int | None = None, blo: int = 0, bhi: int | None = None
    ) -> Any:
        a, b2j = self.a, self.b2j
        top = len(self.b) if bhi is None else bhi
        for i in range(alo, len(a) if ahi is None else ahi):
            steps[0] += 1 + sum(1 for j in b2j.get(a[i], ()) if j < top)
        return real(self, alo, ahi, blo, bhi)

    monkeypatch.setattr(difflib.SequenceMatcher, "find_longest_match", counting)
    return steps
