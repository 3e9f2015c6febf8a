"""The language-server tests' fixtures: a hub process on the module's database, and editors
(``pairls-lsp`` processes driven by a :class:`TestEditor`) that must end without a heal, a
failed task, an error of the server's own, an answer that made no sense or a jedi worker that
died or hung."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.hubproc import HubProcess
from tests.support.lsp_editor import TestEditor

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
    # a heal, a failed task, an error pygls caught in our code, an answer that made no sense or
    # a jedi worker lost hides a bug: none is caused here
    problems: dict[str, Any] = {}
    for ed in started:
        if ed.alive:
            try:
                st = await asyncio.wait_for(ed.status(), 10)
            except Exception as exc:  # a server that cannot say how it is: a bug too
                problems[ed.name] = f"pairls.status failed: {exc!r}"
                continue
            jedi = st["jedi"]
            jedi_failures = sum(jedi.get(k, 0) for k in ("deaths", "hangs", "bad_lines"))
            stats = st["stats"]
            problems[ed.name] = (
                st["heals"], stats["failedTasks"], stats["serverErrors"], stats["bad_answers"], jedi_failures
            )  # fmt: skip
    await asyncio.gather(*(ed.stop() for ed in started))
    assert all(p == (0, 0, 0, 0, 0) for p in problems.values()), (
        f"heals, failed tasks, server errors, bad answers, jedi worker deaths/hangs/bad lines: {problems}"
    )
