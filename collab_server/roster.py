"""Who is in a room on the other hubs, and where their cursors are (sans-I/O).

Several hubs share one PostgreSQL (docs/architecture.md, decision 5), and
two members of one room may be connected to different hubs.  Each hub
tells the others what happens in its rooms with ``NOTIFY pairls_peers``:

    "<hub id> <room id> <kind> <JSON body>"

=============  =====================================================  ======================
kind           body                                                   the others' clients get
=============  =====================================================  ======================
``joined``     ``{"id","name","role"}``: a participant connected here  ``participant_joined``
``changed``    the same, after the owner changed its role               ``participant_changed``
``left``       ``{"id"}``                                               ``participant_left``
``replaced``   ``{"id"}``: its client connected again (anywhere)        ``participant_left``;
                                                                        its hub closes it (4409)
``presence``   ``{"participant","name","path","rev","ranges"}``        ``presence``
``document``   ``{"path","rev","by"}``                                  ``document_added``
``ask``        ``{}``: the room is new on the sending hub               (each hub sends its
                                                                        members' presence again)
=============  =====================================================  ======================

A hub sends its members' ``presence`` only for rooms that have members on
other hubs (:meth:`Roster.shares`): a room on one hub costs its cursor
moves no notification.  When a room gets its first member elsewhere, the
hub sends the newest cursor of each of its members (:class:`Resend`).

Participants are also rows in PostgreSQL (``participants``, with the hub
they are on, and ``hubs`` with each hub's heartbeat): every hub reads the
rows of its rooms every heartbeat, so a notification that was lost is
repaired, and the participants of a hub that stopped beating (killed,
cut off) disappear from everyone's lists once its heartbeat is older than
the expiry.  :class:`Roster` merges the two sources: a read only changes
the participants whose last notification came before the read began.

NOTIFY payloads must be shorter than 8000 bytes: a presence too large is
clipped (its last ranges dropped), counted, and never refused to its
sender.  A notification is untrusted input like a frame: anything that does
not parse, or does not have the body its kind says, is dropped and counted,
and what the clients get is built again from the checked fields.  A hub
ignores its own notifications (its clients heard everything first hand).

No I/O, no clock: ``peers.py`` and ``hub.py`` carry out what it returns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from collab_core import wire

__all__ = [
    "CHANNEL",
    "Resend",
    "KINDS",
    "NOTIFY_LIMIT",
    "Broadcast",
    "Outbox",
    "Replaced",
    "Roster",
    "RosterStats",
    "Row",
    "encode",
    "encode_presence",
]

CHANNEL = "pairls_peers"
#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more (its default page size); a margin
NOTIFY_LIMIT = 7900
#: presences kept per room for participants not known yet (a join read late)
MAX_EARLY = 256
KINDS = frozenset({"joined", "changed", "left", "replaced", "presence", "document", "ask"})
ROLES = frozenset({"owner", "editor", "viewer"})
#: hub ids are the hubs' own (cli.py: hex), but checked like everything else
HUB_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


@dataclass(frozen=True, slots=True)
class Row:
    """A participant connected to another hub, as the ``participants`` table has it."""

    participant: str
    hub_id: str
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send *message* to every member of *room_id* connected here."""

    room_id: str
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Replaced:
    """*participant*'s client connected again elsewhere: if it is connected here, close it."""

    room_id: str
    participant: str


@dataclass(frozen=True, slots=True)
class Resend:
    """Another hub has members in *room_id* now, and no cursors: send those of ours there again."""

    room_id: str


@dataclass
class RosterStats:
    """Counters (``HubStats`` copies them for ``/metrics``)."""

    #: notifications of other hubs read (for rooms someone here is in, or not)
    received: int = 0
    #: notifications dropped because they did not parse or check (another hub's bug, or worse)
    malformed: int = 0
    #: presence of a participant this hub does not know (it left, or its join is not read yet:
    #: kept until it is, at most MAX_EARLY per room)
    unknown_presence: int = 0
    #: presences clipped to fit a NOTIFY (their last ranges dropped)
    clipped_presence: int = 0
    #: participants read from the table that no notification had announced (a lost
    #: notification, a hub that came back), and those gone from it (a hub that died)
    repaired_joins: int = 0
    expired: int = 0


@dataclass(slots=True)
class _Remote:
    hub_id: str
    name: str
    role: str
    #: the roster's clock when a notification last set it (0: set by a read)
    version: int

    def describe(self, participant: str) -> dict[str, Any]:
        return {"id": participant, "name": self.name, "role": self.role}


@dataclass(slots=True)
class _RoomView:
    remote: dict[str, _Remote] = field(default_factory=dict)
    #: participant -> the clock when it left (a read begun before must not bring it back)
    gone: dict[str, int] = field(default_factory=dict)
    #: participant -> its newest presence message
    presence: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: participant -> its newest presence, before its join was heard or read (its hub may answer
    #: a new room's ``ask`` faster than this hub reads who is in the room); shown once it is
    early: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: holders (the hub's Room, a join in progress)
    holds: int = 0


# -- payloads -----------------------------------------------------------------


def encode(hub_id: str, room_id: str, kind: str, body: Mapping[str, Any]) -> str:
    """One notification's payload.  The ids are the hub's own (no spaces); the body is JSON."""
    return f"{hub_id} {room_id} {kind} {json.dumps(body, ensure_ascii=False, separators=(',', ':'))}"


def encode_presence(
    hub_id: str, room_id: str, presence: Mapping[str, Any], limit: int = NOTIFY_LIMIT
) -> tuple[str | None, bool]:
    """(payload, clipped): a ``presence`` notification shorter than *limit* bytes (None: it cannot be).

    *presence* is the message the hub relays, checked by ``wire.decode``: a
    path of at most 1024 characters and a name of at most 64 (4 bytes each
    at most), at most 64 ranges of numbers below 2^53.  The largest such
    message takes under 7,000 bytes, so today nothing is clipped; should the
    protocol's limits grow, the ranges that do not fit are dropped from the
    end (and the caller counts it) rather than the notification failing.
    """
    payload = encode(hub_id, room_id, "presence", presence)
    if len(payload.encode()) < limit:
        return payload, False
    ranges = presence["ranges"]
    head = encode(hub_id, room_id, "presence", {**presence, "ranges": []})
    size = len(head.encode())
    if size >= limit:
        return None, True
    kept: list[Any] = []
    for r in ranges:
        cost = len(json.dumps(r, separators=(",", ":"))) + (1 if kept else 0)
        if size + cost >= limit:
            break
        size += cost
        kept.append(r)
    return encode(hub_id, room_id, "presence", {**presence, "ranges": kept}), True


def _participant(value: Any) -> str:
    if type(value) is not str or not wire.PARTICIPANT_RE.fullmatch(value):
        raise ValueError("participant")
    return value


def _name(value: Any) -> str:
    """A name as the sending hub cleaned it, cleaned again here: nobody's client sees what the
    hub would not have let through (``wire.display_name``)."""
    if type(value) is not str or not 1 <= len(value) <= wire.MAX_NAME or wire.bad_text(value):
        raise ValueError("name")
    shown = wire.display_name(value)
    if not shown:
        raise ValueError("name")
    return shown


def _count(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= wire.MAX_INT:
        raise ValueError("integer")
    return value


def _path(value: Any) -> str:
    if type(value) is not str or not wire.valid_path(value):
        raise ValueError("path")
    return value


def _describe(body: Any) -> tuple[str, str, str]:
    if type(body) is not dict or body.get("role") not in ROLES:
        raise ValueError("participant")
    return _participant(body.get("id")), _name(body.get("name")), str(body["role"])


def _presence(body: Any) -> dict[str, Any]:
    if type(body) is not dict:
        raise ValueError("presence")
    ranges = body.get("ranges")
    if type(ranges) is not list or len(ranges) > wire.MAX_RANGES:
        raise ValueError("ranges")
    checked = []
    for r in ranges:
        if type(r) is not list or len(r) != 2:
            raise ValueError("range")
        checked.append([_count(r[0]), _count(r[1])])
    return {
        "type": "presence",
        "participant": _participant(body.get("participant")),
        "name": _name(body.get("name")),
        "path": _path(body.get("path")),
        "rev": _count(body.get("rev")),
        "ranges": checked,
    }


# -- the roster -----------------------------------------------------------------


class Roster:
    """The participants and presence of other hubs, for the rooms someone here is in.

    Feed it the payloads of ``pairls_peers`` (:meth:`receive`) and the rows
    read from the table (:meth:`begin_read`, then :meth:`synced`); each
    returns what to tell this hub's clients.  Rooms are tracked while held
    (:meth:`hold`, :meth:`release`): notifications for other rooms cost a
    split and a dictionary lookup.
    """

    def __init__(self, hub_id: str) -> None:
        self.hub_id = hub_id
        self.stats = RosterStats()
        self._rooms: dict[str, _RoomView] = {}
        self._clock = 0

    # -- rooms ------------------------------------------------------------------

    def hold(self, room_id: str) -> None:
        """Track *room_id* (until as many :meth:`release`)."""
        view = self._rooms.get(room_id)
        if view is None:
            view = self._rooms[room_id] = _RoomView()
        view.holds += 1

    def release(self, room_id: str) -> None:
        view = self._rooms.get(room_id)
        if view is not None:
            view.holds -= 1
            if view.holds <= 0:
                del self._rooms[room_id]

    @property
    def rooms(self) -> list[str]:
        return list(self._rooms)

    def participants(self, room_id: str) -> list[dict[str, Any]]:
        """The room's participants on other hubs, as ``joined.participants`` lists them."""
        view = self._rooms.get(room_id)
        if view is None:
            return []
        return [r.describe(p) for p, r in view.remote.items()]

    def presence(self, room_id: str) -> list[dict[str, Any]]:
        """The newest presence of each of them, as ``joined.presence`` lists it."""
        view = self._rooms.get(room_id)
        return [] if view is None else list(view.presence.values())

    def remote_count(self) -> int:
        return sum(len(v.remote) for v in self._rooms.values())

    def shares(self, room_id: str) -> bool:
        """Someone in *room_id* is on another hub, as far as this hub knows.

        Its members' cursors go to the other hubs only then: nobody else
        would read them.  The moment the room gets its first member elsewhere
        (a notification, or a read of the table), :meth:`receive` and
        :meth:`synced` return a :class:`Resend`, so what this hub kept to
        itself meanwhile goes out then, the newest cursor of each member.
        """
        view = self._rooms.get(room_id)
        return view is not None and bool(view.remote)

    # -- notifications ------------------------------------------------------------

    def receive(self, payload: str) -> list[Broadcast | Replaced | Resend]:
        """A ``pairls_peers`` notification: what to do here (nothing for our own, or another room's)."""
        parts = payload.split(" ", 3)
        if len(parts) != 4:
            self.stats.malformed += 1
            return []
        hub_id, room_id, kind, body = parts
        if hub_id == self.hub_id:
            return []
        self.stats.received += 1
        view = self._rooms.get(room_id)
        if view is None:
            # not a room of ours: not parsed further (well-formed or not, nothing to do)
            return []
        if not HUB_ID_RE.fullmatch(hub_id) or kind not in KINDS or len(body) > NOTIFY_LIMIT:
            self.stats.malformed += 1
            return []
        try:
            return self._apply(view, hub_id, room_id, kind, json.loads(body))
        except (ValueError, RecursionError):  # json.JSONDecodeError is a ValueError
            self.stats.malformed += 1
            return []

    def _apply(self, view: _RoomView, hub_id: str, room_id: str, kind: str, body: Any) -> list[Any]:
        if kind == "presence":
            msg = _presence(body)
            participant = msg["participant"]
            if participant not in view.remote:
                self.stats.unknown_presence += 1
                if participant not in view.gone and (
                    participant in view.early or len(view.early) < MAX_EARLY
                ):
                    view.early[participant] = msg
                return []
            view.presence[participant] = msg
            return [Broadcast(room_id, msg)]
        if kind == "ask":
            if body != {}:
                raise ValueError("ask")
            return [Resend(room_id)]
        if kind == "document":
            if type(body) is not dict:
                raise ValueError("document")
            msg = {
                "type": "document_added",
                "path": _path(body.get("path")),
                "rev": _count(body.get("rev")),
                "by": _participant(body.get("by")),
            }
            return [Broadcast(room_id, msg)]
        self._clock += 1
        if kind in ("left", "replaced"):
            if type(body) is not dict:
                raise ValueError("participant")
            participant = _participant(body.get("id"))
            out: list[Any] = self._remove(view, room_id, participant)
            view.gone[participant] = self._clock
            if kind == "replaced":
                out.append(Replaced(room_id, participant))
            return out
        participant, name, role = _describe(body)
        if participant in view.gone:
            return []  # it left (or was replaced) already: a late announcement
        return self._put(view, room_id, participant, _Remote(hub_id, name, role, self._clock))

    def _put(self, view: _RoomView, room_id: str, participant: str, entry: _Remote) -> list[Any]:
        known = view.remote.get(participant)
        first = not view.remote
        view.remote[participant] = entry
        if known is None:
            out: list[Any] = [
                Broadcast(room_id, {"type": "participant_joined", "participant": entry.describe(participant)})
            ]
            early = view.early.pop(participant, None)
            if early is not None:
                view.presence[participant] = early
                out.append(Broadcast(room_id, early))
            if first:
                # the room is shared from now on: our cursors, kept here until now, go there
                # (a hub new to the room asks for them too: they may go twice, never not at all)
                out.append(Resend(room_id))
            return out
        if (known.name, known.role) != (entry.name, entry.role):
            return [
                Broadcast(
                    room_id, {"type": "participant_changed", "participant": entry.describe(participant)}
                )
            ]
        return []

    def _remove(self, view: _RoomView, room_id: str, participant: str) -> list[Any]:
        view.presence.pop(participant, None)
        view.early.pop(participant, None)
        if view.remote.pop(participant, None) is None:
            return []
        return [Broadcast(room_id, {"type": "participant_left", "participant": participant})]

    # -- reads of the table ---------------------------------------------------------

    def begin_read(self) -> int:
        """Before reading the table: the token to pass to :meth:`synced` with what it read."""
        return self._clock

    def synced(
        self, token: int, rows: Mapping[str, Iterable[Row]], rooms: Iterable[str] | None = None
    ) -> list[Broadcast]:
        """The live participants of other hubs, per room, as read after :meth:`begin_read` gave *token*.

        *rooms*: the rooms the read was for (default: every room tracked); one of
        them absent from *rows* has nobody elsewhere.
        What a notification changed after the read began is left as it is
        (the read may predate it); everything else is made to agree with
        the rows: participants it lacks are gone (their hub left, or died
        and its heartbeat expired), those it adds were missed.
        """
        out: list[Broadcast] = []
        for room_id in list(self._rooms) if rooms is None else rooms:
            view = self._rooms.get(room_id)
            if view is None:
                continue  # released meanwhile
            found = rows.get(room_id, ())
            if not found and not view.remote and not view.gone:
                continue  # nobody elsewhere, before and after
            seen: set[str] = set()
            for row in found:
                if row.hub_id == self.hub_id:
                    continue
                seen.add(row.participant)
                if view.gone.get(row.participant, 0) > token:
                    continue
                known = view.remote.get(row.participant)
                if known is not None and known.version > token:
                    continue
                if known is None:
                    self.stats.repaired_joins += 1
                view.gone.pop(row.participant, None)
                out.extend(
                    self._put(view, room_id, row.participant, _Remote(row.hub_id, row.name, row.role, 0))
                )
            for participant in [p for p, r in view.remote.items() if p not in seen and r.version <= token]:
                self.stats.expired += 1
                out.extend(self._remove(view, room_id, participant))
            # a departure the read saw is in the table's past now
            for participant in [p for p, v in view.gone.items() if v <= token]:
                del view.gone[participant]
        return out


class Outbox:
    """Presence on its way to the other hubs: the newest per participant wins.

    The hub sends what it holds in one statement; what arrives while that
    statement runs waits for the next, so a cursor moved many times in the
    meantime costs one notification.
    """

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], str] = {}
        #: presences replaced by a newer one before they were sent
        self.coalesced = 0

    def put(self, room_id: str, participant: str, payload: str) -> None:
        key = (room_id, participant)
        if key in self._pending:
            self.coalesced += 1
            del self._pending[key]  # (the newest goes last: order of arrival)
        self._pending[key] = payload

    def discard(self, room_id: str, participant: str) -> None:
        """The participant left: its last cursor goes nowhere."""
        self._pending.pop((room_id, participant), None)

    def take(self) -> list[str]:
        out = list(self._pending.values())
        self._pending.clear()
        return out

    def __len__(self) -> int:
        return len(self._pending)
