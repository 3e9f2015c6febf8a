"""The hub's keepalive: it pings a connection it has not heard from for a while, and closes one
that does not answer.

websockets' own keepalive keeps a task per connection, sleeping between pings, for as long as
the connection lives: about 2 KiB and a dozen of the objects the garbage collector walks, of an
idle connection's 14 KiB (docs/benchmarks.md, "What an idle connection holds").  Instead, one
sweep runs twice a second, and looks at the connections due then (:class:`Timetable`): one whose
wait may have ended, or one pinged and not yet heard from, which it looks at each sweep until
its answer or its timeout.  A connection heard from meanwhile is looked at when its new wait
may end; none is looked at twice a second for nothing.  "Heard from" is any bytes read from it: a
frame, its own ping (a language server pings the hub), or the pong of ours
(:class:`HubSocket` notes when).  A connection quiet for its wait, between
``HubConfig.keepalive_interval`` and a quarter more, is pinged; one that then stays quiet for
``keepalive_timeout`` seconds is closed with 1011, as websockets' keepalive closes it.  A
connection that sends is never pinged, nor one that pings the hub at least as often as the
interval (a language server pings every 20 s, the hub's default interval).  A ping is one frame
written: no task, future or timer waits for its pong, which is only more bytes heard.

The wait is drawn anew after each answer: connections that went quiet together (a thousand
that answered the same sweep's pings) are pinged over many sweeps after, not all in one, where
their pings and pongs would hold the event loop at once.

The decisions (:func:`step`, :func:`next_look`, :func:`next_wait`, :func:`sweep_period`) and
the :class:`Timetable` take no sockets; :class:`Keepalive` is the shell: it sleeps, sweeps,
pings and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import heapq
import itertools
import logging
import random
import time
from typing import TYPE_CHECKING, Generic, TypeVar

from websockets.asyncio.server import ServerConnection
from websockets.frames import CloseCode
from websockets.protocol import State

if TYPE_CHECKING:
    from .hub import Connection, Hub

__all__ = [
    "JITTER",
    "SWEEPS_PER_INTERVAL",
    "Action",
    "HubSocket",
    "Keepalive",
    "Timetable",
    "next_look",
    "next_wait",
    "step",
    "sweep_period",
]

logger = logging.getLogger(__name__)

#: sweeps per keepalive interval (every half second for the default 20 s)
SWEEPS_PER_INTERVAL = 40
#: the share of the interval a connection's wait may exceed it by, at random
JITTER = 0.25


class HubSocket(ServerConnection):
    """websockets' server connection, noting when bytes last came from the client."""

    #: ``time.monotonic()`` when bytes last came: a frame, a ping, a pong (the opening handshake's
    #: request came so, before anything reads this)
    heard_at = 0.0

    def data_received(self, data: bytes) -> None:
        self.heard_at = time.monotonic()
        super().data_received(data)


class Action(enum.Enum):
    """What a sweep does with one connection (:func:`step`)."""

    #: quiet for its wait: ping it
    PING = "ping"
    #: heard from since our ping: it answered (or spoke); its next wait starts
    ANSWERED = "answered"
    #: quiet since our ping for the timeout: close it
    CLOSE = "close"


def sweep_period(interval: float) -> float:
    """Seconds between two sweeps for a keepalive *interval*."""
    return interval / SWEEPS_PER_INTERVAL


def next_wait(interval: float, draw: float) -> float:
    """How long a connection may stay quiet before it is pinged, for a *draw* in [0, 1): the
    *interval* and up to ``JITTER`` of it more (never less: a client that pings the hub every
    *interval* is heard before its wait ends)."""
    return interval * (1.0 + JITTER * draw)


def step(now: float, heard_at: float, wait: float, pinged_at: float | None, timeout: float) -> Action | None:
    """What to do at *now* with a connection last heard from at *heard_at*, allowed to be quiet
    for *wait*, and pinged at *pinged_at* (None: no ping of ours unanswered); None: nothing."""
    if pinged_at is None:
        return Action.PING if now - heard_at >= wait else None
    if heard_at >= pinged_at:
        return Action.ANSWERED
    return Action.CLOSE if now - pinged_at >= timeout else None


def next_look(now: float, heard_at: float, wait: float, pinged_at: float | None) -> float:
    """When a sweep should look at a connection again, after one did at *now* (its fields as for
    :func:`step`): when its wait may end, if it was heard from since (bytes heard later only
    put that off: it is looked at then, and its time put off again); at the next sweep, while our
    ping is unanswered, to see its answer or its timeout as soon as a sweep would."""
    return heard_at + wait if pinged_at is None else now


T = TypeVar("T")


class Timetable(Generic[T]):
    """Items by when a sweep should next look at them: a sweep takes only the items due, not
    every one.  An item is in it once at most, and one dropped is held no more (a connection
    that ended is freed at once, not when its time would have come)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []  # (when, a number for the item); some stale
        self._items: dict[int, T] = {}  # the numbers that still count, and their items
        self._number_of: dict[T, int] = {}
        self._numbers = itertools.count()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T, when: float) -> None:
        """Have the first sweep at or after *when* take *item* (instead of any time it had)."""
        self.drop(item)
        n = next(self._numbers)
        self._items[n] = item
        self._number_of[item] = n
        heapq.heappush(self._heap, (when, n))

    def drop(self, item: T) -> None:
        n = self._number_of.pop(item, None)
        if n is not None:
            del self._items[n]  # (its heap entry, two numbers, is skipped when it comes up)

    def due(self, now: float) -> list[T]:
        """The items due at *now*, taken out of the timetable (a sweep puts back what it keeps)."""
        heap, items, number_of = self._heap, self._items, self._number_of
        out: list[T] = []
        while heap and heap[0][0] <= now:
            item = items.pop(heapq.heappop(heap)[1], None)
            if item is not None:
                del number_of[item]
                out.append(item)
        return out


class Keepalive:
    """See the module docstring.  ``start()`` with the hub, ``await stop()`` before closing it."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.interval = hub.config.keepalive_interval
        self.timeout = hub.config.keepalive_timeout
        #: the connections by the sweep due to look at them (none without a keepalive)
        self.table: Timetable[Connection] | None = Timetable() if self.interval > 0 else None
        self._task: asyncio.Task[None] | None = None
        #: closes of connections that did not answer, under way (cancelled by :meth:`stop`: a
        #: shutdown closes every connection anyway, without waiting for these)
        self._closes: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if self._task is None and self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pairls-keepalive")

    async def stop(self) -> None:
        task, self._task = self._task, None
        tasks = [task, *self._closes] if task is not None else list(self._closes)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def _run(self) -> None:
        period = sweep_period(self.interval)
        while True:
            await asyncio.sleep(period)
            self.sweep(time.monotonic())

    def watch(self, conn: Connection) -> None:
        """Keep *conn* alive from now on (until :meth:`forget`)."""
        if self.table is not None:
            self.table.put(conn, conn.ws.heard_at + conn.ping_wait)

    def forget(self, conn: Connection) -> None:
        """*conn* has ended."""
        if self.table is not None:
            self.table.drop(conn)

    def sweep(self, now: float) -> None:
        """Ping each connection due at *now*, note the answers, close those that gave none."""
        table = self.table
        if table is None:
            return
        timeout = self.timeout
        for conn in table.due(now):
            ws = conn.ws
            action = step(now, ws.heard_at, conn.ping_wait, conn.pinged_at, timeout)
            if action is not None and ws.protocol.state is State.OPEN:  # (not one closing)
                if action is Action.PING:
                    self._ping(conn, now)
                elif action is Action.ANSWERED:
                    conn.pinged_at = None
                    conn.ping_wait = next_wait(self.interval, random.random())
                else:
                    self._close(conn)
                    continue  # (no more looks: it ends)
            table.put(conn, next_look(now, ws.heard_at, conn.ping_wait, conn.pinged_at))

    def _ping(self, conn: Connection, now: float) -> None:
        ws = conn.ws
        if ws.transport.is_closing():
            return  # (the connection is ending: websockets has not seen it yet)
        ws.protocol.send_ping(b"")
        ws.send_data()
        conn.pinged_at = now
        self.hub.stats.keepalive_pings += 1

    def _close(self, conn: Connection) -> None:
        self.hub.stats.keepalive_timeouts += 1
        conn.log.info("no answer to a ping in %.0f s; closing", self.timeout)
        task = asyncio.get_running_loop().create_task(
            conn.ws.close(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
        )
        self._closes.add(task)
        task.add_done_callback(self._close_done)

    def _close_done(self, task: asyncio.Task[None]) -> None:
        self._closes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("closing a connection that did not answer failed", exc_info=task.exception())
