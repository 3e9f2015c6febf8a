"""The hub's periodic room jobs: checking its rooms against the database, and deleting idle rooms.

Every ``authority.room_check_interval`` seconds (at most a minute, and a
tenth of ``--room-ttl``) the keeper

* reads the rooms someone is connected to on this hub and brings their
  connections in line (``Hub.check_rooms``: what a lost notification of a
  removal, role change, rotation or deletion would have done), marking
  those rooms active as it goes;
* deletes, with everything in them, the rooms no member has been connected
  to and no op was committed to for ``room_ttl`` seconds
  (``Store.delete_idle_rooms``; several hubs may sweep at once);
* about once an hour, forgets rooms deleted more than a week ago
  (``Store.forget_deleted_rooms``);
* reads the heads of the documents open on this hub and catches up those
  still behind theirs once :data:`HEAD_GRACE` has passed (``Hub.check_heads``:
  what a lost ``pairls_ops`` notification, such as one a hub of another
  version cannot read, would have done).

A failure is counted (``HubStats.room_check_failures``,
``HubStats.sweep_failures``), logged, and tried again at the next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from collab_core.errors import StoreError

from .authority import room_check_interval

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["HEAD_GRACE", "REGISTER_RESYNC_DELAY", "RoomKeeper", "heads_behind"]

logger = logging.getLogger(__name__)

#: seconds between two clean-ups of the record of deleted rooms
FORGET_EVERY = 3600.0

#: seconds a document found behind its stored head has for the notification of that commit to
#: arrive (it comes within milliseconds of the commit) before it counts as missed
HEAD_GRACE = 1.0


#: seconds after a hub (re)registers that its open documents read their logs again: a commit
#: whose statement began before the registration was visible, and which did not notify, has
#: ended by then (one that has not is caught by the check of the heads)
REGISTER_RESYNC_DELAY = 2.0


def heads_behind(heads: Mapping[int, int], known: Mapping[int, int]) -> dict[int, int]:
    """The documents of *known* (id -> the newest revision the hub knows) whose head in
    *heads* (id -> revision) is past it, with that head."""
    return {doc_id: head for doc_id, head in heads.items() if doc_id in known and head > known[doc_id]}


class RoomKeeper:
    """See the module docstring.  ``start()`` with the hub, ``await stop()`` before closing it."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.interval = room_check_interval(hub.config.room_ttl, hub.config.room_check_interval)
        self._task: asyncio.Task[None] | None = None
        self._forgotten_at: float | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pairls-room-keeper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.round()
            except Exception:  # a bug: logged with its traceback, and the keeper goes on
                logger.exception("room keeper round failed")

    async def round(self) -> None:
        """One check of this hub's rooms and open documents, then one idle sweep."""
        hub = self.hub
        rooms = list(hub.rooms)
        if rooms:
            await hub.check_rooms_logged(rooms, touch=True)
        try:
            await hub.check_heads()
        except StoreError as exc:
            hub.stats.room_check_failures += 1
            logger.warning("could not read the heads of the open documents (%s)", exc)
        ttl = hub.config.room_ttl
        try:
            now = asyncio.get_running_loop().time()
            if self._forgotten_at is None or now - self._forgotten_at >= FORGET_EVERY:
                self._forgotten_at = now
                await hub.store.forget_deleted_rooms()
            if ttl <= 0:
                return
            deleted = await hub.store.delete_idle_rooms(ttl, keep=list(hub.rooms))
        except StoreError as exc:
            hub.stats.sweep_failures += 1
            logger.warning("idle room sweep failed (%s); trying again in %.0fs", exc, self.interval)
            return
        hub.stats.idle_rooms_deleted += len(deleted)
        if deleted:
            logger.info("deleted %d rooms idle for more than %.0fs", len(deleted), ttl)
