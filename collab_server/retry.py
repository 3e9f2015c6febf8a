"""Retry policies, sans-I/O: how long to wait before trying again, and when to stop.

:class:`Backoff` paces the retries of one failing action (a store call, a
commit): a delay that doubles from ``first`` up to ``cap``, and no more
attempts after ``attempts`` failures in a row.  It does not sleep, read a
clock or do I/O: the shell (``hub.py``) does the waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Backoff"]


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
