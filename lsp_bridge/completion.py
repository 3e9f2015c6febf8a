"""Completion for shared documents: room identifiers, language keywords, jedi (no LSP here).

The language server maps :class:`Candidate` to LSP ``CompletionItem`` and
the LSP position to a code point offset (:mod:`lsp_bridge.positions`); this
module sees only paths, texts and offsets (Python ``str`` indices), so it is
tested without an editor.  Three sources answer:

1. **Identifiers** of every document of the room, peers' unsaved text
   included, kept in an :class:`IdentifierIndex` that the server updates on
   each change (``update`` or the incremental ``apply_op``), so a request
   never rescans the room (only a document whose change was too big to
   count on its way, a big paste, is counted at the next request).  Ranked
   by proximity and frequency; the detail names the peer who introduced the
   word (``from alice (peer)``) or the document it comes from (``in
   src/util.py``).
2. **Keywords** of Python, JavaScript/TypeScript, Go, Rust, Java, C and C++,
   by the document's language (LSP ``languageId`` or the path's extension).
3. **Semantic** completions from jedi for Python documents, under a time
   budget (see :class:`CompletionEngine`).

Matching is on the *prefix*, the identifier characters (``\\w``, so
``größe`` and ``变量`` are words) before the cursor: case-sensitive prefix
matches first, then case-insensitive (Unicode case folding), then, when
prefix matches are few, subsequence matches anchored on the first letter.

No I/O of its own and no pygls/lsprotocol; the one clock (jedi's budget) is
injected.  jedi is imported lazily and is optional: without it, semantic
completion reports ``"unavailable"``.
"""

from __future__ import annotations

import bisect
import heapq
import keyword
import logging
import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from collab_core import ops

from .positions import LineIndex

if TYPE_CHECKING:
    from .jedi_worker import JediRunner

__all__ = [
    "Candidate",
    "CompletionEngine",
    "Completions",
    "IdentifierIndex",
    "is_subsequence",
    "JediJob",
    "KEYWORDS",
    "language_of",
]

logger = logging.getLogger(__name__)

Kind = Literal["identifier", "keyword", "semantic"]

# A word is a maximal run of \w that does not start with a decimal digit
# (so ``0x1F`` and ``1e5`` are not words).  Matching from a word boundary makes
# a scan of any slice that starts at one agree with a scan of the whole text,
# which the incremental index relies on.
_WORD_CHAR = re.compile(r"\w")
# Words shorter than this are not worth suggesting (``i``, ``x``); not indexing
# them also keeps the index small.
MIN_WORD = 2


#: characters an op's index update may scan as the op comes (about 2.5 ms here); a bigger one
#: is left to the next read of the index (:meth:`IdentifierIndex.catch_up`)
DEFER_SCAN = 1 << 16

# The words at least MIN_WORD long: a boundary, a word character that is not a digit, and the
# rest of the run (a word boundary costs less than a lookbehind at every character, and the
# regular expression, not Python, leaves out the short ones).
_NEAR_WORD = re.compile(rf"\b[^\W\d]\w{{{MIN_WORD - 1},}}")


def _words(text: str) -> Counter[str]:
    return Counter(_NEAR_WORD.findall(text))


def _is_word_char(ch: str) -> bool:
    return _WORD_CHAR.match(ch) is not None


# ---------------------------------------------------------------- keywords

_JS = """break case catch class const continue debugger default delete do else export extends false
finally for function if import in instanceof new null return super switch this throw true try typeof
var void while with yield let static async await of get set undefined"""
_TS = """abstract any as asserts bigint boolean declare enum implements infer interface is keyof module
namespace never number object private protected public readonly satisfies string symbol type unique
unknown override accessor"""
_GO = """break case chan const continue default defer else fallthrough for func go goto if import interface
map package range return select struct switch type var true false nil iota"""
_RUST = """as async await break const continue crate dyn else enum extern false fn for if impl in let loop
match mod move mut pub ref return self Self static struct super trait true type union unsafe use where
while"""
_JAVA = """abstract assert boolean break byte case catch char class continue default do double else enum
extends final finally float for if implements import instanceof int interface long native new package
private protected public return short static strictfp super switch synchronized this throw throws
transient try void volatile while true false null var record sealed permits yield"""
_C = """auto break case char const continue default do double else enum extern float for goto if inline
int long register restrict return short signed sizeof static struct switch typedef union unsigned void
volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert
_Thread_local bool true false nullptr alignas alignof constexpr static_assert thread_local typeof"""
_CPP = """alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
char32_t class compl concept const consteval constexpr constinit const_cast continue co_await co_return
co_yield decltype default delete do double dynamic_cast else enum explicit export extern false float for
friend goto if inline int long mutable namespace new noexcept not not_eq nullptr operator or or_eq
private protected public register reinterpret_cast requires return short signed sizeof static
static_assert static_cast struct switch template this thread_local throw true try typedef typeid
typename union unsigned using virtual void volatile wchar_t while xor xor_eq override final"""

#: Keywords by language id (literals such as ``true``/``None`` included:
#: they are typed like keywords).  Python's come from the running
#: interpreter, soft keywords (``match``, ``case``) included.
KEYWORDS: dict[str, frozenset[str]] = {
    "python": frozenset(keyword.kwlist) | frozenset(k for k in keyword.softkwlist if k != "_"),
    "javascript": frozenset(_JS.split()),
    "typescript": frozenset(_JS.split()) | frozenset(_TS.split()),
    "go": frozenset(_GO.split()),
    "rust": frozenset(_RUST.split()),
    "java": frozenset(_JAVA.split()),
    "c": frozenset(_C.split()),
    "cpp": frozenset(_CPP.split()),
}

_EXTENSIONS = {
    **dict.fromkeys([".py", ".pyi", ".pyw"], "python"),
    **dict.fromkeys([".js", ".mjs", ".cjs", ".jsx"], "javascript"),
    **dict.fromkeys([".ts", ".mts", ".cts", ".tsx"], "typescript"),
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    # .h is C++ here, as in VS Code: C++ keywords cover what C headers use.
    **dict.fromkeys([".h", ".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".h++", ".ipp"], "cpp"),
}
_LANGUAGE_IDS = {
    "python": "python",
    "javascript": "javascript",
    "javascriptreact": "javascript",
    "typescript": "typescript",
    "typescriptreact": "typescript",
    "go": "go",
    "rust": "rust",
    "java": "java",
    "c": "c",
    "cpp": "cpp",
    "cuda-cpp": "cpp",
}


def language_of(path: str, language_id: str | None = None) -> str | None:
    """The :data:`KEYWORDS` key for a document: its LSP ``languageId`` if known, else its extension."""
    if language_id is not None and language_id.lower() in _LANGUAGE_IDS:
        return _LANGUAGE_IDS[language_id.lower()]
    return _EXTENSIONS.get(os.path.splitext(path)[1].lower())


# ---------------------------------------------------------------- index


def _changed_span(op: ops.Op) -> tuple[int, int, int] | None:
    """``(start, old_end, new_end)`` of the region *op* changes, or ``None`` for a no-op.

    Before ``start`` and after the ends the old and new texts are identical.
    """
    old = new = 0
    start = -1
    old_end = new_end = 0
    for c in op:
        if isinstance(c, str):
            start = old if start < 0 else start
            new += len(c)
        elif c < 0:
            start = old if start < 0 else start
            old -= c
        else:
            old += c
            new += c
            continue
        old_end, new_end = old, new
    return None if start < 0 else (start, old_end, new_end)


class IdentifierIndex:
    """Word counts per document of a room, and who introduced each word.

    Stored per document: ``{word: count}`` only, no occurrence positions.
    Positions of every occurrence would cost a list per word per document
    (tens of MB for a room of large files) to answer one question, which
    occurrence is nearest the cursor; the engine answers that instead by
    scanning a window of lines around the cursor in the current text
    (bounded work per request, exact where proximity matters, and never
    stale).  Room-wide: the total count of each word, the author of the op
    that took it from zero to one occurrence in the room (kept while the
    word exists), and all words in one list sorted by case-folded form, for
    prefix lookups by bisection instead of a scan.

    The index is updated when text changes, either by re-counting a document
    (:meth:`update`, linear in its size) or from an op (:meth:`apply_op`,
    linear in the size of the changed region, or in the document's when that
    is less: deleting most of a document recounts what is left).  An op that
    would cost more than *defer_scan* characters of scanning (a big paste)
    is not scanned on the edit's way: its document is recounted from its
    latest text when the index is next read.
    """

    def __init__(self, *, defer_scan: int = DEFER_SCAN) -> None:
        self._defer_scan = defer_scan
        self._docs: dict[str, dict[str, int]] = {}
        #: documents to recount before the next read: their latest text, and the author of
        #: every op since (``None`` when they were not all one author's)
        self._deferred: dict[str, tuple[str, str | None]] = {}
        self._total: dict[str, int] = {}
        self._origin: dict[str, str] = {}
        # Every word of the room, sorted by case-folded form, and those forms
        # (the word itself when it folds to itself: no second copy).
        self._sorted: list[str] = []
        self._folded: list[str] = []

    # -- updates

    def update(self, path: str, text: str, *, author: str | None = None) -> None:
        """Re-index *path* from its full *text*; words new to the room are attributed to *author*."""
        old = self._docs.get(path, {})
        self._deferred.pop(path, None)
        new = _words(text)
        delta = {w: n - old.get(w, 0) for w, n in new.items()}
        for w, n in old.items():
            if w not in new:
                delta[w] = -n
        self._apply(path, delta, author)

    def apply_op(self, path: str, old_text: str, op: ops.Op, new_text: str, author: str | None) -> None:
        """Update *path* for *op*, which turned *old_text* into *new_text*.

        Only the words touching the changed region are re-counted: the region
        is widened to the nearest non-word characters, outside of which the
        two texts, and so their words, are the same.  When the region's old
        and new text together are longer than *new_text*, the document is
        recounted whole instead (the same result, for less).  Words that *op*
        brings into the room are attributed to *author*.  A document the
        index does not know yet is indexed whole, with no attribution.
        """
        deferred = self._deferred.get(path)
        if deferred is not None:  # (a recount is due anyway: it will see this op too)
            self._deferred[path] = (new_text, deferred[1] if deferred[1] == author else None)
            return
        if path not in self._docs:
            self.update(path, new_text)
            return
        span = _changed_span(op)
        if span is None:
            return
        start, old_end, new_end = span
        while start > 0 and _is_word_char(old_text[start - 1]):
            start -= 1
        while old_end < len(old_text) and _is_word_char(old_text[old_end]):
            old_end += 1
            new_end += 1
        scan = (old_end - start) + (new_end - start)
        if min(scan, len(new_text)) > self._defer_scan:
            self._deferred[path] = (new_text, author)
            return
        if scan > len(new_text):
            self.update(path, new_text, author=author)
            return
        delta: dict[str, int] = dict(_words(new_text[start:new_end]))
        for w, n in _words(old_text[start:old_end]).items():
            delta[w] = delta.get(w, 0) - n
        self._apply(path, delta, author)

    def remove(self, path: str) -> None:
        """Forget *path* (closed or deleted)."""
        self._deferred.pop(path, None)
        old = self._docs.get(path)
        if old is not None:
            self._apply(path, {w: -n for w, n in old.items()}, None)
            del self._docs[path]

    def _apply(self, path: str, delta: dict[str, int], author: str | None) -> None:
        counts = self._docs.setdefault(path, {})
        total, origin = self._total, self._origin
        # delta is net per word: one that leaves and comes back in the same
        # update never reaches zero, and keeps its author.
        for w, d in delta.items():
            if d == 0:
                continue
            n = counts.get(w, 0) + d
            if n > 0:
                counts[w] = n
            else:
                counts.pop(w, None)
            t = total.get(w, 0) + d
            if t > 0:
                if w not in total:
                    k = w.casefold()
                    k = w if k == w else k
                    i = bisect.bisect_left(self._folded, k)
                    self._folded.insert(i, k)
                    self._sorted.insert(i, w)
                    if author is not None:
                        origin[w] = author
                total[w] = t
            elif w in total:
                del total[w]
                origin.pop(w, None)
                i = bisect.bisect_left(self._folded, w.casefold())
                while self._sorted[i] != w:
                    i += 1
                del self._sorted[i]
                del self._folded[i]

    def catch_up(self) -> None:
        """Recount the documents whose ops were too big to scan as they came (every query does
        this first)."""
        while self._deferred:
            path, (text, author) = self._deferred.popitem()
            self.update(path, text, author=author)

    # -- queries

    def paths(self) -> list[str]:
        """The indexed documents."""
        self.catch_up()
        return list(self._docs)

    def count(self, path: str, word: str) -> int:
        """Occurrences of *word* in *path*."""
        self.catch_up()
        return self._docs.get(path, {}).get(word, 0)

    def counts(self, path: str) -> dict[str, int]:
        """``{word: count}`` of *path* (a copy)."""
        self.catch_up()
        return dict(self._docs.get(path, {}))

    def total(self, word: str) -> int:
        """Occurrences of *word* in the whole room."""
        self.catch_up()
        return self._total.get(word, 0)

    def origin(self, word: str) -> str | None:
        """Who introduced *word* into the room, if known."""
        self.catch_up()
        return self._origin.get(word)

    def where(self, word: str, *, exclude: str | None = None) -> str | None:
        """A document other than *exclude* that has *word*: the first indexed."""
        self.catch_up()
        for path, counts in self._docs.items():
            if word in counts and path != exclude:
                return path
        return None

    def with_prefix(self, prefix: str) -> Iterator[str]:
        """Words whose case-folded form starts with *prefix*'s (every word for ``""``)."""
        self.catch_up()
        folded, keys, words = prefix.casefold(), self._folded, self._sorted
        i = bisect.bisect_left(keys, folded)
        while i < len(keys) and keys[i].startswith(folded):
            yield words[i]
            i += 1

    def top(self, path: str, n: int) -> list[str]:
        """The *n* most frequent words of *path*."""
        self.catch_up()
        counts = self._docs.get(path, {})
        return heapq.nlargest(n, counts, key=counts.__getitem__)

    def __len__(self) -> int:
        self.catch_up()
        return len(self._total)


# ---------------------------------------------------------------- engine


@dataclass(frozen=True, slots=True)
class Candidate:
    """One suggestion.  ``sort_text`` orders them (LSP ``sortText``); ``type`` is jedi's, if any."""

    label: str
    kind: Kind
    detail: str | None
    sort_text: str
    score: float
    type: str | None = None


@dataclass(frozen=True, slots=True)
class Completions:
    """The answer to one request.

    ``start`` is the offset where the word being completed starts (replace
    ``start``..cursor with the label).  ``incomplete`` means more matched than
    were returned, or a source was left out: LSP ``isIncomplete``, so the
    editor asks again as the user types.  ``semantic`` says what jedi did:
    ``"ok"``, ``"windowed"`` (ran on part of a large document), ``"cached"``
    (the answer for an earlier keystroke in the same word), ``"skipped"``
    (over budget lately, or nothing to ask), ``"error"``, ``"unavailable"``
    (not installed), ``"off"`` (disabled, or not Python); ``semantic_seconds``
    is its time.
    """

    items: list[Candidate]
    start: int
    incomplete: bool
    semantic: str = "off"
    semantic_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class SemanticResult:
    """What :meth:`CompletionEngine.semantic` found: ``(label, jedi type)`` pairs in jedi's order."""

    names: list[tuple[str, str]]
    status: str
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class JediJob:
    """One question to jedi (:meth:`CompletionEngine.semantic_job`): complete at *line*
    (from 1), *column* (code points) of *source*, the document (or a window of *lines* of it)
    as jedi sees it at *jedi_path*.  The rest tells the answer's word apart for the cache."""

    path: str
    jedi_path: str
    source: str
    line: int
    column: int
    windowed: bool
    lines: int
    start: int
    before: str
    prefix: str


@dataclass(slots=True)
class _JediState:
    """Per document: jedi's window, the requests left to skip, the last answer."""

    lines: int
    skip: int = 0
    start: int = -1  # the last answer was for the word starting here,
    before: str = ""  # after this text,
    prefix: str = ""  # with this much of it typed
    names: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class _Scored:
    label: str
    kind: Kind
    tier: int
    score: float
    detail: str | None = None  # jedi's type
    type: str | None = None
    in_doc: bool | None = None  # for words of the room: whether this document has them


# Proximity: lines scanned each side of the cursor, and how fast nearness
# decays (a word 8 lines away counts half as near as one on the cursor line).
WINDOW_LINES = 150
_WINDOW_CHARS = WINDOW_LINES * 200  # for documents with very long lines
_DECAY_LINES = 8.0
# Subsequence matching runs when prefix matches are fewer than this.
_FUZZY_BELOW = 10
_FUZZY_SCAN = 5000

_IMPORTS = re.compile(r"^(?:from|import)[ \t][^\r\n(]*(?:\([^)]*\))?[^\r\n]*", re.M)


class CompletionEngine:
    """Answers completion requests from an :class:`IdentifierIndex`, keywords and jedi.

    *me* is the local participant: words they introduced carry no
    ``from ... (peer)`` detail.

    **Ranking.**  Candidates are ordered by tier (case-sensitive prefix
    match, case-insensitive, subsequence), then by score::

        4 * nearness + 1 (if in this document) + 0.6 * log1p(count here) + 0.4 * log1p(count in room)

    where nearness is ``1 / (1 + d / 8)`` for a word ``d`` lines from the
    cursor (within :data:`WINDOW_LINES`) and 0 farther away.  Logarithms keep
    a word used 500 times from burying the one used twice just above the
    cursor.  The occurrence being typed is not counted, so a word that
    occurs only there is not suggested.  Keywords score 1.5, jedi names
    2 (+ the identifier score for names also in the text).  After a ``.`` in
    Python, when jedi answered, its names come before plain words (jedi
    knows the attributes; the words are guesses).  The index is expected to
    reflect *text* (update it on each change before completing).

    **jedi's budget.**  jedi cannot be interrupted, and on a 10,000-line
    module a completion costs from a few ms (after a warm parse) to about a
    second (first parse, or a large module namespace).  So jedi gets at most
    a window of lines around the cursor (plus the document's import
    statements, so ``os.pa`` still resolves), sized per document: halved
    whenever a call takes longer than *jedi_budget_s*, doubled (up to
    *jedi_max_lines*) when one takes under a quarter of it.  A call over
    budget with the smallest window makes the next three requests for that
    document skip jedi.  The last answer is kept per document and reused
    while the user types on in the same word (same start, same text before
    it, the prefix extended): jedi runs about once per word, not once per
    keystroke, which matters because its cost is mostly per call (loading
    ``os``'s stubs takes 100-500 ms in every new ``jedi.Script``), not per
    line of the document.  Semantic names are asked for only with a prefix or
    after a ``.`` (an empty prefix elsewhere would list every builtin).

    :meth:`complete` calls jedi inline (:meth:`semantic`).  The language
    server does not: it asks :meth:`semantic_job` what to ask, has a worker
    process run the :class:`JediJob` (:mod:`lsp_bridge.jedi_client`), passes
    the outcome to :meth:`semantic_done`, and hands :meth:`complete` the
    result, or ``SemanticResult([], "skipped")`` if jedi was late.  A late
    answer is not lost: it becomes the document's last answer, so the next
    keystroke in the word gets it from the cache.  The jedi methods touch
    only this engine's jedi state, never the index.
    """

    def __init__(
        self,
        index: IdentifierIndex,
        *,
        me: str | None = None,
        jedi_enabled: bool = True,
        jedi_budget_s: float = 0.05,
        jedi_max_lines: int = 2000,
        jedi_min_lines: int = 200,
        jedi_root: str | None = None,
        jedi_parsed_documents: int = 2,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.index = index
        self.me = me
        self.jedi_enabled = jedi_enabled
        self.jedi_budget_s = jedi_budget_s
        self.jedi_max_lines = jedi_max_lines
        self.jedi_min_lines = min(jedi_min_lines, jedi_max_lines)
        self.jedi_root = jedi_root
        self.jedi_parsed_documents = jedi_parsed_documents
        self._clock = clock
        self._jedi_states: dict[str, _JediState] = {}
        self._runner: JediRunner | None = None

    def jedi_window(self, path: str) -> int | None:
        """How many lines of *path* jedi gets now (``None`` before jedi ran on it)."""
        state = self._jedi_states.get(path)
        return None if state is None else state.lines

    def forget(self, path: str) -> None:
        """Drop per-document state (jedi's window and last answer) for a closed document."""
        self._jedi_states.pop(path, None)

    # -- the request

    def complete(
        self,
        path: str,
        text: str,
        offset: int,
        language_id: str | None = None,
        *,
        limit: int = 200,
        semantic: SemanticResult | None = None,
        keywords: bool = True,
    ) -> Completions:
        """Completions at code point *offset* of *text*, the current text of *path*.

        *semantic*: jedi's result if already computed (see :meth:`semantic`);
        ``None`` runs jedi here when the document is Python.  *keywords*: add the
        language's keywords (off when another language server offers them).
        """
        offset = max(0, min(offset, len(text)))
        start = offset
        while start > 0 and _is_word_char(text[start - 1]):
            start -= 1
        end = offset
        while end < len(text) and _is_word_char(text[end]):
            end += 1
        prefix = text[start:offset]
        if prefix[:1].isdecimal():  # typing a number
            return Completions([], start, False)
        language = language_of(path, language_id)
        member = start > 0 and text[start - 1] == "."

        if semantic is None:
            semantic = self.semantic(path, text, offset, language_id)
        jedi_names = semantic.names if semantic.status in ("ok", "windowed", "cached") else []

        found: dict[str, _Scored] = {}
        self._add_identifiers(found, path, text, start, end, prefix)
        if member and jedi_names:
            for s in found.values():
                s.tier += 3
        if keywords and (not member or language == "rust"):  # x.await
            for kw in KEYWORDS.get(language or "", ()):
                if member and kw != "await":
                    continue
                tier = _tier(kw, prefix)
                if tier is not None:
                    self._merge(found, _Scored(kw, "keyword", tier, 1.5))
        for i, (name, kind) in enumerate(jedi_names):
            tier = _tier(name, prefix)
            if tier is None:  # jedi's own matching is looser (fuzzy)
                continue
            label_kind: Kind = "keyword" if kind == "keyword" else "semantic"
            self._merge(found, _Scored(name, label_kind, tier, 2.0 - i * 1e-4, kind, kind))

        ranked = sorted(found.values(), key=lambda s: (s.tier, -s.score, s.label))
        width = len(str(len(ranked)))
        items = [
            Candidate(s.label, s.kind, self._detail(s, path), f"{i:0{width}d}", round(s.score, 4), s.type)
            for i, s in enumerate(ranked[:limit])
        ]
        incomplete = len(ranked) > limit or semantic.status == "skipped" or not prefix
        return Completions(items, start, incomplete, semantic.status, semantic.seconds)

    @staticmethod
    def _merge(found: dict[str, _Scored], new: _Scored) -> None:
        old = found.get(new.label)
        if old is None:
            found[new.label] = new
            return
        # The same word from two sources: the more specific kind, the better
        # tier, the identifier's score plus the source's.
        if new.kind != "identifier":
            old.kind = new.kind
            old.type = new.type or old.type
            old.detail = new.detail
        old.tier = min(old.tier, new.tier)
        old.score += new.score

    def _add_identifiers(
        self,
        found: dict[str, _Scored],
        path: str,
        text: str,
        start: int,
        end: int,
        prefix: str,
    ) -> None:
        index = self.index
        index.catch_up()  # (the counts below are read directly)
        current = text[start:end]
        near = _nearness(text, start, end)
        words: list[str]
        fuzzy: list[str] = []
        if prefix:
            words = list(index.with_prefix(prefix))
            if len(words) < _FUZZY_BELOW and len(prefix) >= 2:
                fuzzy = _subsequence_matches(index, prefix, set(words))
        else:
            words = index.top(path, 200)
        seen = set(words)
        words.extend(w for w in near if w not in seen and _tier(w, prefix) is not None)
        doc_counts = index._docs.get(path, {})
        room_counts = index._total
        fuzzy_from = len(words)
        words += fuzzy
        for i, w in enumerate(words):
            own = 1 if w == current else 0
            here = doc_counts.get(w, 0) - own
            room = room_counts.get(w, 0) - own
            d = near.get(w)
            if d is None and room <= 0:
                continue  # only the word being typed
            # every word here matches the prefix case-insensitively at least
            tier = 2 if i >= fuzzy_from else 0 if w.startswith(prefix) else 1
            nearness = 0.0 if d is None else 1.0 / (1.0 + d / _DECAY_LINES)
            in_doc = d is not None or here > 0
            score = 4.0 * nearness + (1.0 if in_doc else 0.0)
            score += 0.6 * math.log1p(max(here, 0)) + 0.4 * math.log1p(max(room, 0))
            found[w] = _Scored(w, "identifier", tier, score, in_doc=in_doc)

    def _detail(self, s: _Scored, path: str) -> str | None:
        """jedi's type, then who introduced the word and where it is (if not here)."""
        if s.in_doc is None or s.kind == "keyword":
            return s.detail
        parts = [s.detail] if s.detail else []
        author = self.index.origin(s.label)
        if author is not None and author != self.me:
            parts.append(f"from {author} (peer)")
        if not s.in_doc:
            where = self.index.where(s.label, exclude=path)
            if where is not None:
                parts.append(f"in {where}")
        return ", ".join(parts) or None

    # -- jedi

    def semantic_job(
        self, path: str, text: str, offset: int, language_id: str | None = None
    ) -> SemanticResult | JediJob:
        """What to ask jedi at *offset* (Python documents only), or the answer without asking.

        An answer without jedi: ``"off"`` (disabled, not Python), ``"skipped"``
        (nothing typed to complete, or over budget lately), ``"cached"`` (the
        last answer of this document, for the same word).  Else a
        :class:`JediJob`, to be run by :meth:`semantic` inline or by a worker
        process, and its outcome given to :meth:`semantic_done`.
        """
        if not self.jedi_enabled or language_of(path, language_id) != "python":
            return SemanticResult([], "off")
        offset = max(0, min(offset, len(text)))
        start = offset
        while start > 0 and _is_word_char(text[start - 1]):
            start -= 1
        if start == offset and not (start > 0 and text[start - 1] == "."):
            return SemanticResult([], "skipped")
        state = self._jedi_states.setdefault(path, _JediState(self.jedi_max_lines))
        prefix = text[start:offset]
        before = text[:start]
        if (
            state.start == start
            and prefix.casefold().startswith(state.prefix.casefold())
            and before == state.before
        ):
            return SemanticResult(state.names, "cached")
        if state.skip:
            state.skip -= 1
            return SemanticResult([], "skipped")
        source, line, column, windowed = _jedi_source(text, offset, state.lines)
        jedi_path = os.path.join(self.jedi_root, path) if self.jedi_root else path
        return JediJob(path, jedi_path, source, line, column, windowed, state.lines, start, before, prefix)

    def semantic_done(
        self, job: JediJob, names: list[tuple[str, str]] | None, seconds: float
    ) -> SemanticResult:
        """jedi's *names* for *job* (``None``: jedi failed), which took it *seconds*.

        Sizes the document's window for its next job and keeps the answer for
        the next keystrokes in the same word.
        """
        if names is None:
            return SemanticResult([], "error", seconds)
        state = self._jedi_states.get(job.path)
        if state is None:  # closed meanwhile
            return SemanticResult(names, "windowed" if job.windowed else "ok", seconds)
        if seconds > self.jedi_budget_s:
            if job.lines <= self.jedi_min_lines:
                state.skip = 3
            state.lines = max(self.jedi_min_lines, min(state.lines, job.lines // 2))
        elif seconds < self.jedi_budget_s / 4 and job.windowed:
            state.lines = min(self.jedi_max_lines, max(state.lines, job.lines * 2))
        state.start, state.before, state.prefix, state.names = job.start, job.before, job.prefix, names
        return SemanticResult(names, "windowed" if job.windowed else "ok", seconds)

    def semantic(self, path: str, text: str, offset: int, language_id: str | None = None) -> SemanticResult:
        """jedi's names at *offset* (Python documents only), jedi run here, within the time budget."""
        job = self.semantic_job(path, text, offset, language_id)
        if isinstance(job, SemanticResult):
            return job
        runner = self._load_jedi()
        if runner is None:
            return SemanticResult([], "unavailable")
        t0 = self._clock()
        try:
            names: list[tuple[str, str]] | None = runner.complete(
                job.jedi_path, job.source, job.line, job.column
            )
        except Exception:  # jedi's inference has internal errors on odd code; never fail a completion
            logger.warning("jedi failed to complete in %s", path, exc_info=True)
            names = None
        return self.semantic_done(job, names, self._clock() - t0)

    def _load_jedi(self) -> JediRunner | None:
        if self._runner is None:
            from .jedi_worker import JediRunner

            self._runner = JediRunner.load(root=self.jedi_root, parsed_documents=self.jedi_parsed_documents)
            if self._runner is None:
                self.jedi_enabled = False
        return self._runner


def _tier(word: str, prefix: str) -> int | None:
    """0: case-sensitive prefix match, 1: case-insensitive, ``None``: no prefix match."""
    if word.startswith(prefix):
        return 0
    if word.casefold().startswith(prefix.casefold()):
        return 1
    return None


def _subsequence_matches(index: IdentifierIndex, prefix: str, exclude: set[str]) -> list[str]:
    """Words with the same first letter containing the rest of *prefix* in order (case-folded)."""
    folded = prefix.casefold()
    first, rest = folded[0], folded[1:]
    out = []
    for i, w in enumerate(index.with_prefix(first)):  # (their case-folded forms start with it)
        if i >= _FUZZY_SCAN:
            break
        if w not in exclude and is_subsequence(rest, w.casefold()[1:]):
            out.append(w)
    return out


def is_subsequence(needle: str, hay: str) -> bool:
    """Whether *needle*'s characters are in *hay* in order, in one pass over *hay*.  (A regular
    expression ``a.*?b.*?c`` did it before, and backtracked for ever on a long prefix of one
    letter against a long word that did not match: a completion that never answered.)"""
    rest = iter(hay)
    return all(ch in rest for ch in needle)


def _nearness(text: str, start: int, end: int) -> dict[str, int]:
    """``{word: distance in lines}`` for words within :data:`WINDOW_LINES` of the cursor.

    The word at the cursor (``start``..``end``) is left out: it is the one
    being typed.  Lines here end at ``\\n`` (``\\r\\n`` included); a lone
    ``\\r`` document is one long line, bounded by the character cap.
    """
    lo = start
    for _ in range(WINDOW_LINES + 1):
        lo = text.rfind("\n", max(0, start - _WINDOW_CHARS), lo)
        if lo < 0:
            break
    lo = max(lo + 1, start - _WINDOW_CHARS, 0)
    hi = end
    limit = min(len(text), end + _WINDOW_CHARS)
    for _ in range(WINDOW_LINES + 1):
        j = text.find("\n", hi, limit)
        if j < 0:
            hi = limit
            break
        hi = j + 1
    before = text[lo:start].split("\n")
    after = text[end:hi].split("\n")
    near: dict[str, int] = {}
    # Walk outwards from the cursor so the first distance seen is the smallest.
    rows = [(before[-1], 0), (after[0], 0)]
    for k in range(1, max(len(before), len(after))):
        if k < len(before):
            rows.append((before[-1 - k], k))
        if k < len(after):
            rows.append((after[k], k))
    findall = _NEAR_WORD.findall
    for row, d in rows:
        for w in findall(row):
            if w not in near:
                near[w] = d
    return near


def _jedi_source(text: str, offset: int, max_lines: int) -> tuple[str, int, int, bool]:
    """The code to give jedi, and the cursor in it: ``(code, line 1-based, column, windowed)``.

    jedi counts lines from 1 and columns in code points (str indices), and
    splits lines at ``\\n``, ``\\r\\n`` and ``\\r`` like :class:`LineIndex`.
    A document longer than *max_lines* is cut to the lines before the cursor
    (three quarters of the window, started at an unindented line when one is
    near, so the window does not begin inside a block) and after it, with
    the document's import statements put first.
    """
    starts = LineIndex.of(text).starts
    row = bisect.bisect_right(starts, offset) - 1
    column = offset - starts[row]
    if len(starts) <= max_lines:
        return text, row + 1, column, False
    first = max(0, row - max_lines * 3 // 4)
    for r in range(first, max(0, first - max_lines // 4) - 1, -1):
        ch = text[starts[r] : starts[r] + 1]
        if ch and not ch.isspace() and ch not in "#)]}":
            first = r
            break
    last = min(len(starts), max(first + max_lines, row + 1))
    head = "".join(m.group() + "\n" for m in _IMPORTS.finditer(text, 0, starts[first]))
    body_end = starts[last] if last < len(starts) else len(text)
    code = head + text[starts[first] : body_end]
    return code, head.count("\n") + row - first + 1, column, True
