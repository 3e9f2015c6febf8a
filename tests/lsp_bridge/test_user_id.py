"""lsp_bridge.user_id: the user id kept in the state folder, for per-person undo."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_bridge.user_id import load_user_id, user_id_file, valid_user_id


def test_made_once_kept_private_and_the_same_ever_after(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path / "home")}
    first = load_user_id(env)
    assert first.source == "file" and valid_user_id(first.value)
    path = tmp_path / "state" / "pairls" / "user-id"
    assert first.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == first.value + "\n"
    assert load_user_id(env).value == first.value
    # without XDG_STATE_HOME: ~/.local/state
    home = load_user_id({"HOME": str(tmp_path / "home")})
    assert home.path == tmp_path / "home" / ".local" / "state" / "pairls" / "user-id"
    assert home.value != first.value


def test_the_environment_overrides_the_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path), "PAIRLS_USER_ID": "ada-in-tests"}
    assert load_user_id(env).value == "ada-in-tests"
    assert not (tmp_path / "pairls").exists()
    with caplog.at_level(logging.WARNING):
        bad = load_user_id({**env, "PAIRLS_USER_ID": "no spaces"})
    assert bad.source == "file" and "PAIRLS_USER_ID" in caplog.text


def test_an_unwritable_folder_gives_an_id_for_this_process_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # (a file where the folder should be: no folder can be made there, even by root)
    blocked = tmp_path / "blocked"
    blocked.write_text("")
    with caplog.at_level(logging.WARNING):
        got = load_user_id({"XDG_STATE_HOME": str(blocked)})
    assert got.source == "process" and valid_user_id(got.value)
    assert caplog.text.count("cannot keep your pairls user id") == 1


def test_a_file_that_holds_something_else_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "pairls" / "user-id"
    path.parent.mkdir()
    path.write_text("not an id!\n")
    got = load_user_id({"XDG_STATE_HOME": str(tmp_path)})
    assert got.source == "process" and path.read_text() == "not an id!\n"


def test_no_home_no_file() -> None:
    assert user_id_file({}) is None
    assert user_id_file({"XDG_STATE_HOME": "relative/is/ignored"}) is None
    assert load_user_id({}).source == "process"


def test_editors_starting_together_agree_on_one_id(tmp_path: Path) -> None:
    code = "from lsp_bridge.user_id import load_user_id; print(load_user_id().value)"
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path)}
    env.pop("PAIRLS_USER_ID", None)
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(ids) == 1 and ids == {(tmp_path / "pairls" / "user-id").read_text().strip()}
