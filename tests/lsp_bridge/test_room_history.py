"""History in the language server's room (lsp_bridge.room), fed events by hand: undo and redo
of the user's own changes, history pages, revisions and blame (docs/protocol.md, "History").

Like tests/lsp_bridge/test_room.py (whose :class:`Wire` plays the hub), without sockets,
editor or clock: each detour (typing not yet acknowledged, a lost connection, a hub that
is not ready, answers that make no sense) is a transition checked here.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from lsp_bridge.blame import LineBlame
from lsp_bridge.room import ApplyEdit, Done, Log, ShowMessage
from tests.lsp_bridge.test_room import Wire, _share_created

URI = "file:///x.txt"


def _room(text: str = "abc\n", **config: Any) -> Wire:
    w = Wire(**config)
    w.room.user = "ada-the-user"
    w.create()
    _share_created(w, URI, "x.txt", text)
    w.events_of(Done)
    return w


def _show(w: Wire) -> None:
    """The editor applies every edit the room sends it (and reports it back)."""
    for ev in w.events_of(ApplyEdit):
        view = w.room.by_uri[URI].views[URI]
        version = view.sync.version + 1
        w.room.edit_answered(URI, True, w.now)
        changes = [
            _change(e.start, e.end, e.new_text) for e in reversed(ev.edit.edits)
        ]  # (later places first: the earlier positions stay valid)
        w.room.editor_changed(URI, version, changes, w.now)
        w.step()


def _change(start: tuple[int, int], end: tuple[int, int], text: str) -> Any:
    from lsp_bridge.editor_sync import ContentChange

    return ContentChange((*start, *end), text)


def test_hello_says_who_the_user_is() -> None:
    w = Wire()
    w.room.user = "ada-the-user"
    assert w.create()["user"] == "ada-the-user"
    # without one (an older setup), hello says nothing of it: the hub takes the client id
    plain = Wire()
    assert "user" not in plain.create()


def test_undo_waits_until_the_hub_has_the_users_typing_then_asks() -> None:
    w = _room()
    w.type(URI, 2, (0, 3), "!")
    first = w.take("op")
    w.type(URI, 3, (0, 4), "?")  # waits in the buffer, behind the first
    ticket = w.room.undo("x.txt", w.now)
    assert not w.all("undo")  # the typing goes first
    w.commit("x.txt", first)
    assert not w.all("undo")  # "?" is not acknowledged yet
    w.commit("x.txt", w.take("op"))
    req = w.take("undo", path="x.txt")
    # the hub commits the undo (as rev 3) and sends it to everyone, us too, without seq
    w.peer_op("x.txt", [3, -2, 1], author="me")
    w.reply(req, type="undone", path="x.txt", rev=3)
    assert w.done(ticket).result == {"rev": 3}
    (edit,) = w.events_of(ApplyEdit)  # it reaches the editor like a peer's op
    assert [(e.start, e.end, e.new_text) for e in edit.edit.edits] == [((0, 3), (0, 5), "")]
    assert w.room.docs["x.txt"].client.text == "abc\n"  # type: ignore[union-attr]


def test_typing_after_the_undo_was_asked_does_not_hold_it_back() -> None:
    w = _room()
    w.type(URI, 2, (0, 3), "!")
    first = w.take("op")
    ticket = w.room.undo("x.txt", w.now)
    w.type(URI, 3, (0, 4), "?")  # after the undo was asked: not waited for
    w.commit("x.txt", first)
    w.take("undo")
    assert w.take("op")["op"] == [4, "?"]
    assert not [e for e in w.events_of(Done) if e.ticket == ticket]


def test_nothing_to_undo_or_redo_is_said_in_words() -> None:
    w = _room()
    ticket = w.room.undo("x.txt", w.now)
    w.reply(w.take("undo"), type="error", code="nothing_to_undo", path="x.txt", message="m")
    assert w.done(ticket).error == "Nothing of yours to undo in this document"
    ticket = w.room.redo("x.txt", w.now)
    w.reply(w.take("redo"), type="error", code="nothing_to_redo", path="x.txt", message="m")
    assert w.done(ticket).error == "Nothing of yours to redo in this document"
    ticket = w.room.redo("x.txt", w.now)
    w.reply(w.take("redo"), type="redone", path="x.txt", rev=7)
    assert w.done(ticket).result == {"rev": 7}


def test_an_undo_whose_typing_never_reaches_the_hub_fails_undoing_nothing() -> None:
    w = _room(history_wait=5.0)
    w.type(URI, 2, (0, 0), "#")
    w.take("op")  # never acknowledged
    ticket = w.room.undo("x.txt", w.now)
    w.advance(4.9)
    assert not [e for e in w.events_of(Done) if e.ticket == ticket]
    w.advance(0.2)
    assert w.done(ticket).error == (
        "your last edits have not reached the hub yet, so nothing was undone; try again in a moment"
    )
    assert not w.all("undo")


def test_viewers_are_told_at_once_and_nothing_is_sent() -> None:
    w = _room()
    w.room.role = "viewer"
    assert w.done(w.room.undo("x.txt", w.now)).error == "viewers cannot undo or redo changes"
    assert not w.all("undo")
    # a hub that refuses it anyway (the role changed meanwhile) is said the same way
    w.room.role = "editor"
    ticket = w.room.undo("x.txt", w.now)
    w.reply(w.take("undo"), type="error", code="forbidden", path="x.txt", message="m")
    assert w.done(ticket).error == "viewers cannot undo or redo changes"


def test_a_document_that_is_not_shared_has_no_history() -> None:
    w = _room()
    for start in (
        lambda: w.room.undo("other.txt", w.now),
        lambda: w.room.history("other.txt", w.now),
        lambda: w.room.revision("other.txt", 0, w.now),
        lambda: w.room.blame("other.txt", w.now),
    ):
        assert w.done(start()).error == "this document is not shared in the room"
    assert w.room.blame_lines("file:///other.txt", w.now) is None
    assert not w.sent


def test_each_press_has_a_key_of_its_own_never_counted_again() -> None:
    w = _room()
    w.room.undo("x.txt", w.now)
    w.room.redo("x.txt", w.now)
    presses = w.all("undo") + w.all("redo")
    assert [m["key"] for m in presses] == [1, 2]
    for m in presses:
        w.reply(m, type="error", code=f"nothing_to_{m['type']}", path="x.txt", message="m")
    # a new room entry (a new client id) goes on counting: an entry that takes a leave's
    # changes back is the same client, whose keys the hub remembers
    w.room.leave(w.now)
    assert w.take("leave")
    w.create()
    _share_created(w, "file:///y.txt", "y.txt", "")
    w.room.undo("y.txt", w.now)
    assert w.take("undo")["key"] == 3


def test_an_undo_in_flight_when_the_connection_drops_goes_again_with_its_key() -> None:
    """The hub committed the undo; the connection dropped before its op and answer came.
    After the reconnect the undo's op comes in the catch-up, the same press goes again (same
    key), and the hub answers with the undo it did: the user gets one undo."""
    w = _room()
    w.type(URI, 2, (0, 3), "!")
    w.commit("x.txt", w.take("op"))
    ticket = w.room.undo("x.txt", w.now)
    req = w.take("undo")
    undo = w.peer_op("x.txt", [3, -1, 1], author="me", deliver=False)  # committed, unheard
    w.lost()
    assert not [e for e in w.events_of(Done) if e.ticket == ticket]  # not said to be lost
    w.advance(0.5)
    w.rejoin()
    w.opened(w.take("open", path="x.txt"))
    _show(w)
    again = w.take("undo")
    assert (again["key"], again["path"]) == (req["key"], "x.txt") and again["id"] != req["id"]
    w.reply(again, type="undone", path="x.txt", rev=undo["rev"])
    assert w.done(ticket).result == {"rev": undo["rev"]}
    assert w.room.docs["x.txt"].client.text == "abc\n"  # type: ignore[union-attr]
    assert w.room.stats["presses_again"] == 1
    assert not w.all("undo")


def test_presses_in_flight_go_again_in_their_order_before_those_not_sent() -> None:
    w = _room()
    undo = w.room.undo("x.txt", w.now)
    redo = w.room.redo("x.txt", w.now)
    sent = [w.take("undo"), w.take("redo")]
    w.lost()
    later = w.room.undo("x.txt", w.now)  # pressed while reconnecting
    w.advance(0.5)
    w.rejoin()
    w.opened(w.take("open", path="x.txt"))
    w.step()
    again = [m for m in w.sent if m["type"] in ("undo", "redo")]
    assert [(m["type"], m["key"]) for m in again] == [
        ("undo", sent[0]["key"]),
        ("redo", sent[1]["key"]),
        ("undo", sent[1]["key"] + 1),
    ]
    w.sent.clear()
    for m, rev in zip(again, (1, 2, 3), strict=True):
        w.reply(m, type="undone" if m["type"] == "undo" else "redone", path="x.txt", rev=rev)
    done = {e.ticket: e.result for e in w.events_of(Done)}
    assert [done[t] for t in (undo, redo, later)] == [{"rev": 1}, {"rev": 2}, {"rev": 3}]


def test_a_press_refused_for_now_and_one_lost_with_the_connection_go_again_in_press_order() -> None:
    w = _room()
    w.room.undo("x.txt", w.now)
    w.room.redo("x.txt", w.now)
    undo, redo = w.take("undo"), w.take("redo")
    w.reply(undo, type="error", code="unavailable", path="x.txt", message="m")  # again, later
    w.lost()  # the redo with it
    w.advance(0.5)
    w.rejoin()
    w.opened(w.take("open", path="x.txt"))
    w.advance(0.5)
    again = [(m["type"], m["key"]) for m in w.sent if m["type"] in ("undo", "redo")]
    assert again == [("undo", undo["key"]), ("redo", redo["key"])]


def test_an_undo_the_hub_could_not_answer_is_asked_again_with_its_key() -> None:
    w = _room()
    ticket = w.room.undo("x.txt", w.now)
    req = w.take("undo")
    w.reply(req, type="error", code="unavailable", path="x.txt", message="m")
    assert not [e for e in w.events_of(Done) if e.ticket == ticket]
    w.advance(0.1)
    assert not w.all("undo")  # a little later
    w.advance(0.2)
    again = w.take("undo")
    assert again["key"] == req["key"]
    w.reply(again, type="error", code="rate_limited", path="x.txt", message="m")
    w.advance(0.3)
    assert not w.all("undo")  # (the wait doubles)
    w.advance(0.3)
    w.reply(w.take("undo", key=req["key"]), type="undone", path="x.txt", rev=4)
    assert w.done(ticket).result == {"rev": 4}
    # a hub that is not ready for the document yet is asked again too
    ticket = w.room.redo("x.txt", w.now)
    w.reply(w.take("redo"), type="error", code="not_open", path="x.txt", message="m")
    w.advance(0.3)
    w.reply(w.take("redo"), type="redone", path="x.txt", rev=5)
    assert w.done(ticket).result == {"rev": 5}


def test_a_press_the_hub_has_not_confirmed_in_time_is_answered_and_goes_on() -> None:
    w = _room(history_wait=5.0)
    ticket = w.room.undo("x.txt", w.now)
    req = w.take("undo")
    w.lost()
    w.room.connection_closed(1006, w.now)  # (the hub stays out of reach)
    w.advance(5.1)
    assert w.done(ticket).error == (
        "the hub has not confirmed your undo yet; it is asked again until it does (it is undone once at most)"
    )
    # back: the same press goes, and its outcome is said once it is known
    w.advance(5)
    w.rejoin()
    w.opened(w.take("open", path="x.txt"))
    again = w.take("undo")
    assert again["key"] == req["key"]
    w.reply(again, type="undone", path="x.txt", rev=1)
    assert not w.events_of(Done)
    assert [e.text for e in w.events_of(Log) if "undo" in e.text] == [
        "pairls: your undo of x.txt went through (rev 1)"
    ]
    w.advance(30)
    assert not w.all("undo")  # done with
    # one whose outcome is a refusal is said in words
    ticket = w.room.redo("x.txt", w.now)
    w.take("redo")
    w.lost()
    w.advance(6)
    assert w.done(ticket).error is not None
    w.rejoin()
    w.opened(w.take("open", path="x.txt"))
    w.reply(w.take("redo"), type="error", code="nothing_to_redo", path="x.txt", message="m")
    assert [e.text for e in w.events_of(ShowMessage) if "redo" in e.text] == [
        "pairls: your redo of x.txt asked earlier: Nothing of yours to redo in this document"
    ]


def test_leaving_waits_for_a_press_and_past_the_wait_says_it_may_have_happened() -> None:
    w = _room(leave_timeout=5.0)
    ticket = w.room.undo("x.txt", w.now)
    req = w.take("undo")
    left = w.room.leave(w.now)
    w.advance(1)
    assert not w.all("leave")  # waits for the hub's answer
    w.reply(req, type="undone", path="x.txt", rev=1)
    done = {e.ticket: e for e in w.events_of(Done)}
    assert done[ticket].result == {"rev": 1} and done[left].result == {}
    assert w.take("leave")
    # again, and the hub never answers
    w.create()
    _share_created(w, "file:///y.txt", "y.txt", "abc\n")
    w.events_of(Done)
    ticket = w.room.undo("y.txt", w.now)
    w.take("undo")
    left = w.room.leave(w.now)
    w.advance(4.9)
    assert not w.all("leave")
    w.advance(0.2)
    done = {e.ticket: e for e in w.events_of(Done)}
    assert done[left].result == {}
    error = done[ticket].error
    assert error == "left the room: the undo may or may not have happened; look before trying again"


def test_an_undo_asked_while_reconnecting_goes_once_the_document_is_open_again() -> None:
    w = _room()
    w.lost()
    ticket = w.room.undo("x.txt", w.now)
    w.advance(0.5)
    assert not w.all("undo")
    w.rejoin()
    w.opened(w.take("open", path="x.txt"))
    req = w.take("undo")
    w.reply(req, type="undone", path="x.txt", rev=1)
    assert w.done(ticket).result == {"rev": 1}


def test_a_hub_not_ready_for_the_document_is_asked_again_within_the_wait() -> None:
    w = _room()
    ticket = w.room.history("x.txt", w.now)
    w.reply(w.take("history"), type="error", code="not_open", path="x.txt", message="m")
    assert not w.all("history")
    w.advance(0.3)
    req = w.take("history")
    w.reply(req, type="history", path="x.txt", changes=[], more=False)
    assert w.done(ticket).result == {"changes": [], "more": False}


def test_history_pages_are_checked_and_cleaned(caplog: pytest.LogCaptureFixture) -> None:
    w = _room()
    assert w.done(w.room.history("x.txt", w.now, limit=0)).error == "limit must be a number from 1 to 500"
    assert w.done(w.room.history("x.txt", w.now, before="x")).error == (
        "before must be a revision (a number, 0 or more)"
    )
    ticket = w.room.history("x.txt", w.now, before=40, limit=2)
    req = w.take("history")
    assert (req["before"], req["limit"]) == (40, 2)
    good = {
        "rev": 9,
        "firstRev": 7,
        "author": "u1",
        "name": "Bob\u202e",
        "time": "2026-01-02T03:04:05.678Z",
        "inserted": 3,
        "deleted": 0,
        "line": 2,
    }
    undo = {**good, "rev": 12, "firstRev": 12, "kind": "undo", "toggles": 7, "inserted": 0, "deleted": 3}
    w.reply(req, type="history", path="x.txt", changes=[undo, good, {"rev": "x"}, "junk"], more=True)
    result = w.done(ticket).result
    assert result == {
        "changes": [{**undo, "name": "Bob"}, {**good, "name": "Bob"}],
        "more": True,
    }
    assert w.room.stats["bad_answers"] == 2
    # said in the log too (an editor's output panel, where VS Code's tests look for warnings)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "2 changes in the hub's history page make no sense: skipped"
    ]


def test_a_revision_is_the_hubs_text_and_a_future_one_is_refused_here() -> None:
    w = _room()
    assert w.done(w.room.revision("x.txt", 5, w.now)).error == "x.txt has no revision 5 yet (it is at 0)"
    assert w.done(w.room.revision("x.txt", -1, w.now)).error == "rev must be a revision (a number, 0 or more)"
    ticket = w.room.revision("x.txt", 0, w.now)
    w.reply(w.take("revision"), type="revision", path="x.txt", rev=0, text="abc\n")
    assert w.done(ticket).result == {"path": "x.txt", "rev": 0, "text": "abc\n"}
    # an answer for another revision is no answer
    ticket = w.room.revision("x.txt", 0, w.now)
    w.reply(w.take("revision"), type="revision", path="x.txt", rev=3, text="zzz")
    assert w.done(ticket).error == "the hub sent an answer that makes no sense; try again"
    # an older hub without history
    ticket = w.room.revision("x.txt", 0, w.now)
    w.reply(w.take("revision"), type="error", code="unknown_type", message="m")
    assert "keeps no history" in (w.done(ticket).error or "")


# -- blame ----------------------------------------------------------------------------------------


def _line(name: str, rev: int, author: str = "u", time: str = "2026-01-01T00:00:00.000Z") -> dict[str, Any]:
    return {"author": author, "name": name, "time": time, "rev": rev}


def test_blame_is_asked_once_then_kept_and_moved_by_every_op() -> None:
    w = _room("one\ntwo\nthree\n")
    assert w.room.blame_lines(URI, w.now) is None  # asked, not answered yet
    req = w.take("blame", path="x.txt")
    assert w.room.blame_lines(URI, w.now) is None and not w.all("blame")  # asked once
    w.reply(req, type="blame", path="x.txt", rev=0, lines=[_line("Ada", 0)] * 4)
    lines = w.room.blame_lines(URI, w.now)
    assert lines is not None and [b.rev for b in lines] == [0, 0, 0, 0]
    # Bob inserts a line after "one": his, at once ("just now": the hub knows the time)
    w.feed({"type": "participant_joined", "participant": {"id": "bob", "name": "Bob", "role": "editor"}})
    w.peer_op("x.txt", [4, "new\n", 10])
    _show(w)
    lines = w.room.blame_lines(URI, w.now)
    assert lines is not None
    assert [(b.name, b.rev) for b in lines] == [("Ada", 0), ("Bob", 1), ("Ada", 0), ("Ada", 0), ("Ada", 0)]
    # the hub is asked again after a little quiet, for the lines that changed (and one line
    # around them), and its answer replaces ours there
    assert not w.all("blame")
    w.advance(0.6)
    req = w.take("blame")
    assert (req["start"], req["end"]) == (0, 3)
    fresh = [_line("Ada", 0), _line("Bob", 1, "u2", "2026-01-01T00:01:00.000Z"), _line("Ada", 0)]
    w.reply(req, type="blame", path="x.txt", rev=1, lines=fresh)
    lines = w.room.blame_lines(URI, w.now)
    assert lines is not None and lines[1] == LineBlame("u2", "Bob", "2026-01-01T00:01:00.000Z", 1)
    assert len(lines) == 5
    # nothing changed since: nothing asked; pairls.blame asks for every line
    w.advance(5)
    assert not w.all("blame")
    ticket = w.room.blame("x.txt", w.now)
    req = w.take("blame")
    assert "start" not in req and "end" not in req
    w.reply(req, type="blame", path="x.txt", rev=1, lines=[_line("Ada", 0)] * 5)
    assert w.done(ticket).result == {}


def test_the_users_own_typing_is_theirs_not_yet_committed_until_acknowledged() -> None:
    w = _room("one\ntwo\n")
    w.room.blame_lines(URI, w.now)
    w.reply(w.take("blame"), type="blame", path="x.txt", rev=0, lines=[_line("Bob", 0)] * 3)
    w.type(URI, 2, (1, 3), "!")
    op = w.take("op")
    lines = w.room.blame_lines(URI, w.now)
    # (the hub said who the user is in joined: "ada-author")
    assert lines is not None and lines[1] == LineBlame("ada-author", "Ada", None, None)
    assert lines[0].name == "Bob"
    w.commit("x.txt", op)
    lines = w.room.blame_lines(URI, w.now)
    assert lines is not None and lines[1] == LineBlame("ada-author", "Ada", None, 1)


def test_the_users_own_lines_carry_the_author_the_hub_gave_it() -> None:
    w = _room("one\ntwo\nthree\n")
    assert w.room.author == "ada-author"  # from room_created (and joined)
    w.room.blame_lines(URI, w.now)
    w.reply(w.take("blame"), type="blame", path="x.txt", rev=0, lines=[_line("Bob", 0, "bob-author")] * 4)
    w.feed({"type": "participant_joined", "participant": {"id": "bob", "name": "Bob", "role": "editor"}})
    # the user's own undo, made by the hub (author: our participant id), and a peer's op
    w.peer_op("x.txt", [4, -3, "TWO", 7], author="me")
    w.peer_op("x.txt", ["!", 14], author="bob")
    _show(w)
    w.type(URI, w.room.by_uri[URI].views[URI].sync.version + 1, (2, 0), "?")  # typed here
    lines = w.room.blame_lines(URI, w.now)
    assert lines is not None
    assert [(b.author, b.name, b.rev) for b in lines] == [
        (None, "Bob", 2),  # a peer's op since the hub's answer: the hub names it next time
        ("ada-author", "Ada", 1),
        ("ada-author", "Ada", None),  # typed here, not yet committed
        ("bob-author", "Bob", 0),
    ]
    # an older hub that does not say: None, as before
    w.room.author = None
    lines = w.room.blame_lines(URI, w.now)
    assert lines is not None and lines[2] == LineBlame(None, "Ada", None, None)


def test_ops_the_editor_has_not_shown_are_taken_back_out() -> None:
    w = _room("one\ntwo\n")
    w.room.blame_lines(URI, w.now)
    w.reply(w.take("blame"), type="blame", path="x.txt", rev=0, lines=[_line("Ada", 0)] * 3)
    w.peer_op("x.txt", [4, "a\nb\n", 4])  # not shown yet: the editor has 3 lines still
    assert w.events_of(ApplyEdit)
    lines = w.room.blame_lines(URI, w.now)
    assert lines is not None and len(lines) == 3


def test_a_blame_that_does_not_fit_or_is_for_another_revision_is_not_used() -> None:
    w = _room("one\ntwo\n")
    ticket = w.room.blame("x.txt", w.now)
    w.reply(w.take("blame"), type="blame", path="x.txt", rev=0, lines=[_line("Ada", 0)] * 7)
    assert w.done(ticket).error == "the hub sent a blame that does not fit the document"
    assert w.room.stats["bad_answers"] == 1
    ticket = w.room.blame("x.txt", w.now)
    w.reply(w.take("blame"), type="blame", path="x.txt", rev=4, lines=[_line("Ada", 0)] * 3)
    assert w.room.stats["blame_retries"] == 1
    w.advance(0.6)
    w.reply(w.take("blame"), type="blame", path="x.txt", rev=0, lines=[_line("Ada", 0)] * 3)
    assert w.done(ticket).result == {}


def test_a_blame_nobody_looks_at_is_forgotten() -> None:
    w = _room("one\n", blame_idle=60)
    w.room.blame_lines(URI, w.now)
    w.reply(w.take("blame"), type="blame", path="x.txt", rev=0, lines=[_line("Ada", 0)] * 2)
    w.advance(61)
    w.peer_op("x.txt", ["x"])
    w.advance(5)
    assert not w.all("blame") and w.room.docs["x.txt"].blame is None


def test_typing_keeps_the_blame_fresh_at_most_every_few_seconds() -> None:
    w = _room("one\n", blame_debounce=0.5, blame_max_delay=3.0)
    w.room.blame_lines(URI, w.now)
    w.reply(w.take("blame"), type="blame", path="x.txt", rev=0, lines=[_line("Ada", 0)] * 2)
    asked = []
    for i in range(40):  # a peer types without a pause for 4 s
        w.peer_op("x.txt", [i, "x", 4])
        _show(w)
        w.advance(0.1)
        for req in w.all("blame"):
            asked.append(w.now)
            rev = w.room.docs["x.txt"].client.rev  # type: ignore[union-attr]
            lines = [_line("Bob", rev)] * (req["end"] - req["start"])
            w.reply(req, type="blame", path="x.txt", rev=rev, lines=lines)
    assert 1 <= len(asked) <= 2  # not once per op; not never


def test_leaving_fails_what_waits() -> None:
    w = _room()
    w.type(URI, 2, (0, 0), "#")
    w.take("op")
    undo = w.room.undo("x.txt", w.now)
    blame = w.room.blame("x.txt", w.now)
    w.room.leave(w.now)
    w.advance(6)
    done = {e.ticket: e for e in w.events_of(Done)}
    assert done[undo].error == "left the room"
    assert done[blame].error == "left the room"
