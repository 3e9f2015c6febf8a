"""Run it together through real language servers (``python -m lsp_bridge`` over stdio) and a
real ``pairls-hub`` on a real PostgreSQL: Ada runs a program on her machine, Bob follows its
output document live; the cap; Stop.

No assertion depends on speed: the program waits for a file the test writes before it prints
its next line, so "Bob sees line 1 before line 2 exists" holds on any machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tests.support.hubproc import HubProcess
from tests.support.lsp_editor import TestEditor

pytestmark = pytest.mark.timeout(240)

MakeEditor = Callable[..., Awaitable[TestEditor]]

SLOW = """\
import os, sys, time
for i in range(1, 4):
    print(f"line {i}", flush=True)
    if i == 2:
        print(f"oops {i}", file=sys.stderr, flush=True)
    while not os.path.exists(f"go-{i}"):
        time.sleep(0.02)
sys.exit(3)
"""


async def _pair(make_editor: MakeEditor) -> tuple[TestEditor, TestEditor]:
    ada = await make_editor("vscode", "Ada")
    bob = await make_editor("vscode", "Bob")
    created = await ada.command("pairls.createRoom", {"name": "run"})
    await bob.command("pairls.joinRoom", {"invite": created["invite"]})
    return ada, bob


async def _until(pred: Callable[[], bool], what: str, timeout: float = 60) -> None:
    async def wait() -> None:
        # the buffers change under applyEdit requests, which set no event: look again soon
        while True:
            if pred():
                return
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(wait(), timeout)
    except TimeoutError:
        raise AssertionError(f"never: {what}") from None


async def _follow(bob: TestEditor, path: str) -> str:
    """Bob opens the run's output document; its uri in his editor."""
    await _until(lambda: any(n.get("path") == path for n in bob.notes.get("pairls/runs", [])), "announced")
    opened = await bob.command("pairls.openDocument", {"path": path})
    uri: str = opened["uri"]
    await _until(lambda: uri in bob.buffers, "Bob's editor shows the output")
    return uri


async def test_bob_follows_a_run_live_and_sees_the_end_line(make_editor: MakeEditor) -> None:
    ada, bob = await _pair(make_editor)
    assert ada.workspace is not None
    (ada.workspace / "slow.py").write_text(SLOW, encoding="utf-8")
    started = await ada.command("pairls.run", {"uri": ada.uri("slow.py")})
    path = started["path"]
    assert path.startswith(".pairls/runs/")
    uri = await _follow(bob, path)
    # live: each line reaches Bob while the program waits for the next go-ahead
    for i in (1, 2, 3):
        await _until(lambda i=i: f"line {i}\n" in bob.text(uri), f"Bob sees line {i}")
        assert f"line {i + 1}" not in bob.text(uri)
        (ada.workspace / f"go-{i}").write_text("", encoding="utf-8")
    await _until(lambda: "exit status 3" in bob.text(uri), "Bob sees the end line")
    text = bob.text(uri)
    assert text.startswith("$ python3 slow.py    (run by Ada)\n")
    assert text.index("line 1") < text.index("line 2") < text.index("oops 2") < text.index("line 3")
    assert (
        text.rstrip("\n")
        .splitlines()[-1]
        .startswith("[pairls: python3 slow.py run by Ada: exit status 3 after ")
    )
    # who ran what, for both
    ended = await ada.wait_note("pairls/runs", lambda n: n.get("event") == "ended")
    assert ended["exitCode"] == 3 and ended["by"] == "Ada" and ended["command"] == "python3 slow.py"
    listed = (await ada.command("pairls.runs"))["runs"]
    assert [(r["runId"], r["state"], r["exitCode"], r["mine"]) for r in listed] == [
        (started["runId"], "ended", 3, True)
    ]
    # Bob learns what runs (an editor may name the run by it), that it ended, and how, once
    # the end line is in the room
    running = await bob.wait_note("pairls/runs", lambda n: n.get("event") == "running")
    assert (running["path"], running["command"], running["by"]) == (path, "python3 slow.py", "Ada")
    told = await bob.wait_note("pairls/runs", lambda n: n.get("event") == "ended")
    assert (told["path"], told["by"], told["command"], told["exitCode"]) == (
        path,
        "Ada",
        "python3 slow.py",
        3,
    )
    assert "exit status 3" in bob.text(uri)
    (theirs,) = [r for r in (await bob.command("pairls.runs"))["runs"] if r["path"] == path]
    assert (theirs["runId"], theirs["by"], theirs["state"], theirs["exitCode"], theirs["mine"]) == (
        started["runId"],
        "Ada",
        "ended",
        3,
        False,
    )
    # Bob was told both, each with "Open output" to follow it
    await _until(lambda: len(bob.questions) >= 2, "Bob told the run ended")
    assert [(q.message, [a.title for a in q.actions or []]) for q in bob.questions] == [
        (f"pairls: Ada started a run for the room ({path})", ["Open output"]),
        (f"pairls: Ada's run `python3 slow.py` ended: exit status 3 ({path})", ["Open output"]),
    ]
    # and Ada, who ran it, was asked nothing
    assert not ada.questions
    # nothing ran on Bob's machine
    assert bob.workspace is not None and not (bob.workspace / "go-1").exists()
    assert not (bob.workspace / "slow.py").exists()


async def test_output_past_one_mib_is_cut_with_a_note(make_editor: MakeEditor) -> None:
    ada, bob = await _pair(make_editor)
    cmd = "python3 -c \"import sys; [sys.stdout.write('x' * 1023 + chr(10)) for _ in range(5 * 1024)]\""
    started = await ada.command("pairls.run", {"command": cmd})
    uri = await _follow(bob, started["path"])
    await _until(lambda: "exit status 0" in bob.text(uri), "Bob sees the end line")
    text = bob.text(uri)
    lines = text.splitlines()
    assert lines.count("x" * 1023) == 1024  # 1 MiB of 1 KiB lines, then the note
    assert text.count("output cut at 1 MiB; the rest is not shown") == 1
    assert "exit status 0 after " in lines[-1]
    assert lines[-1].endswith(", 4 MiB of output not shown]")


async def test_stop_ends_a_run_and_says_so(make_editor: MakeEditor) -> None:
    ada, bob = await _pair(make_editor)
    cmd = "python3 -c \"import time; print('up', flush=True); time.sleep(600)\""
    started = await ada.command("pairls.run", {"command": cmd})
    uri = await _follow(bob, started["path"])
    await _until(lambda: "up\n" in bob.text(uri), "Bob sees the program start")
    assert await ada.command("pairls.stopRun", {"runId": started["runId"]}) == {}
    await _until(lambda: "stopped (exit status -15)" in bob.text(uri), "Bob sees it stopped")
    told = await bob.wait_note("pairls/runs", lambda n: n.get("event") == "ended")
    assert (told["stopped"], told["exitCode"]) == (True, -15)
    with pytest.raises(Exception, match="no such run"):
        await bob.command("pairls.stopRun", {"runId": started["runId"]})
    # the output is read-only in Bob's editor too: his typing goes back, nothing reaches the room
    before = bob.text(uri)
    bob.insert(uri, 0, "forged ")
    bob.flush(uri)
    await _until(lambda: bob.text(uri) == before, "Bob's typing undone")
    said = f"pairls: {started['path']} is a run's output, read-only"
    await _until(lambda: any(m.message == said for m in bob.client.messages), "Bob told")
    ada_uri = await _follow(ada, started["path"])
    await _until(lambda: "stopped" in ada.text(ada_uri), "Ada's copy")
    assert ada.text(ada_uri) == before


async def _participant_id(ed: TestEditor, name: str) -> str:
    async def find() -> str | None:
        for p in (await ed.command("pairls.participants"))["participants"]:
            if p["name"] == name:
                return str(p["id"])
        return None

    for _ in range(500):
        pid = await find()
        if pid is not None:
            return pid
        await asyncio.sleep(0.02)
    raise AssertionError(f"{name} never in the room")


MARK = "python3 -c \"open('ran-here', 'w').write('x'); print('hello from', 'Bob')\""


async def test_a_request_runs_only_when_the_asked_person_chooses_run(make_editor: MakeEditor) -> None:
    ada, bob = await _pair(make_editor)
    assert ada.workspace is not None and bob.workspace is not None
    bob_id = await _participant_id(ada, "Bob")
    bob.answer = "Decline"
    assert await ada.command("pairls.requestRun", {"participantId": bob_id, "command": MARK}) == {
        "accepted": False
    }
    asked = bob.questions[-1]
    assert asked.message == f"pairls: Ada asks you to run `{MARK}` in your workspace folder"
    assert [a.title for a in asked.actions or []] == ["Run", "Decline"]
    assert not (bob.workspace / "ran-here").exists()
    assert (await bob.command("pairls.runs"))["runs"] == []

    bob.answer = "Run"
    answer = await ada.command("pairls.requestRun", {"participantId": bob_id, "command": MARK})
    assert answer["accepted"] is True
    uri = await _follow(ada, answer["path"])
    await _until(lambda: "exit status 0" in ada.text(uri), "Ada sees Bob's run end")
    assert "hello from Bob\n" in ada.text(uri)
    assert "run by Bob" in ada.text(uri)
    assert (bob.workspace / "ran-here").exists()  # on Bob's machine, in his folder
    assert not (ada.workspace / "ran-here").exists()


async def test_a_hostile_peer_cannot_start_a_process(make_editor: MakeEditor, hub: HubProcess) -> None:
    from lsp_bridge.invite import parse_invite
    from tests.support.hubclient import Peer

    ada = await make_editor("vscode", "Ada")
    bob = await make_editor("vscode", "Bob")
    created = await ada.command("pairls.createRoom", {"name": "run"})
    await bob.command("pairls.joinRoom", {"invite": created["invite"]})
    invite = parse_invite(created["invite"])
    eve = await Peer(hub.url, "Eve", user="user-of-eve").connect()
    try:
        await eve.join(invite.room_id, invite.secret)
        assert bob.workspace is not None
        bob_id = await _participant_id(ada, "Bob")
        bob.answer = None  # Bob dismisses every question

        async def asked(n: int) -> None:
            await _until(lambda: len(bob.questions) >= n, f"Bob asked {n} times")

        await eve.send({"type": "run_request", "participant": bob_id, "requestId": "e1", "command": MARK})
        await asked(1)
        assert "Eve asks you to run" in bob.questions[0].message
        # an answer to a request Bob never made, a replayed request id, a line that hides
        # what it runs, the notification a real run sends: none of them runs anything
        await eve.send({"type": "run_answer", "participant": bob_id, "requestId": "e1", "accepted": True})
        await eve.send({"type": "run_request", "participant": bob_id, "requestId": "e1", "command": MARK})
        await eve.send(
            {"type": "run_request", "participant": bob_id, "requestId": "e2", "command": "ls\n" + MARK}
        )
        bob.answer = "Decline"
        await eve.send({"type": "run_request", "participant": bob_id, "requestId": "e3", "command": MARK})
        await asked(3)  # e1 again (answered already: a new question), then e3; e2 never asked
        assert all("ls\n" not in q.message for q in bob.questions)
        assert not (bob.workspace / "ran-here").exists()
        assert (await bob.command("pairls.runs"))["runs"] == []
        # nor can anyone but Bob answer Ada's request to Bob
        bob.answer = None
        ask = asyncio.ensure_future(
            ada.command("pairls.requestRun", {"participantId": bob_id, "command": MARK})
        )
        await asked(4)
        ada_id = await _participant_id(bob, "Ada")
        for rid in ("x", "y"):
            await eve.send({"type": "run_answer", "participant": ada_id, "requestId": rid, "accepted": True})
        assert await ask == {"accepted": False}
        assert not (bob.workspace / "ran-here").exists()
    finally:
        await eve.close()


async def test_a_terminal_follows_the_output_from_a_snapshot_and_its_appends(make_editor: MakeEditor) -> None:
    """An editor that shows a run its own way (the VS Code extension's terminal, with
    initializationOptions.runOutput) reads the output once (pairls.runOutput) and then gets
    each append (pairls/runOutput {path, at, text}): together, the output, with no editor
    document open."""
    ada = await make_editor("vscode", "Ada")
    bob = await make_editor("vscode", "Bob", runOutput=True)
    created = await ada.command("pairls.createRoom", {"name": "run"})
    await bob.command("pairls.joinRoom", {"invite": created["invite"]})
    assert ada.workspace is not None
    (ada.workspace / "slow.py").write_text(SLOW, encoding="utf-8")
    started = await ada.command("pairls.run", {"uri": ada.uri("slow.py")})
    path = started["path"]
    await _until(lambda: any(n.get("path") == path for n in bob.notes.get("pairls/runs", [])), "announced")

    async def snapshot() -> str | None:
        try:
            return str((await bob.command("pairls.runOutput", {"path": path}))["text"])
        except Exception:  # not followed yet
            return None

    first: str | None = None
    for _ in range(500):
        first = await snapshot()
        if first is not None:
            break
        await asyncio.sleep(0.02)
    assert first is not None and first.startswith("$ python3 slow.py")
    for i in (1, 2, 3):
        (ada.workspace / f"go-{i}").write_text("", encoding="utf-8")
    ended = await bob.wait_note("pairls/runs", lambda n: n.get("event") == "ended")
    assert ended["path"] == path
    shown = first
    for note in bob.notes.get("pairls/runOutput", []):
        assert note["path"] == path and note["at"] is not None
        if note["at"] + len(note["text"]) <= len(first):
            continue  # in the snapshot already
        assert note["at"] == len(shown), (note, shown)
        shown += note["text"]
    assert shown == await snapshot()
    assert "exit status 3" in shown and shown.index("line 1") < shown.index("line 3")
    assert not any(path in uri for uri in bob.buffers)  # no editor document was needed
    # Ada's editor, which did not ask for them, gets none; nor can anyone read a non-run
    assert "pairls/runOutput" not in ada.notes
    with pytest.raises(Exception, match="no such run output"):
        await bob.command("pairls.runOutput", {"path": "notes.txt"})


async def test_a_run_output_is_no_source_of_completions(make_editor: MakeEditor) -> None:
    """The words a program prints are not offered as completions (a flood of output would
    only cost every peer's language server); the room's documents' words still are."""
    ada, bob = await _pair(make_editor)
    assert ada.workspace is not None and bob.workspace is not None
    ada.open(ada.uri("words.txt"), "zqxroomword\n", "plaintext")
    cmd = "python3 -c \"print('zqxprintedword')\""
    started = await ada.command("pairls.run", {"command": cmd})
    await bob.wait_note(
        "pairls/runs", lambda n: n.get("path") == started["path"] and n.get("event") == "ended"
    )
    uri = bob.uri("notes.txt")
    bob.open(uri, "", "plaintext")
    bob.insert(uri, 0, "zqx")
    labels: list[str] = []
    for _ in range(500):  # (until the room's word is in: words.txt reached Bob's server)
        labels = [i.label for i in await bob.complete(uri, 3)]
        if "zqxroomword" in labels:
            break
        await asyncio.sleep(0.02)
    assert "zqxroomword" in labels and "zqxprintedword" not in labels, labels
