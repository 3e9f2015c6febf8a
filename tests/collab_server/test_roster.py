"""The roster (collab_server/roster.py): what other hubs' notifications and the participants
table mean for this hub's clients.  Plain synchronous tests: payloads in, actions out."""

from __future__ import annotations

import json

import pytest

from collab_core import wire
from collab_server.roster import (
    MAX_EARLY,
    NOTIFY_LIMIT,
    Broadcast,
    Outbox,
    Replaced,
    Resend,
    Roster,
    Row,
    encode,
    encode_presence,
)

ROOM = "room-1"


def roster(*rooms: str) -> Roster:
    r = Roster("hub-me")
    for room in rooms or (ROOM,):
        r.hold(room)
    return r


def joined(participant: str = "p1", name: str = "Ada", role: str = "editor", hub: str = "hub-b") -> str:
    return encode(hub, ROOM, "joined", {"id": participant, "name": name, "role": role})


def presence(participant: str = "p1", ranges: list[list[int]] | None = None, hub: str = "hub-b") -> str:
    body = {
        "participant": participant,
        "name": "Ada",
        "path": "a.txt",
        "rev": 3,
        "ranges": ranges or [[1, 2]],
    }
    return encode(hub, ROOM, "presence", body)


def messages(actions: list[Broadcast | Replaced]) -> list[dict[str, object]]:
    return [a.message for a in actions if isinstance(a, Broadcast)]


def test_a_join_on_another_hub_is_told_and_listed() -> None:
    r = roster()
    assert messages(r.receive(joined())) == [
        {"type": "participant_joined", "participant": {"id": "p1", "name": "Ada", "role": "editor"}}
    ]
    assert r.participants(ROOM) == [{"id": "p1", "name": "Ada", "role": "editor"}]
    assert r.receive(joined()) == []  # the same again: nothing new


def test_own_notifications_and_other_rooms_are_ignored() -> None:
    r = roster()
    assert r.receive(joined(hub="hub-me")) == []
    assert r.receive(encode("hub-b", "elsewhere", "joined", {"id": "p", "name": "x", "role": "editor"})) == []
    assert r.participants(ROOM) == [] and r.stats.malformed == 0


def test_presence_is_relayed_rebuilt_from_checked_fields_and_kept_for_newcomers() -> None:
    r = roster()
    r.receive(joined())
    body = {"participant": "p1", "name": "Ada", "path": "a.txt", "rev": 3, "ranges": [[1, 2]], "extra": "<x>"}
    out = messages(r.receive(encode("hub-b", ROOM, "presence", body)))
    expected = {
        "type": "presence",
        "participant": "p1",
        "name": "Ada",
        "path": "a.txt",
        "rev": 3,
        "ranges": [[1, 2]],
    }
    assert out == [expected]
    assert r.presence(ROOM) == [expected]
    r.receive(presence(ranges=[[5, 5]]))
    assert r.presence(ROOM)[0]["ranges"] == [[5, 5]]  # the newest only


def test_presence_of_an_unknown_participant_is_counted_and_shown_once_its_join_is_heard() -> None:
    """Its hub can answer a new room's ``ask`` before this hub has read who is in the room."""
    r = roster()
    assert r.receive(presence()) == []
    assert r.stats.unknown_presence == 1 and r.presence(ROOM) == []
    out = messages(r.receive(joined()))
    assert [m["type"] for m in out] == ["participant_joined", "presence"]
    assert out[1]["ranges"] == [[1, 2]] and r.presence(ROOM) == [out[1]]


def test_an_early_presence_is_shown_once_a_read_finds_its_participant() -> None:
    r = roster()
    token = r.begin_read()
    r.receive(presence())
    out = messages(r.synced(token, {ROOM: [Row("p1", "hub-b", "Ada", "editor")]}))
    assert [m["type"] for m in out] == ["participant_joined", "presence"]


def test_early_presences_are_bounded_and_forgotten_with_their_participant() -> None:
    r = roster()
    for i in range(MAX_EARLY + 10):
        r.receive(presence(participant=f"x{i}"))
    r.receive(encode("hub-b", ROOM, "left", {"id": "x0"}))
    assert r.receive(joined("x0")) == []  # (left: a late join does not bring it back)
    late = messages(r.receive(joined(f"x{MAX_EARLY + 5}")))
    assert [m["type"] for m in late] == ["participant_joined"]  # (over the bound: not kept)


def test_a_departure_is_told_and_takes_the_cursor_with_it() -> None:
    r = roster()
    r.receive(joined())
    r.receive(presence())
    out = messages(r.receive(encode("hub-b", ROOM, "left", {"id": "p1"})))
    assert out == [{"type": "participant_left", "participant": "p1"}]
    assert r.participants(ROOM) == [] and r.presence(ROOM) == []
    assert r.receive(joined()) == []  # a late copy of its join does not bring it back


def test_a_replaced_connection_is_closed_where_it_is_and_leaves_the_lists() -> None:
    r = roster()
    r.receive(joined())
    out = r.receive(encode("hub-c", ROOM, "replaced", {"id": "p1"}))
    assert out == [
        Broadcast(ROOM, {"type": "participant_left", "participant": "p1"}),
        Replaced(ROOM, "p1"),
    ]
    # one of ours (unknown to the roster): only the close
    assert r.receive(encode("hub-c", ROOM, "replaced", {"id": "mine"})) == [Replaced(ROOM, "mine")]


def test_a_role_change_is_told() -> None:
    r = roster()
    r.receive(joined())
    out = messages(r.receive(encode("hub-b", ROOM, "changed", {"id": "p1", "name": "Ada", "role": "viewer"})))
    assert out == [
        {"type": "participant_changed", "participant": {"id": "p1", "name": "Ada", "role": "viewer"}}
    ]


def test_a_hub_new_to_the_room_asks_for_the_cursors_again() -> None:
    r = roster()
    assert r.receive(encode("hub-b", ROOM, "ask", {})) == [Resend(ROOM)]


def test_a_room_is_shared_while_it_has_members_elsewhere_and_each_first_one_gets_our_cursors() -> None:
    r = roster("other")
    r.hold(ROOM)
    assert not r.shares(ROOM) and not r.shares("nowhere")
    # the first member elsewhere, announced: its join is told, then our cursors go there
    out = r.receive(joined("p1"))
    assert out[-1] == Resend(ROOM) and out.count(Resend(ROOM)) == 1
    assert r.shares(ROOM) and not r.shares("other")
    # a second one finds the room shared already: nothing to send again
    assert Resend(ROOM) not in r.receive(joined("p2", hub="hub-c"))
    r.receive(encode("hub-b", ROOM, "left", {"id": "p1"}))
    assert r.shares(ROOM)
    r.receive(encode("hub-c", ROOM, "left", {"id": "p2"}))
    assert not r.shares(ROOM)
    # the first member again, found by a read (its notification was lost): the same
    out = r.synced(r.begin_read(), {ROOM: [Row("p3", "hub-b", "Bo", "editor")]})
    assert out[-1] == Resend(ROOM) and r.shares(ROOM)
    # a hub that stopped beating takes the room's last member elsewhere with it
    r.synced(r.begin_read(), {ROOM: []})
    assert not r.shares(ROOM)
    # our own rows are not members elsewhere
    assert r.synced(r.begin_read(), {ROOM: [Row("p4", "hub-me", "Me", "owner")]}) == []
    assert not r.shares(ROOM)


def test_a_document_added_elsewhere_is_told() -> None:
    r = roster()
    out = messages(r.receive(encode("hub-b", ROOM, "document", {"path": "src/a.py", "rev": 0, "by": "p1"})))
    assert out == [{"type": "document_added", "path": "src/a.py", "rev": 0, "by": "p1"}]


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "garbage",
        "hub-b room-1 joined",
        f"hub-b {ROOM} joined {{",
        f"hub-b {ROOM} joined []",
        f"hub-b {ROOM} exploded {{}}",
        f"hub-b {ROOM} ask " + json.dumps({"x": 1}),
        f"hub/b {ROOM} joined {{}}",
        f"hub-b {ROOM} joined " + json.dumps({"id": "p 1", "name": "Ada", "role": "editor"}),
        f"hub-b {ROOM} joined " + json.dumps({"id": "p1", "name": "Ada", "role": "god"}),
        f"hub-b {ROOM} joined " + json.dumps({"id": "p1", "name": "\u202e", "role": "editor"}),
        f"hub-b {ROOM} joined " + json.dumps({"id": "p1", "name": "x" * 65, "role": "editor"}),
        f"hub-b {ROOM} joined " + json.dumps({"id": "p1", "name": "a\ud800", "role": "editor"}),
        f"hub-b {ROOM} left " + json.dumps({"id": ["p1"]}),
        f"hub-b {ROOM} document " + json.dumps({"path": "../etc/passwd", "rev": 0, "by": "p1"}),
        f"hub-b {ROOM} document " + json.dumps({"path": "a", "rev": -1, "by": "p1"}),
        f"hub-b {ROOM} document " + json.dumps({"path": "a", "rev": True, "by": "p1"}),
        f"hub-b {ROOM} presence "
        + json.dumps({"participant": "p1", "name": "A", "path": "a", "rev": 1, "ranges": [[1]]}),
        f"hub-b {ROOM} presence "
        + json.dumps({"participant": "p1", "name": "A", "path": "a", "rev": 1, "ranges": [[0, 1]] * 65}),
        f"hub-b {ROOM} presence " + "[" * 100000 + "]" * 100000,
    ],
)
def test_malformed_notifications_are_dropped_and_counted(payload: str) -> None:
    r = roster()
    if payload not in ("", "garbage", "hub-b room-1 joined"):
        r.receive(joined())  # (a presence needs a known participant to be looked at)
    before = r.participants(ROOM)
    assert messages(r.receive(payload)) == []
    assert r.stats.malformed == 1
    assert r.participants(ROOM) == before


def test_a_name_is_cleaned_again_on_arrival() -> None:
    r = roster()
    out = messages(r.receive(joined(name="Ada\u200b")))
    assert out[0]["participant"] == {"id": "p1", "name": "Ada", "role": "editor"}


def test_the_largest_presence_fits_a_notification_and_a_larger_one_would_be_clipped() -> None:
    path = "\U0001f600" * wire.MAX_PATH
    name = "\U0001f600" * wire.MAX_NAME
    ranges = [[wire.MAX_INT - 1] * 2] * wire.MAX_RANGES
    msg = {"participant": "p" * 64, "name": name, "path": path, "rev": wire.MAX_INT, "ranges": ranges}
    payload, clipped = encode_presence("h" * 64, "r" * 64, msg)
    assert not clipped and len(payload.encode()) < NOTIFY_LIMIT
    # the same under a smaller limit: the last ranges go, and what is left still parses
    payload, clipped = encode_presence("hub-b", ROOM, msg, limit=6000)
    assert clipped and payload is not None and len(payload.encode()) < 6000
    r = roster()
    r.receive(encode("hub-b", ROOM, "joined", {"id": "p" * 64, "name": name, "role": "editor"}))
    (out,) = messages(r.receive(payload))
    assert 0 < len(out["ranges"]) < wire.MAX_RANGES and out["ranges"] == ranges[: len(out["ranges"])]
    # too small even without ranges: nothing to send (the caller counts it)
    assert encode_presence("hub-b", ROOM, msg, limit=100) == (None, True)


def test_a_read_repairs_a_lost_join_and_drops_the_participants_of_a_dead_hub() -> None:
    r = roster()
    r.receive(joined("p1"))
    token = r.begin_read()
    # the table has p2 (its notification was lost) and no p1 (its hub stopped beating)
    out = messages(r.synced(token, {ROOM: [Row("p2", "hub-c", "Bo", "viewer")]}))
    assert out == [
        {"type": "participant_joined", "participant": {"id": "p2", "name": "Bo", "role": "viewer"}},
        {"type": "participant_left", "participant": "p1"},
    ]
    assert (r.stats.repaired_joins, r.stats.expired) == (1, 1)
    # a room absent from the read has nobody elsewhere; a room not read is left alone
    r.hold("other")
    r.receive(encode("hub-b", "other", "joined", {"id": "p9", "name": "Cy", "role": "editor"}))
    token = r.begin_read()
    r.synced(token, {}, [ROOM])
    assert r.participants(ROOM) == [] and len(r.participants("other")) == 1


def test_a_read_does_not_undo_what_notifications_said_after_it_began() -> None:
    r = roster()
    r.receive(joined("p1"))
    token = r.begin_read()
    r.receive(joined("p2"))  # joined after the read's snapshot: not in the rows
    r.receive(encode("hub-b", ROOM, "left", {"id": "p1"}))  # left after it: still in the rows
    out = r.synced(token, {ROOM: [Row("p1", "hub-b", "Ada", "editor")]})
    assert out == []
    assert [p["id"] for p in r.participants(ROOM)] == ["p2"]
    # the next read sees both
    token = r.begin_read()
    assert r.synced(token, {ROOM: [Row("p2", "hub-b", "Ada", "editor")]}) == []


def test_rows_of_this_hub_are_not_remote() -> None:
    r = roster()
    assert r.synced(r.begin_read(), {ROOM: [Row("p1", "hub-me", "Me", "owner")]}) == []


def test_a_room_is_forgotten_once_released_by_every_holder() -> None:
    r = roster()
    r.hold(ROOM)
    r.receive(joined())
    r.release(ROOM)
    assert r.participants(ROOM)
    r.release(ROOM)
    assert r.participants(ROOM) == [] and r.rooms == []


def test_the_outbox_keeps_the_newest_cursor_of_each_participant() -> None:
    box = Outbox()
    box.put(ROOM, "p1", "a")
    box.put(ROOM, "p2", "b")
    box.put(ROOM, "p1", "c")
    box.put(ROOM, "p3", "d")
    box.discard(ROOM, "p3")
    assert box.coalesced == 1 and len(box) == 2
    assert box.take() == ["b", "c"]
    assert box.take() == []
