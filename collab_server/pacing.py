"""Pacing: no one connection gets more than its share of the hub's event loop (sans-I/O).

The hub has one event loop; every message it handles holds it for a while.
Each message's work is bounded (frame size, op components, transform
budget), but a client can still send such messages back to back, and every
other client's request then waits behind one of them at each step of its
way through the hub.  A :class:`Pacer` per connection is charged the time
the hub's loop spends on that connection's messages (wall time of the
synchronous work, which is what every other connection waits for; the
thread's CPU clock would cost a system call per reading) (decoding them in its
reader, and what a document task spends on its ops, opens, digests and
history requests, often after the reader has taken the next message) and
answers, when the reader is about to take the next one, how long it waits:
long enough that the CPU time charged since the previous message was taken
is at most *share* of the time from then until the next one goes on
(``cost / share`` minus the time already passed), so that over time the
connection uses at most *share* of the loop.  Time the connection spent
idle counts: a costly request followed by a pause costs the next message
nothing, and one right behind it waits the rest.  Messages that cost less
than *free* (typing, presence, pings) never wait, and no wait is longer
than *longest* (the first keystroke after opening a document of many
megabytes waits at most that long; a client that keeps sending such
messages still gets little more than its share).  No clock here: costs and
the time (any monotonic clock, in seconds) come in.
"""

from __future__ import annotations

__all__ = ["Pacer"]


class Pacer:
    """See the module docstring."""

    __slots__ = ("share", "free", "longest", "owed", "paused", "taken_at")

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
        #: when the previous message went on (after its wait); None before the first
        self.taken_at: float | None = None

    def charge(self, seconds: float) -> None:
        """The hub spent *seconds* of CPU time on this connection's behalf."""
        self.owed += seconds

    def pause(self, now: float) -> float:
        """Seconds to wait, from *now*, before the connection's next message (0: go on now)."""
        owed, self.owed = self.owed, 0.0
        since, self.taken_at = self.taken_at, now
        if owed <= self.free:
            return 0.0
        # the time since the previous message counts as waited (before the first: only
        # the time the costs themselves took, which passed at least)
        passed = owed if since is None else max(owed, now - since)
        wait = min(owed / self.share - passed, self.longest)
        if wait <= 0.0:
            return 0.0
        self.paused += wait
        self.taken_at = now + wait
        return wait
