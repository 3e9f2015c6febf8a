"""The client's OT state machine (collab_core.client), fed events by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collab_core import ops
from collab_core.client import ClientState, DocumentClient, Outgoing
from collab_core.errors import InvalidState
from collab_server.document import ClientId, Rev, Sequenced, Sequencer, Submission
from tests.collab_core.ot_strategies import ops_on, texts


def test_starts_synchronized() -> None:
    c = DocumentClient("abc", 7, "me")
    assert c.state is ClientState.SYNCHRONIZED
    assert c.outstanding is None and c.buffer is None and c.next_seq == 1


def test_local_edit_is_sent_and_awaits_ack() -> None:
    c = DocumentClient("abc", 7, "me")
    out = c.apply_local([3, "😀"])
    assert out == Outgoing(1, 7, [3, "😀"])
    assert c.state is ClientState.AWAITING_ACK and c.text == "abc😀"
    assert c.receive_ack(8) is None
    assert c.state is ClientState.SYNCHRONIZED and c.rev == 8 and c.next_seq == 2


def test_empty_local_edit_sends_nothing() -> None:
    c = DocumentClient("abc", 0, "me")
    assert c.apply_local([]) is None
    assert c.apply_local([3]) is None  # a bare retain is a no-op too
    assert c.state is ClientState.SYNCHRONIZED


def test_edits_while_awaiting_are_composed_into_the_buffer() -> None:
    c = DocumentClient("", 0, "me")
    c.apply_local(["a"])
    assert c.apply_local([1, "b"]) is None
    assert c.state is ClientState.AWAITING_WITH_BUFFER and c.buffer == [1, "b"]
    assert c.apply_local([2, "c\r\n"]) is None
    assert c.apply_local([1, -1]) is None
    assert c.buffer == [1, "c\r\n"]  # "b" typed then deleted: gone from the one buffered op
    assert c.text == "ac\r\n"
    out = c.receive_ack(1)
    assert out == Outgoing(2, 1, [1, "c\r\n"])  # the buffer, against the acked revision
    assert c.state is ClientState.AWAITING_ACK and c.buffer is None
    assert c.receive_ack(2) is None
    assert c.state is ClientState.SYNCHRONIZED


def test_ack_out_of_order_or_unexpected_raises() -> None:
    c = DocumentClient("", 4, "me")
    with pytest.raises(InvalidState):
        c.receive_ack(5)  # nothing outstanding
    c.apply_local(["x"])
    with pytest.raises(InvalidState):
        c.receive_ack(6)
    with pytest.raises(InvalidState):
        c.receive_ack(4)
    with pytest.raises(InvalidState):
        c.receive_op(7, ["y"], "other", 1)
    assert c.state is ClientState.AWAITING_ACK and c.rev == 4


def test_remote_op_while_synchronized_applies_as_is() -> None:
    c = DocumentClient("ab", 0, "me")
    op, out = c.receive_op(1, [1, "X"], "other", 1)
    assert op == [1, "X"] and out is None and c.text == "aXb" and c.rev == 1


def test_remote_op_is_transformed_past_outstanding_and_buffer() -> None:
    c = DocumentClient("abcd", 0, "me")
    c.apply_local([1, "1"])  # outstanding: a1bcd
    c.apply_local([5, "2"])  # buffer: a1bcd2
    op, out = c.receive_op(1, ["Z", -2], "other", 1)  # hub: "ab" -> "Z"
    assert out is None
    assert c.text == "Z1cd2"
    assert op == ["Z", -1, 1, -1]
    assert c.outstanding == Outgoing(1, 0, [1, "1"])  # same seq and base; op rebased
    assert c.buffer == [4, "2"]
    assert c.rev == 1
    assert c.receive_ack(2) == Outgoing(2, 2, [4, "2"])


def test_receive_op_of_own_outstanding_counts_as_ack() -> None:
    c = DocumentClient("", 0, "me")
    c.apply_local(["x"])
    c.apply_local([1, "y"])
    op, out = c.receive_op(1, ["x"], "me", 1)
    assert op == []  # already in the local text
    assert out == Outgoing(2, 1, [1, "y"])
    assert c.text == "xy" and c.rev == 1
    # same client id but another seq is somebody else's op (e.g. an older session)
    op, out = c.receive_op(2, ["z"], "me", 99)
    assert op == ["z"] and c.text == "zxy" and c.outstanding == Outgoing(2, 1, [2, "y"])


def test_resend_keeps_seq_and_rebases_on_current_revision() -> None:
    c = DocumentClient("abc", 0, "me")
    assert c.resend() is None
    c.apply_local([3, "!"])
    # reconnected: catch up with what was committed meanwhile, then resend
    c.receive_op(1, ["<"], "other", 1)
    out = c.resend()
    assert out == Outgoing(1, 1, [4, "!"])
    assert c.outstanding == out and c.next_seq == 2
    assert c.receive_ack(2) is None


def test_next_seq_continues_a_previous_session() -> None:
    c = DocumentClient("", 3, "me", next_seq=42)
    assert c.apply_local(["x"]) == Outgoing(42, 3, ["x"])


def test_non_canonical_local_edit_converges_with_the_hub() -> None:
    # regression: an editor's replace spelled delete-then-insert was kept as
    # is by the client but normalized (insert first) by the hub, and the two
    # broke the tie with a concurrent insert differently: 'ab>SE' vs 'abSE>'
    hub = Sequencer("abcd", 0)
    other = hub.submit(Submission(ClientId("y"), 1, Rev(0), [2, ">"]))
    assert isinstance(other, Sequenced)
    c = DocumentClient("abcd", 0, "x")
    out = c.apply_local([2, -2, "SE"])
    assert out is not None and out.op == [2, "SE", -2]
    mine = hub.submit(Submission(ClientId("x"), out.seq, Rev(out.base_rev), ops.check(out.op)))
    assert isinstance(mine, Sequenced)
    c.receive_op(other.rev, other.op, "y", 1)
    c.receive_ack(mine.rev)
    assert c.text == hub.text == "abSE>"


def test_sequencer_normalizes_submissions_too() -> None:
    hub = Sequencer("abcd", 0)
    hub.submit(Submission(ClientId("y"), 1, Rev(0), [2, ">"]))
    mine = hub.submit(Submission(ClientId("x"), 1, Rev(0), [2, -2, "SE"]))
    assert isinstance(mine, Sequenced)
    assert hub.text == "abSE>"


# -- held, unsend, rebase, size -------------------------------------------------------------


def test_held_client_buffers_until_released() -> None:
    c = DocumentClient("abc", 0, "me", held=True)
    assert c.apply_local([3, "d"]) is None
    assert c.apply_local([4, "e"]) is None
    assert c.buffer == [3, "de"] and c.outstanding is None
    # a hub op moves the buffer even with nothing in flight
    op, _ = c.receive_op(1, ["<"], "other", 1)
    assert op == ["<"] and c.buffer == [4, "de"] and c.text == "<abcde"
    assert c.release() == Outgoing(1, 1, [4, "de"])
    assert c.receive_ack(2) is None and c.shadow == "<abcde"


def test_unsend_puts_a_refused_op_back_in_front_of_the_buffer() -> None:
    c = DocumentClient("abc", 0, "me")
    c.apply_local([3, "1"])
    c.apply_local([4, "2"])
    c.unsend()
    assert c.outstanding is None and c.buffer == [3, "12"] and c.held
    assert c.release() == Outgoing(2, 0, [3, "12"])  # a new seq: the refused one was not applied


def test_rebase_keeps_local_typing_on_a_text_the_hub_sent_whole() -> None:
    # our base was "hello world", the hub's text turned out to be "Hello, world!" at rev 9
    c = DocumentClient("hello world", 3, "me", held=True)
    c.apply_local([5, " big"])  # "hello big world"
    theirs = c.rebase("Hello, world!", 9)
    assert c.text == "Hello big, world!"  # our insert goes first where both insert
    assert ops.apply("hello big world", theirs) == c.text
    assert c.rev == 9 and c.shadow == "Hello, world!"
    out = c.release()
    assert out is not None and out.base_rev == 9 and ops.apply("Hello, world!", out.op) == c.text


def test_rebase_with_an_op_in_flight_is_refused() -> None:
    c = DocumentClient("a", 0, "me")
    c.apply_local(["x"])
    with pytest.raises(InvalidState):
        c.rebase("b", 1)


def test_shadow_follows_acks_and_hub_ops() -> None:
    c = DocumentClient("ab", 0, "me")
    c.apply_local([2, "c"])
    c.apply_local([3, "d"])
    assert c.shadow == "ab"
    c.receive_op(1, ["<"], "other", 1)
    assert c.shadow == "<ab" and c.text == "<abcd"
    out = c.receive_ack(2)
    assert c.shadow == "<abc" and out is not None
    c.receive_ack(3)
    assert c.shadow == c.text == "<abcd"


def test_big_local_op_goes_in_pieces_that_fit() -> None:
    paste = "x" * 1000
    c = DocumentClient("ab", 0, "me", max_op_bytes=300)
    out = c.apply_local([1, paste])
    assert out is not None and ops.encoded_size(out.op) <= 300
    hub = Sequencer("ab", 0)
    sent = 0
    while out is not None:
        sent += 1
        s = hub.submit(Submission(ClientId("me"), out.seq, Rev(out.base_rev), ops.check(out.op)))
        assert isinstance(s, Sequenced)
        hub.commit(hub.take_unsent()[-1].rev)
        out = c.receive_ack(s.rev)
        assert out is None or ops.encoded_size(out.op) <= 300
    assert sent >= 4 and hub.text == c.text == "a" + paste + "b"


def test_an_op_of_many_components_goes_in_pieces_within_the_hubs_limit() -> None:
    # a replace-all: 300 places, 3 components each
    text = "ab " * 300
    c = DocumentClient(text, 0, "me", max_op_components=100)
    replace_all: ops.Op = [1, "X", -1, 1] * 300
    out = c.apply_local(replace_all)
    hub = Sequencer(text, 0)
    sent = 0
    while out is not None:
        assert len(out.op) <= 100
        sent += 1
        s = hub.submit(Submission(ClientId("me"), out.seq, Rev(out.base_rev), ops.check(out.op)))
        assert isinstance(s, Sequenced)
        hub.commit(hub.take_unsent()[-1].rev)
        out = c.receive_ack(s.rev)
    assert sent >= 9 and hub.text == c.text == "aX " * 300


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_client_converges_with_hub_through_pieces_holds_and_rebases(data: st.DataObject) -> None:
    """A client (small op limit, sometimes held and rebased) and another writer, through a Sequencer."""
    text = data.draw(texts(max_size=10), label="text")
    hub = Sequencer(text, 0)
    me = DocumentClient(text, 0, "me", max_op_bytes=64)
    inbox: list[tuple[str, Any]] = []  # what the hub sent to me, in order
    wire: list[Any] = []  # what I sent, not yet at the hub
    other_seq = 0
    for _ in range(data.draw(st.integers(1, 25), label="steps")):
        action = data.draw(st.sampled_from(["local", "remote", "deliver_up", "deliver_down", "rebase"]))
        if action == "local":
            op = data.draw(ops_on(me.text, max_components=4), label="local op")
            out = me.apply_local(op)
            if out is not None:
                wire.append(out)
        elif action == "remote":
            other_seq += 1
            op = data.draw(ops_on(hub.text, max_components=3), label="remote op")
            s = hub.submit(Submission(ClientId("other"), other_seq, hub.rev, ops.check(op)))
            assert isinstance(s, Sequenced)
            hub.commit(hub.take_unsent()[-1].rev)
            inbox.append(("op", s))
        elif action == "deliver_up" and wire:
            out = wire.pop(0)
            s = hub.submit(Submission(ClientId("me"), out.seq, Rev(out.base_rev), ops.check(out.op)))
            assert isinstance(s, Sequenced), s
            hub.commit(hub.take_unsent()[-1].rev)
            inbox.append(("ack", s))
        elif action == "deliver_down" and inbox:
            kind, s = inbox.pop(0)
            if kind == "ack":
                out = me.receive_ack(s.rev)
            else:
                _, out = me.receive_op(s.rev, s.op, "other", s.seq)
            if out is not None:
                wire.append(out)
            if data.draw(st.booleans(), label="look at the shadow"):  # (else it stays behind)
                assert me.shadow_length == len(me.shadow)
        elif action == "rebase" and me.outstanding is None and not wire:
            # the hub's text, sent whole (what a reopen answers): every op up to now
            while inbox:
                kind, s = inbox.pop(0)
                assert kind == "op"
            me.hold()
            me.rebase(hub.text, hub.rev)
            out = me.release()
            if out is not None:
                wire.append(out)
    # drain both ways
    for _ in range(10_000):
        if wire:
            out = wire.pop(0)
            s = hub.submit(Submission(ClientId("me"), out.seq, Rev(out.base_rev), ops.check(out.op)))
            assert isinstance(s, Sequenced)
            hub.commit(hub.take_unsent()[-1].rev)
            inbox.append(("ack", s))
        elif inbox:
            kind, s = inbox.pop(0)
            out = me.receive_ack(s.rev) if kind == "ack" else me.receive_op(s.rev, s.op, "other", s.seq)[1]
            if out is not None:
                wire.append(out)
        else:
            break
    assert me.text == hub.text and me.shadow == hub.text and not me.unacknowledged


def test_a_saved_client_goes_on_in_another_process_as_it_would_have() -> None:
    """saved() is plain JSON; restored() gives a held client with the same text, revision, op in
    flight (its seq) and buffer, which goes on exactly as the first: a hub op transformed past
    both, the ack sending the buffer with the next seq."""
    c = DocumentClient("hello", 3, "me", next_seq=5)
    first = c.apply_local(ops.insert(5, "!"))
    c.apply_local(ops.insert(0, ">"))
    c.receive_op(4, ops.insert(0, "<"), "bob", 1)
    again = DocumentClient.restored(json.loads(json.dumps(c.saved())), "me")
    assert again.held and again.state is ClientState.AWAITING_WITH_BUFFER
    assert (again.text, again.rev, again.shadow, again.buffer) == (c.text, c.rev, c.shadow, c.buffer)
    assert again.outstanding is not None and c.outstanding is not None and first is not None
    assert (again.outstanding.seq, again.outstanding.op) == (first.seq, c.outstanding.op)
    again.release()
    for client in (c, again):
        client.receive_op(5, ops.insert(1, "~"), "bob", 2)
        out = client.receive_ack(6)
        assert out is not None and out.seq == first.seq + 1 and out.base_rev == 6
    assert again.text == c.text == "><~hello!"


@pytest.mark.parametrize(
    "saved",
    [
        None,
        [],
        {"rev": -1, "shadow": "", "outstanding": None, "buffer": None, "nextSeq": 1},
        {"rev": True, "shadow": "", "outstanding": None, "buffer": None, "nextSeq": 1},
        {"rev": 0, "shadow": 5, "outstanding": None, "buffer": None, "nextSeq": 1},
        {"rev": 0, "shadow": "", "outstanding": None, "buffer": None, "nextSeq": 0},
        {"rev": 0, "shadow": "ab", "outstanding": {"seq": 1, "op": [3, "x"]}, "buffer": None, "nextSeq": 2},
        {"rev": 0, "shadow": "ab", "outstanding": {"seq": 2, "op": ["x"]}, "buffer": None, "nextSeq": 2},
        {"rev": 0, "shadow": "ab", "outstanding": None, "buffer": [0], "nextSeq": 2},
        {"rev": 0, "shadow": "ab", "outstanding": None, "buffer": [-3], "nextSeq": 2},
    ],
)
def test_restored_refuses_what_saved_cannot_have_written(saved: Any) -> None:
    with pytest.raises(ValueError):
        DocumentClient.restored(saved, "me")


def test_a_document_sent_in_pieces_leaves_each_ack_no_large_insert_to_compose() -> None:
    """Issue 14: a document too large for one frame is created empty and its text goes as
    pieces; the acks of those pieces composed into one large insert, which every later ack
    then copied whole (the typist's server, on a large document, each keystroke).  What the
    shadow is behind by now holds at most ``deferred.MAX_INSERTED`` inserted code points."""
    from collab_core import deferred

    limit = deferred.MAX_INSERTED
    c = DocumentClient("", 0, "me", max_op_bytes=4096)
    hub = Sequencer("", 0)

    def acked(out: Outgoing | None) -> Outgoing | None:
        assert out is not None
        s = hub.submit(Submission(ClientId("me"), out.seq, Rev(out.base_rev), ops.check(out.op)))
        assert isinstance(s, Sequenced)
        hub.commit(hub.take_unsent()[-1].rev)
        return c.receive_ack(s.rev)

    out = c.apply_local(["x" * (deferred.EAGER_LENGTH + 10 * limit)])  # large: its shadow is deferred
    while out is not None:
        out = acked(out)
        assert sum(len(x) for x in c._shadow.behind if isinstance(x, str)) <= limit
    for i in range(20):
        acked(c.apply_local([5 * limit + i, "y"]))
        assert sum(len(x) for x in c._shadow.behind if isinstance(x, str)) <= limit
        assert c._shadow.behind  # deferred: the typing is held, not applied
    assert c.shadow == c.text == hub.committed_text
