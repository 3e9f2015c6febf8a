"""Invites: one string that holds all a peer needs to join a room.

Format: ``<hub url>/room/<room id>#<secret>``, e.g.
``ws://127.0.0.1:8765/room/q3L...Qw#Xy...`` (``wss://`` works the same).
The secret sits in the fragment so that pasting an invite into a browser
never sends it to a server.  The secret decides the role (editor or viewer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Invite", "InvalidInvite", "parse_invite"]

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,128}")


class InvalidInvite(ValueError):
    """The string is not a pairls invite."""


@dataclass(frozen=True, slots=True)
class Invite:
    hub_url: str
    room_id: str
    secret: str

    def __str__(self) -> str:
        return f"{self.hub_url.rstrip('/')}/room/{self.room_id}#{self.secret}"


def parse_invite(text: str) -> Invite:
    """Parse an invite; raises :class:`InvalidInvite` with a message fit for the user."""
    text = text.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        raise InvalidInvite("not a pairls invite (expected ws://HOST:PORT/room/ROOM#SECRET)") from None
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise InvalidInvite("not a pairls invite (expected ws://HOST:PORT/room/ROOM#SECRET)")
    prefix, sep, room = parts.path.rpartition("/room/")
    if not sep or not _ID.fullmatch(room):
        raise InvalidInvite("the invite has no room id")
    if not _SECRET.fullmatch(parts.fragment):
        raise InvalidInvite("the invite has no secret")
    return Invite(f"{parts.scheme}://{parts.netloc}{prefix}", room, parts.fragment)
