"""Completion engine: ranking, room words and their authors, keywords, jedi, the index."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collab_core import ops
from lsp_bridge.completion import (
    KEYWORDS,
    WINDOW_LINES,
    Candidate,
    CompletionEngine,
    Completions,
    IdentifierIndex,
    is_subsequence,
    language_of,
)


def complete(
    text: str,
    *,
    path: str = "main.py",
    index: IdentifierIndex | None = None,
    me: str | None = "me",
    jedi: bool = False,
    language_id: str | None = None,
    cursor: str = "|",
) -> Completions:
    """Complete at the ``|`` in *text* (removed), with *text* indexed as *path*."""
    offset = text.index(cursor)
    text = text[:offset] + text[offset + len(cursor) :]
    index = index if index is not None else IdentifierIndex()
    index.update(path, text, author=me)
    return CompletionEngine(index, me=me, jedi_enabled=jedi).complete(path, text, offset, language_id)


def labels(result: Completions) -> list[str]:
    return [c.label for c in result.items]


def item(result: Completions, label: str) -> Candidate:
    return next(c for c in result.items if c.label == label)


# ---------------------------------------------------------------- ranking


def test_the_nearer_of_two_equally_frequent_words_ranks_first() -> None:
    filler = "pass\n" * 60
    text = f"alpha_far = 1\n{filler}alpha_near = 2\nalp|\n"
    assert labels(complete(text))[:2] == ["alpha_near", "alpha_far"]
    text = f"alp|\nalpha_near = 2\n{filler}alpha_far = 1\n"
    assert labels(complete(text))[:2] == ["alpha_near", "alpha_far"]


def test_the_more_frequent_of_two_equally_far_words_ranks_first() -> None:
    far = "pass\n" * (WINDOW_LINES + 10)
    text = "beta_rare\n" + "beta_common\n" * 10 + far + "bet|\n"
    assert labels(complete(text))[:2] == ["beta_common", "beta_rare"]


def test_frequency_counts_across_the_room() -> None:
    index = IdentifierIndex()
    index.update("other.py", "gamma_busy " * 20 + "gamma_quiet")
    assert labels(complete("gam|", index=index))[:2] == ["gamma_busy", "gamma_quiet"]


def test_words_of_this_document_come_before_equally_frequent_words_elsewhere() -> None:
    index = IdentifierIndex()
    index.update("other.py", "delta_there = 1\n")
    far = "pass\n" * (WINDOW_LINES + 10)
    result = complete(f"delta_here = 1\n{far}delta|", index=index)
    assert labels(result)[:2] == ["delta_here", "delta_there"]


def test_case_sensitive_prefix_matches_come_before_case_insensitive_ones() -> None:
    text = "Result_type = 1\n" * 5 + "result_value = 2\nres|"
    assert labels(complete(text))[:2] == ["result_value", "Result_type"]


def test_subsequence_matches_come_last_when_prefix_matches_are_few() -> None:
    result = complete("handle_request = 1\nhreq_x = 2\nhrq|")
    assert labels(result) == ["hreq_x", "handle_request"]  # both subsequences; the nearer first
    result = complete("handle_request = 1\nhreq_x = 2\nhreq|")
    assert labels(result) == ["hreq_x", "handle_request"]


@given(st.text("abcA", max_size=8), st.text("abcA", max_size=12))
def test_a_subsequence_is_what_the_regular_expression_matched(needle: str, hay: str) -> None:
    pattern = re.compile(".*?".join(re.escape(ch) for ch in needle))
    assert is_subsequence(needle, hay) == (pattern.search(hay) is not None)


def test_a_long_prefix_of_one_letter_is_no_work_for_ever() -> None:
    # the regular expression before backtracked on this for longer than any test runs
    text = f"{'a' * 60}b_end = 1\n{'a' * 40}|"
    assert labels(complete(text)) == [f"{'a' * 60}b_end"]
    near_miss = f"{'a' * 45}c = 1\n{'a' * 20}b|"
    assert labels(complete(near_miss)) == []


def test_sort_text_follows_the_ranking() -> None:
    result = complete("epsilon_a epsilon_b epsilon_b epsilon_c\neps|")
    assert [c.sort_text for c in result.items] == sorted(c.sort_text for c in result.items)
    assert [c.score for c in result.items if c.kind == "identifier"] == sorted(
        (c.score for c in result.items if c.kind == "identifier"), reverse=True
    )


# ---------------------------------------------------------------- the word being typed


def test_the_word_being_typed_is_not_suggested_when_it_occurs_nowhere_else() -> None:
    assert "zeta_new" not in labels(complete("zeta_old = 1\nzeta_new|"))
    assert "zeta_new" not in labels(complete("zeta_old = 1\nzeta_|new"))


def test_the_word_being_typed_is_suggested_when_it_occurs_elsewhere() -> None:
    assert "zeta_new" in labels(complete("zeta_new = 1\nzeta_new|"))
    index = IdentifierIndex()
    index.update("peer.py", "zeta_new")
    assert "zeta_new" in labels(complete("zeta_new|", index=index))


def test_replacement_starts_at_the_word_before_the_cursor() -> None:
    result = complete("value_one = 1\nx = valu|e_two")
    assert result.start == len("value_one = 1\nx = ")


def test_no_completion_while_typing_a_number() -> None:
    assert complete("x1 = 1\nx = 1|").items == []


# ---------------------------------------------------------------- the room


def test_peers_unsaved_words_are_suggested_with_their_author_and_document() -> None:
    index = IdentifierIndex()
    index.update("src/util.py", "def compute_checksum(data):\n    pass\n", author="alice")
    result = complete("import util\ncompute_|", index=index)
    c = item(result, "compute_checksum")
    assert c.kind == "identifier"
    assert c.detail == "from alice (peer), in src/util.py"


def test_own_words_from_other_documents_name_the_document_only() -> None:
    index = IdentifierIndex()
    index.update("lib/a.py", "my_helper = 1", author="me")
    assert item(complete("my_h|", index=index), "my_helper").detail == "in lib/a.py"


def test_a_word_a_peer_typed_into_this_document_names_the_peer() -> None:
    index = IdentifierIndex()
    old = "x = 1\n"
    index.update("main.py", old, author="me")
    op = ops.insert(len(old), "peer_value = 2\n")
    new = ops.apply(old, op)
    index.apply_op("main.py", old, op, new, "bob")
    engine = CompletionEngine(index, me="me", jedi_enabled=False)
    text = new + "peer_v"
    index.update("main.py", text, author="me")
    assert item(engine.complete("main.py", text, len(text)), "peer_value").detail == "from bob (peer)"


def test_a_word_keeps_the_author_who_introduced_it() -> None:
    index = IdentifierIndex()
    index.update("a.py", "shared_name\n", author="alice")
    index.update("b.py", "shared_name shared_name\n", author="bob")
    assert index.origin("shared_name") == "alice"
    index.remove("a.py")
    assert index.origin("shared_name") == "alice"  # still in the room
    index.remove("b.py")
    assert index.origin("shared_name") is None
    index.update("c.py", "shared_name", author="carol")
    assert index.origin("shared_name") == "carol"


def test_a_closed_document_no_longer_answers() -> None:
    index = IdentifierIndex()
    index.update("gone.py", "vanishing_word = 1")
    assert "vanishing_word" in labels(complete("van|", index=index))
    index.remove("gone.py")
    assert "vanishing_word" not in labels(complete("van|", index=index))
    assert index.total("vanishing_word") == 0


# ---------------------------------------------------------------- keywords


@pytest.mark.parametrize(
    ("path", "language_id", "prefix", "keyword"),
    [
        ("a.py", None, "de", "def"),
        ("a.py", None, "lam", "lambda"),
        ("a.js", None, "func", "function"),
        ("a.js", None, "con", "const"),
        ("a.tsx", None, "inter", "interface"),
        ("a.go", None, "fu", "func"),
        ("a.rs", None, "f", "fn"),
        ("a.rs", None, "im", "impl"),
        ("A.java", None, "cla", "class"),
        ("a.cpp", None, "names", "namespace"),
        ("a.hpp", None, "templ", "template"),
        ("a.c", None, "typed", "typedef"),
        ("untitled", "go", "fu", "func"),
        ("Untitled-1", "typescriptreact", "read", "readonly"),
    ],
)
def test_keywords_of_the_documents_language(
    path: str, language_id: str | None, prefix: str, keyword: str
) -> None:
    result = complete(prefix + "|", path=path, language_id=language_id)
    assert item(result, keyword).kind == "keyword"


@pytest.mark.parametrize(
    ("path", "prefix", "not_keyword"),
    [("a.py", "fu", "func"), ("a.go", "de", "def"), ("a.js", "fn", "fn"), ("a.c", "names", "namespace")],
)
def test_no_keywords_of_other_languages(path: str, prefix: str, not_keyword: str) -> None:
    assert not_keyword not in labels(complete(prefix + "|", path=path))


def test_language_id_wins_over_the_extension() -> None:
    assert language_of("a.h") == "cpp"
    assert language_of("a.h", "c") == "c"
    assert language_of("notes.txt") is None
    assert language_of("A.PY") == "python"


def test_no_keywords_after_a_dot() -> None:
    assert "def" not in labels(complete("obj.de|", path="a.py"))
    assert "await" in labels(complete("fut.aw|", path="a.rs"))


def test_python_soft_keywords_are_included() -> None:
    assert {"match", "case"} <= KEYWORDS["python"]
    assert "_" not in KEYWORDS["python"]


# ---------------------------------------------------------------- unicode


def test_unicode_identifiers() -> None:
    text = "größe = 1\n变量 = 2\nGrößenordnung = 3\n"
    assert labels(complete(text + "grö|"))[:2] == ["größe", "Größenordnung"]
    assert labels(complete(text + "变|")) == ["变量"]
    assert item(complete(text + "x = 1  # 😀 grö|"), "größe").kind == "identifier"


def test_words_starting_with_a_digit_are_not_identifiers() -> None:
    index = IdentifierIndex()
    index.update("a.py", "x = 0x1F + 1e5 + ab2")
    assert index.counts("a.py") == {"ab2": 1}


# ---------------------------------------------------------------- empty prefix


def test_empty_prefix_lists_nearby_words_first_and_is_incomplete() -> None:
    far = "pass\n" * 40
    result = complete(f"omega_far = 1\n{far}omega_near = 2\n|\n")
    assert labels(result).index("omega_near") < labels(result).index("omega_far")
    assert result.incomplete
    assert result.start == len(f"omega_far = 1\n{far}omega_near = 2\n")


def test_empty_prefix_skips_jedi_except_after_a_dot() -> None:
    assert complete("import os\n|", jedi=True).semantic == "skipped"
    result = complete("import json\njson.|", jedi=True)
    assert result.semantic == "ok"
    assert "dumps" in labels(result)


# ---------------------------------------------------------------- jedi


def test_jedi_completes_module_attributes() -> None:
    result = complete("import os\nos.pa|", jedi=True)
    assert result.semantic == "ok"
    path = item(result, "path")
    assert path.kind == "semantic"
    assert path.type == "statement"


def test_jedi_names_come_first_after_a_dot() -> None:
    result = complete("pandas_thing = 1\npanorama = 2\nimport os\nos.pa|", jedi=True)
    kinds = [c.kind for c in result.items]
    assert kinds[0] == "semantic"
    assert kinds.index("identifier") > max(i for i, k in enumerate(kinds) if k == "semantic")


def test_jedi_columns_count_code_points() -> None:
    result = complete('s = "😀😀"; import os; os.pa|', jedi=True)
    assert "path" in labels(result)


def test_jedi_only_for_python() -> None:
    assert complete("os.pa|", path="a.js", jedi=True).semantic == "off"
    assert complete("os.pa|", path="a.py", jedi=False).semantic == "off"


def big_module(lines: int) -> str:
    body = [f"def function_{i}(value_{i}):\n    return value_{i} + {i}\n" for i in range(lines // 2)]
    return "import os\nfrom collections import (\n    OrderedDict,\n    defaultdict,\n)\n" + "".join(body)


def test_jedi_sees_a_window_of_a_large_document_with_its_imports() -> None:
    text = big_module(4000)
    text = text + "x = os.pa"
    engine = CompletionEngine(IdentifierIndex(), jedi_max_lines=300, jedi_min_lines=100)
    result = engine.semantic("big.py", text, len(text))
    assert result.status == "windowed"
    assert "path" in [name for name, _ in result.names]
    text = text[: -len("os.pa")] + "Ordered"
    assert "OrderedDict" in [name for name, _ in engine.semantic("big.py", text, len(text)).names]


class FakeClock:
    """Each call to jedi takes ``durations.pop(0)`` seconds."""

    def __init__(self, durations: list[float]) -> None:
        self.now = 0.0
        self.durations = durations
        self.started = False

    def __call__(self) -> float:
        if self.started:
            self.now += self.durations.pop(0)
        self.started = not self.started
        return self.now


def test_jedi_window_shrinks_over_budget_then_skips_then_grows_back() -> None:
    big = big_module(4000)
    clock = FakeClock([0.2, 0.2, 0.2, 0.001, 0.001])
    engine = CompletionEngine(
        IdentifierIndex(), jedi_budget_s=0.05, jedi_max_lines=800, jedi_min_lines=200, clock=clock
    )
    texts = (f"{big}y_{i} = 1\nx = os.pa" for i in range(100))  # a new text each time: no cache

    def status() -> str:
        text = next(texts)
        return engine.semantic("big.py", text, len(text)).status

    assert status() == "windowed"
    assert engine.jedi_window("big.py") == 400
    status()
    assert engine.jedi_window("big.py") == 200
    status()  # over budget at the smallest window
    assert [status() for _ in range(3)] == ["skipped"] * 3
    assert status() == "windowed"
    assert engine.jedi_window("big.py") == 400
    engine.forget("big.py")
    assert engine.jedi_window("big.py") is None


def test_jedi_answer_is_reused_while_typing_on_in_the_same_word() -> None:
    engine = CompletionEngine(IdentifierIndex())
    text = "import os\nos.p"
    first = engine.semantic("a.py", text, len(text))
    assert first.status == "ok"
    again = engine.semantic("a.py", text + "at", len(text) + 2)
    assert (again.status, again.names) == ("cached", first.names)
    assert engine.semantic("a.py", "import os\nos.pat", len(text) + 1).status == "cached"
    assert engine.semantic("a.py", "import oz\nos.pat", len(text) + 2).status == "ok"  # text before changed
    assert engine.semantic("a.py", "import oz\nos.x", len(text)).status == "ok"  # another prefix
    result = CompletionEngine(IdentifierIndex()).complete("a.py", text + "a", len(text) + 1, semantic=again)
    assert "path" in labels(result) and "pipe" not in labels(result)


def test_precomputed_semantic_result_is_used() -> None:
    index = IdentifierIndex()
    text = "import os\nos.pa"
    index.update("a.py", text)
    engine = CompletionEngine(index)
    semantic = engine.semantic("a.py", text, len(text))
    result = engine.complete("a.py", text, len(text), semantic=semantic)
    assert "path" in labels(result)
    assert result.semantic_seconds == semantic.seconds


# ---------------------------------------------------------------- the index


def test_index_follows_full_updates() -> None:
    index = IdentifierIndex()
    index.update("a.py", "one_word two_word one_word")
    assert index.counts("a.py") == {"one_word": 2, "two_word": 1}
    index.update("a.py", "two_word three_word")
    assert index.counts("a.py") == {"two_word": 1, "three_word": 1}
    assert index.total("one_word") == 0
    assert list(index.with_prefix("t")) == ["three_word", "two_word"]


def test_index_prefix_lookup_folds_case() -> None:
    index = IdentifierIndex()
    index.update("a.py", "Straße strasse STRAY other")
    assert set(index.with_prefix("stra")) == {"Straße", "strasse", "STRAY"}
    assert set(index.with_prefix("STRASS")) == {"Straße", "strasse"}  # ß folds to ss


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab_1٣é変 .\n\t-x９ßＡ"), max_size=40) | st.text(max_size=40))
def test_the_words_counted_are_the_runs_of_word_characters_not_starting_with_a_digit(text: str) -> None:
    """The index's definition of a word (the module's docstring), written out plainly."""
    from lsp_bridge import completion

    runs = re.findall(r"(?<!\w)(?!\d)\w+", text)
    assert completion._words(text) == Counter(w for w in runs if len(w) >= completion.MIN_WORD)


def test_incremental_update_recounts_words_split_and_joined_at_the_edit() -> None:
    index = IdentifierIndex()
    old = "alpha beta"
    index.update("a.py", old)
    steps: list[ops.Op] = [ops.delete(5, 1), ops.insert(3, " "), [2, "xy", -3]]
    for op in steps:
        new = ops.apply(old, op)
        index.apply_op("a.py", old, op, new, "bob")
        reference = IdentifierIndex()
        reference.update("a.py", new)
        assert index.counts("a.py") == reference.counts("a.py"), (old, op, new)
        old = new


WORDY = st.text(alphabet="ab_1 \n\r.(größ变é😀", max_size=40)


@st.composite
def edits(draw: st.DrawFn) -> tuple[str, list[tuple[ops.Op, str | None]]]:
    """A text and a few ops on it (each with its author), each op possibly multi-region."""
    text = first = draw(WORDY)
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        op: ops.Op = []
        pos = 0
        for _ in range(draw(st.integers(1, 3))):
            if pos > len(text):
                break
            at = draw(st.integers(pos, len(text)))
            cut = draw(st.integers(0, len(text) - at))
            ins = draw(WORDY)
            op += [at - pos, ins, -cut]
            pos = at + cut
        op = ops.normalize([c for c in op if c not in (0, "")])
        steps.append((op, draw(st.sampled_from(["alice", "bob", None]))))
        text = ops.apply(text, op)
    return first, steps


def index_state(index: IdentifierIndex) -> tuple[dict[str, dict[str, int]], dict[str, int], dict[str, str]]:
    return (
        {p: index.counts(p) for p in index.paths()},
        {w: index.total(w) for w in index.with_prefix("")},
        {w: a for w in index.with_prefix("") if (a := index.origin(w)) is not None},
    )


@settings(max_examples=300, deadline=None)
@given(edits(), WORDY)
def test_incremental_index_matches_a_full_reindex(
    case: tuple[str, list[tuple[ops.Op, str]]], peer: str
) -> None:
    text, steps = case
    incremental, full = IdentifierIndex(), IdentifierIndex()
    for index in (incremental, full):
        index.update("peer.py", peer, author="carol")
        index.update("a.py", text, author="me")
    for op, author in steps:
        new = ops.apply(text, op)
        incremental.apply_op("a.py", text, op, new, author)
        full.update("a.py", new, author=author)
        assert index_state(incremental) == index_state(full)
        words = list(incremental.with_prefix(""))
        assert [w.casefold() for w in words] == sorted(w.casefold() for w in words)
        text = new


@settings(max_examples=300, deadline=None)
@given(edits(), WORDY, st.integers(0, 12), st.lists(st.booleans(), min_size=6, max_size=6))
def test_deferred_and_whole_recounts_match_a_full_reindex(
    case: tuple[str, list[tuple[ops.Op, str]]], peer: str, defer_scan: int, read: list[bool]
) -> None:
    """With a small *defer_scan* ops go every way (scanned, the document recounted, left to the
    next read) and several can wait for one read; what a read sees is a full reindex's counts.
    A word's author may be one it had earlier (its net change over the ops a recount covers is
    what counts, as within one op) or none (those ops were several authors'), never another."""
    text, steps = case
    deferring, full = IdentifierIndex(defer_scan=defer_scan), IdentifierIndex()
    for index in (deferring, full):
        index.update("peer.py", peer, author="carol")
        index.update("a.py", text, author="me")
    authors = {w: {a} for w, a in index_state(full)[2].items()}
    for i, (op, author) in enumerate(steps):
        new = ops.apply(text, op)
        deferring.apply_op("a.py", text, op, new, author)
        full.update("a.py", new, author=author)
        for w, a in index_state(full)[2].items():
            authors.setdefault(w, set()).add(a)
        if read[i] or i == len(steps) - 1:
            counts, totals, origins = index_state(deferring)
            assert (counts, totals) == index_state(full)[:2]
            assert all(a in authors.get(w, ()) for w, a in origins.items())
            words = list(deferring.with_prefix(""))
            assert [w.casefold() for w in words] == sorted(w.casefold() for w in words)
        text = new


def test_a_big_paste_is_counted_at_the_next_read_and_its_removal_from_what_is_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lsp_bridge import completion

    scanned: list[int] = []
    words = completion._words

    def counting(text: str) -> Counter[str]:
        scanned.append(len(text))
        return words(text)

    monkeypatch.setattr(completion, "_words", counting)
    index = IdentifierIndex()
    old = "def main():\n    pass\n"
    index.update("a.py", old, author="me")
    paste = "pasted_name = other_name\n" * 20_000  # 500,000 characters
    new = ops.apply(old, ops.insert(len(old), paste))
    scanned.clear()
    index.apply_op("a.py", old, ops.insert(len(old), paste), new, "bob")
    assert scanned == []  # not on the edit's way
    assert index.count("a.py", "pasted_name") == 20_000
    assert index.origin("pasted_name") == "bob"
    assert scanned == [len(new)]  # once, at the read
    scanned.clear()
    index.apply_op("a.py", new, ops.delete(len(old), len(paste)), old, "bob")
    assert scanned == [len(old)]  # what is left, not the 500,000 characters that went
    assert index.count("a.py", "pasted_name") == 0 and index.origin("pasted_name") is None
    assert index.counts("a.py") == {"def": 1, "main": 1, "pass": 1}


# ---------------------------------------------------------------- layering


def test_the_engine_imports_no_lsp_or_event_loop() -> None:
    source = Path(__file__).resolve().parents[2] / "lsp_bridge" / "completion.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    imported = {
        (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not imported & {"pygls", "lsprotocol", "asyncio", "websockets"}


def test_parso_keeps_the_trees_of_the_last_documents_only() -> None:
    import parso.cache

    def parsed() -> set[str]:
        return {Path(p).name for trees in parso.cache.parser_cache.values() for p in trees if p is not None}

    engine = CompletionEngine(IdentifierIndex(), jedi_parsed_documents=2)
    for name in ("kept_a.py", "kept_b.py", "kept_c.py"):
        engine.semantic(name, "import os\nos.pa", 15)
    assert {"kept_b.py", "kept_c.py"} <= parsed()
    assert "kept_a.py" not in parsed()
