"""lsp_bridge.carries: what the hub never acknowledged when the editor went, kept on disk."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_bridge.carries import CarryStore

SAVED = {"version": 1, "roomId": "room-1", "clientId": "c", "seqs": {}, "docs": {"a.txt": {"text": "SECRET"}}}


def test_kept_private_claimed_once_and_removed_once_taken(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "pairls" / "carries"
    store = CarryStore(folder)
    assert store.claim("room-1") is None
    path = store.save("room-1", "c", SAVED)
    assert path is not None and path.parent == folder
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert "room-1" not in path.name  # (named by hashes: a room id from a hub is no path)
    again = {**SAVED, "seqs": {"a.txt": 2}}
    assert store.save("room-1", "c", again) == path  # (the same entry's: replaced whole)
    assert store.claim("room-2") is None
    claimed = store.claim("room-1")
    assert claimed is not None and claimed[1] == again
    assert not path.exists() and claimed[0].name.endswith(f".taking-{os.getpid()}")
    assert store.claim("room-1") is None  # (claimed: by this process, which runs)
    store.remove(claimed[0])
    store.remove(claimed[0])  # (gone already: nothing to do)
    assert list(folder.iterdir()) == []  # (no temporary file left either)


def test_two_editors_that_went_offline_keep_two_and_each_entry_claims_one(tmp_path: Path) -> None:
    store = CarryStore(tmp_path / "carries")
    first = store.save("room-1", "vscode-entry", {**SAVED, "clientId": "vscode-entry"})
    second = store.save("room-1", "neovim-entry", {**SAVED, "clientId": "neovim-entry"})
    assert first is not None and second is not None and first != second
    os.utime(first, (1, 1))  # the older one is claimed first
    a = store.claim("room-1")
    b = store.claim("room-1")
    assert a is not None and b is not None and store.claim("room-1") is None
    assert [a[1]["clientId"], b[1]["clientId"]] == ["vscode-entry", "neovim-entry"]
    store.give_back(b[0])  # (this entry could not use it: kept for another)
    assert second.exists()


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
        assert store.claim("room-2") is None  # (its claimer runs)
        claimed = store.claim("room-1")
        assert claimed is not None and claimed[1] == SAVED and not dead.exists()
    finally:
        running.kill()
        running.wait()


def test_what_cannot_be_kept_or_read_is_logged_without_the_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "lsp_bridge.carries")
    assert CarryStore(None).save("room-1", "c", SAVED) is None  # no home folder
    assert CarryStore(None).claim("room-1") is None
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    assert CarryStore(blocked / "carries").save("room-1", "c", SAVED) is None  # cannot be written
    store = CarryStore(tmp_path / "carries")
    path = store.save("room-1", "c", SAVED)
    assert path is not None
    path.write_bytes(b'{"version": 1, "roomId": ')  # cut short
    assert store.claim("room-1") is None
    assert path.exists()  # (given back: the user may want it)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 3, said
    assert "they are in the editor's buffers only" in said[0] and "could not keep" in said[1]
    assert "could not read" in said[2]
    assert "SECRET" not in caplog.text
