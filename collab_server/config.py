"""The hub's limits and tuning (no dependencies: ``pairls-hub --help`` works without them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .retry import Backoff

__all__ = ["HubConfig"]


@dataclass(frozen=True, slots=True)
class HubConfig:
    """Limits and tuning; most fields have a command-line flag in ``cli.py``.

    A quota of 0 (rooms, documents, connections, bytes per second, history
    bytes) means no limit.
    """

    max_message_bytes: int = 1 << 20
    #: largest document, in bytes of UTF-8, that create_document or an op may leave
    max_document_bytes: int = 16 << 20
    #: most components one op may have (more: too_large); the work an op
    #: causes grows with its components, not only with its bytes
    max_op_components: int = 5000
    #: most work, in components transformed (``document.Sequencer.transform_cost``),
    #: that bringing one op from its base revision to the head may cost; an op
    #: whose base is older than that allows gets revision_too_old (the client
    #: catches up and sends it against a newer base).  About 0.5 us a unit.
    transform_budget: int = 10_000
    #: the most of the event loop's time one connection gets, over time: after a
    #: message that cost the hub c seconds of CPU, its next waits c * (1/share - 1)
    connection_share: float = 0.1
    #: messages per second a connection may send, on average
    rate: float = 1000.0
    #: how many messages a connection may send in a burst
    burst: int = 2000
    #: consecutive protocol errors before the connection is closed
    max_strikes: int = 50
    hello_timeout: float = 10.0
    #: seconds a connection may stay quiet before the hub pings it (up to a quarter less, at
    #: random), and seconds it then has to answer before it is closed (``keepalive.py``); an
    #: interval of 0: no pings
    keepalive_interval: float = 20.0
    keepalive_timeout: float = 20.0
    #: ops each document keeps in memory for transforming old bases
    history: int = 2000
    #: a snapshot every this many revisions
    snapshot_every: int = 500
    #: bytes queued to a client before it is closed as too slow (4408)
    max_send_buffer: int = 64 << 20
    #: seconds a client closed as too slow has to read what is queued and
    #: answer the close before its connection is cut
    slow_close_timeout: float = 5.0
    #: the token create_room needs (None: anyone who reaches the hub may create rooms)
    create_token: str | None = field(default=None, repr=False)
    #: rooms in the database (all hubs on it count)
    max_rooms: int = 10_000
    #: documents in one room
    max_documents_per_room: int = 5_000
    #: connections open at once from one address (IPv6: one /64)
    max_connections_per_address: int = 64
    #: bytes per second a connection may send, on average, and in a burst;
    #: past them the hub reads its frames later (TCP slows the sender)
    bytes_per_second: float = 4 << 20
    burst_bytes: int = 16 << 20
    #: the same for all connections of one address together
    address_bytes_per_second: float = 16 << 20
    address_burst_bytes: int = 64 << 20
    #: bytes of op history all documents keep in memory together (oldest evicted first)
    max_history_bytes: int = 128 << 20
    #: bytes the history indexes (history, blame, undo) of all documents take together; past
    #: it the least recently used index is dropped, and built again when next asked for
    max_index_bytes: int = 256 << 20
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
    #: ``authority.room_check_interval``) and the heads of its open documents: lost
    #: notifications are repaired within it
    room_check_interval: float = 60.0
    #: seconds after its last heartbeat (it beats every fifth of this) that a hub is taken for
    #: dead by the others on its database: its participants leave their lists
    hub_expiry: float = 5.0

    def __post_init__(self) -> None:
        if self.max_op_components < 4:
            raise ValueError("max_op_components must be at least 4")
        if self.transform_budget < 0:
            raise ValueError("transform_budget must not be negative")
        if not 0.0 < self.connection_share <= 1.0:
            raise ValueError("connection_share must be in (0, 1]")
        for name in (
            "max_document_bytes",
            "max_rooms",
            "max_documents_per_room",
            "max_connections_per_address",
            "bytes_per_second",
            "burst_bytes",
            "address_bytes_per_second",
            "address_burst_bytes",
            "max_history_bytes",
            "max_index_bytes",
            "max_send_buffer",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.create_token == "":
            raise ValueError("create_token must not be empty (None: no token)")
        if self.keepalive_interval < 0 or self.keepalive_timeout <= 0:
            raise ValueError("keepalive_interval must not be negative, keepalive_timeout must be positive")
        if self.hub_expiry <= 0:
            raise ValueError("hub_expiry must be positive")
        if self.room_ttl < 0 or self.room_check_interval <= 0:
            raise ValueError("room_ttl must not be negative, room_check_interval must be positive")
        self.backoff()  # checks the retry settings

    def backoff(self) -> Backoff:
        """A fresh retry policy for one store operation."""
        return Backoff(self.store_attempts, self.store_retry_delay, self.store_retry_max_delay)
