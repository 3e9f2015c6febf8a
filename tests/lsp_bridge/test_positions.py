"""LSP positions <-> code point offsets (lsp_bridge.positions), against a naive reference."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lsp_bridge.positions import (
    FEW_POSITIONS,
    UTF8,
    UTF16,
    UTF32,
    LineIndex,
    carry_count,
    encoded_length,
    line_offset,
    positions_of,
)
from tests.lsp_bridge.editors import lines, ref_offset, ref_position, splits_crlf, units

ENCODINGS = [UTF8, UTF16, UTF32]

#: astral emoji, a ZWJ sequence, combining marks, CJK, 2-byte Latin, every line break
PIECES = ["😀", "𝄞", "👩\u200d💻", "e\u0301", "\u0301", "中文", "é", "\r\n", "\r", "\n", "a", " "]
texts = st.lists(
    st.one_of(st.sampled_from(PIECES), st.characters(exclude_categories=("Cs",))), max_size=14
).map("".join)
encodings = st.sampled_from(ENCODINGS)


@given(texts, encodings)
@example("a\r\nb", UTF16)
@example("\r\r\n\n\r", UTF8)
@example("😀\r\n𝄞", UTF16)
def test_offset_position_offset_round_trip(text: str, enc: str) -> None:
    idx = LineIndex(text)
    for off in range(len(text) + 1):
        pos = idx.position(off, enc)
        assert pos == ref_position(text, off, enc)
        if splits_crlf(text, off):
            # LSP can not name the place between \r and \n: it is the end of the line
            assert pos == idx.position(off - 1, enc)
            assert idx.offset(*pos, enc) == off - 1
        else:
            assert idx.offset(*pos, enc) == off


@given(texts, encodings, st.data())
@example("a\r\nb", UTF16, None)
@example("\r\r\n\n\r", UTF8, None)
def test_positions_of_a_few_offsets_or_many_match_the_reference(
    text: str, enc: str, data: st.DataObject | None
) -> None:
    """A few offsets are found by counting line breaks, many with an index: both as the reference."""
    every = list(range(-1, len(text) + 2))
    few = (
        every[:FEW_POSITIONS]
        if data is None
        else data.draw(st.lists(st.sampled_from(every), max_size=FEW_POSITIONS))
    )
    text = "".join(text)  # (a new string: no index of it was built yet)
    assert positions_of(text, few, enc) == [ref_position(text, max(0, min(o, len(text))), enc) for o in few]
    many = every * (FEW_POSITIONS + 1)
    assert len(many) > FEW_POSITIONS
    assert positions_of(text, many, enc) == [ref_position(text, max(0, min(o, len(text))), enc) for o in many]


@given(st.lists(texts, min_size=1, max_size=3), encodings, st.data())
@example(["a\r\nb\r\n\nc", "\r\r\n"], UTF16, None)
def test_offsets_counted_from_the_last_one_in_the_same_text_match_the_reference(
    some: list[str], enc: str, data: st.DataObject | None
) -> None:
    """Each offset found by counting line breaks is counted from the last one, when it was in
    the same text: forwards, backwards, across CRLFs, between texts."""
    some = ["".join(t) for t in some]  # (new strings: no index of them was built yet)
    for _ in range(12):
        text = some[0] if data is None else data.draw(st.sampled_from(some))
        every = list(range(-1, len(text) + 2))
        offsets = every[-3:] if data is None else data.draw(st.lists(st.sampled_from(every), max_size=3))
        want = [ref_position(text, max(0, min(o, len(text))), enc) for o in offsets]
        assert positions_of(text, offsets, enc) == want, (text, offsets)
        if data is None:
            some.reverse()


@given(texts, encodings, st.data())
@example("a\rb", UTF16, None)
def test_a_count_carried_to_an_edited_text_counts_on_from_there_and_matches_the_reference(
    text: str, enc: str, data: st.DataObject | None
) -> None:
    """Issue 14: a peer's keystroke, shown, makes a new text; a count made in the old one before
    the edit holds in the new one, so the next count starts there, not at the top of a large
    text.  Not where a \r before the edit and a \n it brings make one CRLF: no count may end
    inside one (``"a\rb"`` counted after its \r, then a \n inserted there)."""
    import lsp_bridge.positions as positions

    old = "".join(text)  # (a new string: no index of it was built yet)
    at = 2 if data is None else data.draw(st.integers(0, len(old)))
    start = 2 if data is None else data.draw(st.integers(min(at, len(old)), len(old)))
    end = start if data is None else data.draw(st.integers(start, len(old)))
    ins = "\n" if data is None else data.draw(st.sampled_from(["", "x", "\n", "\r", "\r\n", "\ny"]))
    positions_of(old, [at], enc)
    counted_at = positions._last_counted[1]  # (moved off the middle of a CRLF, if it was in one)
    new = old[:start] + ins + old[end:]
    carry_count(old, new, start)
    spans: list[tuple[int, int]] = []
    real = positions._breaks
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(positions, "_breaks", lambda t, a, b: spans.append((a, b)) or real(t, a, b))
        every = list(range(len(new) + 1))
        offsets = every[-2:] if data is None else data.draw(st.lists(st.sampled_from(every), max_size=3))
        got = positions_of(new, offsets, enc)
    assert got == [ref_position(new, o, enc) for o in offsets], (old, new, offsets)
    crlf_made = 0 < counted_at < len(new) and new[counted_at - 1] == "\r" and new[counted_at] == "\n"
    if spans:  # (the first count: on from the old one's end if carried, else from the top)
        assert counted_at in spans[0] if not crlf_made and counted_at <= start else spans[0][0] == 0, spans


@given(texts, encodings)
def test_every_position_matches_the_reference_and_clamps(text: str, enc: str) -> None:
    idx = LineIndex(text)
    ls = lines(text)
    assert len(idx.starts) == len(ls)
    for ln, (start, end, _) in enumerate(ls):
        assert idx.line_text(ln) == text[start:end]
        width = units(text[start:end], enc)
        for ch in range(width + 3):
            off = idx.offset(ln, ch, enc)
            assert off == ref_offset(text, ln, ch, enc)
            # past the end of the line: the end of the line (never its line break)
            assert start <= off <= end
            if ch >= width:
                assert off == end
    # a line past the end: the end of the document, whatever the character
    for extra in range(3):
        assert idx.offset(len(ls) + extra, 0, enc) == len(text)
        assert idx.offset(len(ls) + extra, 99, enc) == len(text)


@given(texts, encodings)
@example("a\nb\n", UTF16)
@example("\n😀é\n", UTF8)
def test_line_offset_without_an_index_matches_the_reference(text: str, enc: str) -> None:
    """One position of a new text (no index built: a completion after a keystroke), CRs or not."""
    ls = lines(text)
    for ln, (start, end, _) in enumerate(ls):
        for ch in range(units(text[start:end], enc) + 2):
            fresh = (text + "x")[:-1]  # a new string each time: no index of it was built yet
            assert line_offset(fresh, ln, ch, enc) == (ref_offset(text, ln, ch, enc), start)
    assert line_offset(text, len(ls), 0, enc) is None
    assert line_offset(text, -1, 5, enc) == (0, 0)
    LineIndex.of(text)  # with an index built, the same answers
    assert [line_offset(text, ln, 1, enc) for ln in range(len(ls))] == [
        (ref_offset(text, ln, 1, enc), start) for ln, (start, _, _) in enumerate(ls)
    ]


@given(texts, texts, st.integers(0, 20), st.integers(0, 20), encodings)
@example("ab\ncd\nef", "x", 4, 4, UTF16)  # typing on a line after the one changed
@example("ab\ncd", "x", 2, 3, UTF16)  # the line break itself replaced: the next line is gone
@example("ab\rcd", "\n", 3, 3, UTF16)  # a lone \r becomes a CRLF: the next line starts later
@example("ab\rcd\n", "", 2, 3, UTF16)  # a lone \r changed into nothing
def test_offset_in_a_changed_text_is_the_new_index_or_none(
    text: str, new: str, a: int, b: int, enc: str
) -> None:
    """The index of a text, asked about the text a change at offset *limit* made of it
    (a keystroke after the one indexed): the new text's own answer, or None."""
    start, end = sorted((min(a, len(text)), min(b, len(text))))
    changed = text[:start] + new + text[end:]
    old, fresh = LineIndex(text), LineIndex(changed)
    for ln in range(-1, len(fresh.starts) + 1):
        for ch in range(0, 8):
            got = old.offset_in(changed, ln, ch, enc, start)
            if got is not None:
                assert got == fresh.offset(ln, ch, enc), (ln, ch)
    # the line the change is on is found (no \r in it: LSP's line ends are all \n then)
    line = text.count("\n", 0, start)
    if "\r" not in changed:
        assert old.offset_in(changed, line, 0, enc, start) == fresh.offset(line, 0, enc)


@given(texts, encodings)
def test_encoded_length_is_the_codecs(text: str, enc: str) -> None:
    assert encoded_length(text, enc) == units(text, enc)


@pytest.mark.parametrize(
    ("enc", "char", "offset"),
    [
        # "a😀b": the emoji is 2 UTF-16 units, 4 UTF-8 bytes, 1 code point
        (UTF16, 1, 1),
        (UTF16, 2, 1),  # inside the surrogate pair: the emoji's start
        (UTF16, 3, 2),
        (UTF16, 4, 3),
        (UTF8, 1, 1),
        (UTF8, 2, 1),  # inside the UTF-8 sequence
        (UTF8, 3, 1),
        (UTF8, 4, 1),
        (UTF8, 5, 2),
        (UTF8, 6, 3),
        (UTF32, 2, 2),
        (UTF32, 9, 3),
    ],
)
def test_position_inside_a_character_means_its_start(enc: str, char: int, offset: int) -> None:
    assert LineIndex("a😀b").offset(0, char, enc) == offset


def test_positions_of_a_mixed_document() -> None:
    text = "é😀\r\n中\rx\n\r\n"
    idx = LineIndex(text)
    assert idx.starts == [0, 4, 6, 8, 10]
    assert [idx.line_text(i) for i in range(5)] == ["é😀", "中", "x", "", ""]
    assert idx.position(2, UTF16) == (0, 3)
    assert idx.position(2, UTF8) == (0, 6)
    assert idx.position(2, UTF32) == (0, 2)
    # between \r and \n of the first line's CRLF: the end of line 0
    assert idx.position(3, UTF16) == (0, 3)
    assert idx.position(5, UTF8) == (1, 3)  # before the lone \r: the end of "中"
    assert idx.position(6, UTF8) == (2, 0)  # after the lone \r: the next line
    assert idx.position(len(text), UTF16) == (4, 0)
    # clamping
    assert idx.offset(1, 50, UTF16) == 5
    assert idx.offset(0, 50, UTF8) == 2
    assert idx.offset(4, 50, UTF32) == len(text)
    assert idx.offset(7, 0, UTF32) == len(text)
    assert idx.offset(-1, 3, UTF16) == 0


def test_empty_document() -> None:
    idx = LineIndex("")
    for enc in ENCODINGS:
        assert idx.position(0, enc) == (0, 0)
        assert idx.offset(0, 5, enc) == 0
        assert idx.offset(3, 5, enc) == 0
