"""The hub's link to the other hubs on its database: heartbeat, participants, presence.

What crosses and how is decided by :mod:`collab_server.roster` (sans-I/O);
this module only reads, writes and sleeps:

* at start the hub registers in ``hubs``; every ``hub_expiry / 5`` seconds
  it beats (writing all its participants again if its row was gone, or if
  writing a departure failed), then reads the participants of its rooms on
  live hubs and hands them to the roster, which repairs what notifications
  missed and drops the participants of hubs that stopped beating (with no
  other hub alive, as the heartbeat says, it hands over nobody, unread);
* a join is written (with its notification) and the room's other
  participants read in one statement, before ``joined`` is answered; a
  departure or role change is written in the background;
* presence goes only for rooms with members on other hubs
  (``Roster.shares``), and waits in the :class:`~collab_server.roster.Outbox`
  while the previous batch is being sent: one statement sends a batch, the
  newest cursor of each participant;
* at a clean stop the hub's participants leave at once (the others are
  told), and its row goes.

Failures are counted (``HubStats.peer_failures``), logged the 1st, 10th,
100th... time, and repaired by the next beat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from collab_core.errors import StoreError

from . import codec
from .roster import Broadcast, Outbox, Replaced, Resend, Roster, Row, encode_presence

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["PeerLink"]

logger = logging.getLogger(__name__)

#: beats between two deletions of the rows of long-dead hubs
FORGET_EVERY = 60


class PeerLink:
    """See the module docstring.  ``await start()`` with the hub, ``await stop()`` when it closes."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.store = hub.store
        self.roster = Roster(hub.store.hub_id)
        self.outbox = Outbox()
        self.expiry = hub.config.hub_expiry
        self.interval = self.expiry / 5
        #: this hub's rows may be wrong (a write failed): write them all at the next beat
        self.dirty = False
        #: beats done, and times this hub wrote all its rows again
        self.beats = 0
        self.resyncs = 0
        #: beats that read the participants of this hub's rooms on other hubs (none while alone)
        self.reads = 0
        #: presence notifications sent
        self.presence_sent = 0
        #: cursor moves not sent: nobody in their room was on another hub
        self.presence_unshared = 0
        self._task: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        await self.store.register_hub()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pairls-peer-link")

    async def stop(self) -> None:
        """Stop beating; this hub's participants leave the other hubs' lists now."""
        for task in (self._task, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._flusher = None
        try:
            await self.store.unregister_hub()
        except StoreError as exc:
            self._failed("unregister", exc)

    def wake(self) -> None:
        """Read the participants now (notifications may have been lost)."""
        self._wake.set()

    # -- what comes from the other hubs ---------------------------------------------

    def received(self, payload: str) -> None:
        """A ``pairls_peers`` notification (the store's listener calls this)."""
        stats = self.roster.stats
        malformed = stats.malformed
        self.carry_out(self.roster.receive(payload))
        if stats.malformed != malformed:
            self.hub.stats.malformed_notifications = stats.malformed
            if _worth_logging(stats.malformed):
                logger.warning("dropped a malformed pairls_peers notification (%d so far)", stats.malformed)

    def carry_out(self, actions: list[Broadcast] | list[Broadcast | Replaced | Resend]) -> None:
        hub = self.hub
        for action in actions:
            room = hub.rooms.get(action.room_id)
            if room is None:
                continue
            if isinstance(action, Broadcast):
                room.send_to_others(None, codec.encode(action.message))
            elif isinstance(action, Resend):
                for message in list(room.presence.values()):
                    self.presence(room.id, message["participant"], message)
            else:
                conn = room.connections.get(action.participant)
                if conn is not None:
                    hub.replace(conn)

    # -- what goes to them ----------------------------------------------------------

    async def entered(
        self, room_id: str, participant: str, client_id: str, name: str, role: str, *, new_room: bool
    ) -> None:
        """*participant* joined *room_id* here: write it, tell the others, learn who is elsewhere.

        *new_room*: nobody else is in the room here, so this hub has none of the others' cursors:
        the other hubs are asked to send them again.

        The caller holds the room in the roster (from before this call until
        its ``Room`` holds it).  Raises :class:`StoreError` (the join is
        answered ``unavailable``).
        """
        token = self.roster.begin_read()
        rows = await self.store.enter_room(
            room_id, participant, client_id, name, role, expiry=self.expiry, ask=new_room
        )
        self.carry_out(self.roster.synced(token, {room_id: rows}, [room_id]))

    def left(self, room_id: str, participant: str) -> None:
        self.outbox.discard(room_id, participant)
        if not self.hub.closing:  # (a stopping hub removes all its rows at once)
            self.hub.background(self._write("leave", self.store.leave_room(room_id, participant)))

    def changed(self, room_id: str, participant: str, name: str, role: str) -> None:
        self.hub.background(
            self._write("role", self.store.change_participant(room_id, participant, name, role))
        )

    def presence(self, room_id: str, participant: str, message: dict[str, Any]) -> None:
        if not self.roster.shares(room_id):
            self.presence_unshared += 1
            return
        payload, clipped = encode_presence(self.store.hub_id, room_id, message)
        if clipped:
            self.roster.stats.clipped_presence += 1
        if payload is None:
            return
        self.outbox.put(room_id, participant, payload)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="pairls-presence")

    async def _flush(self) -> None:
        try:
            while self.outbox:
                batch = self.outbox.take()
                try:
                    await self.store.publish(batch)
                except StoreError as exc:
                    self._failed("presence", exc)  # (the next move of each cursor goes again)
                else:
                    self.presence_sent += len(batch)
        finally:
            self._flusher = None

    async def _write(self, what: str, call: Any) -> None:
        try:
            await call
        except StoreError as exc:
            self.dirty = True
            self._failed(what, exc)

    def _failed(self, what: str, exc: StoreError) -> None:
        self.hub.stats.peer_failures += 1
        if _worth_logging(self.hub.stats.peer_failures):
            logger.warning(
                "could not write %s for the other hubs (%s); %d failures so far, repaired at the next beat",
                what,
                exc,
                self.hub.stats.peer_failures,
            )

    # -- the beat -------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.beat()
            except StoreError as exc:
                self.dirty = True
                self._failed("the heartbeat", exc)
            except Exception:  # a bug: logged with its traceback, and the beat goes on
                logger.exception("peer link beat failed")

    async def beat(self) -> None:
        """Say this hub is alive (all its rows again if need be), then read its rooms' participants."""
        self.beats += 1
        # before the heartbeat: a hub that starts beating after it was read as "no other hub"
        # may have told us of its participants since, and those must stay
        token = self.roster.begin_read()
        beat = await self.store.heartbeat(expiry=self.expiry)
        if not beat.alive or self.dirty:
            self.dirty = False
            self.resyncs += 1
            logger.info("writing this hub's %s participants again", "lost" if not beat.alive else "unsure")
            await self.store.sync_participants(self.hub.participant_rows())
            if not beat.alive:
                self.hub.registered()  # (its row is written again with its participants)
        rooms = self.roster.rooms
        if rooms:
            rows: dict[str, list[Row]] = {}
            if beat.others:
                self.reads += 1
                rows = await self.store.remote_participants(rooms, expiry=self.expiry)
            # (alone: the read would find nobody, so it is not made)
            self.carry_out(self.roster.synced(token, rows, rooms))
        if self.beats % FORGET_EVERY == 0:
            await self.store.forget_dead_hubs(max(60.0, 3 * self.expiry))


def _worth_logging(count: int) -> bool:
    power: int = 10 ** (len(str(count)) - 1)
    return count == power
