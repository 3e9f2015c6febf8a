"""lsp_bridge.carries: what the hub never acknowledged when the editor went, kept on disk."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from lsp_bridge.carries import CarryStore

SAVED = {"version": 1, "roomId": "room-1", "clientId": "c", "seqs": {}, "docs": {"a.txt": {"text": "SECRET"}}}


def test_kept_private_read_back_and_removed_once_taken(tmp_path: Path) -> None:
    store = CarryStore(tmp_path / "state" / "pairls" / "carries")
    assert store.load("room-1") is None
    path = store.save("room-1", SAVED)
    assert path is not None and path.parent == tmp_path / "state" / "pairls" / "carries"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert "room-1" not in path.name  # (named by a hash: a room id from a hub is no path)
    assert store.load("room-1") == SAVED
    assert store.load("room-2") is None
    again = {**SAVED, "clientId": "d"}
    assert store.save("room-1", again) == path  # (replaced whole)
    assert store.load("room-1") == again
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # (no temporary file left)
    store.remove("room-1")
    store.remove("room-1")  # (gone already: nothing to do)
    assert store.load("room-1") is None and not path.exists()


def test_a_room_id_cannot_lead_out_of_the_folder(tmp_path: Path) -> None:
    store = CarryStore(tmp_path / "carries")
    path = store.save("../../etc/passwd", SAVED)
    assert path is not None and path.parent == tmp_path / "carries"


def test_what_cannot_be_kept_or_read_is_logged_without_the_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "lsp_bridge.carries")
    assert CarryStore(None).save("room-1", SAVED) is None  # no home folder
    assert CarryStore(None).load("room-1") is None
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    assert CarryStore(blocked / "carries").save("room-1", SAVED) is None  # cannot be written
    store = CarryStore(tmp_path / "carries")
    path = store.save("room-1", SAVED)
    assert path is not None
    path.write_bytes(b'{"version": 1, "roomId": ')  # cut short
    assert store.load("room-1") is None
    assert path.exists()  # (left where it is: the user may want it)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 3, said
    assert "they are in the editor's buffers only" in said[0] and "could not keep" in said[1]
    assert "could not read" in said[2]
    assert "SECRET" not in caplog.text
