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

Three additions serve the detours of a long session:

* **held**: while the document is being created, opened or re-read, local
  changes only go to ``buffer``; :meth:`release` sends them.
* **size**: with ``max_op_bytes`` set (from the hub's message limit), an op
  whose JSON is larger goes in pieces, one in flight at a time, the rest
  waiting in ``buffer`` (:func:`~collab_core.ops.split`); so does an op of
  more than ``max_op_components`` components (the hub's ``maxOpComponents``).
* **rebase**: :meth:`rebase` moves the unsent local changes onto a text the
  hub sent whole (a first open of a document whose text we had, or the last
  resort after a refusal): they survive, transformed past the difference.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, TypeGuard

from . import ops
from .deferred import DeferredText
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

    def __init__(
        self,
        text: str,
        rev: int,
        client_id: str,
        *,
        next_seq: int = 1,
        held: bool = False,
        max_op_bytes: int | None = None,
        max_op_components: int | None = None,
    ) -> None:
        self.client_id = client_id
        #: the text as this client sees it (hub text plus local changes)
        self.text = text
        #: the last hub revision this client has seen
        self.rev = rev
        self.outstanding: Outgoing | None = None
        self.buffer: ops.Op | None = None
        #: while held, local changes wait in the buffer (see the module docstring)
        self.held = held
        self.max_op_bytes = max_op_bytes
        self.max_op_components = max_op_components
        self._next_seq = next_seq
        # the hub's text at `rev` (the hub ops are applied to it when it is read)
        self._shadow = DeferredText(text)

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

    @property
    def unacknowledged(self) -> bool:
        """Local changes the hub has not acknowledged (in flight or buffered)."""
        return self.outstanding is not None or self.buffer is not None

    def apply_local(self, op: ops.Op, result: str | None = None) -> Outgoing | None:
        """The user changed the text by *op*; returns what to send now, if anything.

        *result*: :attr:`text` with *op* applied, if the caller has it already (checked as
        :func:`~collab_core.ops.applied` checks it, not made again)."""
        self.text = ops.apply(self.text, op) if result is None else ops.applied(self.text, op, result)
        # transform breaks ties by the shape of its first operand (an insert
        # spelled after a delete at the same place loses to a concurrent
        # insert there); the hub sees the canonical form, so must we
        op = ops.normalize(op)
        if not op:
            return None
        if self.outstanding is None and self.buffer is None and not self.held:
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
        self._advance_shadow(self.outstanding.op)
        self.outstanding = None
        return self._send_buffer()

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
        self._advance_shadow(op)
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

    def saved(self) -> dict[str, Any]:
        """What :meth:`restored` needs to go on from here in another process (plain JSON):
        the hub's text at :attr:`rev`, the op in flight and the buffer, the seq to go on from."""
        out = self.outstanding
        return {
            "rev": self.rev,
            "shadow": self.shadow,
            "outstanding": None if out is None else {"seq": out.seq, "op": out.op},
            "buffer": self.buffer,
            "nextSeq": self._next_seq,
        }

    @classmethod
    def restored(cls, saved: Any, client_id: str) -> DocumentClient:
        """A client as :meth:`saved` left it (held: the caller releases it once caught up, and
        sets its limits).  Raises ``ValueError`` on anything :meth:`saved` cannot have written."""
        if not isinstance(saved, dict):
            raise ValueError("not an object")
        rev, next_seq, shadow = _count_at(saved, "rev"), _count_at(saved, "nextSeq"), saved.get("shadow")
        if not isinstance(shadow, str):
            raise ValueError("shadow")
        if next_seq < 1:
            raise ValueError("nextSeq")
        raw_out, raw_buffer = saved.get("outstanding"), saved.get("buffer")
        text = shadow
        out = None
        if raw_out is not None:
            if not isinstance(raw_out, dict) or not _count(raw_out.get("seq")) or raw_out["seq"] >= next_seq:
                raise ValueError("outstanding")
            op = ops.check(raw_out.get("op"))
            if ops.base_length(op) > len(text):
                raise ValueError("the op in flight does not fit the text")
            text = ops.apply(text, op)
            out = Outgoing(raw_out["seq"], rev, op)
        buffer = None
        if raw_buffer is not None:
            buffer = ops.check(raw_buffer)
            if ops.base_length(buffer) > len(text):
                raise ValueError("the buffer does not fit the text")
            text = ops.apply(text, buffer)
        client = cls(text, rev, client_id, next_seq=next_seq, held=True)
        client._shadow = DeferredText(shadow)
        client.outstanding, client.buffer = out, buffer
        return client

    def hold(self) -> None:
        """Stop sending: local changes wait in the buffer until :meth:`release`."""
        self.held = True

    def release(self) -> Outgoing | None:
        """Sending may go on: returns the op to send now, if anything waits."""
        self.held = False
        if self.outstanding is not None:
            return None
        return self._send_buffer()

    def unsend(self) -> None:
        """The hub refused the outstanding op (it applied nothing): it goes back
        in front of the buffer and waits there, held, with the rest."""
        out = self.outstanding
        self.held = True
        if out is None:
            return
        self.outstanding = None
        self.buffer = out.op if self.buffer is None else ops.compose(out.op, self.buffer)

    def discard_local(self) -> None:
        """Forget the local changes the hub has not acknowledged (it will not take them:
        a viewer's).  Only while nothing is in flight; sending may go on."""
        if self.outstanding is not None:
            raise InvalidState("discard with an op in flight")
        self.buffer = None
        self.text = self.shadow
        self.held = False

    def rebase(self, text: str, rev: int) -> ops.Op:
        """The hub's text at *rev* is *text*; our local changes (the buffer) move onto it.

        Only while nothing is in flight.  The buffer is transformed past the
        difference between the hub text we knew (:attr:`shadow`) and *text*,
        so what the user typed survives.  Returns the op that turns our old
        :attr:`text` into the new one, for the local view.
        """
        if self.outstanding is not None:
            raise InvalidState("rebase with an op in flight")
        correction = ops.diff(self.shadow, text)
        mine, theirs = ops.transform(self.buffer or [], correction)
        self.buffer = mine or None
        self.rev = rev
        self._shadow = DeferredText(text)
        self.text = ops.apply(text, mine)
        return theirs

    @property
    def shadow(self) -> str:
        """The hub's text at :attr:`rev` as this client knows it (without local changes)."""
        return self._shadow.text

    @property
    def shadow_length(self) -> int:
        """``len(self.shadow)``, without applying what the shadow is behind by."""
        return self._shadow.length

    def _advance_shadow(self, op: ops.Op) -> None:
        # composed while that is cheap; applied when read, or once composing would cost as much
        self._shadow = self._shadow.then(op)

    def _send_buffer(self) -> Outgoing | None:
        if self.buffer is None or self.held:
            return None
        buffered, self.buffer = self.buffer, None
        return self._send(buffered)

    def _send(self, op: ops.Op) -> Outgoing:
        if self.max_op_bytes is not None or self.max_op_components is not None:
            op, rest = ops.split(op, self.max_op_bytes, max_components=self.max_op_components)
            if rest:
                self.buffer = rest if self.buffer is None else ops.compose(rest, self.buffer)
        self.outstanding = Outgoing(self._next_seq, self.rev, op)
        self._next_seq += 1
        return self.outstanding


def _count(value: Any) -> TypeGuard[int]:
    """A JSON integer >= 0 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count_at(saved: dict[str, Any], key: str) -> int:
    value = saved.get(key)
    if _count(value):
        return value
    raise ValueError(key)
