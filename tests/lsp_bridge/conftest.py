"""The language-server tests' fixtures: a hub process on the module's database, and editors
(``pairls-lsp`` processes driven by a :class:`TestEditor`) that must end without a heal, a
failed task, an error of the server's own, an answer that made no sense or a jedi worker that
died or hung."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.hubproc import HubProcess
from tests.support.lsp_editor import TestEditor, stop_checked
from tests.support.raw_lsp import RawServer

MakeEditor = Callable[..., Awaitable[TestEditor]]


@pytest.fixture(scope="module")
async def hub(module_database_url: str) -> AsyncIterator[HubProcess]:
    with HubProcess(database_url=module_database_url) as h:
        yield h
    assert "Traceback" not in h.log, h.log


@pytest.fixture
async def make_editor(tmp_path: Path, hub: HubProcess) -> AsyncIterator[MakeEditor]:
    started: list[TestEditor] = []

    async def make(kind: str, name: str, *, hub_url: str | None = None, **options: Any) -> TestEditor:
        workspace = tmp_path / f"ws-{name}"
        workspace.mkdir()
        home = tmp_path / f"home-{name}"
        env = {
            "PAIRLS_USER_ID": f"user-of-{name.lower()}",
            "XDG_CACHE_HOME": str(home / "cache"),
            "XDG_STATE_HOME": str(home / "state"),
        }
        ed = TestEditor(
            kind, name, workspace, hub_url or hub.url, seed=len(started), env=env, init_options=options
        )
        started.append(ed)
        return await ed.start()

    yield make
    await stop_checked(started)


@pytest.fixture
async def raw() -> AsyncIterator[RawServer]:
    """A :class:`RawServer` not started yet; killed at teardown if a test left it running."""
    server = RawServer()
    yield server
    proc = getattr(server, "proc", None)
    if proc is not None and proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
