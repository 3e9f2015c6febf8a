"""jedi's worker process, through the real language server over stdio: Python completions
carry jedi's names from it; a killed or hung worker is survived, counted and replaced; a
killed server leaves no worker behind; and, on the shell alone, a reader stopped after its
worker was reaped counts no failure.  (The policy alone: test_jedi_client.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from lsp_bridge.completion import CompletionEngine, IdentifierIndex
from lsp_bridge.completion_service import JediWorker
from lsp_bridge.jedi_client import JediClient
from tests.support.lsp_editor import TestEditor

TEXT = "import os\nos.pa"


async def _eventually(check: Callable[[], Awaitable[Any]], tries: int = 120, delay: float = 0.25) -> Any:
    """Ask *check* until it returns something truthy (bounded; asserts nothing about time)."""
    for _ in range(tries):
        got = await check()
        if got:
            return got
        await asyncio.sleep(delay)
    raise AssertionError("condition never held")


@pytest.fixture
async def editor(tmp_path: Path) -> AsyncIterator[TestEditor]:
    """A VS Code at the LSP boundary and its own pairls-lsp; no hub (the documents are not
    shared: they complete from themselves and jedi)."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    env = {"PAIRLS_USER_ID": "user-of-ada", "XDG_STATE_HOME": str(tmp_path / "state")}
    ed = await TestEditor("vscode", "Ada", workspace, None, env=env).start()
    try:
        yield ed
    finally:
        await ed.stop()


async def _jedi_names(ed: TestEditor, uri: str) -> bool:
    return "path" in {i.label for i in await ed.complete(uri, len(ed.text(uri)))}


def _server(ed: TestEditor) -> psutil.Process:
    return psutil.Process(ed.client._server.pid)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_a_python_completion_carries_jedis_names_from_the_worker(editor: TestEditor) -> None:
    server = _server(editor)
    assert server.children() == []  # no worker before the first Python completion
    u = editor.uri("a.py")
    editor.open(u, TEXT)
    await _eventually(lambda: _jedi_names(editor, u))
    st = await editor.status()
    jedi = st["jedi"]
    assert jedi["available"] and jedi["starts"] == 1 and jedi["answers"] >= 1
    assert st["jediPid"] == jedi["pid"]
    worker = psutil.Process(jedi["pid"])
    assert worker in server.children()
    assert "lsp_bridge.jedi_worker" in " ".join(worker.cmdline())
    assert worker.exe() == server.exe()  # the same Python
    # its stdio are its own pipes (socket pairs under uvloop), not the editor's (the LSP channel)
    for fd in (0, 1, 2):
        mine = os.readlink(f"/proc/{worker.pid}/fd/{fd}")
        assert mine.startswith(("pipe:", "socket:")), mine
        assert mine != os.readlink(f"/proc/{server.pid}/fd/{fd}")
    assert not {"deaths", "hangs", "bad_lines", "errors"} & jedi.keys()


async def test_a_killed_worker_is_survived_counted_and_replaced(editor: TestEditor) -> None:
    u = editor.uri("a.py")
    editor.open(u, TEXT)
    await _eventually(lambda: _jedi_names(editor, u))
    first = (await editor.status())["jedi"]["pid"]
    os.kill(first, signal.SIGKILL)

    async def counted() -> bool:
        return bool((await editor.status())["jedi"].get("deaths"))

    await _eventually(counted)
    assert _gone(first)
    # completion answers meanwhile and after (the room's words and keywords at least)
    editor.append(u, "\nimport sys\nsys.pl")
    await _eventually(lambda: _names_in(editor, u, "platform"))
    jedi = (await editor.status())["jedi"]
    assert jedi["deaths"] == 1 and jedi["starts"] == 2
    assert jedi["pid"] not in (None, first)
    assert editor.alive


async def test_a_hung_worker_is_killed_counted_and_replaced(editor: TestEditor) -> None:
    u = editor.uri("a.py")
    editor.open(u, TEXT)
    await _eventually(lambda: _jedi_names(editor, u))
    first = (await editor.status())["jedi"]["pid"]
    os.kill(first, signal.SIGSTOP)  # alive, and silent: a jedi call that never ends
    try:
        editor.append(u, "\nimport sys\nsys.pl")
        assert editor.alive and await editor.complete(u, len(editor.text(u))) is not None

        async def killed() -> bool:
            return (await editor.status())["jedi"].get("hangs") == 1

        async def first_gone() -> bool:
            return _gone(first)

        await _eventually(killed)  # after 10 s without an answer
        # the SIGKILL has gone out; the kernel ends the stopped process in its own time
        await _eventually(first_gone)
        await _eventually(lambda: _names_in(editor, u, "platform"))  # from a new worker
        jedi = (await editor.status())["jedi"]
        assert jedi["hangs"] == 1 and "deaths" not in jedi and jedi["starts"] == 2
        assert jedi["pid"] not in (None, first)
    finally:
        if not _gone(first):
            os.kill(first, signal.SIGKILL)


async def _names_in(ed: TestEditor, uri: str, name: str) -> bool:
    return name in {i.label for i in await ed.complete(uri, len(ed.text(uri)))}


async def test_a_killed_server_leaves_no_worker_behind(editor: TestEditor) -> None:
    u = editor.uri("a.py")
    editor.open(u, TEXT)
    await _eventually(lambda: _jedi_names(editor, u))
    server = _server(editor)
    worker = psutil.Process((await editor.status())["jedi"]["pid"])
    left = [worker, *worker.children(recursive=True)]  # jedi's own subprocess too
    server.kill()  # SIGKILL: no shutdown, no clean-up of its own

    async def all_gone() -> bool:
        return all(_gone(p.pid) for p in left)

    await _eventually(all_gone, tries=40)  # 10 s at most


async def test_a_reader_stopped_after_its_worker_was_reaped_counts_no_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server's end cancels the worker's reader; the worker may have ended and been reaped
    already (closing its stdin ends it), and killing it then raised ProcessLookupError: a
    failed task and a traceback in the log (seen in the stdio fuzz test, seed 2001, under load)."""
    worker = JediWorker(JediClient(CompletionEngine(IdentifierIndex())))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "pass", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    await proc.communicate()  # ended, reaped, its pipes closed
    with pytest.raises(ProcessLookupError):
        proc.kill()
    # the moment of the race: the reader waits for a line it will not be woken for before the end
    proc.stdout = asyncio.StreamReader()
    worker._start(worker._read(proc))
    (task,) = worker._tasks
    await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert worker.failed_tasks == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
