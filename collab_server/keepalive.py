"""The hub's keepalive: it pings a connection it has not heard from for a while, and closes one
that does not answer.

websockets' own keepalive keeps a task per connection, sleeping between pings, for as long as
the connection lives: about 2 KiB and a dozen of the objects the garbage collector walks, of an
idle connection's 14 KiB (docs/benchmarks.md, "What an idle connection holds").  Instead, one
sweep looks at every connection twice a second.  A connection it has not heard from (a frame,
or the pong of its last ping) for its wait, between three quarters of
``HubConfig.keepalive_interval`` and all of it, is pinged by a task that lives until the pong
comes; with no pong within ``keepalive_timeout`` seconds it is closed with 1011, as websockets'
keepalive closes it.  A connection that sends is never pinged.

The wait is drawn anew after each pong: connections that went quiet together (a thousand that
answered the same sweep's pings) are pinged over many sweeps after, not all in one, where
their pings and pongs would hold the event loop at once.

The decisions (:func:`ping_due`, :func:`next_wait`, :func:`sweep_period`) take no sockets;
:class:`Keepalive` is the shell: it sleeps, sweeps, pings, waits for pongs and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

if TYPE_CHECKING:
    from .hub import Connection, Hub

__all__ = ["JITTER", "SWEEPS_PER_INTERVAL", "Keepalive", "next_wait", "ping_due", "sweep_period"]

logger = logging.getLogger(__name__)

#: sweeps per keepalive interval (every half second for the default 20 s)
SWEEPS_PER_INTERVAL = 40
#: the share of the interval a connection's wait may fall short of it, at random
JITTER = 0.25


def sweep_period(interval: float) -> float:
    """Seconds between two sweeps for a keepalive *interval*."""
    return interval / SWEEPS_PER_INTERVAL


def next_wait(interval: float, draw: float) -> float:
    """How long a connection may stay quiet before it is pinged, for a *draw* in [0, 1): between
    ``1 - JITTER`` of the *interval* and all of it."""
    return interval * (1.0 - JITTER * draw)


def ping_due(now: float, heard_at: float, wait: float, pinging: bool) -> bool:
    """True if a connection last heard from at *heard_at* should be pinged at *now*: quiet for
    its *wait* or longer, and no ping of ours on its way already."""
    return not pinging and now - heard_at >= wait


class Keepalive:
    """See the module docstring.  ``start()`` with the hub, ``await stop()`` before closing it."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.interval = hub.config.keepalive_interval
        self.timeout = hub.config.keepalive_timeout
        self._task: asyncio.Task[None] | None = None
        #: pings waiting for their pongs (cancelled by :meth:`stop`: a shutdown does not wait
        #: for a client that stopped answering)
        self._pings: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if self._task is None and self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pairls-keepalive")

    async def stop(self) -> None:
        task, self._task = self._task, None
        tasks = [task, *self._pings] if task is not None else list(self._pings)
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

    def sweep(self, now: float) -> int:
        """Ping each connection due at *now* (in a task of its own); the number pinged."""
        pinged = 0
        loop = asyncio.get_running_loop()
        for conn in self.hub.connections:
            if ping_due(now, conn.heard_at, conn.ping_wait, conn.pinging):
                conn.pinging = True
                task = loop.create_task(self._ping(conn))
                self._pings.add(task)
                task.add_done_callback(self._ping_done)
                pinged += 1
        return pinged

    def _ping_done(self, task: asyncio.Task[None]) -> None:
        self._pings.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("keepalive ping failed", exc_info=task.exception())

    async def _ping(self, conn: Connection) -> None:
        stats = self.hub.stats
        try:
            pong = await conn.ws.ping()
            stats.keepalive_pings += 1
            await asyncio.wait_for(pong, self.timeout)
        except TimeoutError:
            stats.keepalive_timeouts += 1
            conn.log.info("no answer to a ping in %.0f s; closing", self.timeout)
            await conn.ws.close(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
        except ConnectionClosed:
            pass
        else:
            conn.heard_at = time.monotonic()
            conn.ping_wait = next_wait(self.interval, random.random())
        finally:
            conn.pinging = False
