"""Invites: one link that holds all a peer needs to join a room.

Format: ``<hub address>/room/<room id>#<secret>``, e.g.
``http://127.0.0.1:8765/room/q3L...Qw#Xy...`` (``https://`` for a hub behind TLS).  Opened in
a browser, the link is the web client, served by the hub itself; pasted into an editor, the
language server connects to the same address as a WebSocket (``http`` -> ``ws``, ``https`` ->
``wss``).  The older form with ``ws://`` or ``wss://`` is still accepted.  The secret sits in the
fragment, which browsers never send to a server.  The secret decides the role (editor or
viewer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Invite", "InvalidInvite", "parse_invite"]

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: the WebSocket scheme of each scheme an invite may have
_WS_SCHEME = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
#: and the link's scheme of each WebSocket scheme
_LINK_SCHEME = {"ws": "http", "wss": "https"}
_EXPECTED = "not a pairls invite (expected http://HOST:PORT/room/ROOM#SECRET)"


class InvalidInvite(ValueError):
    """The string is not a pairls invite."""


@dataclass(frozen=True, slots=True)
class Invite:
    #: the hub's WebSocket address (``ws://`` or ``wss://``, with any path prefix)
    hub_url: str
    room_id: str
    secret: str

    def __str__(self) -> str:
        """The invite as a link (``http``/``https``), which a browser opens too."""
        scheme, sep, rest = self.hub_url.rstrip("/").partition("://")
        base = f"{_LINK_SCHEME.get(scheme, scheme)}{sep}{rest}"
        return f"{base}/room/{self.room_id}#{self.secret}"


def parse_invite(text: str) -> Invite:
    """Parse an invite (``http``, ``https``, ``ws`` or ``wss``); raises :class:`InvalidInvite`
    with a message fit for the user."""
    text = text.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        raise InvalidInvite(_EXPECTED) from None
    scheme = _WS_SCHEME.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise InvalidInvite(_EXPECTED)
    prefix, sep, room = parts.path.rstrip("/").rpartition("/room/")
    if not sep or not _ID.fullmatch(room):
        raise InvalidInvite("the invite has no room id")
    if not _SECRET.fullmatch(parts.fragment):
        raise InvalidInvite("the invite has no secret")
    return Invite(f"{scheme}://{parts.netloc}{prefix}", room, parts.fragment)
