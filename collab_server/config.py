"""The hub's limits and tuning (no dependencies: ``pairls-hub --help`` works without them)."""

from __future__ import annotations

from dataclasses import dataclass

from .retry import Backoff

__all__ = ["HubConfig"]


@dataclass(frozen=True, slots=True)
class HubConfig:
    """Limits and tuning; every field has a command-line flag in ``cli.py``."""

    max_message_bytes: int = 1 << 20
    #: largest document, in bytes of UTF-8, that create_document or an op may leave
    max_document_bytes: int = 16 << 20
    #: messages per second a connection may send, on average
    rate: float = 1000.0
    #: how many messages a connection may send in a burst
    burst: int = 2000
    #: consecutive protocol errors before the connection is closed
    max_strikes: int = 50
    hello_timeout: float = 10.0
    #: ops each document keeps in memory for transforming old bases
    history: int = 2000
    #: a snapshot every this many revisions
    snapshot_every: int = 500
    #: bytes queued to a client before it is dropped as too slow
    max_send_buffer: int = 64 << 20
    shutdown_timeout: float = 10.0
    #: seconds ``GET /healthz`` waits for the database's ``SELECT 1`` before answering 503
    health_timeout: float = 2.0
    #: calls of a document's store operation (or commits of its batch) before
    #: its requests are refused with ``unavailable``
    store_attempts: int = 6
    #: seconds before the first retry; doubled after each failure, up to store_retry_max_delay
    store_retry_delay: float = 0.1
    store_retry_max_delay: float = 2.0
    #: seconds a room may stay idle (no member connected, no op) before it is deleted; 0: never
    room_ttl: float = 30 * 86400.0
    #: the longest time between two checks of this hub's rooms against the database (see
    #: ``authority.room_check_interval``): lost notifications are repaired within it
    room_check_interval: float = 60.0

    def __post_init__(self) -> None:
        if self.max_document_bytes < 0:
            raise ValueError("max_document_bytes must not be negative")
        if self.room_ttl < 0 or self.room_check_interval <= 0:
            raise ValueError("room_ttl must not be negative, room_check_interval must be positive")
        self.backoff()  # checks the retry settings

    def backoff(self) -> Backoff:
        """A fresh retry policy for one store operation."""
        return Backoff(self.store_attempts, self.store_retry_delay, self.store_retry_max_delay)
