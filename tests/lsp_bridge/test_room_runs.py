"""Runs for the room in the language server's room state machine (lsp_bridge.room), fed by
hand like tests/lsp_bridge/test_room.py: the runner's output and the status it tells the room,
and a peer told that a run started and ended."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from lsp_bridge.room import ApplyEdit, Notify
from tests.lsp_bridge.test_room import Wire

OUT = ".pairls/runs/r1.log"


def _publish(w: Wire, text: str = "$ python3 slow.py    (run by Ada)\n") -> None:
    """The runner's output document: created from its header, open since 0."""
    w.room.publish(OUT, text, w.now)
    create = w.take("create_document", path=OUT)
    w.hub_doc(OUT, create["text"])
    w.reply(create, type="document_created", path=OUT, rev=0)
    w.opened(w.take("open", path=OUT))


def _status(state: str, **extra: Any) -> dict[str, Any]:
    return {"path": OUT, "state": state, "command": "python3 slow.py", "startedAt": 1.0e9, **extra}


def _runs_notes(w: Wire) -> list[dict[str, Any]]:
    return [e.params for e in w.events_of(Notify) if e.method == "pairls/runs"]


# -- the runner ---------------------------------------------------------------------------------


def test_the_end_of_a_run_is_told_only_once_its_last_output_is_acknowledged() -> None:
    w = Wire()
    w.create()
    _publish(w)
    w.room.run_status(_status("running"), w.now)
    assert w.take("run_status")["state"] == "running"  # nothing unacknowledged: at once
    assert w.room.append(OUT, "line 1\n", w.now)
    first = w.take("op")
    assert w.room.append(OUT, "\n[pairls: python3 slow.py run by Ada: exit status 3 after 0.1s]\n", w.now)
    w.room.run_status(_status("ended", exitCode=3, stopped=False, endedAt=1.0e9 + 1), w.now)
    # the end line is still buffered behind line 1: a peer told now would not have it yet
    assert not w.all("run_status")
    w.commit(OUT, first)
    last = w.take("op")
    assert not w.all("run_status")
    w.commit(OUT, last)
    ended = w.take("run_status")
    assert ended == {"type": "run_status", **_status("ended", exitCode=3, stopped=False, endedAt=1.0e9 + 1)}
    assert w.hub[OUT].committed_text.endswith("exit status 3 after 0.1s]\n")


def test_a_newer_status_replaces_one_not_sent_yet_and_each_goes_once() -> None:
    w = Wire()
    w.create()
    _publish(w)
    w.room.append(OUT, "x\n", w.now)
    op = w.take("op")
    w.room.run_status(_status("running"), w.now)
    w.room.run_status(_status("ended", exitCode=0, stopped=False), w.now)
    w.commit(OUT, op)
    assert [m["state"] for m in w.all("run_status")] == ["ended"]
    w.feed({"type": "ack", "path": "other", "seq": 1, "rev": 1})  # more traffic: nothing again
    assert not w.all("run_status")


def test_output_and_status_while_the_connection_is_down_go_after_the_catch_up() -> None:
    w = Wire()
    w.create()
    _publish(w)
    w.lost()
    # the program goes on printing and ends while the hub is unreachable: nothing is lost
    assert w.room.append(OUT, "line 1\n", w.now)
    w.room.run_status(_status("ended", exitCode=0, stopped=False), w.now)
    w.advance(6)
    w.rejoin()
    w.opened(w.take("open", path=OUT))
    assert not w.all("run_status")
    w.commit(OUT, w.take("op"))
    assert w.take("run_status")["state"] == "ended"
    assert w.hub[OUT].committed_text.endswith("line 1\n")


def test_a_status_is_for_a_run_document_and_for_a_room_only() -> None:
    w = Wire()
    w.room.run_status(_status("running"), w.now)  # not in a room: nobody to tell
    w.create()
    w.room.run_status({**_status("running"), "path": "notes.txt"}, w.now)
    assert not w.all("run_status")


# -- a peer -------------------------------------------------------------------------------------


def _peer_run_started(w: Wire) -> None:
    w.feed({"type": "participant_joined", "participant": {"id": "bob", "name": "Bob", "role": "editor"}})
    w.feed({"type": "document_added", "path": OUT, "rev": 0, "by": "bob"})


def test_a_peer_learns_a_run_started_and_ended_once_each() -> None:
    w = Wire()
    w.create()
    _peer_run_started(w)
    assert _runs_notes(w) == [{"event": "started", "path": OUT, "by": "Bob"}]
    running = {"type": "run_status", "participant": "bob", "name": "Bob", **_status("running")}
    w.feed(running)
    # what it runs, said once (an editor may name the run by it)
    assert _runs_notes(w) == [
        {
            "event": "running",
            "path": OUT,
            "by": "Bob",
            "state": "running",
            "command": "python3 slow.py",
            "startedAt": 1.0e9,
        }
    ]
    w.feed(running)
    assert _runs_notes(w) == []
    assert w.room.room_runs[OUT]["command"] == "python3 slow.py"
    end = {"type": "run_status", "participant": "bob", "name": "Bob", **_status("ended", exitCode=3)}
    w.feed(end)
    (ended,) = _runs_notes(w)
    assert ended == {
        "event": "ended",
        "path": OUT,
        "by": "Bob",
        "state": "ended",
        "command": "python3 slow.py",
        "startedAt": 1.0e9,
        "exitCode": 3,
        "stopped": False,
    }
    w.feed(end)  # said again (a hub that repeats): said once
    w.feed({**end, "state": "running"})  # nor does an ended run start again
    assert _runs_notes(w) == []
    assert w.room.room_runs[OUT]["state"] == "ended"


def test_a_peer_status_that_makes_no_sense_is_dropped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    w = Wire()
    w.create()
    _peer_run_started(w)
    _runs_notes(w)
    w.feed({"type": "run_status", "participant": "bob", "name": "Bob", **_status("exploded")})
    w.feed({"type": "run_status", "participant": "bob", "name": "Bob", **_status("ended"), "path": "a.txt"})
    assert _runs_notes(w) == [] and w.room.stats["bad_answers"] == 2
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == ["a run's status from the hub that makes no sense: dropped"] * 2
    w.room.stats["bad_answers"] = 0


def test_a_peer_command_is_shown_without_what_could_hide_what_it_says() -> None:
    w = Wire()
    w.create()
    _peer_run_started(w)
    w.feed(
        {
            "type": "run_status",
            "participant": "bob",
            "name": "Bob\u202e",
            **_status("ended", exitCode=None),
            "command": "ls\n\u202erm -rf ~",
        }
    )
    (ended,) = [n for n in _runs_notes(w) if n["event"] == "ended"]
    assert ended["command"] == "ls??rm -rf ~" and ended["by"] == "Bob" and ended["exitCode"] is None


def test_a_buffer_that_drifted_from_a_finished_output_is_brought_back_at_once() -> None:
    """Bob's editor shows the output of a run that has ended; its text as the LSP library
    tracked it lacks a line the room has (an edit the editor dropped: the Neovim flake). The
    heal brings the buffer back to the room's text at once: nothing else will ever change this
    document, so an edit left for "the next change" never goes."""
    w = Wire()
    w.create()
    _peer_run_started(w)
    follow = w.take("open", path=OUT)
    w.hub_doc(OUT, "$ x    (run by Bob)\n")
    w.opened(follow)
    w.peer_op(OUT, [19, "hi\n"])
    w.peer_op(OUT, [22, "\n[pairls: x run by Bob: exit status 3 after 0.1s]\n"])
    room_text = w.hub[OUT].committed_text
    uri = "file:///ws/.pairls/runs/r1.log"
    w.share(uri, OUT, room_text)
    assert w.room.docs[OUT].views[uri].sync.quiet and not w.events_of(ApplyEdit)
    # the editor's text lacks the middle line
    w.room.editor_text(uri, room_text.replace("hi\n", ""), w.now)
    w.step()
    (edit,) = w.events_of(ApplyEdit)
    assert edit.uri == uri and [e.new_text for e in edit.edit.edits] == ["hi\n"]
    assert w.room.heals == 1
    w.room.heals = 0
