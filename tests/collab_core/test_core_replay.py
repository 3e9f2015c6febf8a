"""Sans-I/O replays of real editing traces (tests/data/traces, see its README)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from collab_core import ops
from collab_core.client import DocumentClient, Outgoing
from collab_core.view import LaggingView
from collab_server.document import ClientId, Rev, Sequenced, Sequencer, Submission
from tests.support.traces import causal_counts, cut_points, load, txn_op

pytestmark = pytest.mark.slow


def test_sveltecomponent_through_the_sequencer() -> None:
    d = load("sveltecomponent.json.gz")
    hub = Sequencer(d["startContent"], 0, history_limit=16)
    for i, txn in enumerate(d["txns"]):
        r = hub.submit(Submission(ClientId("writer"), i + 1, hub.rev, ops.check(txn_op(txn["patches"]))))
        assert isinstance(r, Sequenced)
        hub.take_unsent()
        hub.commit(r.rev)
    assert hub.text == hub.committed_text == d["endContent"]
    assert hub.rev == len(d["txns"])


class Agent:
    """One agent: a client state machine that takes every hub message, and the view it edits."""

    def __init__(self, index: int, n: int) -> None:
        self.index = index
        self.client = DocumentClient("", 0, f"agent{index}")
        self.view = LaggingView("")
        self.applied = 0  # own txns applied locally
        self.covers: dict[int, int] = {}  # seq -> own txn count covered when that Outgoing was made
        self.acked_upto = 0  # own txns covered by acked ops
        self.shown = [0] * n  # per author: txns of theirs the view shows
        self.delivered = 0  # how much of the hub stream this client has received


class Replay:
    """One Sequencer, a DocumentClient and a LaggingView per agent, the README's delivery rule.

    Hub messages reach a client only when the replay needs them (the laziest
    network, which makes the clients compose the most), or also at random
    moments when *rng* is given.
    """

    def __init__(self, d: dict[str, Any], rng: random.Random | None = None) -> None:
        self.txns = d["txns"]
        self.n = d["numAgents"]
        self.rng = rng
        self.hub = Sequencer("", 0, history_limit=1_000_000)
        self.agents = [Agent(a, self.n) for a in range(self.n)]
        self.log: list[tuple[Sequenced, int]] = []  # the hub's stream: (op, author agent)
        # what each author learnt from its acks: rev -> (author, its txn count covered)
        self.tags: dict[int, tuple[int, int]] = {}
        self.seen = causal_counts(self.txns, self.n)
        self.cuts = cut_points(self.txns, self.seen, self.n)
        self.hub_ops = [0] * self.n

    def send(self, ag: Agent, out: Outgoing | None) -> None:
        if out is None:
            return
        ag.covers[out.seq] = ag.applied
        sub = Submission(ClientId(ag.client.client_id), out.seq, Rev(out.base_rev), ops.check(out.op))
        r = self.hub.submit(sub)
        assert isinstance(r, Sequenced), r
        self.hub.take_unsent()
        self.hub.commit(r.rev)
        self.log.append((r, ag.index))
        self.hub_ops[ag.index] += 1

    def deliver_one(self, ag: Agent) -> None:
        """The next hub message to *ag*'s client: its own ack, or another's op (into the view's pending)."""
        assert ag.delivered < len(self.log), "waiting for a hub message that nobody will send"
        r, author = self.log[ag.delivered]
        ag.delivered += 1
        c = ag.client
        if author == ag.index:
            seq = c.outstanding.seq if c.outstanding is not None else None
            self.send(ag, c.receive_ack(r.rev))
            assert seq == r.seq
            ag.acked_upto = ag.covers[r.seq]
            self.tags[r.rev] = (author, ag.acked_upto)
        else:
            op, out = c.receive_op(r.rev, r.op)
            assert out is None
            ag.view.receive_remote(op, r.rev)

    def show(self, ag: Agent, need: list[int]) -> None:
        """Show pending remote ops while they are within *need* (per author: txn count)."""
        view = ag.view
        while view.pending:
            tag = self.tags.get(view.pending[0][0])
            if tag is None or tag[1] > need[tag[0]]:
                return  # not acked to its author yet, so it covers more than anyone needs yet
            view.show_next()
            ag.shown[tag[0]] = tag[1]

    def maybe_deliver_more(self) -> None:
        if self.rng is None:
            return
        for ag in self.agents:
            for _ in range(self.rng.randrange(3)):
                if ag.delivered < len(self.log):
                    self.deliver_one(ag)

    def run(self) -> None:
        for i, t in enumerate(self.txns):
            a = t["agent"]
            ag = self.agents[a]
            need = self.seen[i]
            assert ag.applied == need[a]
            # an op of ours must not run across a place where another agent's txn cuts
            if ag.applied in self.cuts[a]:
                while ag.client.buffer is not None:
                    self.deliver_one(ag)
            for b in range(self.n):
                if b == a:
                    continue
                # b's txns up to need[b] must be out and acked to b ...
                other = self.agents[b]
                while other.acked_upto < need[b]:
                    self.deliver_one(other)
                # ... and arrive here
                self.show(ag, need)
                while ag.shown[b] < need[b]:
                    self.deliver_one(ag)
                    self.show(ag, need)
            # the README's rule: the view shows exactly the parents' prefix of every other agent
            for b in range(self.n):
                if b != a:
                    assert ag.shown[b] == need[b], (i, a, b, ag.shown[b], need[b])
            ag.applied += 1
            op = ag.view.local(txn_op(t["patches"]))
            self.send(ag, ag.client.apply_local(op))
            self.maybe_deliver_more()
        # drain: everything reaches everyone
        while any(ag.delivered < len(self.log) for ag in self.agents):
            for ag in self.agents:
                while ag.delivered < len(self.log):
                    self.deliver_one(ag)
        for ag in self.agents:
            while ag.view.pending:
                ag.view.show_next()


@pytest.mark.parametrize("seed", [None, 1, 2], ids=["lazy", "random1", "random2"])
def test_friendsforever_concurrent_replay_converges(seed: int | None) -> None:
    d = load("friendsforever.json.gz")
    replay = Replay(d, None if seed is None else random.Random(seed))
    replay.run()
    assert replay.hub.text == d["endContent"]
    for ag in replay.agents:
        assert ag.client.outstanding is None and ag.client.buffer is None
        assert ag.client.text == ag.view.text == d["endContent"]
        assert ag.applied == sum(1 for t in replay.txns if t["agent"] == ag.index)
    # ops were composed (one op in flight), yet every txn boundary someone needed survived
    assert sum(replay.hub_ops) == replay.hub.rev < len(replay.txns)
