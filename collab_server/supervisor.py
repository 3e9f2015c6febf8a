"""Keeps the hub's embedded PostgreSQL running (docs/architecture.md, decision 4).

The hub starts its own PostgreSQL when no ``--database-url`` is given.  If
that server dies (killed, crashed, out of memory), :class:`PostgresSupervisor`
notices within ``poll_interval`` (it polls the postmaster's pid) and starts
it again in the same data directory with
:func:`~collab_server.database.start_embedded`, which also adopts a server
someone else started there meanwhile.  The socket and so the DSN stay the
same: the store's pool reconnects by itself, and its LISTEN connection
re-listens and has every open document read the log again.

When to restart, how long to wait, and when to give up are decided by the
sans-I/O :class:`~collab_server.retry.RestartPolicy`; this module only
polls, sleeps and starts.  Giving up calls ``on_give_up`` with a message
(the CLI then shuts the hub down with exit status 1).

A server given with ``--database-url`` is never managed by the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from .database import EmbeddedPostgres, start_embedded
from .retry import GiveUp, Restart, RestartPolicy

__all__ = ["PostgresSupervisor"]

logger = logging.getLogger(__name__)


class PostgresSupervisor:
    """Restarts *server* when it dies; see the module docstring.

    ``start()`` begins watching, ``await close()`` stops watching (waiting for
    a start in progress); :attr:`server` is the current server, the one to
    stop at shutdown.
    """

    def __init__(
        self,
        server: EmbeddedPostgres,
        *,
        policy: RestartPolicy | None = None,
        poll_interval: float = 0.5,
        on_give_up: Callable[[str], None] | None = None,
        starter: Callable[[Path], EmbeddedPostgres] = start_embedded,
    ) -> None:
        self.server = server
        self.policy = policy or RestartPolicy()
        self.poll_interval = poll_interval
        self.on_give_up = on_give_up
        self._starter = starter
        #: times the server was found dead
        self.deaths = 0
        #: successful restarts
        self.restarts = 0
        #: restarts that failed (each counted by the policy too)
        self.failed_starts = 0
        #: the message given to on_give_up, once the policy gave up
        self.gave_up: str | None = None
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.policy.started(time.monotonic())
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="postgres-supervisor")

    async def close(self) -> None:
        """Stop watching; a restart in progress is finished first (its server is then :attr:`server`)."""
        self._closing.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _watch(self) -> None:
        try:
            while not await self._sleep(self.poll_interval):
                if not self.server.is_running():
                    await self._revive()
                    if self.gave_up is not None:
                        return
        except Exception:
            # a bug here must not pass silently: the hub would run unwatched
            logger.exception("PostgreSQL supervisor failed")
            self._give_up("the PostgreSQL supervisor failed; see the log")

    async def _revive(self) -> None:
        dead = self.server
        self.deaths += 1
        decision: Restart | GiveUp = self.policy.died(time.monotonic())
        logger.warning("embedded PostgreSQL (pid %d) is gone; restarting it in %s", dead.pid, dead.data_dir)
        while isinstance(decision, Restart):
            if await self._sleep(decision.after):
                return
            try:
                server = await asyncio.to_thread(self._starter, dead.data_dir)
            except Exception as exc:  # noqa: BLE001 - counted, logged, and the policy decides
                self.failed_starts += 1
                logger.warning("embedded PostgreSQL did not start in %s: %s", dead.data_dir, exc)
                decision = self.policy.start_failed(time.monotonic())
                continue
            self.server = server
            self.restarts += 1
            self.policy.started(time.monotonic())
            if server.dsn != dead.dsn:  # pragma: no cover - the socket follows the data dir
                logger.error("embedded PostgreSQL came back at a different address: %s", server.dsn)
            logger.info("embedded PostgreSQL is back (pid %d)", server.pid)
            return
        self._give_up(
            f"embedded PostgreSQL in {dead.data_dir} died or failed to start {decision.failures} times"
            f" in a row; giving up (its log is in {dead.data_dir / 'log'})"
        )

    def _give_up(self, message: str) -> None:
        self.gave_up = message
        logger.error("%s", message)
        if self.on_give_up is not None:
            self.on_give_up(message)

    async def _sleep(self, seconds: float) -> bool:
        """Wait *seconds*; True if closing meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)
        return self._closing.is_set()
