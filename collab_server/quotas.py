"""Admission and quotas on the hub (sans-I/O).

The hub's shell (``hub.py``) asks these objects and does what they say; they
hold no socket, no task and no clock.  Every call that depends on time is
given ``now`` (seconds on any monotonic clock), so tests drive them with a
made-up one.

* :class:`TokenBucket`: ``rate`` units a second, at most ``burst`` banked.
  :meth:`~TokenBucket.try_take` refuses (the message rate: ``rate_limited``);
  :meth:`~TokenBucket.take` borrows and says how long to wait (bytes: the
  hub reads a connection's next frame only once its debt is paid, so a fast
  sender is slowed by TCP, never refused).
* :class:`AddressBook`: connections per address (one more is refused at the
  handshake) and the byte bucket all connections of an address share.
* :class:`HistoryBudget`: the bytes of op history every document of the hub
  keeps in memory together; past the limit the oldest entries anywhere go
  first (an op based on an evicted revision gets ``revision_too_old``).
* :func:`token_matches`: the create-room token, compared in constant time.
* :func:`address_key`: the address a connection counts against (IPv6 by
  its /64, which one host usually has whole).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import ipaddress
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "AddressBook",
    "HistoryBudget",
    "HistoryHolder",
    "TokenBucket",
    "address_key",
    "token_matches",
]


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` banked; a ``rate`` of 0 (or less) never limits."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if burst < 0:
            raise ValueError("burst must not be negative")
        self.rate = float(rate)
        self.burst = float(burst)
        #: may go below zero: a debt :meth:`take` makes the caller wait out
        self.tokens = float(burst)
        self.stamp = now

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def full(self, now: float) -> bool:
        """Has the bucket earned a whole burst back?"""
        if self.unlimited:
            return True
        self._refill(now)
        return self.tokens >= self.burst

    def try_take(self, amount: float, now: float) -> bool:
        """Take *amount* if the bucket holds it; otherwise take nothing and say no."""
        if self.unlimited:
            return True
        self._refill(now)
        if self.tokens >= amount:
            self.tokens -= amount
            return True
        return False

    def take(self, amount: float, now: float) -> float:
        """Take *amount* now, borrowing what is missing; the seconds until the debt is paid.

        A caller that waits that long before taking again is held to ``rate``
        on average, whatever the size of each take (a take larger than the
        burst is allowed, and waited for).
        """
        if self.unlimited:
            return 0.0
        self._refill(now)
        self.tokens -= amount
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass(slots=True)
class _Address:
    bucket: TokenBucket
    connections: int = 0


@dataclass
class AddressBook:
    """Connections per address, and the bytes per second they share.

    ``max_connections`` of 0 admits any number.  An address's entry (and its
    bucket) outlives its last connection until the bucket is full again, so
    reconnecting does not buy a fresh burst.
    """

    max_connections: int
    rate: float
    burst: float
    #: connections refused because their address had ``max_connections`` already
    refused: int = 0
    _entries: dict[str, _Address] = field(default_factory=dict)
    _active: int = 0
    _sweep_at: int = 1024

    def admit(self, key: str, now: float) -> bool:
        """One more connection from *key*; False (and nothing counted) if it would pass the limit."""
        entry = self._entries.get(key)
        if entry is None:
            self._sweep(now)
            entry = self._entries[key] = _Address(TokenBucket(self.rate, self.burst, now))
        if self.max_connections and entry.connections >= self.max_connections:
            self.refused += 1
            return False
        entry.connections += 1
        self._active += 1
        return True

    def release(self, key: str, now: float) -> None:
        """A connection :meth:`admit` let in has ended."""
        entry = self._entries.get(key)
        if entry is None or entry.connections <= 0:
            return
        entry.connections -= 1
        self._active -= 1
        if entry.connections == 0 and entry.bucket.full(now):
            del self._entries[key]

    def connections(self, key: str) -> int:
        entry = self._entries.get(key)
        return entry.connections if entry is not None else 0

    def bucket(self, key: str) -> TokenBucket | None:
        """The byte bucket of *key*'s connections (None if none is admitted)."""
        entry = self._entries.get(key)
        return entry.bucket if entry is not None else None

    def __len__(self) -> int:
        """Addresses remembered (with connections, or a bucket still refilling)."""
        return len(self._entries)

    def _sweep(self, now: float) -> None:
        """Forget idle addresses whose bucket is full; amortized over the admissions that grow the table."""
        if len(self._entries) < self._sweep_at:
            return
        for key in [k for k, e in self._entries.items() if e.connections == 0 and e.bucket.full(now)]:
            del self._entries[key]
        self._sweep_at = max(1024, 2 * len(self._entries))


def address_key(host: str) -> str:
    """What a peer's address counts as: IPv4 as is, IPv6 by its /64 (IPv4-mapped: the IPv4)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a create-room token (the digests hide the lengths too)."""
    if given is None:
        return False
    a = hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest()
    b = hashlib.sha256(expected.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(a, b)


class HistoryHolder(Protocol):
    """What :class:`HistoryBudget` evicts from (a document's sequencer)."""

    def oldest_history(self) -> int | None:
        """The stamp of the oldest entry kept (None: none kept)."""
        ...

    def evict_history_through(self, serial: int) -> int:
        """Drop every entry up to stamp *serial*, oldest first, reporting them with
        :meth:`HistoryBudget.forgot`; returns how many."""
        ...


class HistoryBudget:
    """The bytes of op history all documents keep in memory, hub-wide; oldest out first.

    Each holder :meth:`register`\\ s, takes a :meth:`stamp` for every entry it
    keeps (stamps grow hub-wide, so they order entries by age across holders),
    reports it (:meth:`remembered`) and every entry it drops by itself
    (:meth:`forgot`), and :meth:`detach`\\ es when it ends.  Whenever the
    total passes ``limit`` the oldest entries, whichever holder has them, are
    evicted until it fits again.  A ``limit`` of 0 never evicts.

    Each holder keeps its own entries in age order, so the budget keeps no row
    per entry: only a heap of one row per holder, (a stamp no newer than the
    holder's oldest entry, holder id), made exact when it reaches the top.  (A
    ledger of every entry grew by a stale row for each entry a holder dropped by
    itself, which is every op once a document's history is at ``--history``:
    tens of MB at 100 typists before it was compacted.)  Holder ids, not
    holders, are in the heap, so an ended document is not kept alive by it.
    """

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        self.limit = limit
        #: bytes and entries kept now
        self.used = 0
        self.entries = 0
        #: entries and bytes evicted to stay within the limit (counted for the hub's stats)
        self.evicted = 0
        self.evicted_bytes = 0
        self._holders: dict[int, HistoryHolder] = {}
        self._next_id = 1
        self._next_stamp = 1
        # (stamp, holder id): for each holder with a row, _rows[hid] is the stamp of its
        # row; a row that does not match (the holder left, or its row was replaced) is stale
        self._heap: list[tuple[int, int]] = []
        self._rows: dict[int, int] = {}
        self._enforcing = False

    def register(self, holder: HistoryHolder) -> int:
        hid = self._next_id
        self._next_id += 1
        self._holders[hid] = holder
        return hid

    def stamp(self) -> int:
        """The stamp of a new entry: larger than every stamp before it."""
        stamp = self._next_stamp
        self._next_stamp += 1
        return stamp

    def detach(self, hid: int) -> None:
        """The holder ended (after :meth:`forgot` for what it kept); its row goes stale."""
        self._holders.pop(hid, None)
        self._rows.pop(hid, None)
        if len(self._heap) > 2 * len(self._rows) + 64:
            self._heap = [(stamp, hid) for hid, stamp in self._rows.items()]
            heapq.heapify(self._heap)

    def remembered(self, hid: int, serial: int, nbytes: int) -> None:
        """Holder *hid* keeps a new entry stamped *serial*; may evict the oldest anywhere (this one
        too, if too big)."""
        self.used += nbytes
        self.entries += 1
        if hid not in self._rows:
            # its first entry (since its last row was taken): a row no newer than its oldest
            self._rows[hid] = serial
            heapq.heappush(self._heap, (serial, hid))
        self.enforce()

    def forgot(self, nbytes: int, count: int = 1) -> None:
        """A holder dropped *count* entries of *nbytes* in all (by itself, or evicted by us)."""
        self.used -= nbytes
        self.entries -= count

    def enforce(self) -> None:
        """Evict the oldest entries until the total fits the limit."""
        if self._enforcing or not self.limit:
            return
        self._enforcing = True
        heap, rows = self._heap, self._rows
        try:
            while self.used > self.limit and heap:
                stamp, hid = heapq.heappop(heap)
                if rows.get(hid) != stamp:
                    continue  # stale
                del rows[hid]
                holder = self._holders[hid]
                oldest = holder.oldest_history()
                if oldest is not None and oldest <= stamp:
                    before = self.used
                    self.evicted += holder.evict_history_through(oldest)
                    self.evicted_bytes += before - self.used
                    oldest = holder.oldest_history()
                if oldest is not None:
                    rows[hid] = oldest
                    heapq.heappush(heap, (oldest, hid))
        finally:
            self._enforcing = False
