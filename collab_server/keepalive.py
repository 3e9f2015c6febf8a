"""The hub's keepalive: it pings a connection it has not heard from for a while, and closes one
that does not answer.

websockets' own keepalive keeps a task per connection, sleeping between pings, for as long as
the connection lives: about 2 KiB and a dozen of the objects the garbage collector walks, of an
idle connection's 14 KiB (docs/benchmarks.md, "What an idle connection holds").  Instead, one
sweep looks at every connection twice a second.  "Heard from" is any bytes read from it: a
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

The decisions (:func:`step`, :func:`next_wait`, :func:`sweep_period`) take no sockets;
:class:`Keepalive` is the shell: it sleeps, sweeps, pings and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from typing import TYPE_CHECKING

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


class Keepalive:
    """See the module docstring.  ``start()`` with the hub, ``await stop()`` before closing it."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.interval = hub.config.keepalive_interval
        self.timeout = hub.config.keepalive_timeout
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

    def sweep(self, now: float) -> None:
        """Ping each connection due at *now*, note the answers, close those that gave none."""
        timeout = self.timeout
        for conn in self.hub.connections:
            ws = conn.ws
            action = step(now, ws.heard_at, conn.ping_wait, conn.pinged_at, timeout)
            if action is None or ws.protocol.state is not State.OPEN:
                continue  # (a connection closing is not kept alive)
            if action is Action.PING:
                self._ping(conn, now)
            elif action is Action.ANSWERED:
                conn.pinged_at = None
                conn.ping_wait = next_wait(self.interval, random.random())
            else:
                self._close(conn)

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
