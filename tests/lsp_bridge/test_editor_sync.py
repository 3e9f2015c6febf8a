"""The editor boundary (lsp_bridge.editor_sync) against simulated editors (tests/lsp_bridge/editors.py).

A :class:`Peer` wires one simulated editor to an :class:`EditorSync` and a
:class:`DocumentClient` the way the language server does (lsp_bridge/session.py);
a :class:`Hub` orders everything with a :class:`Sequencer`.  Every message
waits in a queue until the test delivers it, so any interleaving can be played.
"""

from __future__ import annotations

import functools
import random
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import pytest

from collab_core import deferred, ops
from collab_core.client import ClientState, DocumentClient, Outgoing
from collab_core.deferred import DeferredText
from collab_server.document import ClientId, Rev, Sequenced, Sequencer, Submission
from lsp_bridge.editor_sync import ContentChange, EditorSync, EditToApply, TextEdit, apply_changes
from lsp_bridge.positions import LineIndex
from tests.lsp_bridge.editors import (
    UTF8,
    UTF16,
    UTF32,
    Answer,
    Eglot,
    FullSync,
    Neovim07,
    Notification,
    SimEditor,
    VersionBlind,
    VSCode,
    random_text,
    random_user_edit,
    splits_crlf,
)
from tests.support.search_steps import search_steps

HubMsg = tuple[str, int, ops.Op]

#: every simulated editor: VS Code, Neovim 0.7, eglot, a full-sync client, a version-blind client
KINDS = ("vscode", "nvim", "eglot", "full", "blind")


class Peer:
    """One participant: simulated editor <-> EditorSync + DocumentClient <-> hub queues."""

    def __init__(self, name: str, editor: SimEditor, rev: int) -> None:
        self.name = name
        self.editor = editor
        self.sync = EditorSync(editor.text, editor.version, editor.encoding)
        self.client = DocumentClient(editor.text, rev, name)
        self.to_hub: deque[Outgoing] = deque()
        self.from_hub: deque[HubMsg] = deque()
        self.to_editor: deque[EditToApply] = deque()
        self.edits: list[EditToApply] = []

    def __repr__(self) -> str:
        return f"{self.name}:{self.editor!r}"

    def pump(self) -> None:
        edit = self.sync.edit_to_send()
        if edit is not None:
            self.edits.append(edit)
            self.to_editor.append(edit)

    def deliver_to_bridge(self) -> None:
        """The bridge reads the editor's next message."""
        msg = self.editor.outbox.popleft()
        if isinstance(msg, Notification):
            for op in self.sync.did_change(msg.version, msg.changes):
                out = self.client.apply_local(op)
                if out is not None:
                    self.to_hub.append(out)
        else:
            assert isinstance(msg, Answer)
            for op in self.sync.edit_answered(msg.applied and msg.error is None):
                out = self.client.apply_local(op)
                if out is not None:
                    self.to_hub.append(out)
        self.pump()

    def expire(self) -> None:
        for op in self.sync.expire():
            out = self.client.apply_local(op)
            if out is not None:
                self.to_hub.append(out)
        self.pump()

    def deliver_to_editor(self) -> None:
        self.editor.receive_edit(self.to_editor.popleft())

    def deliver_from_hub(self) -> None:
        kind, rev, op = self.from_hub.popleft()
        if kind == "ack":
            out = self.client.receive_ack(rev)
            if out is not None:
                self.to_hub.append(out)
        else:
            local, out = self.client.receive_op(rev, op)
            assert out is None
            self.sync.receive_remote(local)
            self.pump()

    @property
    def quiet(self) -> bool:
        e = self.editor
        return not (e.unsent or e.outbox or self.to_editor or self.to_hub or self.from_hub)


class Hub:
    def __init__(self, text: str) -> None:
        self.seq = Sequencer(text, 0)
        self.peers: list[Peer] = []

    def join(self, name: str, editor: SimEditor) -> Peer:
        assert editor.text == self.seq.text
        peer = Peer(name, editor, self.seq.rev)
        self.peers.append(peer)
        return peer

    def deliver_from(self, peer: Peer) -> None:
        out = peer.to_hub.popleft()
        res = self.seq.submit(Submission(ClientId(peer.name), out.seq, Rev(out.base_rev), ops.check(out.op)))
        assert isinstance(res, Sequenced), res
        self.seq.take_unsent()
        self.seq.commit(res.rev)
        for p in self.peers:
            p.from_hub.append(("ack", res.rev, []) if p is peer else ("op", res.rev, res.op))

    def remote(self, op: ops.Op, author: str = "ghost") -> None:
        """An op from a participant with no editor here, committed at once."""
        res = self.seq.submit(Submission(ClientId(author), self.seq.rev + 1, self.seq.rev, op))
        assert isinstance(res, Sequenced)
        self.seq.take_unsent()
        self.seq.commit(res.rev)
        for p in self.peers:
            p.from_hub.append(("op", res.rev, res.op))

    def settle(self, rng: random.Random | None = None, limit: int = 10_000) -> None:
        """Deliver everything (in a random order with *rng*) until nothing moves."""
        for _ in range(limit):
            assert len(self.seq.text) < 4_000, "runaway text"
            acts = self.actions()
            if not acts:
                return
            (rng.choice(acts) if rng else acts[0])()
        raise AssertionError(f"no quiescence after {limit} steps: {self.peers}")

    def actions(self) -> list[Callable[[], None]]:
        acts = self._actions()
        if not acts:
            # nothing moves but time: an edit whose effect never came expires
            acts = [p.expire for p in self.peers if p.sync.waiting]
        return acts

    def _actions(self) -> list[Callable[[], None]]:
        acts: list[Callable[[], None]] = []
        for p in self.peers:
            e = p.editor
            if e.unsent:
                acts.append(e.flush)
            if e.outbox:
                acts.append(p.deliver_to_bridge)
            if p.to_editor:
                acts.append(p.deliver_to_editor)
            if p.to_hub:
                acts.append(functools.partial(self.deliver_from, p))
            if p.from_hub:
                acts.append(p.deliver_from_hub)
        return acts

    def assert_converged(self) -> None:
        for p in self.peers:
            assert p.quiet, p
            assert p.sync.quiet, p
            assert p.client.state is ClientState.SYNCHRONIZED, p
            assert p.editor.text == p.sync.text == p.client.text == self.seq.text, p
            assert p.sync.version == p.editor.version, p


# -- the randomized property ------------------------------------------------------------------


def make_editor(kind: str, text: str, rng: random.Random) -> SimEditor:
    if kind == "vscode":
        return VSCode(text, rng)
    if kind == "nvim":
        return Neovim07(text, rng, encoding=rng.choice((UTF16, UTF8)))
    if kind == "full":
        return FullSync(text, rng, encoding=rng.choice((UTF16, UTF8)))
    if kind == "blind":
        return VersionBlind(text, rng)
    assert kind == "eglot"
    return Eglot(text, rng, encoding=rng.choice((UTF32, UTF16, UTF8)))


def damage(text: str, start: int, end: int, intact: set[str]) -> None:
    """The user's edit start..end of *text* touches these markers: they are no longer intact."""
    for m in list(intact):
        at = text.find(m)
        if at < 0:
            continue  # not shown in this editor yet: the user can not touch it
        if (start == end and at < start < at + len(m)) or (start < at + len(m) and at < end):
            intact.discard(m)


def run_session(
    seed: int, *, deletes: bool, heals: bool = False, late: bool = False, user_edits: int = 40
) -> dict[str, int]:
    """One random session; *late*: an edit the editor answered may expire before its effect
    comes (an editor slower than ``edit_expire``, under load), not only once nothing moves."""
    rng = random.Random(seed)
    text = random_text(rng, 10)
    hub = Hub(text)
    kinds = [rng.choice(KINDS) for _ in range(rng.randint(2, 4))]
    for i, kind in enumerate(kinds):
        hub.join(f"{kind}{i}", make_editor(kind, text, rng))
    typed: list[str] = []
    intact: set[str] = set()
    inserted = Counter(text)  # insert-only: every character typed is in the end exactly once
    left = user_edits
    for _ in range(20_000):  # a session settles in a few hundred steps
        # an edit taken for the user's and re-sent forever grows the text: fail fast
        assert len(hub.seq.text) < 4_000, f"seed {seed}: runaway text"
        acts = hub.actions()
        if late:
            # the first expiry comes at any time (the second only when nothing moves: an
            # editor slower than the timer, not than twice that)
            acts += [p.expire for p in hub.peers if p.sync.waiting and p.sync._late is None]
        if heals and acts and rng.random() < 0.02:
            # a heal that finds the client right: reset the editor to its text,
            # possibly with an applyEdit still on its way
            p = rng.choice(hub.peers)
            p.sync.reset(p.client.text)
            p.pump()
            continue
        if left:
            acts += [lambda: None] * len(acts)  # users are about as busy as the wires
        if left and (not acts or rng.random() < 0.3):
            left -= 1
            i = rng.randrange(len(hub.peers))
            editor = hub.peers[i].editor
            # fixed width: a deletion inside one marker can not leave another valid one
            marker = f"«{i}.{len(typed):03d}»"
            avoid = []
            for m in typed:
                at = editor.text.find(m)
                if at >= 0:
                    avoid.append((at, at + len(m)))
            if deletes:
                avoid = []
            if editor.avoid_fresh:
                avoid += editor.fresh
            start, end, new = random_user_edit(rng, editor.text, marker=marker, deletes=deletes, avoid=avoid)
            if deletes:
                damage(editor.text, start, end, intact)
            editor.user_edit(start, end, new)
            inserted.update(new)
            typed.append(marker)
            intact.add(marker)
            continue
        if not acts:
            break
        rng.choice(acts)()
    else:
        raise AssertionError(f"seed {seed}: no quiescence: {hub.peers}")
    hub.assert_converged()
    final = hub.seq.text
    if not deletes and not heals:
        # nothing lost, nothing doubled, character by character
        assert Counter(final) == inserted, (seed, Counter(final) - inserted, inserted - Counter(final))
    if heals or {"full", "blind"} & set(kinds):
        # A heal brings the editor to the room's text with a diff, a full-sync client's
        # changes are a diff (the places it finds), and a version-blind client shows a peer's
        # text where it was, not where it belongs, until it is put right: typing in the
        # meantime may split a marker, so markers may be broken, but never doubled.
        intact = {m for m in intact if final.count(m) == 1}
    elif not deletes:
        assert intact == set(typed)
    for m in intact:
        assert final.count(m) == 1, (seed, m, final)
    for m in typed:
        assert final.count(m) <= 1, (seed, m, final)
    stats = {"seeds": 1}
    for p in hub.peers:
        for k, v in p.sync.stats.items():
            stats[k] = stats.get(k, 0) + v
        e = p.editor
        stats["refused"] = stats.get("refused", 0) + e.edits_refused
        stats["skipped"] = stats.get("skipped", 0) + e.edits_skipped
        stats["split"] = stats.get("split", 0) + (e.edit_changes - e.edits_applied)
    return stats


def _total(results: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for r in results:
        for k, v in r.items():
            total[k] = total.get(k, 0) + v
    return total


@pytest.mark.parametrize("block", range(4))
def test_random_sessions_insert_only_every_marker_once(block: int) -> None:
    total = _total([run_session(seed, deletes=False) for seed in range(block * 100, block * 100 + 100)])
    # the runs reached the hard cases, not just the happy path
    assert total["confirmed"] > 0 and total["missed"] > 0
    assert total["refused"] > 0 and total["skipped"] > 0 and total["split"] > 0


@pytest.mark.parametrize("block", range(4))
def test_random_sessions_with_deletes_converge(block: int) -> None:
    total = _total(
        [run_session(seed, deletes=True) for seed in range(10_000 + block * 100, 10_000 + block * 100 + 100)]
    )
    assert total["confirmed"] > 0 and total["missed"] > 0


@pytest.mark.parametrize("deletes", [False, True], ids=["insert-only", "with-deletes"])
def test_random_sessions_where_an_applied_edits_effect_comes_after_it_expired(deletes: bool) -> None:
    """Under load an editor reports an applied edit later than ``edit_expire``: its change,
    when it comes, is still recognised as the edit (never the user's, which would double it)."""
    base = 20_000 if deletes else 30_000
    total = _total([run_session(seed, deletes=deletes, late=True) for seed in range(base, base + 200)])
    assert total["late"] > 0


# -- targeted cases ------------------------------------------------------------------------------


def _pair(editor: SimEditor) -> tuple[Hub, Peer]:
    hub = Hub(editor.text)
    return hub, hub.join("me", editor)


def _deliver_remote(hub: Hub, peer: Peer, op: ops.Op) -> EditToApply:
    hub.remote(op)
    peer.deliver_from_hub()
    assert len(peer.to_editor) == 1
    return peer.to_editor[0]


def test_neovim_applied_our_edit_then_user_typed_in_the_same_batch() -> None:
    nvim = Neovim07("hello\r\nworld", random.Random(1), version=10)
    hub, me = _pair(nvim)
    edit = _deliver_remote(hub, me, [5, " there"])
    assert edit.version == 10 and edit.edits == (TextEdit((0, 5), (0, 5), " there"),)
    me.deliver_to_editor()
    assert nvim.text == "hello there\r\nworld"
    nvim.user_edit(len(nvim.text), len(nvim.text), "!")  # after our edit, same debounce window
    nvim.flush()
    assert nvim.outbox[0] == Answer(True) or len(nvim.outbox[0].changes) == 2  # type: ignore[union-attr]
    hub.settle()
    hub.assert_converged()
    assert _counts(me.sync) == (1, 1, 0)
    assert hub.seq.text == "hello there\r\nworld!"


def test_neovim_skips_a_stale_edit_and_it_goes_again() -> None:
    nvim = Neovim07("abc", random.Random(2), version=3)
    hub, me = _pair(nvim)
    nvim.user_edit(0, 0, "X")  # typed, not yet notified (debounce)
    _deliver_remote(hub, me, [3, "!"])
    me.deliver_to_editor()
    assert nvim.messages == ["Buffer newer than edits."] and nvim.text == "Xabc"
    me.deliver_to_bridge()  # applied: true, but nothing happened
    assert me.sync.edit_to_send() is None  # still waiting for its effect
    nvim.flush()
    hub.settle()
    hub.assert_converged()
    assert hub.seq.text == "Xabc!"
    assert me.sync.stats["missed"] == 1 and me.sync.stats["confirmed"] == 1


def test_vscode_refused_edit_is_resent_transformed_past_the_users_change() -> None:
    code = VSCode("a😀\r\nb", random.Random(3))
    hub, me = _pair(code)
    first = _deliver_remote(hub, me, [5, "Z"])  # after the b
    assert first.version == 1 and first.edits == (TextEdit((1, 1), (1, 1), "Z"),)
    code.user_edit(0, 0, "🎉\n")  # the user typed; the edit is now stale
    me.deliver_to_editor()
    assert code.text == "🎉\na😀\r\nb" and list(code.outbox)[-1] == Answer(False)
    me.deliver_to_bridge()  # the didChange: not our edit
    assert me.to_hub  # the user's change is on its way
    me.deliver_to_bridge()  # applied: false
    assert len(me.to_editor) == 1
    again = me.to_editor[0]
    assert again.version == 2 and again.edits == (TextEdit((2, 1), (2, 1), "Z"),)
    hub.settle()
    hub.assert_converged()
    assert hub.seq.text == "🎉\na😀\r\nbZ"
    assert _counts(me.sync) == (2, 1, 1)


@pytest.mark.parametrize("enc", [UTF32, UTF16, UTF8])
def test_eglot_splits_our_edit_into_several_changes(enc: str) -> None:
    eglot = Eglot("one two three\nfour", random.Random(4), encoding=enc)
    hub, me = _pair(eglot)
    # one remote op with two places far apart: one edit, a TextEdit each, applied as diffs in hunks
    hub.remote(ops.compose(["😀"], [12, "中", -3]))
    for _, rev, op in me.from_hub:  # both arrive before the bridge sends an edit
        me.sync.receive_remote(me.client.receive_op(rev, op)[0])
    me.from_hub.clear()
    me.pump()
    edit = me.to_editor[0]
    assert [e.new_text for e in edit.edits] == ["😀", "中"] and edit.edits[0].start == (0, 0)
    me.deliver_to_editor()
    assert eglot.edit_changes >= 2  # several changes for one edit
    eglot.user_edit(0, 0, "A")  # and the user typed before the idle timer ran
    eglot.flush()
    hub.settle()
    hub.assert_converged()
    assert hub.seq.text == "A😀one two thr中four"
    assert me.sync.stats["confirmed"] == 1 and me.sync.stats["missed"] == 0


def test_eglot_error_on_version_mismatch_counts_as_refused() -> None:
    eglot = Eglot("abc", random.Random(5))
    hub, me = _pair(eglot)
    eglot.user_edit(3, 3, "d")
    _deliver_remote(hub, me, ["<"])
    me.deliver_to_editor()
    assert eglot.outbox[0].error  # type: ignore[union-attr]
    me.deliver_to_bridge()
    eglot.flush()
    hub.settle()
    hub.assert_converged()
    assert hub.seq.text == "<abcd"


def test_users_change_equal_to_our_edit_is_harmless() -> None:
    # the user typed exactly what the remote op inserts, at the same place,
    # before the editor saw our edit: the bridge takes it for our edit
    nvim = Neovim07("ab", random.Random(6), version=5)
    hub, me = _pair(nvim)
    nvim.user_edit(1, 1, "X")
    _deliver_remote(hub, me, [1, "X"])
    me.deliver_to_editor()  # skipped: newer than edits
    nvim.flush()
    hub.settle()
    hub.assert_converged()
    assert hub.seq.text == "aXb"
    assert _counts(me.sync) == (1, 1, 0)


@pytest.mark.parametrize("make", [VSCode, Neovim07, Eglot])
def test_remote_insert_between_cr_and_lf_widens_over_the_crlf(make: Callable[..., SimEditor]) -> None:
    editor = make("ab\r\ncd", random.Random(7))
    hub, me = _pair(editor)
    edit = _deliver_remote(hub, me, [3, "X"])  # "ab\rX\ncd": the CRLF is split in two breaks
    assert edit.edits == (TextEdit((0, 2), (1, 0), "\rX\n"),)
    me.deliver_to_editor()
    hub.settle()
    hub.assert_converged()
    assert editor.text == "ab\rX\ncd"
    assert me.sync.stats["confirmed"] == 1


@pytest.mark.parametrize("make", [VSCode, Neovim07, Eglot])
def test_remote_ops_that_cancel_out_do_not_wedge_the_editor(make: Callable[..., SimEditor]) -> None:
    # a peer replaced "b" by "b" (select, retype): the edit changes nothing, an
    # editor applying it as a diff reports no change at all; later remote ops
    # must still reach the editor
    editor = make("abc", random.Random(8))
    hub, me = _pair(editor)
    hub.remote([1, "b", -1])
    me.deliver_from_hub()
    hub.settle()
    hub.remote([3, "!"])
    hub.settle()
    hub.assert_converged()
    assert editor.text == "abc!"


@pytest.mark.parametrize("block", range(2))
def test_random_sessions_with_heals_converge(block: int) -> None:
    seeds = range(20_000 + block * 100, 20_000 + block * 100 + 100)
    total = _total([run_session(seed, deletes=bool(seed % 2), heals=True) for seed in seeds])
    assert total["confirmed"] > 0 and total["missed"] > 0


def test_unknown_position_encoding_is_refused() -> None:
    # not silently counted as UTF-8
    with pytest.raises(ValueError):
        EditorSync("", 1, "PositionEncodingKind.Utf16")


def test_full_text_change_is_diffed() -> None:
    sync = EditorSync("a\r\nb", 1, UTF16)
    assert sync.did_change(2, [ContentChange(None, "a\r\nXb")]) == [[3, "X"]]
    assert sync.text == "a\r\nXb"


def test_insert_into_a_crlf_at_the_end_keeps_positions_addressable() -> None:
    code = VSCode("x\r\n", random.Random(9))
    hub, me = _pair(code)
    edit = _deliver_remote(hub, me, [2, "😀"])
    assert not splits_crlf(code.text, 2) or edit.edits[0].start == (0, 1)
    me.deliver_to_editor()
    hub.settle()
    hub.assert_converged()
    assert code.text == "x\r😀\n"


@pytest.mark.parametrize("make", [VSCode, Neovim07, Eglot])
@pytest.mark.parametrize("user_first", [False, True])
def test_reset_while_an_edit_is_in_flight_does_not_duplicate(
    make: Callable[..., SimEditor], user_first: bool
) -> None:
    # a heal (reset to the hub's text) while the editor still has our last
    # applyEdit: if the editor applies it, that is not the user's change
    editor = make("abc", random.Random(10))
    hub, me = _pair(editor)
    _deliver_remote(hub, me, [3, "X"])
    hub.remote([0, "<"])
    local, _ = me.client.receive_op(*me.from_hub.popleft()[1:])
    assert me.client.text == "<abcX"
    me.sync.reset(me.client.text)
    if user_first:
        editor.user_edit(1, 1, "u")
    hub.settle()
    hub.assert_converged()
    assert hub.seq.text == ("<aubcX" if user_first else "<abcX")


def test_edit_written_with_the_documents_line_endings_counts_as_applied() -> None:
    """VS Code writes an inserted "\\n" as the document's "\\r\\n": that is our edit, not a new one."""
    sync = EditorSync("a\r\nb\r\n", 1, "utf-16")
    sync.receive_remote([1, "x\ny"])
    edit = sync.edit_to_send()
    assert edit is not None
    sync.edit_answered(True)
    (one,) = edit.edits
    start, end = one.start, one.end
    written = one.new_text.replace("\r\n", "\n").replace("\n", "\r\n")
    user = sync.did_change(2, [ContentChange((*start, *end), written)])
    # the difference (one "\r") goes to the hub once, as the editor's edit; nothing is re-sent
    assert user == [[2, "\r"]]
    assert sync.text == "ax\r\ny\r\nb\r\n"
    assert sync.quiet and sync.edit_to_send() is None


@pytest.mark.parametrize("enc", [UTF8, UTF16, UTF32])
def test_the_editors_report_of_our_edit_is_read_without_indexing_the_text(enc: str) -> None:
    """A peer's keystroke sent to the editor comes back as a change at the positions sent:
    they are read from the edit, with no line index of the (possibly large) text."""
    text = "".join(f"line {i} 😀 é\n" for i in range(50))
    sync = EditorSync(text, 1, enc)
    at = text.index("line 30")
    sync.receive_remote([at + 8, "xy", len(text) - at - 8])
    edit = sync.edit_to_send()
    assert edit is not None
    (one,) = edit.edits
    LineIndex._recent = []
    mine = apply_changes(text, [ContentChange((*one.start, *one.end), one.new_text)], enc)[0]
    assert sync.did_change(2, [ContentChange((*one.start, *one.end), one.new_text)]) == []
    assert sync.edit_answered(True) == []
    assert sync.text == mine == text[: at + 8] + "xy" + text[at + 8 :]
    assert LineIndex._recent == []  # no index of the text was built to read it
    assert sync.quiet


def test_final_newline_the_editor_keeps_is_its_edit_not_a_loop() -> None:
    """Neovim cannot drop the final newline: it answers applied and reports nothing."""
    sync = EditorSync("abc\n", 1, "utf-16")
    sync.reset("abc")
    assert sync.edit_to_send() is not None
    user = sync.edit_answered(True)
    assert user == [[3, "\n"]]
    assert sync.text == "abc\n"
    assert sync.quiet and sync.edit_to_send() is None


@pytest.mark.parametrize("answer_first", [True, False])
def test_a_line_ending_brought_to_the_rooms_is_awaited_when_the_answer_comes_first(
    answer_first: bool,
) -> None:
    """A buffer opened from a copy with LF where the room has CRLF is brought to the room's
    text by inserting the CR; VS Code answers applied before the didChange of it. Nothing goes
    to the room: it was taken for an edit shown already "up to line endings", and the text
    without the CR for the editor's own edit (the room lost the CR, and got it again after
    the LF: the convergence test, seed 6383)."""
    room = " 中\n\nba\n\né\r\n \na\n"
    sync = EditorSync(room.replace("\r\n", "\n"), 1, "utf-16")
    sync.reset(room)
    edit = sync.edit_to_send()
    assert edit is not None and edit.edits == (TextEdit((4, 1), (4, 1), "\r"),)
    change = ContentChange((4, 1, 4, 1), "\r")
    if answer_first:
        assert sync.edit_answered(True) == []
        assert sync.did_change(2, [change]) == []
    else:
        assert sync.did_change(2, [change]) == []
        assert sync.edit_answered(True) == []
    assert sync.text == room and sync.quiet and sync.edit_to_send() is None


def test_a_final_newline_added_is_awaited_when_the_answer_comes_first() -> None:
    """VS Code answers applied before the didChange of the edit: an edit that adds the final
    newline has not arrived yet. (It was taken for one the editor already showed "up to a
    final newline", and the text without it for the editor's own edit: the room lost the
    newline, then got it again as typing, so a peer typing after it saw it move.)"""
    sync = EditorSync("x = 1", 1, "utf-16")
    sync.receive_remote([5, "\n"])
    edit = sync.edit_to_send()
    assert edit is not None and edit.edits == (TextEdit((0, 5), (0, 5), "\n"),)
    assert sync.edit_answered(True) == []
    assert sync.waiting  # its effect is still to come
    assert sync.did_change(2, [ContentChange((0, 5, 0, 5), "\n")]) == []
    assert sync.text == "x = 1\n" and sync.version == 2
    assert sync.quiet and sync.edit_to_send() is None
    assert sync.stats["confirmed"] == 1


@pytest.mark.parametrize("answer_first", [True, False])
def test_peer_types_a_line_at_the_end_of_a_text_without_a_final_newline(answer_first: bool) -> None:
    """B presses Enter at the end of the text and types on; A's VS Code shows it. Every
    character stays where B typed it (tests/e2e/test_vscode.py's jedi line)."""
    text = "# end\n\nresult = x"
    hub = Hub(text)
    a = hub.join("A", VSCode(text, random.Random(1), answer_first=answer_first))
    b = hub.join("B", VSCode(text, random.Random(2), answer_first=answer_first))
    end = len(text)
    b.editor.user_edit(end, end, "\n")
    b.deliver_to_bridge()
    hub.deliver_from(b)
    a.deliver_from_hub()  # A's server sends A's editor the "\n"
    for i, ch in enumerate("import os"):  # B types on before A's editor answers
        b.editor.user_edit(end + 1 + i, end + 1 + i, ch)
        b.deliver_to_bridge()
    a.deliver_to_editor()
    hub.settle()
    hub.assert_converged()
    assert hub.seq.text == text + "\nimport os"
    assert a.sync.stats["missed"] == 0
    assert a.client.next_seq == 1, "A typed nothing, so it sent nothing"


def test_everything_pending_is_one_edit_with_a_text_edit_per_place() -> None:
    """One round trip however much is pending; two places stay two TextEdits, so the user's
    cursor between them does not move."""
    sync = EditorSync("line one\nline two\nline three\n", 1, "utf-16")
    for i, ch in enumerate("abc"):  # one peer types "abc" at the start of line one
        sync.receive_remote([i, ch])
    sync.receive_remote([23, "Z"])  # another peer types on line three
    edit = sync.edit_to_send()
    assert edit is not None
    assert edit.edits == (TextEdit((0, 0), (0, 0), "abc"), TextEdit((2, 2), (2, 2), "Z"))
    sync.edit_answered(True)
    # VS Code reports the two as one didChange, the later place first
    changes = [ContentChange((2, 2, 2, 2), "Z"), ContentChange((0, 0, 0, 0), "abc")]
    assert sync.did_change(2, changes) == []
    assert sync.text == "abcline one\nline two\nliZne three\n" and sync.quiet


def test_an_edit_reported_in_pieces_waits_for_the_rest() -> None:
    """Neovim without debounce reports each TextEdit of an edit in its own didChange."""
    sync = EditorSync("one\ntwo\n", 5, "utf-16")
    sync.receive_remote(["A", 4, "B"])
    edit = sync.edit_to_send()
    assert edit is not None and len(edit.edits) == 2
    assert sync.edit_answered(True) == []
    assert sync.did_change(6, [ContentChange((1, 0, 1, 0), "B")]) == []  # half of it: wait
    assert sync.did_change(7, [ContentChange((0, 0, 0, 0), "A")]) == []
    assert sync.text == "Aone\nBtwo\n" and sync.quiet and sync.version == 7


def test_a_lone_piece_that_never_completes_was_the_users() -> None:
    sync = EditorSync("one\ntwo\n", 5, "utf-16")
    sync.receive_remote(["A", 4, "B"])
    assert sync.edit_to_send() is not None
    sync.edit_answered(True)
    assert sync.did_change(6, [ContentChange((1, 0, 1, 0), "B")]) == []
    assert sync.waiting
    # the editor skipped the edit; the user happened to type what one of its places inserts
    assert sync.expire() == [[5, "B"]]  # in the room's text: after the pending "A"
    again = sync.edit_to_send()
    assert again is not None and [e.new_text for e in again.edits] == ["A", "B"]


def test_an_edit_reported_after_it_expired_is_still_ours_and_goes_again_only_after_twice_the_time() -> None:
    """An editor slower than the expiry timer (under load, a big paste) still reports the edit:
    it is recognised, not taken for typing (which would double it in the room)."""
    sync = EditorSync("abc\n", 1, "utf-16")
    sync.receive_remote([3, "X"])
    assert sync.edit_to_send() is not None
    sync.edit_answered(True)
    assert sync.expire() == [] and sync.waiting
    assert sync.edit_to_send() is None  # not again yet: it may still come
    assert sync.did_change(2, [ContentChange((0, 3, 0, 3), "X")]) == []
    assert sync.quiet and sync.text == "abcX\n" and sync.stats["late"] == 1
    # one that never comes goes again at the second expiry
    sync.receive_remote(["Y"])
    assert sync.edit_to_send() is not None
    sync.edit_answered(True)
    assert sync.expire() == [] and sync.edit_to_send() is None
    assert sync.expire() == [] and not sync.waiting
    again = sync.edit_to_send()
    assert again is not None and again.version == 2 and again.edits == (TextEdit((0, 0), (0, 0), "Y"),)


@pytest.mark.parametrize("applied", [True, False])
def test_whole_text_change_after_our_edit(applied: bool) -> None:
    """A full-sync client: our edit plus the user's typing, or the user's typing alone."""
    sync = EditorSync("hello\nworld\n", 3, "utf-16")
    sync.receive_remote(["PEER "])
    assert sync.edit_to_send() is not None
    shown = "PEER hello\nworld!\n" if applied else "hello\nworld!\n"
    user = sync.did_change(4, [ContentChange(None, shown)])
    assert sync.edit_answered(True) == []
    assert user == [[16, "!"]]  # in the room's text, where "PEER " is, shown or not
    assert sync.text == shown
    if applied:
        assert sync.quiet
    else:
        again = sync.edit_to_send()
        assert again is not None and again.edits == (TextEdit((0, 0), (0, 0), "PEER "),)


@pytest.mark.parametrize("applied", [True, False])
def test_whole_text_change_with_typing_in_two_places_after_a_look_alike_edit(applied: bool) -> None:
    """A full-sync client reports our edit and the user's typing in two places as one text,
    and our text begins like the text after its place (a peer's «mark.1» before «mark.2»).
    A reading that counts one replacement between the texts' common ends favoured "the
    user typed it all" there, and the peer's text went to the hub again as the user's (seed
    16906 of tests/e2e/test_lsp_convergence.py: a marker twice in every editor)."""
    sync = EditorSync("x«mark.2»ab«mark.0»\n", 6, "utf-16")
    sync.receive_remote([1, "«mark.1»"])
    assert sync.edit_to_send() == EditToApply(6, (TextEdit((0, 1), (0, 1), "«mark.1»"),))
    assert sync.edit_answered(True) == []
    ours = "«mark.1»" if applied else ""
    shown = f"x{ours}typed «mark.2»amoreb«mark.0»\n"
    user = sync.did_change(11, [ContentChange(None, shown)])
    # in the room's text, where «mark.1» is, shown or not
    assert user == ([[9, "typed ", 9, "more"]] if applied else [[1, "typed ", 17, "more"]])
    assert sync.text == shown
    again = sync.edit_to_send()
    if applied:
        assert again is None and sync.quiet and _counts(sync) == (1, 1, 0)
    else:
        assert again is not None and again.edits == (TextEdit((0, 7), (0, 7), "«mark.1»"),)


def test_whole_text_change_after_a_delete_the_editor_missed_is_read_at_the_deletes_place() -> None:
    """A full-sync client reports the user's delete of one of the two characters a peer's
    delete takes, without the peer's delete.  Both readings cost one character (the user
    deleted "0", or the editor applied the delete and the user typed "1" where it was); the
    delete's own place decides: text of it put back at its place means the editor missed
    it, and it is sent again, the user's delete kept."""
    sync = EditorSync("val = 10\n", 6, "utf-16")
    sync.receive_remote([6, -2])
    assert sync.edit_to_send() == EditToApply(6, (TextEdit((0, 6), (0, 8), ""),))
    assert sync.edit_answered(True) == []
    assert sync.did_change(7, [ContentChange(None, "val = 1\n")]) == [[]]  # (within the peer's)
    assert _counts(sync) == (1, 0, 1) and sync.target == "val = \n"
    assert sync.edit_to_send() == EditToApply(7, (TextEdit((0, 6), (0, 7), ""),))


def test_version_blind_client_shifted_edit_is_put_right_not_sent() -> None:
    """A client that ignores versions applies our edit after the user's typing, at the
    places as sent: the editor is corrected, the room never sees the misplacement."""
    sync = EditorSync("abc\ndef\n", 1, "utf-16")
    sync.receive_remote([5, "X"])  # "abc\ndXef\n"
    assert sync.edit_to_send() == EditToApply(1, (TextEdit((1, 1), (1, 1), "X"),))
    assert sync.did_change(2, [ContentChange((1, 0, 1, 0), "uu")]) == [[4, "uu"]]
    # it arrives anyway, at (1, 1) of the new text: "uXudef" where "uudXef" was meant
    assert sync.did_change(3, [ContentChange((1, 1, 1, 1), "X")]) == []
    assert sync.edit_answered(True) == []
    fix = sync.edit_to_send()
    assert fix is not None
    assert sync.stats["shifted"] == 1 and sync.target == "abc\nuudXef\n"


def test_version_blind_client_text_it_took_comes_back_what_the_user_deleted_goes() -> None:
    """A peer's delete, applied at its place as sent after the user typed there, takes a
    character of what the user typed; the user then deletes what they see of it.  The room
    loses exactly that, and gets back what the client took (tests/e2e/test_lsp_convergence.py:
    a marker so broken loses only the piece its user deleted)."""
    sync = EditorSync("xyz", 1, "utf-16")
    sync.receive_remote([1, -1])  # the peer deleted "y"
    assert sync.edit_to_send() == EditToApply(1, (TextEdit((0, 1), (0, 2), ""),))
    assert sync.did_change(2, [ContentChange((0, 1, 0, 1), "«M»")]) == [[1, "«M»"]]  # the user types
    # the client deletes (0, 1)-(0, 2) of "x«M»yz": "xM»yz", not "x«M»z"
    assert sync.did_change(3, [ContentChange((0, 1, 0, 2), "")]) == []
    assert sync.edit_answered(True) == []
    # the user deletes the "M»" they see: in the room's "x«M»z", those two
    assert sync.did_change(4, [ContentChange((0, 1, 0, 3), "")]) == [[2, -2]]
    assert sync.edit_to_send() == EditToApply(4, (TextEdit((0, 1), (0, 2), "«"),))
    assert sync.target == "x«z" and sync.stats["shifted"] == 1


def _counts(sync: EditorSync) -> tuple[int, int, int]:
    return sync.stats["sent"], sync.stats["confirmed"], sync.stats["missed"]


def test_a_place_that_changes_nothing_is_not_sent() -> None:
    """A peer's editor widened its change over a CRLF, so the room has a CR replaced by a CR:
    the TextEdit for that place, widened over the CRLF again, would change nothing. It is
    left out: an editor reports it as a change of its own (seed 227 of the convergence test:
    Neovim reported it first, and the edit's other pieces were taken for the user's typing)."""
    sync = EditorSync("ab\r\ncd\n", 5, "utf-16")
    sync.receive_remote(["X"])
    sync.receive_remote([3, "\r", -1])
    edit = sync.edit_to_send()
    assert edit is not None and edit.edits == (TextEdit((0, 0), (0, 0), "X"),)
    sync.edit_answered(True)
    assert sync.did_change(6, [ContentChange((0, 0, 0, 0), "X")]) == []
    assert sync.quiet and sync.text == "Xab\r\ncd\n"


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full-sync"])
def test_a_change_that_changes_nothing_is_no_sign_of_typing(full: bool) -> None:
    """Neovim without debounce reports each TextEdit of an edit in its own didChange, and
    one that replaces a text by the same text too (whole, in full sync): the text did not
    move, so it says nothing of the user typing first. (It was taken for that, and every
    later piece of the edit was sent to the room as typing: the peers' text doubled.)"""
    sync = EditorSync("one\r\ntwo\n", 5, "utf-16")
    sync.receive_remote(["A", 5, "B"])
    edit = sync.edit_to_send()
    assert edit is not None and len(edit.edits) == 2

    def change(rng: tuple[int, int, int, int], new: str, whole: str) -> list[ContentChange]:
        return [ContentChange(None, whole)] if full else [ContentChange(rng, new)]

    assert sync.did_change(6, change((0, 3, 1, 0), "\r\n", "one\r\ntwo\n")) == []  # nothing moved
    assert sync.did_change(7, change((1, 0, 1, 0), "B", "one\r\nBtwo\n")) == []
    assert sync.did_change(8, change((0, 0, 0, 0), "A", "Aone\r\nBtwo\n")) == []
    assert sync.edit_answered(True) == []
    assert sync.quiet and sync.text == "Aone\r\nBtwo\n" and sync.version == 8
    assert sync.stats["confirmed"] == 1 and sync.stats["missed"] == 0


def test_a_change_that_changes_nothing_then_the_users_typing_is_the_users() -> None:
    """The same, but what follows is the user's typing: the edit was skipped (Neovim's
    "newer than edits") and goes again once the editor answers."""
    sync = EditorSync("one\ntwo\n", 5, "utf-16")
    sync.receive_remote(["A", 4, "B"])
    assert sync.edit_to_send() is not None
    assert sync.did_change(6, [ContentChange(None, "one\ntwo\n")]) == []
    assert sync.did_change(7, [ContentChange(None, "one\ntwo!\n")]) == [[9, "!"]]
    assert sync.edit_answered(True) == []
    again = sync.edit_to_send()
    assert again is not None and again.version == 7
    assert [e.new_text for e in again.edits] == ["A", "B"]


class _Eager(random.Random):
    """Neovim's choices made plain: every TextEdit applied as sent, versions step by one, and
    each change reported at once (no debounce)."""

    def choice(self, seq: Any) -> Any:
        return seq[0]

    def random(self) -> float:
        return 0.0


@pytest.mark.parametrize("make", [Neovim07, FullSync])
def test_a_catch_up_with_a_place_that_changes_nothing_is_not_doubled(make: Callable[..., SimEditor]) -> None:
    """Seed 227 of the convergence test, without sockets: a catch-up holds a peer's insert and
    a CR replaced by a CR; Neovim reports each TextEdit as it applies it, last first."""
    nvim = make("ab\r\ncd\n", _Eager(), version=5)
    hub, me = _pair(nvim)
    hub.remote(["X"])
    hub.remote([3, "\r", -1])
    for _, rev, op in me.from_hub:  # both arrive before the bridge sends an edit
        me.sync.receive_remote(me.client.receive_op(rev, op)[0])
    me.from_hub.clear()
    me.pump()
    hub.settle()
    hub.assert_converged()
    assert hub.seq.text == "Xab\r\ncd\n"
    assert me.sync.stats["missed"] == 0 and me.client.next_seq == 1, "nothing taken for typing"


def test_a_whole_text_of_repeated_lines_is_read_in_bounded_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full-sync client reports a text of 9,000 identical lines, our edit in it and the
    user's typing at both ends: each diff of it walked every place of every line (a minute
    of a frozen language server for one keystroke); now each stays within its budget, and
    the user's typing reaches the room."""
    body = "    x = 1\n" * 9_000
    sync = EditorSync("<" + body + ">", 3, UTF16)
    sync.receive_remote([1, "PEER "])
    assert sync.edit_to_send() is not None
    steps = search_steps(monkeypatch)
    shown = "«<PEER " + body + ">»"
    user = sync.did_change(4, [ContentChange(None, shown)])
    room = "<PEER " + body + ">"
    for op in user:
        room = ops.apply(room, op)
    assert room == shown == sync.text and sync.target == shown
    assert sync.edit_answered(True) == [] and sync.quiet
    assert steps[0] <= 4 * ops._DIFF_WORK  # (a few diffs, each within its budget)


@pytest.mark.parametrize("blind", [False, True], ids=["applied", "applied-after-typing"])
def test_a_catch_up_of_many_places_in_a_large_text_is_sent_and_recognised(blind: bool) -> None:
    """After an outage, one edit holds every place the editor has not shown, each a TextEdit,
    and the editor reports each as a change of one didChange, the last place first: reading
    them, and recognising them as the edit, is linear in the text and the places (it was
    their product, a pass over the text for each: minutes for a megabyte and a few thousand
    places). *blind*: a client that ignores versions applies it after the user's typing."""
    text = "".join(f"line {i}\n" for i in range(100_000))
    sync = EditorSync(text, 1, UTF16)
    for i in range(3000, 0, -1):
        sync.receive_remote([text.index(f"line {i * 30}\n"), "+"])
    edit = sync.edit_to_send()
    assert edit is not None and len(edit.edits) == 3000
    if blind:
        assert sync.did_change(2, [ContentChange((0, 0, 0, 0), "!")]) == [["!"]]
    changes = [ContentChange((*e.start, *e.end), e.new_text) for e in reversed(edit.edits)]
    assert sync.did_change(3, changes) == []
    assert sync.edit_answered(True) == []
    if blind:
        assert sync.stats["shifted"] == 1 and sync.target[:1] == "!"
    else:
        assert sync.quiet and sync.stats["confirmed"] == 1 and sync.text.count("+") == 3000


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8", "utf-32"])
def test_apply_changes_gives_the_text_pygls_tracks_for_the_same_changes(encoding: str) -> None:
    """The short way of a ``didChange`` (lsp_bridge/rpc.py) updates the workspace's document
    with :func:`apply_changes` instead of pygls's own update: the same text, CRLFs, astral
    characters and several changes in one notification included; and the cursor guess is
    the end of the last change."""
    from lsprotocol import types as lsp
    from pygls.workspace import TextDocument
    from pygls.workspace.position_codec import PositionCodec

    kinds = {"utf-16": lsp.PositionEncodingKind.Utf16, "utf-8": lsp.PositionEncodingKind.Utf8}
    codec = PositionCodec(kinds.get(encoding, lsp.PositionEncodingKind.Utf32))
    rng = random.Random(14)
    alphabet = ["a", "b", " ", "\n", "\r\n", "é", "\U0001f600", "x"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        doc = TextDocument("file:///t.txt", text, position_codec=codec)
        changes = []
        current = text
        end_of_last = -1
        for _ in range(rng.randrange(1, 4)):
            lines = current.splitlines(keepends=True) or [""]
            places = [(i, k) for i, line in enumerate(lines) for k in range(len(line.rstrip("\r\n")) + 1)]
            (sl, sc), (el, ec) = sorted(rng.sample(places, 2) if len(places) > 1 else places * 2)
            units = [codec.client_num_units(lines[sl][:sc]), codec.client_num_units(lines[el][:ec])]
            new = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 4)))
            change = lsp.TextDocumentContentChangePartial(
                range=lsp.Range(
                    start=lsp.Position(line=sl, character=units[0]),
                    end=lsp.Position(line=el, character=units[1]),
                ),
                text=new,
            )
            doc.apply_change(change)
            changes.append(ContentChange((sl, units[0], el, units[1]), new))
            end_of_last = sum(map(len, lines[:sl])) + sc + len(new)
            current = doc.source
        assert apply_changes(text, changes, encoding) == (doc.source, end_of_last)


def test_the_buffers_own_copy_after_the_users_change_is_the_text_here() -> None:
    """Issue 14: the server has the buffer's text after a ``didChange`` already (its copy of
    the buffer); given it with the text it was made from, the sync takes it as its own text
    instead of making it again (a copy of the whole text per keystroke).  A copy made from
    another text than the sync's is not taken."""
    sync = EditorSync("hello\nworld", 1, "utf-16")
    before = sync.text
    change = ContentChange((1, 5, 1, 5), "!")
    after, _ = apply_changes(before, [change], "utf-16")
    assert sync.did_change(2, [change], (before, after)) == [[11, "!"]]
    assert sync.text is after
    other = "".join(["hello\nworld", "!"])  # (the same text, another string)
    change = ContentChange((0, 0, 0, 0), ">")
    made, _ = apply_changes(other, [change], "utf-16")
    assert sync.did_change(3, [change], (other, made)) == [[">"]]
    assert sync.text == made and sync.text is not made


def test_the_buffers_own_copy_after_a_peers_edit_is_the_text_shown() -> None:
    """Issue 14: a peer's edit goes to the editor, which reports it back as a change; the
    server's copy of the buffer after that change is the text the edit was expected to make,
    so it becomes the text shown as it is: the edit's text is not made again to show it, and
    the buffer's next change finds its text here already (one string for both)."""
    sync = EditorSync("hello\nworld", 1, "utf-16")
    sync.receive_remote([6, "brave "])
    edit = sync.edit_to_send()
    assert edit is not None
    assert sync.edit_answered(True) == []
    before = sync.text
    changes = [ContentChange((*e.start, *e.end), e.new_text) for e in edit.edits]
    after, _ = apply_changes(before, changes, "utf-16")
    assert sync.did_change(2, changes, (before, after)) == []
    assert sync.quiet and sync.text is after and after == "hello\nbrave world"


@pytest.mark.parametrize("report", ["as-sent", "whole-text", "another-way"])
def test_a_peers_edit_to_a_large_text_is_not_made_whole_when_reported_as_sent(report: str) -> None:
    """Issue 14: the text a peer's edit gives a large document is made only if it is read. An
    editor that reports the edit as one change that is the edit's own op on the text it was
    sent for (also a whole-text change: read as a diff, it is that op) has made that text: it
    is shown as the buffer's copy, and the expected one never made.  Reported as another op
    with the same effect, the expected text is made and compared, and shown the same."""
    text = "x = 1\n" * (deferred.EAGER_LENGTH // 6 + 1)
    sync = EditorSync(text, 1, "utf-16")
    sync.receive_remote([600, "y"])
    edit = sync.edit_to_send()
    assert edit is not None and len(edit.edits) == 1
    sent = sync._sent
    assert sent is not None and sent.after.behind  # not made
    assert sync.edit_answered(True) == []
    before = sync.text
    changes = [ContentChange((*e.start, *e.end), e.new_text) for e in edit.edits]
    after, _ = apply_changes(before, changes, "utf-16")
    if report == "whole-text":
        changes = [ContentChange(None, after)]
    elif report == "another-way":  # "x" at 600 replaced by "yx"
        changes = [ContentChange((100, 0, 100, 1), "yx")]
    assert sync.did_change(2, changes, (before, after)) == []
    assert sync.quiet and sync.text is after and after == text[:600] + "y" + text[600:]
    assert bool(sent.after.behind) is (report != "another-way")


def test_an_answered_edit_shows_already_only_a_kept_final_newline_more() -> None:
    """``_shows_already``: the editor's text is the edit's effect, or that with a final line
    break more (Neovim keeps it); told by the lengths first, so that a large expected text is
    made only when the lengths fit."""
    from lsp_bridge.editor_sync import _shows_already

    base = DeferredText("a\r\nb\r\n")
    expected = base.then([4, -2])  # the final CRLF dropped
    assert _shows_already("a\r\nb", expected)
    assert _shows_already("a\r\nb\r\n", expected)
    assert _shows_already("a\r\nb\n", expected)
    assert not _shows_already("a\r\nb\r\n\n", expected)
    assert not _shows_already("a\r\nbxy", expected)
    assert not _shows_already("a\r\n", expected)
    big = DeferredText("z" * (deferred.EAGER_LENGTH + 1)).then([5, "y"])
    assert not _shows_already("z" * 10, big) and big.behind  # not made
