"""The client's half of server-ordered OT (the ot.js client states), sans-I/O.

A :class:`DocumentClient` tracks one document on one client:

* ``SYNCHRONIZED``: nothing unacknowledged;
* ``AWAITING_ACK``: one op (``outstanding``) sent, not yet acknowledged;
* ``AWAITING_WITH_BUFFER``: as above, plus local changes composed into
  ``buffer`` that will be sent when the ack arrives.

Methods take what happened (a local edit, an ack, a broadcast op) and return
what to do: an :class:`Outgoing` to send to the hub and/or an op to apply to
the local view.  The hub and the language server both reuse it; a client
never has more than one op in flight per document, so acks and broadcasts
arrive in revision order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from . import ops
from .errors import InvalidState

__all__ = ["ClientState", "DocumentClient", "Outgoing"]


class ClientState(enum.Enum):
    SYNCHRONIZED = "synchronized"
    AWAITING_ACK = "awaiting_ack"
    AWAITING_WITH_BUFFER = "awaiting_with_buffer"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An op to submit: made against ``base_rev``, numbered ``seq`` by this client."""

    seq: int
    base_rev: int
    op: ops.Op


class DocumentClient:
    """See the module docstring."""

    def __init__(self, text: str, rev: int, client_id: str, *, next_seq: int = 1) -> None:
        self.client_id = client_id
        #: the text as this client sees it (hub text plus local changes)
        self.text = text
        #: the last hub revision this client has seen
        self.rev = rev
        self.outstanding: Outgoing | None = None
        self.buffer: ops.Op | None = None
        self._next_seq = next_seq

    @property
    def state(self) -> ClientState:
        if self.outstanding is None:
            return ClientState.SYNCHRONIZED
        if self.buffer is None:
            return ClientState.AWAITING_ACK
        return ClientState.AWAITING_WITH_BUFFER

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def apply_local(self, op: ops.Op) -> Outgoing | None:
        """The user changed the text by *op*; returns what to send now, if anything."""
        self.text = ops.apply(self.text, op)
        # transform breaks ties by the shape of its first operand (an insert
        # spelled after a delete at the same place loses to a concurrent
        # insert there); the hub sees the canonical form, so must we
        op = ops.normalize(op)
        if not op:
            return None
        if self.outstanding is None:
            return self._send(op)
        self.buffer = op if self.buffer is None else ops.compose(self.buffer, op)
        return None

    def receive_ack(self, rev: int) -> Outgoing | None:
        """The hub committed the outstanding op as *rev*; returns the next op to send."""
        if self.outstanding is None:
            raise InvalidState("ack with nothing outstanding")
        if rev != self.rev + 1:
            raise InvalidState(f"ack for rev {rev}, expected {self.rev + 1}")
        self.rev = rev
        self.outstanding = None
        if self.buffer is not None:
            buffered, self.buffer = self.buffer, None
            return self._send(buffered)
        return None

    def receive_op(
        self, rev: int, op: ops.Op, client_id: str | None = None, seq: int | None = None
    ) -> tuple[ops.Op, Outgoing | None]:
        """A hub op with revision *rev*.

        Returns the op to apply to the local view (already applied to
        :attr:`text`) and, when the op turned out to be our own outstanding
        one (seen again after a reconnect), the next op to send.
        """
        if rev != self.rev + 1:
            raise InvalidState(f"op for rev {rev}, expected {self.rev + 1}")
        out = self.outstanding
        if out is not None and client_id == self.client_id and seq == out.seq:
            return [], self.receive_ack(rev)
        self.rev = rev
        if out is not None:
            out_op, op = ops.transform(out.op, op)
            self.outstanding = Outgoing(out.seq, out.base_rev, out_op)
            if self.buffer is not None:
                self.buffer, op = ops.transform(self.buffer, op)
        self.text = ops.apply(self.text, op)
        return op, None

    def resend(self) -> Outgoing | None:
        """After a reconnect (and after catching up with :meth:`receive_op`):
        the outstanding op again, same seq, against the current revision."""
        out = self.outstanding
        if out is None:
            return None
        self.outstanding = Outgoing(out.seq, self.rev, out.op)
        return self.outstanding

    def _send(self, op: ops.Op) -> Outgoing:
        self.outstanding = Outgoing(self._next_seq, self.rev, op)
        self._next_seq += 1
        return self.outstanding
