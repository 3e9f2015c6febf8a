"""A run's output document (``.pairls/runs/``) takes ops only from the user who created it:
an editor, a viewer, or an undo cannot write into it (the real hub on PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.support.hubclient import HubError, Peer

OUT = ".pairls/runs/r1.log"


async def test_only_the_runner_writes_to_a_run_output_document(url: str) -> None:
    ada = await Peer(url, "Ada", user="user-ada-1").connect()
    bob = await Peer(url, "Bob", user="user-bob-1").connect()
    vic = await Peer(url, "Vic", user="user-vic-1").connect()
    created = await ada.create_room()
    await ada.create_document(OUT, "$ python3 slow.py\n")
    await ada.create_document("notes.txt", "")
    await bob.join(created["room"], created["editorSecret"])
    await vic.join(created["room"], created["viewerSecret"])
    da = await ada.open(OUT)
    db = await bob.open(OUT)
    dv = await vic.open(OUT)
    await da.splice(len(da.text), 0, "line 1\n")
    await da.wait_synced()
    await db.wait_rev(1)
    assert db.text == "$ python3 slow.py\nline 1\n"

    await db.splice(0, 0, "forged ")
    err = await bob.next_event("error")
    assert err["code"] == "forbidden" and err["path"] == OUT
    await dv.splice(0, 0, "forged ")
    assert (await vic.next_event("error"))["code"] == "forbidden"
    with pytest.raises(HubError) as info:
        await bob.request({"type": "undo", "path": OUT, "key": 1})
    assert info.value.code == "forbidden"

    # the runner goes on writing; nobody's forged text is in it
    await da.splice(len(da.text), 0, "line 2\n")
    await da.wait_synced()
    assert da.text == "$ python3 slow.py\nline 1\nline 2\n"
    # a document elsewhere is as writable as ever
    dn = await bob.open("notes.txt")
    await dn.splice(0, 0, "hi")
    await dn.wait_synced()
    for p in (ada, bob, vic):
        await p.close()


async def test_a_request_to_run_goes_to_the_one_participant_named_with_its_sender(url: str) -> None:
    ada = await Peer(url, "Ada", user="user-ada-1").connect()
    bob = await Peer(url, "Bob", user="user-bob-1").connect()
    cy = await Peer(url, "Cy", user="user-cy-01").connect()
    vic = await Peer(url, "Vic", user="user-vic-1").connect()
    created = await ada.create_room()
    for p, secret in ((bob, "editorSecret"), (cy, "editorSecret"), (vic, "viewerSecret")):
        await p.join(created["room"], created[secret])
    await ada.send(
        {"type": "run_request", "participant": bob.participant, "requestId": "r1", "command": "ls"}
    )
    got = await bob.next_event("run_request")
    assert got == {
        "type": "run_request",
        "participant": ada.participant,
        "name": "Ada",
        "requestId": "r1",
        "command": "ls",
    }
    await bob.send(
        {"type": "run_answer", "participant": ada.participant, "requestId": "r1", "accepted": False}
    )
    assert (await ada.next_event("run_answer"))["accepted"] is False
    assert not cy.events["run_request"] and not cy.events["run_answer"]
    with pytest.raises(HubError) as info:
        await vic.request(
            {"type": "run_request", "participant": ada.participant, "requestId": "v", "command": "ls"}
        )
    assert info.value.code == "forbidden"
    for bad, code in (
        ({"participant": "nobody", "requestId": "r", "command": "ls"}, "no_such_participant"),
        ({"participant": ada.participant, "requestId": "r", "command": "ls"}, "no_such_participant"),
        ({"participant": bob.participant, "requestId": "r r", "command": "ls"}, "bad_message"),
        ({"participant": bob.participant, "requestId": "r", "command": "x" * 5000}, "bad_message"),
    ):
        with pytest.raises(HubError) as info:
            await ada.request({"type": "run_request", **bad})
        assert info.value.code == code
    with pytest.raises(HubError) as info:
        await bob.request(
            {"type": "run_answer", "participant": ada.participant, "requestId": "r1", "accepted": "yes"}
        )
    assert info.value.code == "bad_message"
    for p in (ada, bob, cy, vic):
        await p.close()


async def test_the_runner_alone_tells_the_room_how_its_run_goes(url: str) -> None:
    ada = await Peer(url, "Ada", user="user-ada-1").connect()
    bob = await Peer(url, "Bob", user="user-bob-1").connect()
    vic = await Peer(url, "Vic", user="user-vic-1").connect()
    created = await ada.create_room()
    await ada.create_document(OUT, "$ python3 slow.py\n")
    await bob.join(created["room"], created["editorSecret"])
    await vic.join(created["room"], created["viewerSecret"])
    await ada.open(OUT)
    await bob.open(OUT)
    ended = {"path": OUT, "state": "ended", "command": "python3 slow.py", "exitCode": 3, "stopped": False}
    await ada.send({"type": "run_status", **ended, "startedAt": 1.7e9, "endedAt": 1.7e9 + 2.5})
    for p in (bob, vic):  # everyone else, with who says it (Vic has not even opened the output)
        got = await p.next_event("run_status")
        assert got == {
            "type": "run_status",
            "participant": ada.participant,
            "name": "Ada",
            **ended,
            "startedAt": 1.7e9,
            "endedAt": 1.7e9 + 2.5,
        }
    # Bob may follow the output but not speak for it; nobody speaks for a run not open to them
    for who, msg, code in (
        (bob, {"type": "run_status", **ended}, "forbidden"),
        (vic, {"type": "run_status", **ended}, "not_open"),
        (ada, {"type": "run_status", **ended, "path": ".pairls/runs/other.log"}, "not_open"),
        (ada, {"type": "run_status", **ended, "path": "notes.txt"}, "bad_message"),
        (ada, {"type": "run_status", **ended, "state": "exploded"}, "bad_message"),
        (ada, {"type": "run_status", **ended, "exitCode": "3"}, "bad_message"),
        (ada, {"type": "run_status", **ended, "exitCode": True}, "bad_message"),
        (ada, {"type": "run_status", **ended, "stopped": 1}, "bad_message"),
        (ada, {"type": "run_status", **ended, "command": "x" * 5000}, "bad_message"),
        (ada, {"type": "run_status", **ended, "endedAt": "soon"}, "bad_message"),
    ):
        with pytest.raises(HubError) as info:
            await who.request(msg)
        assert info.value.code == code, msg
    # a run that could not start has no exit status
    await ada.send({"type": "run_status", **ended, "exitCode": None})
    assert (await bob.next_event("run_status"))["exitCode"] is None
    assert not ada.events["run_status"]
    for p in (ada, bob, vic):
        await p.close()
