"""The attribution index (collab_core.history): grouping, undo/redo, blame, history.

The properties run random concurrent sessions of 2 to 4 users: each op is
made against a random recent revision and transformed to the head as the
hub does (``ops.transform``, the incoming op first), undo and redo presses
come in between, and the index is checked against an independent
per-character model (``history_model.Model``) and against the texts the ops
make when applied in order.
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collab_core import ops
from collab_core.history import GAP, Change, DocumentHistory, HistoryMismatch, LineBlame
from collab_core.ops import Op
from tests.collab_core.history_model import Model
from tests.support.traces import load

T0 = 1_800_000_000.0
USERS = ["ada", "bob", "cyd", "dee"]
PIECES = ["a", "b", "c", "d", "\n", "xy", "😀", "\r\n", "é"]
GAPS = [0.05, 0.2, 0.2, 0.5, 0.9, 1.5, 4.0]


def end_of(op: Op) -> int:
    """Where *op*'s author's cursor ends: after its last insert or at its last delete."""
    return sum(len(c) if isinstance(c, str) else c for c in op if isinstance(c, str) or c > 0)


class Session:
    """One document, its index and its model, driven by a random generator."""

    def __init__(self, rng: random.Random, users: list[str], text: str) -> None:
        self.rng = rng
        self.users = users
        self.t = T0
        self.h = DocumentHistory(text, user=users[0], time=T0)
        self.m = Model(text, users[0], T0)
        self.cursor = {u: rng.randint(0, len(text)) for u in users}
        self.undos = 0
        self.redos = 0

    @property
    def rev(self) -> int:
        return self.h.rev

    def tick(self) -> float:
        self.t += self.rng.choice(GAPS)
        return self.t

    def random_op(self, user: str, text: str) -> Op:
        rng = self.rng
        n = len(text)
        at = min(self.cursor[user], n)
        kind = rng.choice(["type"] * 6 + ["backspace"] * 2 + ["delete", "paste", "replace", "jump"])
        piece = rng.choice(PIECES)
        if kind == "jump" or (kind in ("backspace", "delete", "replace") and n == 0):
            return ops.insert(rng.randint(0, n), piece)
        if kind == "type":
            return ops.insert(at, piece)
        if kind == "backspace":
            return ops.delete(at - 1, 1) if at else ops.delete(0, 1)
        if kind == "delete":
            k = rng.randint(1, min(4, n - at)) if at < n else 0
            return ops.delete(at, k) if k else ops.delete(at - 1, 1)
        if kind == "paste":
            return ops.insert(at, "".join(rng.choice(PIECES) for _ in range(rng.randint(2, 6))))
        lo = rng.randint(max(0, at - 3), at)
        hi = rng.randint(at, min(n, at + 3))
        return ops.normalize([lo, piece, -(hi - lo)])

    def edit(self, user: str) -> None:
        rng = self.rng
        base = max(0, self.rev - rng.choice([0, 0, 0, 1, 2, 3]))
        op = self.random_op(user, self.m.texts[base])
        for e in self.m.log[base:]:
            op = ops.transform(op, e.op)[0]
        t = self.tick()
        rev = self.rev + 1
        cr = self.h.group(user, op, t)
        if cr != rev:
            # only ever the user's own change, still active, its last op within GAP
            last = [e for e in self.m.log if e.change_rev == cr][-1]
            assert last.user == user and self.m.active[cr] and 0 <= t - last.time <= GAP
            assert not any(e.toggles is not None and e.user == user for e in self.m.log[last.rev :])
        self.h.apply(rev, op, user=user, time=t, change_rev=cr if rng.random() < 0.7 else None)
        self.m.apply_ordinary(rev, op, user, t, cr)
        self.moved(user, op)

    def moved(self, user: str, op: Op) -> None:
        for u in self.users:
            self.cursor[u] = end_of(op) if u == user else ops.transform_index(self.cursor[u], op)

    def press(self, user: str, *, undo: bool) -> tuple[int, Op] | None:
        got = self.h.undo_op(user) if undo else self.h.redo_op(user)
        plan = self.m.plan(user, undo=undo)
        assert got == (plan[:2] if plan else None)
        if got is None:
            return None
        if undo:
            self.check_undo_touches_only_mine(user, got[1], plan)
        rev = self.rev + 1
        t = self.tick()
        self.h.apply(rev, got[1], user=user, time=t, toggles=got[0])
        self.m.apply_toggle(rev, got[1], user, t, got[0])
        self.moved(user, got[1])
        if undo:
            self.undos += 1
        else:
            self.redos += 1
        return got

    def check_undo_touches_only_mine(self, user: str, op: Op, plan: Any) -> None:
        """The undo hides only characters *user* inserted, and shows only characters no one
        else's active change deleted (property 3, on the model's characters)."""
        m = self.m
        state = {c: False for c in [*plan[2], plan[0]]}
        for ch in m.chars:
            before, after = m.visible(ch), m.visible(ch, state)
            if before and not after:
                assert ch.ins != 0 and m.user_of[ch.ins] == user
            if after and not before:
                assert all(m.user_of[d] == user for d in ch.dels if m.active[d])

    def check(self) -> None:
        self.h.check_invariants()
        text = self.m.texts[-1]
        assert self.h.text == text  # property 1: the index's text is the ops applied in order
        assert self.m.text() == text
        assert self.h.length == len(text) and self.h.line_count == text.count("\n") + 1
        for u in self.users:
            mine = sorted(c for c, owner in self.m.user_of.items() if owner == u and c and self.m.active[c])
            assert self.h.stacks(u) == (mine, self.m.redo_list.get(u, []))

    def step(self) -> None:
        rng = self.rng
        user = rng.choice(self.users)
        r = rng.random()
        if r < 0.75:
            self.edit(user)
        elif r < 0.9:
            before = self.m.texts[-1]
            got = self.press(user, undo=True)
            if got is not None and rng.random() < 0.35:
                # property 2: undo then redo, nothing in between, restores the text
                again = self.press(user, undo=False)
                assert again is not None and again[0] == got[0]
                assert self.m.texts[-1] == before
        else:
            self.press(user, undo=False)
        self.check()


def replay(m: Model, *, decided: bool = True) -> DocumentHistory:
    """A fresh index from the log, with its stored change_rev (unless not *decided*) and toggles."""
    h = DocumentHistory(m.texts[0], user=m.created[0], time=m.created[1])
    for e in m.log:
        cr = e.change_rev if decided else None
        h.apply(e.rev, e.op, user=e.user, time=e.time, change_rev=cr, toggles=e.toggles)
    return h


def as_dict(c: Change) -> dict[str, object]:
    return {
        "rev": c.rev,
        "first_rev": c.first_rev,
        "user": c.user,
        "time": c.time,
        "inserted": c.inserted,
        "deleted": c.deleted,
        "line": c.line,
        "kind": c.kind,
        "toggles": c.toggles,
    }


def check_blame_and_history(s: Session) -> None:
    """Property 5: blame and changes() agree with the model's naive computation."""
    h, m, rng = s.h, s.m, s.rng
    want = [LineBlame(*b) for b in m.blame()]
    assert h.blame() == want
    for _ in range(5):
        a = rng.randint(0, len(want) + 1)
        b = rng.randint(a, len(want) + 2)
        assert h.blame(a, b) == want[a:b]
    history = m.history()
    assert [as_dict(c) for c in h.changes(limit=10**9)[0]] == history
    for _ in range(5):
        before = rng.choice([None, rng.randint(0, h.rev + 2)])
        limit = rng.randint(1, 6)
        older = [e for e in history if before is None or int(e["rev"]) < before]  # type: ignore[call-overload]
        page, more = h.changes(before, limit)
        assert [as_dict(c) for c in page] == older[:limit] and more == (len(older) > limit)


def check_replay(s: Session) -> None:
    """Property 6: replaying the log into a fresh index gives the same state, with the stored
    change of every op or with none (the index decides it again from user, op and time)."""
    h = s.h
    for again in (replay(s.m), replay(s.m, decided=False)):
        assert again.text == h.text and again.rev == h.rev
        assert again.blame() == h.blame()
        assert again.changes(limit=10**9) == h.changes(limit=10**9)
        probe = ops.insert(0, "z")
        for u in s.users:
            assert again.stacks(u) == h.stacks(u)
            assert again.undo_op(u) == h.undo_op(u) and again.redo_op(u) == h.redo_op(u)
            assert again.group(u, probe, s.t + 0.5) == h.group(u, probe, s.t + 0.5)


def check_undo_everything(s: Session, user: str) -> None:
    """Property 4: pressing undo until there is nothing to undo leaves the others' text."""
    m = s.m
    h = replay(m)
    presses = 0
    t = s.t
    while (got := h.undo_op(user)) is not None:
        t += 0.5
        h.apply(h.rev + 1, got[1], user=user, time=t, toggles=got[0])
        presses += 1
        assert presses <= len(m.user_of)

    def owner(c: int) -> str | None:
        return m.user_of[c] if c else None  # the text the document was created with is nobody's change

    others = "".join(
        ch.c
        for ch in m.chars
        if owner(ch.ins) != user
        and m.active[ch.ins]
        and not any(m.active[d] and owner(d) != user for d in ch.dels)
    )
    assert h.text == others


@st.composite
def sessions(draw: st.DrawFn) -> Session:
    rng = draw(st.randoms(use_true_random=False))
    users = USERS[: rng.randint(2, 4)]
    text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 8)))
    return Session(rng, users, text)


@settings(max_examples=150)
@given(sessions(), st.integers(10, 70))
def test_random_sessions_agree_with_the_model(s: Session, steps: int) -> None:
    for _ in range(steps):
        s.step()
    check_blame_and_history(s)
    check_replay(s)
    for u in s.users:
        check_undo_everything(s, u)


@pytest.mark.parametrize("seed", range(6))
def test_long_random_sessions(seed: int) -> None:
    """Longer sessions than hypothesis makes (blocks split, runs merge), seeded."""
    rng = random.Random(seed)
    s = Session(rng, USERS[: 2 + seed % 3], "seed text\n" * 3)
    for i in range(700):
        s.step()
        if i % 100 == 99:
            check_blame_and_history(s)
    assert s.undos > 20 and s.redos > 5
    check_replay(s)
    for u in s.users:
        check_undo_everything(s, u)


@pytest.mark.parametrize("seed", range(12))
def test_others_editing_inside_and_around_my_text(seed: int) -> None:
    """Bob and Cyd aim at Ada's characters (inside her words, at their edges) while she types;
    her undo presses never touch their text, and undoing all of hers leaves exactly theirs."""
    rng = random.Random(seed)
    s = Session(rng, ["ada", "bob", "cyd"], "")
    inside = 0  # steps after which their text sat between two characters of hers
    for _ in range(160):
        shown = [c for c in s.m.chars if s.m.visible(c)]
        owners = [s.m.user_of[c.ins] if c.ins else "" for c in shown]
        mine = [i for i, owner in enumerate(owners) if owner == "ada"]
        inside += any(a == c == "ada" != b for a, b, c in zip(owners, owners[1:], owners[2:], strict=False))
        user = rng.choice(["ada", "ada", "bob", "cyd"])
        if user != "ada" and mine:
            s.cursor[user] = rng.choice(mine) + rng.choice([0, 0, 1])  # inside or just after
        if user == "ada" and rng.random() < 0.12:
            s.press("ada", undo=True)
        elif user == "ada" and rng.random() < 0.05:
            s.press("ada", undo=False)
        else:
            s.edit(user)
        s.check()
    assert inside > 10
    check_blame_and_history(s)
    check_replay(s)
    for u in s.users:
        check_undo_everything(s, u)


# -- grouping -----------------------------------------------------------------------------


def typed(h: DocumentHistory, user: str, pos: int, text: str, t: float, gap: float = 0.2) -> float:
    for i, c in enumerate(text):
        t += gap
        h.apply(h.rev + 1, ops.insert(pos + i, c), user=user, time=t)
    return t


def test_a_word_typed_with_small_gaps_is_one_change() -> None:
    h = DocumentHistory("", user="ada", time=T0)
    typed(h, "ada", 0, "hello", T0, gap=0.9)
    (c,), more = h.changes()
    assert not more and (c.first_rev, c.rev, c.inserted, c.user) == (1, 5, 5, "ada")


def test_a_pause_longer_than_the_gap_starts_a_new_change() -> None:
    h = DocumentHistory("", user="ada", time=T0)
    t = typed(h, "ada", 0, "hello", T0)
    typed(h, "ada", 5, " world", t + GAP + 0.01)
    assert [(c.first_rev, c.inserted) for c in h.changes()[0]] == [(6, 6), (1, 5)]


def test_a_jump_elsewhere_starts_a_new_change() -> None:
    h = DocumentHistory("0123456789", user="ada", time=T0)
    t = typed(h, "ada", 10, "ab", T0)
    t = typed(h, "ada", 2, "cd", t)
    assert [(c.first_rev, c.inserted, c.line) for c in h.changes()[0]] == [(3, 2, 0), (1, 2, 0)]
    # back where the change before ended: it is not the open change any more
    typed(h, "ada", 14, "ef", t)
    assert [c.first_rev for c in h.changes()[0]] == [5, 3, 1]


def test_typing_one_character_past_where_the_change_ended_starts_a_new_change() -> None:
    h = DocumentHistory("xyz", user="ada", time=T0)
    t = typed(h, "ada", 0, "ab", T0)
    assert h.group("ada", ops.insert(2, "c"), t + 0.1) == 1
    assert h.group("ada", ops.insert(3, "c"), t + 0.1) == 3
    assert h.group("ada", ops.delete(2, 1), t + 0.1) == 1  # delete forward from the end
    assert h.group("ada", ops.delete(3, 1), t + 0.1) == 3


def test_typing_backspacing_and_a_paste_in_one_place_are_one_change() -> None:
    h = DocumentHistory("x\n", user="ada", time=T0)
    t = typed(h, "ada", 1, "abc", T0)
    h.apply(4, ops.delete(3, 1), user="ada", time=t + 0.3)  # backspace c
    h.apply(5, ops.insert(3, "PASTED\ntext"), user="ada", time=t + 0.6)
    h.apply(6, ops.normalize([2, "Z", -1]), user="ada", time=t + 0.9)  # replace b, inside the change
    (c,), _ = h.changes()
    assert h.text == "xaZPASTED\ntext\n"
    assert (c.first_rev, c.rev, c.inserted, c.deleted) == (1, 6, 13, 0)
    # undo takes the whole change away at once
    got = h.undo_op("ada")
    assert got is not None and ops.apply(h.text, got[1]) == "x\n"


def test_a_paste_alone_is_one_change_and_a_replaced_selection_counts_what_it_deleted() -> None:
    h = DocumentHistory("one two three", user="bob", time=T0)
    h.apply(1, ops.normalize([4, "2", -3]), user="ada", time=T0 + 1)
    h.apply(2, ops.insert(11, "\nfour\nfive"), user="ada", time=T0 + 10)
    assert [(c.first_rev, c.inserted, c.deleted, c.line) for c in h.changes()[0]] == [
        (2, 10, 0, 0),
        (1, 1, 3, 0),
    ]


def test_another_users_typing_elsewhere_does_not_split_my_change() -> None:
    h = DocumentHistory("first line\nsecond line\n", user="ada", time=T0)
    t = T0
    for i, c in enumerate("abcd"):
        t += 0.3
        h.apply(h.rev + 1, ops.insert(10 + 2 * i, c), user="ada", time=t)
        # bob types at the start of the document at the same time: ada's place moves
        h.apply(h.rev + 1, ops.insert(i, c.upper()), user="bob", time=t + 0.1)
    mine = [c for c in h.changes()[0] if c.user == "ada"]
    theirs = [c for c in h.changes()[0] if c.user == "bob"]
    assert len(mine) == 1 and mine[0].inserted == 4
    assert len(theirs) == 1 and theirs[0].inserted == 4
    assert h.text == "ABCDfirst lineabcd\nsecond line\n"


def test_another_user_typing_at_my_cursor_does_not_split_my_change() -> None:
    h = DocumentHistory("", user="ada", time=T0)
    h.apply(1, ops.insert(0, "ab"), user="ada", time=T0 + 0.1)
    h.apply(2, ops.insert(2, "XY"), user="bob", time=T0 + 0.2)  # bob's text right at my cursor
    # my next keystroke was made before I saw bob's text; the hub puts it before his
    mine, _ = ops.transform(ops.insert(2, "c"), ops.insert(2, "XY"))
    assert h.group("ada", mine, T0 + 0.3) == 1
    h.apply(3, mine, user="ada", time=T0 + 0.3)
    assert h.text == "abcXY"
    assert [(c.first_rev, c.user, c.inserted) for c in h.changes()[0]] == [(1, "ada", 3), (2, "bob", 2)]
    # bob types on at my cursor; my editor put my cursor after his text this time
    h.apply(4, ops.insert(3, "Z"), user="bob", time=T0 + 0.4)
    assert h.text == "abcZXY"
    assert h.group("ada", ops.insert(4, "d"), T0 + 0.5) == 1
    assert h.group("ada", ops.insert(3, "d"), T0 + 0.5) == 1
    assert h.group("ada", ops.insert(5, "d"), T0 + 0.5) == 5


def test_an_undo_ends_the_change_and_typing_after_it_empties_the_redo_list() -> None:
    h = DocumentHistory("", user="ada", time=T0)
    t = typed(h, "ada", 0, "abc", T0)
    got = h.undo_op("ada")
    assert got == (1, [-3])
    h.apply(4, got[1], user="ada", time=t + 0.1, toggles=got[0])
    assert h.stacks("ada") == ([], [1])
    typed(h, "ada", 0, "d", t + 0.2)
    assert h.stacks("ada") == ([5], [])
    assert h.redo_op("ada") is None
    assert [(c.first_rev, c.kind, c.toggles) for c in h.changes()[0]] == [
        (5, "edit", None),
        (4, "undo", 1),
        (1, "edit", None),
    ]


def test_group_is_the_answer_apply_uses_and_a_stored_answer_is_not_redecided() -> None:
    h = DocumentHistory("", user="ada", time=T0)
    h.apply(1, ops.insert(0, "a"), user="ada", time=T0)
    assert h.group("ada", ops.insert(1, "b"), T0 + 0.5) == 1
    assert h.group("ada", ops.insert(1, "b"), T0 + 5) == 2
    assert h.group("bob", ops.insert(1, "b"), T0 + 0.5) == 2
    # a log written with another grouping (a longer gap then) replays as written
    h.apply(2, ops.insert(1, "b"), user="ada", time=T0 + 5, change_rev=1)
    assert [c.first_rev for c in h.changes()[0]] == [1]


# -- undo and redo --------------------------------------------------------------------------


def test_undo_leaves_the_text_someone_else_typed_inside_mine() -> None:
    h = DocumentHistory("", user="ada", time=T0)
    t = typed(h, "ada", 0, "hello world", T0)
    h.apply(h.rev + 1, ops.insert(5, ", dear"), user="bob", time=t + 0.1)
    h.apply(h.rev + 1, ops.delete(0, 1), user="bob", time=t + 0.2)  # bob deletes ada's h
    assert h.text == "ello, dear world"
    got = h.undo_op("ada")
    assert got is not None
    h.apply(h.rev + 1, got[1], user="ada", time=t + 3, toggles=got[0])
    assert h.text == ", dear"
    redo = h.redo_op("ada")
    assert redo is not None
    h.apply(h.rev + 1, redo[1], user="ada", time=t + 4, toggles=redo[0])
    assert h.text == "ello, dear world"  # bob's delete of the h stays


def test_undo_of_a_delete_does_not_bring_back_what_someone_else_deleted_too() -> None:
    h = DocumentHistory("abcdef", user="cyd", time=T0)
    h.apply(1, ops.delete(1, 2), user="ada", time=T0 + 1)  # ada deletes bc
    h.apply(2, ops.delete(1, 2), user="bob", time=T0 + 5)  # bob deletes de
    got = h.undo_op("ada")
    assert got == (1, [1, "bc"])
    h.apply(3, got[1], user="ada", time=T0 + 6, toggles=1)
    assert h.text == "abcf"


def test_an_undo_that_would_change_nothing_is_passed_over() -> None:
    h = DocumentHistory("", user="ada", time=T0)
    t = typed(h, "ada", 0, "keep", T0)
    t = typed(h, "ada", 4, " gone", t + 5)
    h.apply(h.rev + 1, ops.delete(4, 5), user="bob", time=t + 1)  # bob deletes what ada typed last
    assert h.stacks("ada") == ([1, 5], [])
    got = h.undo_op("ada")
    assert got == (1, [-4])
    h.apply(h.rev + 1, got[1], user="ada", time=t + 2, toggles=1)
    assert h.text == "" and h.stacks("ada") == ([], [5, 1])
    assert h.undo_op("ada") is None
    # redo walks forward again: the change undone last comes back first
    redo = h.redo_op("ada")
    assert redo == (1, ["keep"])
    h.apply(h.rev + 1, redo[1], user="ada", time=t + 3, toggles=1)
    assert h.redo_op("ada") is None  # what is left would change nothing
    assert h.stacks("ada") == ([1], [5])


def test_nothing_to_undo_or_redo() -> None:
    h = DocumentHistory("created text", user="ada", time=T0)
    assert h.undo_op("ada") is None and h.redo_op("ada") is None  # the creation is not a change
    h.apply(1, ops.insert(0, "x"), user="bob", time=T0 + 1)
    assert h.undo_op("ada") is None


def test_a_toggle_op_that_is_not_the_computed_one_is_refused_and_changes_nothing() -> None:
    h = DocumentHistory("", user="ada", time=T0)
    typed(h, "ada", 0, "abc", T0)
    h.apply(4, ops.insert(3, "X"), user="bob", time=T0 + 5)
    state = (h.text, h.rev, h.stacks("ada"), h.changes(), h.blame())
    with pytest.raises(HistoryMismatch):
        h.apply(5, [-2], user="ada", time=T0 + 6, toggles=1)
    with pytest.raises(HistoryMismatch):
        h.apply(5, [-3], user="bob", time=T0 + 6, toggles=1)  # not bob's change
    with pytest.raises(HistoryMismatch):
        h.apply(5, [-1], user="bob", time=T0 + 6, toggles=4)  # bob's change, not its undo
    with pytest.raises(HistoryMismatch):
        h.apply(5, ["x"], user="ada", time=T0 + 6, toggles=4)
    with pytest.raises(HistoryMismatch):
        h.apply(6, [-3], user="ada", time=T0 + 6, toggles=1)  # a rev out of sequence
    with pytest.raises(HistoryMismatch):
        h.apply(5, [5, "x"], user="ada", time=T0 + 6)  # past the end
    with pytest.raises(HistoryMismatch):
        h.apply(5, ["x"], user="ada", time=T0 + 6, change_rev=4)  # bob's change
    assert (h.text, h.rev, h.stacks("ada"), h.changes(), h.blame()) == state
    h.apply(5, [-3], user="ada", time=T0 + 6, toggles=1)
    assert h.text == "X"


# -- blame and history ------------------------------------------------------------------------


def test_blame_of_an_empty_document_and_of_its_last_empty_line() -> None:
    assert DocumentHistory("", user="ada", time=T0).blame() == [LineBlame(0, "", T0)]
    h = DocumentHistory("a\n", user="ada", time=T0)
    assert h.blame() == [LineBlame(0, "ada", T0), LineBlame(0, "ada", T0)]
    h.apply(1, ops.insert(2, "b\n"), user="bob", time=T0 + 1)
    # the empty last line takes the rev of the newline before it
    assert h.blame() == [LineBlame(0, "ada", T0), LineBlame(1, "bob", T0 + 1), LineBlame(1, "bob", T0 + 1)]


def test_blame_counts_what_was_deleted_in_a_line_but_not_a_whole_deleted_line() -> None:
    h = DocumentHistory("one\ntwo\nthree\nfour", user="ada", time=T0)
    h.apply(1, ops.delete(4, 3), user="bob", time=T0 + 1)  # "two" emptied: line 1 is bob's
    h.apply(2, ops.delete(5, 6), user="cyd", time=T0 + 2)  # "three\n" gone: "four" is still ada's
    assert h.text == "one\n\nfour"
    assert [b.user for b in h.blame()] == ["ada", "bob", "ada"]
    h.apply(3, ops.delete(3, 1), user="dee", time=T0 + 3)  # lines 0 and 1 joined
    assert [b.user for b in h.blame()] == ["dee", "ada"]
    h.apply(4, ops.delete(5, 3), user="cyd", time=T0 + 4)  # the last line loses its end
    assert h.text == "one\nf"
    assert [b.rev for b in h.blame()] == [3, 4]
    assert h.blame(1) == [LineBlame(4, "cyd", T0 + 4)] and h.blame(2) == [] and h.blame(0, 1) == h.blame()[:1]


def test_blame_of_a_line_start_counts_only_what_was_deleted_since_the_last_deleted_newline() -> None:
    h = DocumentHistory("A\nx\nyB", user="ada", time=T0)
    h.apply(1, ops.delete(4, 1), user="bob", time=T0 + 1)  # y
    h.apply(2, ops.delete(2, 2), user="bob", time=T0 + 1.5)  # "x\n", in the same change
    assert h.text == "A\nB" and len(h.changes()[0]) == 1
    # "B" lost the y before it (rev 1); the line "x" deleted whole at rev 2 is not B's
    assert [b.rev for b in h.blame()] == [0, 1]


def test_blame_after_undo_and_redo_is_the_rev_of_the_toggle() -> None:
    h = DocumentHistory("x\ny\n", user="ada", time=T0)
    h.apply(1, ops.insert(2, "new "), user="bob", time=T0 + 1)
    got = h.undo_op("bob")
    assert got is not None
    h.apply(2, got[1], user="bob", time=T0 + 2, toggles=got[0])
    assert h.blame() == [LineBlame(0, "ada", T0), LineBlame(2, "bob", T0 + 2), LineBlame(0, "ada", T0)]


def test_history_pages_newest_first() -> None:
    h = DocumentHistory("", user="ada", time=T0)
    t = T0
    for i in range(12):
        t = typed(h, USERS[i % 2], 0, "ab\n", t + 5)
    page, more = h.changes(limit=5)
    assert more and [c.rev for c in page] == [36, 33, 30, 27, 24]
    page2, more2 = h.changes(before=page[-1].rev, limit=5)
    assert more2 and [c.rev for c in page2] == [21, 18, 15, 12, 9]
    page3, more3 = h.changes(before=page2[-1].rev, limit=5)
    assert not more3 and [c.rev for c in page3] == [6, 3]
    assert all(c.inserted == 3 and c.line == 0 for c in page + page2 + page3)


def test_history_pages_stay_right_when_two_users_type_at_once_for_long() -> None:
    """Each op of one user's change makes the other's last entry stale; stale entries are
    dropped from time to time and never shown."""
    rng = random.Random(7)
    h = DocumentHistory("\n", user="ada", time=T0)
    cursor = {"ada": 0, "bob": 1}
    last: dict[int, int] = {}  # change -> its last rev
    t = T0
    for i in range(6000):
        user = ("ada", "bob")[i % 2]
        t += rng.choice([0.1, 0.1, 0.1, 0.1, 2.0]) / 2
        op = ops.insert(cursor[user], "x")
        cr = h.group(user, op, t)
        h.apply(h.rev + 1, op, user=user, time=t, change_rev=cr)
        last[cr] = h.rev
        for u in cursor:
            cursor[u] = cursor[u] + 1 if u == user else ops.transform_index(cursor[u], op)
    want = sorted(last.items(), key=lambda kv: -kv[1])
    assert 100 < len(want) < 3000
    assert [(c.first_rev, c.rev) for c in h.changes(limit=10**9)[0]] == want
    for before in [None, 1, 2, 3, 100, 2999, 3000, 5999, 6000, 6001, *rng.sample(range(6000), 50)]:
        page, more = h.changes(before, 20)
        older = [kv for kv in want if before is None or kv[1] < before]
        assert [(c.first_rev, c.rev) for c in page] == older[:20] and more == (len(older) > 20)
    assert len(h._hist_revs) < 6000 - 1024  # the stale pairs were dropped


# -- the real trace -----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_automerge_paper_trace_as_one_user() -> None:
    d = load("automerge-paper.json.gz")
    h = DocumentHistory(d["startContent"], user="martin", time=T0)
    t = T0
    rev = 0
    for txn in d["txns"]:
        for pos, deleted, inserted in txn["patches"]:
            rev += 1
            t += 0.25
            h.apply(rev, ops.normalize([pos, inserted, -deleted]), user="martin", time=t)
    assert h.text == d["endContent"]
    blame = h.blame()
    assert len(blame) == d["endContent"].count("\n") + 1
    assert all(b.user == "martin" and 0 < b.rev <= rev for b in blame)
    changes, more = h.changes(limit=500)
    assert more and len(changes) == 500 and changes[0].rev == rev
    # undo walks back through the last changes and redo brings them all back
    for _ in range(20):
        got = h.undo_op("martin")
        assert got is not None
        rev += 1
        h.apply(rev, got[1], user="martin", time=t + rev, toggles=got[0])
    assert h.text != d["endContent"]
    while (got := h.redo_op("martin")) is not None:
        rev += 1
        h.apply(rev, got[1], user="martin", time=t + rev, toggles=got[0])
    assert h.text == d["endContent"]


@pytest.mark.slow
def test_the_size_estimate_is_near_what_tracemalloc_counts() -> None:
    d = load("automerge-paper.json.gz")
    patches = [p for txn in d["txns"][:20000] for p in txn["patches"]]
    oplist = [ops.normalize([pos, ins, -dl]) for pos, dl, ins in patches]
    rng = random.Random(3)
    turns: list[str] = []  # two users taking turns, 20 to 200 ops each
    while len(turns) < len(oplist):
        turns += [("ada", "bob")[len(turns) % 2]] * rng.randint(20, 200)
    for users in (["ada"] * len(oplist), turns, ["ada", "bob"] * len(oplist)):
        gc.collect()
        tracemalloc.start()
        h = DocumentHistory(d["startContent"], user="ada", time=T0)
        for rev, (op, user) in enumerate(zip(oplist, users, strict=False), 1):
            h.apply(rev, op, user=user, time=T0 + rev * 0.25)
        measured = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        size = h.size()
        assert size.revs == len(oplist) and size.runs >= size.blocks
        assert 0.75 * measured < size.nbytes < 1.33 * measured, (size, measured)
