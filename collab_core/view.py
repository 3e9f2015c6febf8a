"""A view of a document that shows remote ops later than the client learns them (sans-I/O).

The client state machine (:mod:`collab_core.client`) takes hub messages as
soon as they arrive, so acks keep flowing.  Whoever *shows* the text (an
editor buffer, or a trace replay's agent) may not be ready to show a remote
op yet, and meanwhile keeps making edits against what it shows.  A
:class:`LaggingView` sits between the two: remote ops wait in
:attr:`pending` until :meth:`show_next`, and a local edit made against the
shown text is transformed past the pending ops before it goes to the client,
while the pending ops are transformed past the edit.

Invariant: applying every pending op to :attr:`text` gives the client's text.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from . import ops

__all__ = ["LaggingView"]


class LaggingView:
    """See the module docstring.  Each pending op carries an opaque *tag*."""

    def __init__(self, text: str) -> None:
        #: the text as shown
        self.text = text
        #: (tag, op) not shown yet, oldest first; each applies after the one before
        self.pending: deque[tuple[Any, ops.Op]] = deque()

    def receive_remote(self, op: ops.Op, tag: Any = None) -> None:
        """A remote op as the client state machine returned it (it applies after all pending ones)."""
        self.pending.append((tag, op))

    def show_next(self) -> tuple[Any, ops.Op]:
        """Apply the oldest pending op to the shown text; returns it."""
        tag, op = self.pending.popleft()
        self.text = ops.apply(self.text, op)
        return tag, op

    def show(self, count: int, result: str | None = None) -> None:
        """:meth:`show_next` *count* times, the text rewritten once (composed, the ops touch
        a large text once, not once each: a catch-up of thousands of keystrokes).

        *result*: the text they make, if the caller has it already (not made again)."""
        op: ops.Op = []
        for _ in range(count):
            op = ops.compose(op, self.pending.popleft()[1])
        self.text = ops.apply(self.text, op) if result is None else ops.applied(self.text, op, result)

    def local(self, op: ops.Op, result: str | None = None) -> ops.Op:
        """An edit made against the shown text; returns it as the client must see it.

        *result*: the shown text with *op* applied, if the caller has it already (the
        editor's own copy of its buffer): taken as it is, not made again (a copy of the
        whole text per keystroke)."""
        self.text = ops.apply(self.text, op) if result is None else ops.applied(self.text, op, result)
        if not self.pending:
            return op
        moved: deque[tuple[Any, ops.Op]] = deque()
        for tag, remote in self.pending:
            op, remote = ops.transform(op, remote)
            moved.append((tag, remote))
        self.pending = moved
        return op
