"""The completion index and engine of one language server, and its jedi worker process.

:class:`JediWorker` is the asyncio shell of :class:`~lsp_bridge.jedi_client.JediClient`:
it spawns the worker (``sys.executable``, the same Python, with pipes for stdin, stdout
and stderr: the editor's stdio is the LSP channel and is not inherited), writes the
questions the client makes, reads the answers, and kills the worker when the client says
it hangs.  Every decision is the client's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Coroutine
from typing import Any

import lsp_bridge

from .completion import CompletionEngine, IdentifierIndex, SemanticResult
from .jedi_client import JediClient, Received
from .jedi_worker import BOOT

__all__ = ["CompletionService", "JediWorker"]

logger = logging.getLogger(__name__)

#: the directory holding the package lsp_bridge (site-packages, a checkout, a bundle)
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(lsp_bridge.__file__)))
#: lines of a worker's stderr logged (a crash's traceback), per worker
_STDERR_LINES = 40


class CompletionService:
    """The index of room words, the engine, and jedi's worker process."""

    def __init__(self) -> None:
        self.index = IdentifierIndex()
        self.engine = CompletionEngine(self.index)
        self.jedi = JediWorker(JediClient(self.engine))
        #: unshared documents indexed at this version
        self.indexed_versions: dict[str, int] = {}

    def replaced(self, path: str, text: str | None) -> None:
        if text is None:
            self.index.remove(path)
            self.engine.forget(path)
        else:
            self.index.update(path, text)


class JediWorker:
    """Runs :class:`JediClient`'s worker process: spawn, write, read, kill."""

    def __init__(self, client: JediClient) -> None:
        self.client = client
        self._proc: asyncio.subprocess.Process | None = None
        self._waiting: dict[int, asyncio.Future[SemanticResult]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        #: reader tasks that ended with an exception (in ``pairls.status``'s failedTasks)
        self.failed_tasks = 0

    async def semantic(self, path: str, text: str, offset: int, language_id: str | None) -> SemanticResult:
        """jedi's names at *offset*, if the worker answers within the wait the client set."""
        loop = asyncio.get_running_loop()
        ask = self.client.ask(path, text, offset, language_id, loop.time())
        if isinstance(ask, SemanticResult):
            return ask
        fut: asyncio.Future[SemanticResult] = loop.create_future()
        self._waiting[ask.id] = fut
        try:
            proc = self._proc if not ask.spawn else await self._spawn()
            if proc is None or proc.stdin is None:
                raise OSError("no worker")
            proc.stdin.write(ask.data)
        except OSError as exc:  # could not start it, or it is gone (its end is read and said)
            logger.warning("pairls: cannot reach the jedi worker: %s", type(exc).__name__)
            self._waiting.pop(ask.id, None)
            if self._proc is None:
                self._handle(self.client.exited(loop.time()))
            return SemanticResult([], "error")
        self._arm(loop)
        try:
            if ask.wait_s <= 0:
                raise TimeoutError
            return await asyncio.wait_for(asyncio.shield(fut), ask.wait_s)
        except TimeoutError:
            self.client.waited_out(ask.id)
            return SemanticResult([], "skipped")
        finally:
            self._waiting.pop(ask.id, None)

    def close(self) -> None:
        """Stop the worker (closing its stdin ends it)."""
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            self.client.stopping()
            proc.stdin.close()

    # -- the process

    async def _spawn(self) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", BOOT, _ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=64 * 2**20,
        )  # fmt: skip
        self._proc = proc
        self.client.started(proc.pid)
        self._start(self._read(proc))
        self._start(self._read_stderr(proc))
        return proc

    def _start(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # a bug: counted, tests fail on it
            self.failed_tasks += 1
            logger.error("pairls: the jedi worker's reader failed", exc_info=task.exception())

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        loop = asyncio.get_running_loop()
        try:
            while line := await proc.stdout.readline():
                received = self.client.received(line)
                if received is not None:
                    self._deliver(received)
                    waiting = self.client.to_send(loop.time())
                    if waiting is not None and proc.stdin is not None:
                        proc.stdin.write(waiting.data)
                        self._arm(loop)
        except (ValueError, OSError):  # a line over the limit, or the pipe broke: a dead worker
            logger.warning("pairls: unreadable output from the jedi worker")
            _kill(proc)
        except asyncio.CancelledError:
            _kill(proc)
            raise
        if self._proc is proc:
            self._proc = None
        _kill(proc)
        await proc.wait()
        self._handle(self.client.exited(loop.time()))

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        said = 0
        while line := await proc.stderr.readline():
            if said < _STDERR_LINES:
                said += 1
                logger.warning("jedi worker: %s", line.decode(errors="replace").rstrip())

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(self.client.hang_s + 0.1, self._check)

    def _check(self) -> None:
        self._timer = None
        line = self.client.check(asyncio.get_running_loop().time())
        if line is not None:
            logger.warning(line)
            if self._proc is not None:
                _kill(self._proc)

    def _handle(self, exited: tuple[str | None, Received | None]) -> None:
        line, received = exited
        if line is not None:
            logger.warning(line)
        if received is not None:
            self._deliver(received)

    def _deliver(self, received: Received) -> None:
        fut = self._waiting.get(received.id)
        if fut is not None and not fut.done():
            fut.set_result(received.result)


def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill *proc* if it is still there: one that ended and was reaped (closing its stdin ends
    it, and the server's end may cancel its reader after that) raises ProcessLookupError."""
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
