"""Invites as links: ``http(s)://HOST:PORT/room/ID#SECRET`` (what a browser opens and what the
language server makes), and the older ``ws(s)://`` form, both joined over ``ws(s)://``."""

from __future__ import annotations

import pytest

from lsp_bridge.invite import InvalidInvite, Invite, parse_invite

ROOM = "q3LdXyZ0123456789abcde"
SECRET = "Xy" * 21 + "Z"


@pytest.mark.parametrize(
    ("link", "hub"),
    [
        (f"http://127.0.0.1:8765/room/{ROOM}#{SECRET}", "ws://127.0.0.1:8765"),
        (f"https://pairls.example.com/room/{ROOM}#{SECRET}", "wss://pairls.example.com"),
        (f"HTTPS://pairls.example.com/pairls/room/{ROOM}#{SECRET}", "wss://pairls.example.com/pairls"),
        (f"  http://[::1]:9000/room/{ROOM}/#{SECRET}\n", "ws://[::1]:9000"),
        # the older form keeps working
        (f"ws://127.0.0.1:8765/room/{ROOM}#{SECRET}", "ws://127.0.0.1:8765"),
        (f"wss://pairls.example.com/x/room/{ROOM}#{SECRET}", "wss://pairls.example.com/x"),
    ],
)
def test_an_invite_names_the_hub_to_connect_to(link: str, hub: str) -> None:
    invite = parse_invite(link)
    assert (invite.hub_url, invite.room_id, invite.secret) == (hub, ROOM, SECRET)


def test_an_invite_is_written_as_a_link_a_browser_opens() -> None:
    assert str(Invite("ws://127.0.0.1:8765", ROOM, SECRET)) == f"http://127.0.0.1:8765/room/{ROOM}#{SECRET}"
    assert str(Invite("wss://h.example/p/", ROOM, SECRET)) == f"https://h.example/p/room/{ROOM}#{SECRET}"
    # and read back as the same invite
    for hub in ("ws://127.0.0.1:8765", "wss://h.example/p"):
        assert parse_invite(str(Invite(hub, ROOM, SECRET))) == Invite(hub, ROOM, SECRET)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "not a pairls invite"),
        ("hello", "not a pairls invite"),
        (f"ftp://h/room/{ROOM}#{SECRET}", "not a pairls invite"),
        (f"http:///room/{ROOM}#{SECRET}", "not a pairls invite"),
        (f"http://h:8765/rooms/{ROOM}#{SECRET}", "no room id"),
        (f"http://h:8765/room/a%20b#{SECRET}", "no room id"),
        (f"http://h:8765/room/{ROOM}", "no secret"),
        (f"http://h:8765/room/{ROOM}#a/b", "no secret"),
    ],
)
def test_what_is_not_an_invite_is_refused_in_words(text: str, why: str) -> None:
    with pytest.raises(InvalidInvite, match=why):
        parse_invite(text)
