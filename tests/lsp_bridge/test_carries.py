"""lsp_bridge.carries: what the hub never acknowledged when the editor went, kept on disk."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lsp_bridge.carries import CarryStore, taker
from lsp_bridge.room import Restore

SAVED = {"version": 1, "roomId": "room-1", "clientId": "c", "seqs": {}, "docs": {"a.txt": {"text": "SECRET"}}}


class Entry:
    """What the room answers when offered a carry (``Room.restore_carry``): *outcomes* in turn,
    then TAKEN; what it was offered in :attr:`offered`."""

    def __init__(self, *outcomes: Restore) -> None:
        self.outcomes = list(outcomes)
        self.offered: list[Any] = []

    def __call__(self, saved: Any) -> Restore:
        self.offered.append(saved)
        return self.outcomes.pop(0) if self.outcomes else Restore.TAKEN


def test_kept_private_claimed_once_and_removed_once_taken(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "pairls" / "carries"
    store = CarryStore(folder)
    assert store.claim("room-1", Entry()) is None
    path = store.save("room-1", "c", SAVED)
    assert path is not None and path.parent == folder
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert "room-1" not in path.name  # (named by hashes: a room id from a hub is no path)
    again = {**SAVED, "seqs": {"a.txt": 2}}
    assert store.save("room-1", "c", again) == path  # (the same entry's: replaced whole)
    assert store.claim("room-2", Entry()) is None
    entry = Entry()
    claimed = store.claim("room-1", entry)
    assert claimed is not None and entry.offered == [again]
    assert not path.exists() and claimed.name.endswith(f".taking-{taker(os.getpid())}")
    assert store.claim("room-1", Entry()) is None  # (claimed: by this process, which runs)
    store.remove(claimed)
    store.remove(claimed)  # (gone already: nothing to do)
    assert list(folder.iterdir()) == []  # (no temporary file left either)


def test_two_editors_that_went_offline_keep_two_and_each_entry_claims_one(tmp_path: Path) -> None:
    store = CarryStore(tmp_path / "carries")
    first = store.save("room-1", "vscode-entry", {**SAVED, "clientId": "vscode-entry"})
    second = store.save("room-1", "neovim-entry", {**SAVED, "clientId": "neovim-entry"})
    assert first is not None and second is not None and first != second
    os.utime(first, (1, 1))  # the older one is claimed first
    a, b = Entry(), Entry()
    assert store.claim("room-1", a) is not None and store.claim("room-1", b) is not None
    assert store.claim("room-1", Entry()) is None
    assert [a.offered[0]["clientId"], b.offered[0]["clientId"]] == ["vscode-entry", "neovim-entry"]
    assert store.claim("room-1", Entry(Restore.NOT_NOW)) is None  # (nothing left to claim)
    # an entry that cannot take one now (in a room already) gives it back, for another
    third = store.save("room-1", "emacs-entry", {**SAVED, "clientId": "emacs-entry"})
    assert third is not None and store.claim("room-1", Entry(Restore.NOT_NOW)) is None
    assert third.exists()


def test_a_claim_whose_process_is_gone_is_taken_over(tmp_path: Path) -> None:
    store = CarryStore(tmp_path / "carries")
    path = store.save("room-1", "c", SAVED)
    assert path is not None
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = path.with_name(f"{path.name}.taking-{int(gone.stdout)}")
    path.rename(dead)  # (claimed by a server killed before it could join)
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        other = store.save("room-2", "c", SAVED)
        assert other is not None
        other.rename(other.with_name(f"{other.name}.taking-{running.pid}"))
        assert store.claim("room-2", Entry()) is None  # (its claimer runs)
        entry = Entry()
        assert store.claim("room-1", entry) is not None
        assert entry.offered == [SAVED] and not dead.exists()
    finally:
        running.kill()
        running.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="start times are read from /proc")
def test_a_claim_is_its_process_s_only_while_that_process_runs_under_its_pid(tmp_path: Path) -> None:
    """A claim names the process by its pid and when it started: a pid that a later process has
    (after a reboot, or pids gone round) does not hold the claim of the one that ended.  A claim
    named by the pid alone (an earlier version's) is held while any process has it."""
    store = CarryStore(tmp_path / "carries")
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid, _, start = taker(running.pid).partition("-")
        assert pid == str(running.pid) and start.isdigit()
        for room, claimer, held in [
            ("room-1", f"{pid}-{start}", True),
            ("room-2", pid, True),
            ("room-3", f"{pid}-{int(start) + 1}", False),
        ]:
            path = store.save(room, "c", SAVED)
            assert path is not None
            path.rename(path.with_name(f"{path.name}.taking-{claimer}"))
            entry = Entry()
            assert (store.claim(room, entry) is None) == held, claimer
            assert entry.offered == ([] if held else [SAVED])
    finally:
        running.kill()
        running.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="start times are read from /proc")
def test_a_claim_of_another_user_s_pid_is_told_by_its_start_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process of another user cannot be signalled (``EPERM``: these tests run as root, so it
    is simulated), but /proc still says when it started: a claim of a process that started at
    another time is taken."""
    store = CarryStore(tmp_path / "carries")
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])

    def kill(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    try:
        pid, _, start = taker(running.pid).partition("-")
        monkeypatch.setattr(os, "kill", kill)
        for room, claimer, held in [("room-1", f"{pid}-{start}", True), ("room-2", f"{pid}-0", False)]:
            path = store.save(room, "c", SAVED)
            assert path is not None
            path.rename(path.with_name(f"{path.name}.taking-{claimer}"))
            assert (store.claim(room, Entry()) is None) == held, claimer
    finally:
        monkeypatch.undo()
        running.kill()
        running.wait()


def test_what_cannot_be_kept_or_read_is_logged_without_the_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "lsp_bridge.carries")
    assert CarryStore(None).save("room-1", "c", SAVED) is None  # no home folder
    assert CarryStore(None).claim("room-1", Entry()) is None
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    assert CarryStore(blocked / "carries").save("room-1", "c", SAVED) is None  # cannot be written
    store = CarryStore(tmp_path / "carries")
    path = store.save("room-1", "c", SAVED)
    assert path is not None
    path.write_bytes(b'{"version": 1, "roomId": "SECRET')  # cut short
    entry = Entry()
    assert store.claim("room-1", entry) is None and entry.offered == []
    aside = path.with_name(f"{path.name}.unreadable")
    assert not path.exists() and aside.exists()  # (set aside, never offered again: the user may want it)
    assert store.claim("room-1", entry) is None and entry.offered == []
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 4, said
    assert "they are in the editor's buffers only" in said[0] and "could not keep" in said[1]
    assert "could not read" in said[2] and "set aside" in said[3]
    assert "SECRET" not in caplog.text


def test_a_carry_that_cannot_be_taken_never_hides_a_good_one_of_the_same_room(tmp_path: Path) -> None:
    """Offered oldest first: one this version cannot read (cut short, or refused by the room) is
    set aside, and the next is offered in the same claim, and never again."""
    store = CarryStore(tmp_path / "carries")
    cut = store.save("room-1", "cut", SAVED)
    refused = store.save("room-1", "refused", {**SAVED, "version": 99})
    good = store.save("room-1", "good", {**SAVED, "clientId": "good"})
    assert cut is not None and refused is not None and good is not None
    cut.write_bytes(b"{")
    for age, path in enumerate((cut, refused, good)):
        os.utime(path, (age + 1, age + 1))
    entry = Entry(Restore.UNREADABLE)  # (the room cannot read version 99)
    claimed = store.claim("room-1", entry)
    assert claimed is not None and claimed.name.startswith(good.name)
    assert [s["version"] for s in entry.offered] == [99, 1] and entry.offered[1]["clientId"] == "good"
    store.remove(claimed)
    assert sorted(p.name for p in (tmp_path / "carries").iterdir()) == sorted(
        [f"{cut.name}.unreadable", f"{refused.name}.unreadable"]
    )
    assert store.claim("room-1", Entry()) is None


def test_a_carry_kept_again_replaces_the_claimed_file_it_came_from(tmp_path: Path) -> None:
    store = CarryStore(tmp_path / "carries")
    first = store.save("room-1", "c", SAVED)
    claimed = store.claim("room-1", Entry())
    assert first is not None and claimed is not None
    store.keep("room-1", "c", {**SAVED, "seqs": {"a.txt": 4}}, replacing=claimed)  # (not taken: exit)
    assert not claimed.exists() and [p.name for p in first.parent.iterdir()] == [first.name]
    again = store.claim("room-1", Entry())
    assert again is not None
    blocked = CarryStore(tmp_path / "file")
    (tmp_path / "file").write_text("")
    blocked.keep("room-1", "c", SAVED, replacing=again)  # (cannot be written: the old one stays)
    assert not again.exists() and first.exists()


HOLDER = """
import sys, time
from pathlib import Path
from lsp_bridge.carries import CarryStore
store = CarryStore(Path(sys.argv[1]))
store.hold("room-1", "c", {"version": 1, "first": True})
print(store.hold("room-1", "c", {"version": 1, "first": False}), flush=True)
time.sleep(60)
"""


def test_a_held_carry_is_claimed_by_its_server_and_taken_by_the_next_once_that_one_is_killed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What a running server holds (HoldCarry) is claimed by it: no entry takes it while that
    server runs, the next held copy replaces it whole, and once the server is killed (kill -9:
    nothing kept at exit) the next entry into the room takes it."""
    folder = tmp_path / "carries"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        held = Path(holder.stdout.readline().strip())
        assert held.parent == folder and held.name.endswith(f".json.taking-{taker(holder.pid)}")
        assert stat.S_IMODE(held.stat().st_mode) == 0o600
        assert [p.name for p in folder.iterdir()] == [held.name]  # (replaced whole, no temporary file)
        assert CarryStore(folder).claim("room-1", Entry()) is None  # (its server runs)
        # an entry into its room waits for it (a server in its exit's wait keeps it as it ends)
        assert CarryStore(folder).held_elsewhere("room-1")
        assert not CarryStore(folder).held_elsewhere("room-2")
        assert not CarryStore(None).held_elsewhere("room-1")
    finally:
        holder.kill()
        holder.wait()
    assert not CarryStore(folder).held_elsewhere("room-1")  # (its server is gone)
    entry = Entry()
    claimed = CarryStore(folder).claim("room-1", entry)
    assert claimed is not None and entry.offered == [{"version": 1, "first": False}]
    store = CarryStore(folder)
    store.remove(claimed)
    # this process's own: not claimed by its own entries either; the next hold of another entry
    # replaces it, dropped once done with
    mine = store.hold("room-1", "d", SAVED)
    assert mine is not None and store.held == mine and store.claim("room-1", Entry()) is None
    assert not store.held_elsewhere("room-1")  # (its own: nothing to wait for)
    other = store.hold("room-2", "e", SAVED)
    assert other is not None and store.held == other and [p.name for p in folder.iterdir()] == [other.name]
    store.drop_held()
    assert list(folder.iterdir()) == [] and store.held is None
    # an exit keeps the entry's changes: the kept file replaces the held one
    store.hold("room-1", "d", SAVED)
    store.keep("room-1", "d", SAVED, replacing=None)
    (kept,) = folder.iterdir()
    assert kept.name.endswith(".json") and store.held is None
    store.remove(kept)
    # ... unless it cannot be written: the held one stays, for the next server once this one is gone
    broken = CarryStore(folder)
    held = broken.hold("room-1", "d", SAVED)
    assert held is not None
    in_the_way = kept  # (a folder where the kept file would go: it cannot be written, even as root)
    (in_the_way / "x").mkdir(parents=True)
    broken.keep("room-1", "d", SAVED, replacing=None)
    assert sorted(p.name for p in folder.iterdir()) == sorted([held.name, kept.name])
    assert held.exists() and broken.held is None
    # nowhere to hold it: said once, not at every look
    caplog.clear()
    caplog.set_level(logging.INFO, "lsp_bridge.carries")
    (tmp_path / "file").write_text("")
    blocked = CarryStore(tmp_path / "file" / "carries")
    assert blocked.hold("room-1", "c", SAVED) is None and blocked.hold("room-1", "c", SAVED) is None
    assert CarryStore(None).hold("room-1", "c", SAVED) is None
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1 and "could not keep" in said[0] and "SECRET" not in caplog.text


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="zombies are read from /proc (Linux)")
def test_a_held_carry_of_a_killed_server_nobody_reaped_is_taken(tmp_path: Path) -> None:
    """A server killed outright whose editor quit before reaping it is a zombie of PID 1 until
    PID 1 reaps it: late (this machine's, about 2 s after), or never (a container's that reaps
    nobody); meanwhile its pid answers ``kill(pid, 0)``.  Its held carry is taken all the same
    (a zombie runs nothing).  Here the holder is this process's own child, killed and not
    waited for: a zombie."""
    folder = tmp_path / "carries"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        held = Path(holder.stdout.readline().strip())
        assert held.name.endswith(f".json.taking-{taker(holder.pid)}")
        os.kill(holder.pid, 9)
        os.waitid(os.P_PID, holder.pid, os.WEXITED | os.WNOWAIT)  # (ended, left unreaped: a zombie)
        os.kill(holder.pid, 0)  # (a zombie's pid answers)
        entry = Entry()
        claimed = CarryStore(folder).claim("room-1", entry)
        assert claimed is not None and entry.offered == [{"version": 1, "first": False}]
    finally:
        holder.kill()
        holder.wait()
