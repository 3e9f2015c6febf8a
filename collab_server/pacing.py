"""Pacing: no one connection gets more than its share of the hub's event loop (sans-I/O).

The hub has one event loop; every message it handles holds it for a while.
Each message's work is bounded (frame size, op components, transform
budget), but a client can still send such messages back to back, and every
other client's request then waits behind one of them at each step of its
way through the hub.  A :class:`Pacer` per connection is charged the CPU
time the hub spends on that connection's messages (decoding them in its
reader, and what a document task spends on its ops, opens and digests) and
answers how long the reader waits before taking the connection's next
message: ``cost * (1 / share - 1)``, so that over time the connection
uses at most *share* of the loop.  Messages that cost less than *free*
(typing, presence, pings) never wait, and no wait is longer than *longest*
(the first keystroke after opening a document of many megabytes waits at
most that long; a client that keeps sending such messages still gets little
more than its share).  No clock here: costs come in.
"""

from __future__ import annotations

__all__ = ["Pacer"]


class Pacer:
    """See the module docstring."""

    __slots__ = ("share", "free", "longest", "owed", "paused")

    def __init__(self, share: float, free: float = 0.001, longest: float = 1.0) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError("share must be in (0, 1]")
        if free < 0.0 or longest < 0.0:
            raise ValueError("free and longest must not be negative")
        self.share = share
        self.free = free
        self.longest = longest
        #: CPU seconds spent on this connection since its last pause
        self.owed = 0.0
        #: seconds this connection was made to wait in all
        self.paused = 0.0

    def charge(self, seconds: float) -> None:
        """The hub spent *seconds* of CPU time on this connection's behalf."""
        self.owed += seconds

    def pause(self) -> float:
        """Seconds to wait before the connection's next message (0: go on now)."""
        owed, self.owed = self.owed, 0.0
        if owed <= self.free:
            return 0.0
        wait = min(owed * (1.0 / self.share - 1.0), self.longest)
        self.paused += wait
        return wait
