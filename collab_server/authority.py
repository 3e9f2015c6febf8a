"""Who may do what to whom in a room, and what the stored room means for its connections (sans-I/O).

The owner controls the room (docs/protocol.md, "Owners"): they may remove
a participant (``kick``), make one an editor or a viewer (``set_role``),
replace the editor and viewer invites (``rotate_invites``) and delete the
room (``delete_room``).  Nobody else may; nobody may act on an owner.

Several hubs share one PostgreSQL, so what the owner decides is written
there first, and every hub then brings its own connections in line with
it (:func:`reconcile`): after a ``NOTIFY`` at once, and on every periodic
room check in case a notification was lost.  This module makes those
decisions; ``hub.py`` reads the rows, carries the decisions out and writes
the frames.  It does no I/O and reads no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from collab_core.errors import CloseCode, ErrorCode, Forbidden, ProtocolError

__all__ = [
    "Admission",
    "ChangeRole",
    "Close",
    "RoomState",
    "Seat",
    "admit",
    "check_owner",
    "check_target",
    "reconcile",
    "room_check_interval",
]

OWNER = "owner"

#: the fixed text of a refusal to act on an owner
OWNER_UNTOUCHABLE = "the owner cannot be removed or given another role"

#: close reasons (fixed texts; clients key on the code)
REMOVED_REASON = "removed from the room by the owner"
WITHDRAWN_REASON = "the owner changed the invites"
DELETED_REASONS = {
    "owner": "room deleted by its owner",
    "operator": "room deleted by the hub's operator",
    "idle": "room deleted after being idle",
}
DELETED_REASON = "room deleted"


@dataclass(frozen=True, slots=True)
class Seat:
    """A connection in a room, as far as who-may-what is concerned."""

    participant: str
    client_id: str
    role: str
    #: SHA-256 of the secret it joined with
    secret_hash: bytes


@dataclass(frozen=True, slots=True)
class Admission:
    """What the database says about a ``join`` (one client id, one secret, one room)."""

    #: the role the secret's invite grants; None if the secret opens nothing in this room
    invite_role: str | None
    #: the role the owner gave this client id, if they gave one
    assigned_role: str | None = None
    #: the client id joined this room before
    member: bool = False
    #: the owner removed this client id
    removed: bool = False
    #: the owner removed someone who had joined with this secret
    withdrawn: bool = False


@dataclass(frozen=True, slots=True)
class RoomState:
    """A room as stored: what its connections are checked against."""

    exists: bool
    #: digests of the secrets that open it now
    secrets: frozenset[bytes] = frozenset()
    #: client ids the owner removed
    removed: frozenset[str] = frozenset()
    #: client id -> the role the owner gave it
    roles: Mapping[str, str] = field(default_factory=dict)
    #: who deleted it (owner, operator, idle), if it was deleted lately
    deleted_by: str | None = None


@dataclass(frozen=True, slots=True)
class Close:
    """Close this participant's connection with *code* and *reason*."""

    participant: str
    code: CloseCode
    reason: str


@dataclass(frozen=True, slots=True)
class ChangeRole:
    """This participant has a new role: tell the room."""

    participant: str
    role: str


def check_owner(role: str) -> None:
    """Only the owner may control the room: raises :class:`Forbidden` for anyone else."""
    if role != OWNER:
        raise Forbidden(ErrorCode.FORBIDDEN)


def check_target(target: Seat | None) -> Seat:
    """The participant an owner's request names: it must exist, and must not be an owner."""
    if target is None:
        raise ProtocolError(ErrorCode.NO_SUCH_PARTICIPANT)
    if target.role == OWNER:
        raise Forbidden(ErrorCode.FORBIDDEN, OWNER_UNTOUCHABLE)
    return target


def admit(a: Admission) -> str:
    """The role a ``join`` gets, or the refusal (a :class:`ProtocolError`).

    A removed client id stays out whatever secret it brings.  The secret a
    removed participant had joined with admits nobody new until the owner
    rotates the invites (members who joined before keep reconnecting with
    it); rotating is what keeps a determined person out, since the next
    room entry of their editor has a new client id.  A role the owner gave
    a client id lasts for that id (its reconnects); an owner stays owner.
    """
    if a.invite_role is None:
        raise ProtocolError(ErrorCode.BAD_INVITE)
    if a.removed or (a.withdrawn and not a.member):
        raise Forbidden(ErrorCode.REMOVED)
    if a.invite_role == OWNER:
        return OWNER
    return a.assigned_role or a.invite_role


def reconcile(seats: Iterable[Seat], state: RoomState) -> list[Close | ChangeRole]:
    """What to do with a room's connections on this hub so that they agree with *state*.

    A deleted room closes everyone (4410); a removed client id is closed
    with 4403; a connection whose secret no longer opens the room (the
    invites were rotated) with 4401, unless it is an owner's; a connection
    whose role the owner changed gets it.  Who deleted the room (owner,
    operator, idle) only words the reason.
    """
    out: list[Close | ChangeRole] = []
    for seat in seats:
        if not state.exists:
            reason = DELETED_REASONS.get(state.deleted_by or "", DELETED_REASON)
            out.append(Close(seat.participant, CloseCode.ROOM_DELETED, reason))
        elif seat.role == OWNER:
            continue
        elif seat.client_id in state.removed:
            out.append(Close(seat.participant, CloseCode.REMOVED, REMOVED_REASON))
        elif seat.secret_hash not in state.secrets:
            out.append(Close(seat.participant, CloseCode.INVITE_WITHDRAWN, WITHDRAWN_REASON))
        else:
            role = state.roles.get(seat.client_id)
            if role is not None and role != seat.role and role != OWNER:
                out.append(ChangeRole(seat.participant, role))
    return out


def room_check_interval(room_ttl: float, longest: float) -> float:
    """How often a hub checks its rooms against the database (and marks them active).

    At most *longest*, and often enough that a room with someone connected
    is marked active many times within its time to live (the idle sweep
    never takes it for idle); ``room_ttl`` 0 means rooms live forever.
    """
    if room_ttl <= 0:
        return longest
    return max(0.05, min(longest, room_ttl / 10))
