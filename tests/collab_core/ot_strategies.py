"""Hypothesis strategies for documents and operations over awkward Unicode."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from collab_core.ops import Op

#: pieces that break naive implementations: astral characters (one code point
#: each, two UTF-16 units), a ZWJ emoji sequence, combining marks, CRLF.
AWKWARD = [
    "😀",
    "🎉",
    "𝄞",
    "\U0010fffd",
    "👩\u200d💻",
    "e\u0301",
    "\u0301",
    "\r\n",
    "\r",
    "\n",
    "a",
    "b",
    " ",
]

#: any code point but a lone surrogate (not valid in UTF-8 and so never on the wire)
chars = st.characters(exclude_categories=("Cs",))

pieces = st.one_of(st.sampled_from(AWKWARD), chars)


def texts(min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    return st.lists(pieces, min_size=min_size, max_size=max_size).map("".join)


@st.composite
def ops_on(draw: st.DrawFn, text: str, max_components: int = 6) -> Op:
    """A valid op on *text*: retain/delete/insert components, possibly
    non-canonical (neighbours unmerged, delete before insert), the trailing
    retain sometimes spelled out and sometimes implied."""
    op: Op = []
    pos = 0
    size = len(text)
    for _ in range(draw(st.integers(0, max_components))):
        kind = draw(st.sampled_from(["retain", "delete", "insert"]))
        left = size - pos
        if kind == "insert" or left == 0:
            op.append(draw(texts(min_size=1, max_size=4)))
        else:
            n = draw(st.integers(1, left))
            op.append(n if kind == "retain" else -n)
            pos += n
    if pos < size and draw(st.booleans()):
        op.append(size - pos)
    return op


@st.composite
def doc_and_ops(draw: st.DrawFn, count: int) -> tuple[Any, ...]:
    text = draw(texts(max_size=16))
    return (text, *(draw(ops_on(text)) for _ in range(count)))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(alphabet=chars),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(alphabet=chars, max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)
