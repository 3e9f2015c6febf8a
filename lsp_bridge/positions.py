"""LSP positions <-> code point offsets, for each position encoding (sans-I/O).

LSP 3.17 ("Position"): a position is a zero-based line and a character
offset counted in the negotiated encoding: UTF-16 code units (the default,
and what VS Code uses), UTF-8 bytes or UTF-32 code points.  Lines end at
``\\n``, ``\\r\\n`` or ``\\r``.  A character past the end of its line means
the end of the line; a line past the end of the document means its end.
The hub counts code points (Python ``str`` indices), so every position is
converted here, at the bridge's edge.
"""

from __future__ import annotations

import bisect
import re
from itertools import accumulate

__all__ = ["LineIndex", "UTF8", "UTF16", "UTF32", "encoded_length", "line_offset", "positions_of"]

UTF8 = "utf-8"
UTF16 = "utf-16"
UTF32 = "utf-32"

_BREAK = re.compile(r"\r\n|\r|\n")

_PLUS_ONE = (1).__add__

#: up to this many offsets of a text are converted by scanning it (:func:`positions_of`)
FEW_POSITIONS = 8


def encoded_length(text: str, encoding: str) -> int:
    """Length of *text* in units of *encoding*."""
    if encoding == UTF32 or text.isascii():
        return len(text)
    if encoding == UTF16:
        return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)
    return len(text.encode("utf-8", "surrogatepass"))


def _units_to_index(line: str, units: int, encoding: str) -> int:
    """Code point index in *line* of the position *units* (clamped to the line)."""
    if units <= 0:
        return 0
    if encoding == UTF32 or line.isascii():
        return min(units, len(line))
    count = 0
    for i, ch in enumerate(line):
        if encoding == UTF16:
            count += 2 if ord(ch) > 0xFFFF else 1
        else:
            o = ord(ch)
            count += 1 if o < 0x80 else 2 if o < 0x800 else 3 if o < 0x10000 else 4
        if count > units:
            return i  # inside a character: LSP says undefined; take its start
        if count == units:
            return i + 1
    return len(line)


class LineIndex:
    """Line starts of one text; converts positions both ways.

    :meth:`of` reuses the index of the last few texts: the same document is
    converted several times per keystroke (the change, the cursor, the
    peers' cursors), and ``str`` is immutable, so identity is a safe key.
    """

    __slots__ = ("text", "starts")
    _recent: list[LineIndex] = []

    @classmethod
    def of(cls, text: str) -> LineIndex:
        for idx in cls._recent:
            if idx.text is text:
                return idx
        idx = cls(text)
        cls._recent = [idx, *cls._recent[:3]]
        return idx

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        if "\r" in text:
            self.starts.extend(m.end() for m in _BREAK.finditer(text))
        else:
            # the same, three times faster: each line's length and its "\n", summed in C
            lines = text.split("\n")
            lines.pop()
            self.starts.extend(accumulate(map(_PLUS_ONE, map(len, lines))))

    def line_text(self, line: int) -> str:
        """Line *line* without its line break."""
        start = self.starts[line]
        end = self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)
        while end > start and self.text[end - 1] in "\r\n":
            end -= 1
        return self.text[start:end]

    def offset(self, line: int, character: int, encoding: str) -> int:
        """Code point offset of an LSP position."""
        if line < 0:
            return 0
        if line >= len(self.starts):
            return len(self.text)
        return self.starts[line] + _units_to_index(self.line_text(line), character, encoding)

    def offset_in(self, text: str, line: int, character: int, encoding: str, limit: int) -> int | None:
        """:meth:`offset` of the position in *text*, a text whose first *limit* code points
        are this index's, when this index knows where the line starts there (the line starts
        before *limit*, after a ``\n``); the line itself is read from *text*.  None if not
        (or if the line holds a ``\r``): build an index of *text*.

        A keystroke changes the text after the line it is on, so the index of the text
        before it still finds the line of the next keystroke, a pass over the whole text
        fewer per keystroke."""
        if line < 0:
            return 0
        if line >= len(self.starts):
            return None
        start = self.starts[line]
        if start > limit or (start and self.text[start - 1] != "\n"):
            return None
        end = text.find("\n", start)
        row = text[start:] if end < 0 else text[start:end]
        if "\r" in row:
            return None
        return start + _units_to_index(row, character, encoding)

    def position(self, offset: int, encoding: str) -> tuple[int, int]:
        """LSP (line, character) of a code point offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.starts, offset) - 1
        start = self.starts[line]
        head = self.text[start:offset]
        if head.endswith("\r"):  # between the \r and \n of a CRLF: the end of the line
            head = head[:-1]
        return line, encoded_length(head, encoding)


def line_offset(text: str, line: int, character: int, encoding: str) -> tuple[int, int] | None:
    """Code point offset of the LSP position (*line*, *character*) and where its line starts,
    as :meth:`LineIndex.offset`; ``None`` for a line past the end of the text.

    One position of a text no index was built for (a completion request after a keystroke)
    is found by skipping the lines before it in C (``str.split`` with a count), a fraction of
    the cost of indexing every line of the text.
    """
    if line < 0:
        return 0, 0
    idx = next((i for i in LineIndex._recent if i.text is text), None)
    if idx is None and "\r" in text:
        idx = LineIndex.of(text)
    if idx is not None:
        if line >= len(idx.starts):
            return None
        return idx.offset(line, character, encoding), idx.starts[line]
    if line == 0:
        start = 0
    else:
        skipped = text.split("\n", line)
        if len(skipped) <= line:
            return None
        start = len(text) - len(skipped[-1])
    end = text.find("\n", start)
    row = text[start:] if end < 0 else text[start:end]
    return start + _units_to_index(row, character, encoding), start


def positions_of(text: str, offsets: list[int], encoding: str) -> list[tuple[int, int]]:
    """LSP (line, character) of each code point offset of *text*, as :meth:`LineIndex.position`.

    A few offsets (a change sent to the editor, peers' cursors) of a text no index was built
    for are found by counting the line breaks before each, at the speed of ``str.count``:
    a new text comes with every keystroke, and indexing every line of it then costs more than
    the rest of the keystroke's way through the language server.  Many offsets use an index.
    """
    idx = next((i for i in LineIndex._recent if i.text is text), None)
    if idx is None and len(offsets) > FEW_POSITIONS:
        idx = LineIndex.of(text)
    if idx is not None:
        return [idx.position(o, encoding) for o in offsets]
    return [_scan_position(text, o, encoding) for o in offsets]


def carry_count(old: str, new: str, unchanged: int) -> None:
    """*new* is *old* with its first *unchanged* code points as they were (an edit after them):
    a count of line breaks :func:`positions_of` made in *old* before that holds in *new*, and
    its next count in *new* starts from there (a peer's keystroke, shown, then the next one
    beside it: the line breaks between the two counted, not all those before them)."""
    global _last_counted
    counted, at, line = _last_counted
    # (not where a \r before the edit and a \n it brings are one CRLF now: no count ends in one)
    if counted is old and at <= unchanged and not (0 < at < len(new) and new[at - 1 : at + 1] == "\r\n"):
        _last_counted = (new, at, line)


#: the text, offset and line :func:`positions_of` last found by counting (one tuple, replaced
#: whole): the next offset of the same text (the change's other end, a cursor beside it) counts
#: only the line breaks between the two, not all those before it
_last_counted: tuple[str, int, int] = ("", 0, 0)


def _scan_position(text: str, offset: int, encoding: str) -> tuple[int, int]:
    end = max(0, min(offset, len(text)))
    if 0 < end < len(text) and text[end - 1] == "\r" and text[end] == "\n":
        end -= 1  # between the \r and \n of a CRLF: the end of the line
    # (no count below starts or ends inside a CRLF, so counts of spans add up)
    global _last_counted
    counted, at, at_line = _last_counted
    if counted is text:
        line = at_line + (_breaks(text, at, end) if end >= at else -_breaks(text, end, at))
    else:
        line = _breaks(text, 0, end)
    _last_counted = (text, end, line)
    start = text.rfind("\n", 0, end) + 1
    # (a lone \r ends a line too: the line starts after the last one, if after the last \n)
    start = max(start, text.rfind("\r", start, end) + 1)
    return line, encoded_length(text[start:end], encoding)


def _breaks(text: str, start: int, end: int) -> int:
    """Line breaks in ``text[start:end]`` (a CRLF is one); only that span is read."""
    n = text.count("\n", start, end)
    if text.find("\r", start, end) >= 0:
        n += text.count("\r", start, end) - text.count("\r\n", start, end)
    return n
