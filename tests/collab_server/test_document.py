"""The per-document sequencer (collab_server.document), fed events by hand."""

from __future__ import annotations

import gc
import json
import random
import sys
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collab_core import deferred, ops
from collab_core.client import DocumentClient, Outgoing
from collab_core.errors import ErrorCode, InvalidState
from collab_server.document import (
    TRANSFORM_STEP,
    ClientId,
    Duplicate,
    Refusal,
    Rev,
    Sequenced,
    Sequencer,
    Submission,
    history_cost,
)
from collab_server.quotas import HistoryBudget
from tests.collab_core.ot_strategies import ops_on, texts

A = ClientId("a")
B = ClientId("b")
C = ClientId("c")


def history_is_plain(s: Sequencer) -> bool:
    """Every op the history keeps is a tuple of numbers, strings and the op's own tuple: no
    submission, no attribution, and nothing the garbage collector tracks once it has seen it
    (twice: a collection stops tracking a tuple whose items it has already stopped tracking,
    and may come to the entry before its op)."""
    gc.collect()
    gc.collect()
    return all(
        type(e) is tuple and not gc.is_tracked(e) and all(type(x) in (int, str, tuple) for x in e)
        for e in s._history
    )


def sub(client: ClientId, seq: int, base: int, op: ops.Op) -> Submission:
    return Submission(client, seq, Rev(base), op)


def sequenced(outcome: object) -> Sequenced:
    assert isinstance(outcome, Sequenced), outcome
    return outcome


def commit_all(s: Sequencer) -> list[Sequenced]:
    s.take_unsent()
    return s.commit(s.rev)


def test_sequential_submits_advance_the_revision() -> None:
    s = Sequencer("", 0)
    r1 = sequenced(s.submit(sub(A, 1, 0, ["héllo"])))
    r2 = sequenced(s.submit(sub(A, 2, 1, [5, " 😀"])))
    r3 = sequenced(s.submit(sub(B, 1, 2, ["H", -1])))
    assert [r1.rev, r2.rev, r3.rev] == [1, 2, 3]
    assert r3.op == ["H", -1]
    assert s.text == "Héllo 😀"
    assert s.rev == 3
    assert s.committed_rev == 0 and s.committed_text == ""
    assert [x.rev for x in commit_all(s)] == [1, 2, 3]
    assert s.committed_text == s.text and s.committed_rev == 3


def test_concurrent_submits_from_two_clients_converge() -> None:
    s = Sequencer("ab", 0)
    ca = DocumentClient("ab", 0, A)
    cb = DocumentClient("ab", 0, B)
    out_a = ca.apply_local([1, "X"])
    out_b = cb.apply_local([1, "Y", 1, "Z"])
    assert out_a is not None and out_b is not None
    ra = sequenced(s.submit(Submission(A, out_a.seq, Rev(out_a.base_rev), out_a.op)))
    rb = sequenced(s.submit(Submission(B, out_b.seq, Rev(out_b.base_rev), out_b.op)))
    commit_all(s)
    # the hub acks the author and broadcasts to the other, in revision order
    assert ca.receive_ack(ra.rev) is None
    ca.receive_op(rb.rev, rb.op, B, rb.seq)
    cb.receive_op(ra.rev, ra.op, A, ra.seq)
    assert cb.receive_ack(rb.rev) is None
    # b came second: its insert at the tied position goes first (incoming op wins ties)
    assert s.text == ca.text == cb.text == "aYXbZ"


def test_duplicate_submission_is_answered_with_its_original_revision() -> None:
    s = Sequencer("", 0)
    first = sequenced(s.submit(sub(A, 1, 0, ["x"])))
    again = s.submit(sub(A, 1, 0, ["x"]))
    assert again == Duplicate(A, 1, first.rev, False)
    commit_all(s)
    assert s.submit(sub(A, 1, 0, ["x"])) == Duplicate(A, 1, first.rev, True)
    assert s.text == "x" and s.rev == 1


def test_older_seq_is_a_duplicate_without_revision() -> None:
    s = Sequencer("", 0)
    s.submit(sub(A, 1, 0, ["x"]))
    s.submit(sub(A, 2, 1, ["y"]))
    assert s.submit(sub(A, 1, 0, ["x"])) == Duplicate(A, 1, None, True)
    assert s.text == "yx"


def test_future_base_revision_is_refused() -> None:
    s = Sequencer("abc", 5)
    r = s.submit(sub(A, 1, 6, ["x"]))
    assert isinstance(r, Refusal) and r.code is ErrorCode.FUTURE_REVISION
    assert s.text == "abc" and s.rev == 5 and not s.knows_client(A)


def test_base_older_than_history_is_refused() -> None:
    s = Sequencer("", 0, history_limit=2)
    for i in range(3):
        sequenced(s.submit(sub(B, i + 1, i, ["b"])))
    assert s.oldest_base == 1
    r = s.submit(sub(A, 1, 0, ["x"]))
    assert isinstance(r, Refusal) and r.code is ErrorCode.REVISION_TOO_OLD
    ok = sequenced(s.submit(sub(A, 1, 1, ["x"])))
    assert ok.op == ["x"] and s.text == "xbbb"


def test_history_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Sequencer("", 0, history_limit=0)


@pytest.mark.parametrize("op", [[4], [-4], [3, "x", -1], [2, -1, 2]])
def test_op_past_the_end_of_its_base_is_refused_and_changes_nothing(op: ops.Op) -> None:
    s = Sequencer("abc", 0)
    sequenced(s.submit(sub(B, 1, 0, [3, "defg"])))  # the current text is long enough
    r = s.submit(sub(A, 1, 0, op))
    assert isinstance(r, Refusal) and r.code is ErrorCode.INVALID_OP and r.submission.op == op
    assert s.text == "abcdefg" and s.rev == 1 and len(s.pending) == 1
    assert not s.knows_client(A)
    # the refused seq was not recorded: the client can still use it
    sequenced(s.submit(sub(A, 1, 0, [3, "!"])))


def test_take_unsent_and_commit_in_batches() -> None:
    s = Sequencer("", 0)
    s.submit(sub(A, 1, 0, ["a"]))
    s.submit(sub(A, 2, 1, [1, "b"]))
    batch = s.take_unsent()
    assert [x.rev for x in batch] == [1, 2]
    assert s.take_unsent() == []
    s.submit(sub(A, 3, 2, [2, "c"]))
    with pytest.raises(InvalidState):
        s.commit(3)  # rev 3 was not handed to the store yet
    assert [x.rev for x in s.commit(1)] == [1]
    assert s.committed_text == "a" and s.committed_rev == 1
    assert s.ops_since(0) == [batch[0]]
    assert [x.rev for x in s.commit(2)] == [2]
    assert s.committed_text == "ab"
    assert s.commit(2) == []
    with pytest.raises(InvalidState):
        s.commit(1)
    assert [x.rev for x in s.take_unsent()] == [3]
    s.commit(3)
    assert s.committed_text == s.text == "abc" and s.pending == []


def test_rollback_restores_committed_text_and_resubmits_correctly() -> None:
    s = Sequencer("base", 0)
    s.submit(sub(A, 1, 0, [4, "!"]))
    commit_all(s)
    a2 = sub(A, 2, 1, ["<"])
    b1 = sub(B, 1, 1, [4, ">"])
    s.submit(a2)
    s.submit(b1)
    s.take_unsent()
    assert s.text == "<base>!"
    # another hub won the race for revision 2
    subs = s.rollback()
    assert subs == [a2, b1]
    assert s.text == s.committed_text == "base!" and s.rev == 1 and s.pending == []
    with pytest.raises(InvalidState):
        s.receive_committed(Sequenced(Rev(3), ["x"], C, 1))
    foreign = Sequenced(Rev(2), [2, "SE", -2], C, 1)
    s.receive_committed(foreign)
    assert s.text == s.committed_text == "baSE!" and s.rev == s.committed_rev == 2
    # the store is asked about clients whose last op was rolled back
    assert not s.knows_client(A) and not s.knows_client(B)
    s.learn_client(A, 1, 1)
    s.learn_client(B, 0, None)
    for x in subs:
        sequenced(s.submit(x))
    assert s.text == "<baSE>!"
    assert [x.rev for x in commit_all(s)] == [3, 4]
    assert s.ops_since(1) is not None and [x.rev for x in s.ops_since(1) or []] == [2, 3, 4]


def test_receive_committed_refused_while_ops_are_pending() -> None:
    s = Sequencer("", 0)
    s.submit(sub(A, 1, 0, ["x"]))
    with pytest.raises(InvalidState):
        s.receive_committed(Sequenced(Rev(1), ["y"], B, 1))


def test_rollback_with_more_pending_ops_than_history_keeps() -> None:
    # regression: rollback popped one history entry per pending op, even
    # those history_limit had already dropped (IndexError)
    s = Sequencer("", 0, history_limit=2)
    s.submit(sub(A, 1, 0, ["a"]))
    commit_all(s)
    for i in range(3):
        s.submit(sub(B, i + 1, 1 + i, ["b"]))
    assert len(s.rollback()) == 3
    assert s.text == "a" and s.rev == 1
    assert s.oldest_base <= 1
    sequenced(s.submit(sub(B, 1, 1, ["b"])))
    assert s.text == "ba"


def test_ops_since() -> None:
    s = Sequencer("", 0, history_limit=3)
    for i in range(5):
        s.submit(sub(A, i + 1, i, [i, str(i)]))
    s.take_unsent()
    s.commit(4)
    assert s.ops_since(5) is None  # not committed yet
    assert s.ops_since(4) == []
    assert [x.rev for x in s.ops_since(2) or []] == [3, 4]
    assert s.ops_since(1) is None  # fell out of the history
    assert s.ops_since(-1) is None


def test_history_from_constructor_allows_old_bases() -> None:
    # revisions 1..3 made "abc" -> "aXbc" -> "aXb" -> "aXb😀"
    history = [
        Sequenced(Rev(1), [1, "X"], B, 1),
        Sequenced(Rev(2), [3, -1], B, 2),
        Sequenced(Rev(3), [3, "😀"], B, 3),
    ]
    s = Sequencer("aXb😀", 3, history=history)
    assert s.oldest_base == 0
    assert s.ops_since(1) == history[1:]
    # against "abc" (rev 0): replace "c" by "C"; its insert wins the tie with rev 3's
    r = sequenced(s.submit(sub(A, 1, 0, [2, "C", -1])))
    assert s.text == "aXbC😀" and r.rev == 4 and r.op == [3, "C"]
    # against rev 1 ("aXbc"): an op that fits rev 1 but not the shorter rev 2
    r = sequenced(s.submit(sub(C, 1, 1, [1, -1])))
    assert s.text == "abC😀" and r.op == [1, -1]
    bad = s.submit(sub(A, 3, 2, [4, "?"]))
    assert isinstance(bad, Refusal) and bad.code is ErrorCode.INVALID_OP
    # the history also restores what each client last sent
    assert s.submit(sub(B, 2, 0, ["x"])) == Duplicate(B, 2, None, True)
    assert s.submit(sub(B, 3, 2, ["x"])) == Duplicate(B, 3, Rev(3), True)


def test_history_must_end_at_rev() -> None:
    with pytest.raises(InvalidState):
        Sequencer("x", 2, history=[Sequenced(Rev(1), ["x"], B, 1)])


def test_learn_client_answers_resent_ops_from_the_store() -> None:
    s = Sequencer("abc", 10)
    s.learn_client(A, 4, 9)
    assert s.submit(sub(A, 4, 8, ["x"])) == Duplicate(A, 4, Rev(9), True)
    assert s.submit(sub(A, 3, 8, ["x"])) == Duplicate(A, 3, None, True)
    assert s.text == "abc"


def test_has_committed_answers_for_the_last_op_of_a_client() -> None:
    s = Sequencer("", 0)
    assert not s.has_committed(A, 1)
    sequenced(s.submit(sub(A, 1, 0, ["a"])))
    assert not s.has_committed(A, 1)  # pending
    commit_all(s)
    assert s.has_committed(A, 1) and not s.has_committed(A, 2)
    sequenced(s.submit(sub(A, 2, 1, ["b"])))
    s.take_unsent()
    s.rollback()
    # a client whose last op was rolled back is forgotten: only the store knows
    assert not s.knows_client(A) and not s.has_committed(A, 1)
    s.receive_committed(Sequenced(Rev(2), ["b"], A, 2))  # it was committed after all
    assert s.has_committed(A, 2) and s.has_committed(A, 1)


# -- the size limit ----------------------------------------------------------


def utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def test_an_op_past_the_byte_limit_is_refused_and_changes_nothing() -> None:
    s = Sequencer("héllo", 0, max_bytes=10)  # 6 bytes
    assert s.bytes == s.committed_bytes == 6
    sequenced(s.submit(sub(A, 1, 0, [5, "😀"])))  # 4 more: exactly at the limit
    assert s.bytes == 10
    refused = s.submit(sub(A, 2, 1, ["x"]))
    assert refused == Refusal(ErrorCode.TOO_LARGE, sub(A, 2, 1, ["x"]))
    assert (s.text, s.rev, s.bytes, len(s.pending)) == ("héllo😀", 1, 10, 1)
    # replacing a 2-byte é by two ASCII letters stays within the limit
    sequenced(s.submit(sub(A, 2, 1, [1, "ab", -1])))
    assert (s.text, s.bytes) == ("habllo😀", 10)
    # the refused seq may be used again: nothing was recorded for it
    commit_all(s)
    assert s.committed_bytes == 10


def test_the_limit_counts_the_op_as_transformed_past_concurrent_ops() -> None:
    s = Sequencer("abcd", 0, max_bytes=6)
    sequenced(s.submit(sub(A, 1, 0, [-4])))  # A deletes everything
    commit_all(s)
    # B, on revision 0, replaces "abcd" by "😀😀": after A's delete only the inserts remain (8 bytes)
    assert s.submit(sub(B, 1, 0, ["😀😀", -4])).code == ErrorCode.TOO_LARGE  # type: ignore[union-attr]
    assert s.text == "" and s.bytes == 0
    sequenced(s.submit(sub(B, 1, 0, ["😀", -4])))
    assert (s.text, s.bytes) == ("😀", 4)


def test_an_oversized_document_still_takes_ops_that_do_not_grow_it() -> None:
    s = Sequencer("0123456789", 0, max_bytes=4)  # loaded over the limit (the limit was lowered)
    sequenced(s.submit(sub(A, 1, 0, [-2])))
    sequenced(s.submit(sub(A, 2, 1, ["é", -2])))  # 2 bytes in, 2 out
    assert s.submit(sub(A, 3, 2, ["x"])).code == ErrorCode.TOO_LARGE  # type: ignore[union-attr]
    assert (s.text, s.bytes) == ("é456789", 8)


def test_no_limit_by_default_and_a_negative_limit_is_an_error() -> None:
    s = Sequencer("", 0)
    sequenced(s.submit(sub(A, 1, 0, ["x" * 100_000])))
    assert s.bytes == 100_000
    with pytest.raises(ValueError):
        Sequencer("", 0, max_bytes=-1)


def test_byte_length_follows_commit_rollback_and_committed_ops() -> None:
    s = Sequencer("ab", 0, max_bytes=100)
    sequenced(s.submit(sub(A, 1, 0, ["é"])))
    sequenced(s.submit(sub(A, 2, 1, ["😀"])))
    sequenced(s.submit(sub(A, 3, 2, [1, -1])))
    assert s.take_unsent() and s.text == "😀ab" and s.bytes == utf8("😀ab")
    s.commit(1)
    assert s.committed_bytes == utf8("éab") and s.bytes == utf8("😀ab")
    s.rollback()
    assert s.bytes == s.committed_bytes == utf8("éab")
    s.receive_committed(Sequenced(Rev(2), [3, "日本"], B, 1))
    assert s.bytes == s.committed_bytes == utf8("éab日本")
    s.take_unsent()
    assert s.commit(2) == []
    assert s.committed_bytes == utf8(s.committed_text)


@given(data=st.data())
def test_byte_length_always_matches_the_text(data: st.DataObject) -> None:
    start = data.draw(texts(max_size=8), label="start")
    limit = data.draw(st.integers(0, 40), label="limit")
    s = Sequencer(start, 0, max_bytes=limit)
    for seq in range(1, data.draw(st.integers(1, 20)) + 1):
        action = data.draw(st.sampled_from(["submit", "submit", "commit", "rollback"]))
        if action == "submit":
            op = data.draw(ops_on(s.text, max_components=3))
            before = (s.text, s.bytes)
            out = s.submit(sub(A, seq, s.rev, op))
            if isinstance(out, Refusal):
                assert out.code == ErrorCode.TOO_LARGE
                assert utf8(ops.apply(s.text, op)) > limit
                assert (s.text, s.bytes) == before
            else:
                assert s.bytes <= max(limit, before[1])
        elif action == "commit":
            s.take_unsent()
            s.commit(s.rev)
        else:
            s.rollback()
        assert s.bytes == utf8(s.text)
        assert s.committed_bytes == utf8(s.committed_text)


@given(data=st.data())
def test_byte_length_is_kept_without_the_text_being_read(data: st.DataObject) -> None:
    """The sequencer applies ops to its texts only when they are read (issue 14: a copy of a
    large document per keystroke); deleting text that pending or committed ops brought in, never
    read meanwhile, still counts its UTF-8 bytes right.  The texts are read only at the end.
    (Every text is deferred here, however small.)"""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(deferred, "EAGER_LENGTH", 0)
        _keep_bytes_unread(data)


def _keep_bytes_unread(data: st.DataObject) -> None:
    start = data.draw(texts(max_size=8), label="start")
    s = Sequencer(start, 0, max_bytes=data.draw(st.integers(0, 60), label="limit"))
    text = committed = start
    for seq in range(1, data.draw(st.integers(1, 25)) + 1):
        action = data.draw(st.sampled_from(["submit", "submit", "submit", "commit", "rollback"]))
        if action == "submit":
            op = data.draw(ops_on(text, max_components=3))
            if not isinstance(s.submit(sub(A, seq, s.rev, op)), Refusal):
                text = ops.apply(text, op)
        elif action == "commit":
            s.take_unsent()
            s.commit(s.rev)
            committed = text
        else:
            s.rollback()
            text = committed
        assert (s.bytes, s.committed_bytes) == (utf8(text), utf8(committed))
    assert (s.text, s.committed_text) == (text, committed)


@given(data=st.data())
def test_history_bytes_always_match_what_is_kept(data: st.DataObject) -> None:
    """Submits, commits, rollbacks, the op limit and budget evictions all keep the byte counts true."""
    budget = HistoryBudget(data.draw(st.sampled_from([0, 500, 2000]), label="budget"))
    seqs = [
        Sequencer("", 0, history_limit=data.draw(st.integers(1, 6), label="history"), ledger=budget)
        for _ in range(2)
    ]
    for seq in range(1, data.draw(st.integers(1, 30)) + 1):
        s = data.draw(st.sampled_from(seqs))
        action = data.draw(st.sampled_from(["submit", "submit", "old", "commit", "rollback"]))
        if action in ("submit", "old"):
            base = s.oldest_base if action == "old" else s.rev
            text = s.text if base == s.rev else ""
            op = data.draw(ops_on(text, max_components=3))
            s.submit(sub(A, seq, base, op))
        elif action == "commit":
            s.take_unsent()
            s.commit(s.rev)
        else:
            s.rollback()
        for one in seqs:
            assert one.history_bytes == sum(history_cost(list(e[1])) for e in one._history)
            assert one.rev - one.oldest_base == len(one._history) <= one.history_limit
        assert budget.used == sum(one.history_bytes for one in seqs)
        assert budget.entries == sum(len(one._history) for one in seqs)
        assert not budget.limit or budget.used <= budget.limit


def _one_key(rng: random.Random, text: str) -> ops.Op:
    at = rng.randint(0, len(text))
    return [at, rng.choice("abcdefgh \n"), len(text) - at]


def _a_line(rng: random.Random, text: str) -> ops.Op:
    at = rng.randint(0, len(text))
    return [at, "x" * 60 + "\n", len(text) - at]


def _unicode(rng: random.Random, text: str) -> ops.Op:
    at = rng.randint(0, len(text))
    return [at, "日本😀" * 10, len(text) - at]


def _a_delete(rng: random.Random, text: str) -> ops.Op:
    at = rng.randint(0, len(text) - 3)
    return [at, -2, len(text) - at - 2]


def _many_places(rng: random.Random, text: str) -> ops.Op:
    op: ops.Op = []
    for at in sorted(rng.sample(range(1, len(text)), 10)):
        op += [at - sum(c for c in op if type(c) is int), "ab"]
    return [*op, len(text) - sum(c for c in op if type(c) is int)]


@pytest.mark.parametrize("make", [_one_key, _a_line, _unicode, _a_delete, _many_places])
def test_history_cost_is_what_the_history_takes_in_memory(make: Callable[..., ops.Op]) -> None:
    """--max-history-bytes bounds memory: history_cost is within a third of what tracemalloc
    sees the sequencer and its ledger keep per op (the text's own growth left out)."""
    rng = random.Random(7)
    budget = HistoryBudget(0)
    s = Sequencer("0123456789" * 1000, 0, history_limit=1000, ledger=budget)
    n = 1000
    gc.collect()
    tracemalloc.start()
    try:
        before, text_before = tracemalloc.get_traced_memory()[0], sys.getsizeof(s.text)
        for seq in range(1, n + 1):
            # an op as the hub gets it: decoded from its frame
            op = json.loads(json.dumps(make(rng, s.text)))
            s.submit(sub(A, seq, s.rev, op))
            s.take_unsent()
            s.commit(s.rev)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before - (sys.getsizeof(s.text) - text_before)
    finally:
        tracemalloc.stop()
    assert len(s._history) == n
    assert 0.75 <= s.history_bytes / kept <= 1.33, (s.history_bytes / n, kept / n)


def test_the_history_keeps_no_submission() -> None:
    """The op as the client sent it is kept only while pending (for a rollback), not in the history."""
    s = Sequencer("abc", 0)
    s.submit(sub(A, 1, 0, [1, "x", 2]))
    assert s.pending[0].submission is not None
    assert history_is_plain(s)
    s.rollback()
    assert s.submit(sub(A, 1, 0, [1, "x", 2])) == Sequenced(Rev(1), [1, "x"], A, 1)


# -- many clients, random interleavings ------------------------------------


@given(data=st.data())
def test_random_clients_and_deliveries_converge(data: st.DataObject) -> None:
    start = data.draw(texts(max_size=8), label="start")
    n = data.draw(st.integers(2, 4), label="clients")
    hub = Sequencer(start, 0, history_limit=1_000)
    clients = [DocumentClient(start, 0, f"c{i}") for i in range(n)]
    to_hub: list[list[Outgoing]] = [[] for _ in range(n)]  # per-client FIFO
    to_client: list[list[Sequenced]] = [[] for _ in range(n)]  # per-client FIFO of hub messages

    def send(i: int, out: Outgoing | None) -> None:
        if out is not None:
            to_hub[i].append(out)

    def hub_receives(i: int) -> None:
        out = to_hub[i].pop(0)
        r = hub.submit(Submission(ClientId(f"c{i}"), out.seq, Rev(out.base_rev), out.op))
        assert isinstance(r, Sequenced), r
        hub.take_unsent()
        hub.commit(r.rev)
        for q in to_client:
            q.append(r)

    def client_receives(i: int) -> None:
        r = to_client[i].pop(0)
        c = clients[i]
        if r.client_id == c.client_id:
            send(i, c.receive_ack(r.rev))
        else:
            _, out = c.receive_op(r.rev, r.op, r.client_id, r.seq)
            assert out is None

    for _ in range(data.draw(st.integers(1, 40), label="steps")):
        moves = [("edit", i) for i in range(n)]
        moves += [("hub", i) for i in range(n) if to_hub[i]]
        moves += [("recv", i) for i in range(n) if to_client[i]]
        kind, i = data.draw(st.sampled_from(moves))
        if kind == "edit":
            op = data.draw(ops_on(clients[i].text, max_components=3))
            send(i, clients[i].apply_local(op))
        elif kind == "hub":
            hub_receives(i)
        else:
            client_receives(i)
    # drain: deliver everything, in any order the queues allow
    while any(to_hub) or any(to_client):
        for i in range(n):
            while to_client[i]:
                client_receives(i)
            if to_hub[i]:
                hub_receives(i)
    for c in clients:
        assert c.state.value == "synchronized"
        assert c.text == hub.text
        assert c.rev == hub.rev
    assert hub.committed_text == hub.text


# -- the transform budget -----------------------------------------------------------


def keystrokes(s: Sequencer, n: int, client: ClientId = B) -> None:
    """*n* one-character inserts by *client*, each against the head, committed."""
    for i in range(n):
        sequenced(s.submit(sub(client, i + 1, s.rev, [i, "k"])))
    commit_all(s)


def test_transform_cost_counts_the_op_and_the_history_it_passes() -> None:
    s = Sequencer("", 0)
    keystrokes(s, 5)  # each op: [i, "k"] (2 components) or ["k"] (1)
    assert s.transform_cost(5, 100) == 0
    assert s.transform_cost(4, 100) == 100 + TRANSFORM_STEP + 2
    assert s.transform_cost(0, 3) == 5 * (3 + TRANSFORM_STEP) + (1 + 2 * 4)


def test_an_op_past_the_budget_is_refused_as_too_old_and_taken_against_a_newer_base() -> None:
    s = Sequencer("a" * 50, 0, transform_budget=100)
    keystrokes(s, 10)
    big: ops.Op = [1, "x"] * 20  # 40 components
    assert s.transform_cost(7, len(big)) == 3 * (40 + TRANSFORM_STEP) + 6 > 100
    out = s.submit(sub(A, 1, 7, big))
    assert isinstance(out, Refusal) and out.code == ErrorCode.REVISION_TOO_OLD
    assert s.rev == 10 and s.pending == []
    # the client catches up (rebases its op past 9 and 10) and sends it again, same seq
    rebased = big
    for h in s.ops_since(7) or []:
        rebased, _ = ops.transform(rebased, h.op)
    assert s.transform_cost(10, len(rebased)) == 0
    done = sequenced(s.submit(sub(A, 1, 10, rebased)))
    assert done.rev == 11


def test_an_op_exactly_at_the_budget_is_taken() -> None:
    s = Sequencer("abc", 0)
    keystrokes(s, 3)
    op: ops.Op = [1, "x"]
    s.transform_budget = s.transform_cost(0, len(op))
    assert sequenced(s.submit(sub(A, 1, 0, op))).rev == 4


def test_work_counts_normalizing_and_transforming() -> None:
    s = Sequencer("abc", 0)
    keystrokes(s, 2)
    before = s.work
    op: ops.Op = [1, "x", 1, "y"]
    cost = s.transform_cost(0, len(op))
    sequenced(s.submit(sub(A, 1, 0, op)))
    assert s.work - before == len(op) + cost


def test_component_count_survives_rollback_and_history_limit() -> None:
    s = Sequencer("", 0, history_limit=3)
    keystrokes(s, 5)
    assert s.transform_cost(2, 1) == 3 * (1 + TRANSFORM_STEP) + 6
    sequenced(s.submit(sub(A, 1, 5, [5, "abc"])))
    sequenced(s.submit(sub(A, 2, 6, ["z"])))
    s.rollback()  # the limit had dropped revisions 3 and 4 for them: only 5 is left
    assert s.rev == 5 and s.oldest_base == 4
    assert s.transform_cost(4, 1) == 1 + TRANSFORM_STEP + 2
    sequenced(s.submit(sub(A, 1, 5, ["q"])))
    assert s.transform_cost(4, 1) == 2 * (1 + TRANSFORM_STEP) + 2 + 1


def test_history_loaded_from_the_store_counts_its_components() -> None:
    text = ""
    history = []
    for rev in range(1, 4):
        op: ops.Op = [len(text), "ab"] if text else ["ab"]
        text = ops.apply(text, op)
        history.append(Sequenced(Rev(rev), op, A, rev))
    s = Sequencer(text, 3, history=history, transform_budget=0)
    assert s.transform_cost(0, 1) == 3 * (1 + TRANSFORM_STEP) + 1 + 2 + 2
    out = s.submit(sub(B, 1, 2, ["x"]))
    assert isinstance(out, Refusal) and out.code == ErrorCode.REVISION_TOO_OLD
    assert sequenced(s.submit(sub(B, 1, 3, ["x"]))).rev == 4


# -- attribution and the hub's own ops (undo, redo) ------------------------------------


def test_a_sequenced_op_carries_its_user_time_and_the_change_group_decides() -> None:
    from collab_server.document import Submission as Sub

    s = Sequencer("abc", 0)
    seen: list[tuple[str, ops.Op, float, int]] = []

    def group(user: str, op: ops.Op, time: float) -> int | None:
        seen.append((user, op, time, s.rev))
        return 7

    out = sequenced(s.submit(Sub(A, 1, Rev(0), ["d"], "p", "ada"), 12.5))
    assert (out.user, out.time, out.change_rev, out.toggles) == ("ada", 12.5, None, None)
    s.group = group
    s.take_unsent()
    s.commit(1)
    out = sequenced(s.submit(Sub(B, 1, Rev(0), [3, "e"], "q", "bob"), 13.0))
    # asked with the op as transformed to the head, before it takes its revision
    assert seen == [("bob", [4, "e"], 13.0, 1)]
    assert (out.rev, out.user, out.change_rev) == (2, "bob", 7)
    # the history keeps none of it
    assert history_is_plain(s)
    assert "bob" not in s._history[-1]


def test_a_made_op_is_sequenced_at_the_head_under_its_key_and_rolled_back_as_made() -> None:
    from collab_server.document import Made, toggle_client

    s = Sequencer("hello", 0, max_bytes=8)
    sequenced(s.submit(sub(A, 1, 0, [5, "!"])))
    made = Made("the request")
    undo_a = toggle_client(A)
    assert undo_a != A and s.duplicate(undo_a, 1) is None
    out = s.submit_made([-5], made, client_id=undo_a, seq=1, author="p", user="ada", time=3.0, toggles=1)
    assert isinstance(out, Sequenced)
    assert (out.rev, out.client_id, out.seq, out.toggles, out.user, out.op) == (2, undo_a, 1, 1, "ada", [-5])
    assert s.text == "!"
    # the same key again is the same op (pending until committed); A's own seqs are apart
    assert s.duplicate(undo_a, 1) == Duplicate(undo_a, 1, Rev(2), False)
    assert s.duplicate(A, 2) is None
    # an op that comes later, based before it, is transformed past it like any other
    later = sequenced(s.submit(sub(B, 1, 1, [0, "x"])))
    assert later.op == ["x"] and s.text == "x!"
    assert s.rollback() == [sub(A, 1, 0, [5, "!"]), made, sub(B, 1, 1, [0, "x"])]
    assert s.text == "hello"
    # rolled back: forgotten (the store is asked again), like a client's op
    assert not s.knows_client(undo_a) and s.duplicate(undo_a, 1) is None
    # too large: refused, nothing changes; an op that does not apply to the head is a bug
    assert (
        s.submit_made([5, "four"], made, client_id=undo_a, seq=1, author="p", user="ada", time=3.0, toggles=1)
        is ErrorCode.TOO_LARGE
    )
    assert s.rev == 0 and s.text == "hello"
    with pytest.raises(InvalidState):
        s.submit_made([6, "x"], made, client_id=undo_a, seq=1, author="p", user="ada", time=3.0, toggles=1)


def test_a_key_committed_by_another_hub_or_before_a_restart_is_a_duplicate() -> None:
    from collab_server.document import toggle_client

    undo_a = toggle_client(A)
    s = Sequencer("hello", 2)
    # the store says the key 4 was the last one committed, at rev 2 (a restarted hub)
    s.learn_client(undo_a, 4, 2)
    assert s.duplicate(undo_a, 4) == Duplicate(undo_a, 4, Rev(2), True)
    assert s.duplicate(undo_a, 3) == Duplicate(undo_a, 3, None, True)  # the store knows
    assert s.duplicate(undo_a, 5) is None
    # another hub commits the key 5: read back, it is known at once
    s.receive_committed(Sequenced(Rev(3), [5, "!"], undo_a, 5, "p"))
    assert s.duplicate(undo_a, 5) == Duplicate(undo_a, 5, Rev(3), True)
