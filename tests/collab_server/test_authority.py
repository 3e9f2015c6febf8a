"""Who may do what to whom (collab_server.authority), decided without a hub or a database."""

from __future__ import annotations

import pytest

from collab_core.errors import CloseCode, ErrorCode, Forbidden, ProtocolError
from collab_server.authority import (
    Admission,
    ChangeRole,
    Close,
    RoomState,
    Seat,
    admit,
    check_owner,
    check_target,
    reconcile,
    room_check_interval,
)

OWNER_S, EDITOR_S, VIEWER_S, OLD_S = b"o" * 32, b"e" * 32, b"v" * 32, b"x" * 32
ADA = Seat("p-ada", "c-ada", "owner", OWNER_S)
BOB = Seat("p-bob", "c-bob", "editor", EDITOR_S)
VIC = Seat("p-vic", "c-vic", "viewer", VIEWER_S)
STATE = RoomState(True, frozenset({OWNER_S, EDITOR_S, VIEWER_S}))


def code_of(exc: pytest.ExceptionInfo[ProtocolError]) -> ErrorCode:
    return exc.value.code


@pytest.mark.parametrize("role", ["editor", "viewer", ""])
def test_only_the_owner_may_control_the_room(role: str) -> None:
    with pytest.raises(Forbidden) as info:
        check_owner(role)
    assert code_of(info) == ErrorCode.FORBIDDEN
    check_owner("owner")


def test_the_target_must_exist_and_must_not_be_an_owner() -> None:
    with pytest.raises(ProtocolError) as info:
        check_target(None)
    assert code_of(info) == ErrorCode.NO_SUCH_PARTICIPANT
    with pytest.raises(Forbidden) as forbidden:
        check_target(ADA)
    assert code_of(forbidden) == ErrorCode.FORBIDDEN
    assert "owner" in forbidden.value.detail
    assert check_target(BOB) is BOB


def test_a_join_gets_the_invites_role_unless_the_owner_said_otherwise() -> None:
    assert admit(Admission("editor")) == "editor"
    assert admit(Admission("viewer")) == "viewer"
    # a role the owner gave this client id survives its reconnects...
    assert admit(Admission("editor", assigned_role="viewer", member=True)) == "viewer"
    assert admit(Admission("viewer", assigned_role="editor", member=True)) == "editor"
    # ...and an owner is always an owner
    assert admit(Admission("owner", assigned_role="viewer", member=True)) == "owner"
    with pytest.raises(ProtocolError) as info:
        admit(Admission(None))
    assert code_of(info) == ErrorCode.BAD_INVITE


def test_a_removed_client_stays_out_and_its_secret_admits_nobody_new() -> None:
    for a in (
        Admission("editor", member=True, removed=True),
        Admission("owner", member=True, removed=True),
        Admission("editor", withdrawn=True),  # a new client id with the removed one's secret
    ):
        with pytest.raises(Forbidden) as info:
            admit(a)
        assert code_of(info) == ErrorCode.REMOVED
    # members who had joined with that secret before keep reconnecting with it
    assert admit(Admission("editor", member=True, withdrawn=True)) == "editor"


def test_a_room_in_line_with_the_database_needs_nothing() -> None:
    assert reconcile([ADA, BOB, VIC], STATE) == []


def test_a_deleted_room_closes_everyone_with_who_deleted_it() -> None:
    out = reconcile([ADA, BOB], RoomState(False, deleted_by="owner"))
    assert out == [
        Close("p-ada", CloseCode.ROOM_DELETED, "room deleted by its owner"),
        Close("p-bob", CloseCode.ROOM_DELETED, "room deleted by its owner"),
    ]
    (idle,) = reconcile([BOB], RoomState(False, deleted_by="idle"))
    assert idle.reason == "room deleted after being idle"
    (unknown,) = reconcile([BOB], RoomState(False))  # deleted long ago, or never there
    assert unknown == Close("p-bob", CloseCode.ROOM_DELETED, "room deleted")


def test_a_removed_client_is_closed_with_4403() -> None:
    state = RoomState(True, STATE.secrets, frozenset({"c-bob"}))
    assert reconcile([ADA, BOB, VIC], state) == [
        Close("p-bob", CloseCode.REMOVED, "removed from the room by the owner")
    ]


def test_rotated_invites_close_everyone_who_joined_with_the_old_ones_but_owners() -> None:
    old_bob = Seat("p-bob", "c-bob", "editor", OLD_S)
    demoted = Seat("p-dee", "c-dee", "viewer", OLD_S)  # joined as editor, made a viewer since
    state = RoomState(True, frozenset({OWNER_S, EDITOR_S}))
    out = reconcile([ADA, old_bob, demoted, BOB], state)
    assert [(a.participant, a.code) for a in out if isinstance(a, Close)] == [
        ("p-bob", CloseCode.INVITE_WITHDRAWN),
        ("p-dee", CloseCode.INVITE_WITHDRAWN),
    ]
    # an owner stays even if its secret were gone (owners' secrets are never rotated)
    assert reconcile([ADA], RoomState(True, frozenset())) == []


def test_a_role_the_owner_gave_is_applied_once_and_never_to_an_owner() -> None:
    state = RoomState(True, STATE.secrets, roles={"c-bob": "viewer", "c-vic": "viewer", "c-ada": "editor"})
    assert reconcile([ADA, BOB, VIC], state) == [ChangeRole("p-bob", "viewer")]


def test_rooms_are_checked_often_enough_for_their_ttl() -> None:
    assert room_check_interval(30 * 86400, 60) == 60
    assert room_check_interval(2.0, 60) == pytest.approx(0.2)
    assert room_check_interval(0, 60) == 60  # rooms live forever: the check still runs
    assert room_check_interval(0.001, 60) == 0.05
