"""Retry policies, sans-I/O: how long to wait before trying again, and when to stop.

* :class:`Backoff` paces the retries of one failing action (a store call, a
  commit): a delay that doubles from ``first`` up to ``cap``, and no more
  attempts after ``attempts`` failures in a row.
* :class:`RestartPolicy` decides when the supervisor restarts the embedded
  PostgreSQL after it died, and when it gives up.

Neither sleeps, reads a clock or does I/O: the shells pass the time in and
do the waiting (``hub.py``, ``supervisor.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Backoff", "GiveUp", "Restart", "RestartPolicy"]


@dataclass
class Backoff:
    """Delays between the attempts of one action; see the module docstring."""

    #: attempts in all, the first included (at least 1)
    attempts: int
    #: seconds to wait after the first failure; doubled after each further one
    first: float
    #: the longest wait
    cap: float
    #: failures in a row so far
    failures: int = 0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.first < 0 or self.cap < 0:
            raise ValueError("delays must not be negative")

    def failed(self) -> float | None:
        """One more attempt failed: seconds to wait before the next, or None to give up."""
        self.failures += 1
        if self.failures >= self.attempts:
            return None
        return float(min(self.first * 2 ** (self.failures - 1), self.cap))

    def reset(self) -> None:
        """The action succeeded (or was given up): the next failure starts a new count."""
        self.failures = 0

    @property
    def budget(self) -> float:
        """The longest the retries of one action wait in all (the sum of the delays)."""
        return float(sum(min(self.first * 2**i, self.cap) for i in range(self.attempts - 1)))


@dataclass(frozen=True, slots=True)
class Restart:
    """Start the server again after waiting ``after`` seconds."""

    after: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop trying: ``failures`` starts in a row failed (or died at once)."""

    failures: int


@dataclass
class RestartPolicy:
    """When to restart a server that died.

    The shell reports what it saw, with the time: :meth:`started` when the
    server is up, :meth:`died` when it is gone, :meth:`start_failed` when a
    start did not bring it up.  The last two answer :class:`Restart` or
    :class:`GiveUp`.

    A server that ran at least ``stable_after`` seconds before dying is
    restarted at once and clears the count.  A start that fails, or a server
    that dies sooner than that, counts as a failed start; the wait before the
    next start doubles from ``first_delay`` up to ``max_delay``, and after
    ``max_failures`` failed starts in a row the policy gives up.
    """

    max_failures: int = 5
    first_delay: float = 1.0
    max_delay: float = 30.0
    stable_after: float = 60.0
    #: failed starts in a row
    failures: int = 0
    _up_since: float | None = None

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise ValueError("max_failures must be at least 1")

    def started(self, now: float) -> None:
        """The server is up (a first start, or a restart that worked)."""
        self._up_since = now

    def died(self, now: float) -> Restart | GiveUp:
        """The server is gone."""
        up_since, self._up_since = self._up_since, None
        if up_since is not None and now - up_since >= self.stable_after:
            self.failures = 0
            return Restart(0.0)
        return self._failed()

    def start_failed(self, now: float) -> Restart | GiveUp:
        """A start did not bring the server up."""
        self._up_since = None
        return self._failed()

    def _failed(self) -> Restart | GiveUp:
        self.failures += 1
        if self.failures >= self.max_failures:
            return GiveUp(self.failures)
        return Restart(min(self.first_delay * 2 ** (self.failures - 1), self.max_delay))
