"""The completion index and engine of one language server, and jedi's worker thread."""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Executor, Future
from typing import Any

from .completion import CompletionEngine, IdentifierIndex, SemanticResult

__all__ = ["CompletionService"]


class CompletionService:
    """The index of room words, the engine, and jedi's worker thread."""

    def __init__(self) -> None:
        self.index = IdentifierIndex()
        self.engine = CompletionEngine(self.index)
        # jedi is not thread-safe and cannot be interrupted: one worker, waited on for a budget
        self.jedi_pool = _DaemonWorker()
        self.jedi_busy: asyncio.Future[SemanticResult] | None = None
        #: unshared documents indexed at this version
        self.indexed_versions: dict[str, int] = {}

    def replaced(self, path: str, text: str | None) -> None:
        if text is None:
            self.index.remove(path)
            self.engine.forget(path)
        else:
            self.index.update(path, text)


class _DaemonWorker(Executor):
    """One daemon thread running jobs in order (jedi is not thread-safe).

    A ThreadPoolExecutor's threads are joined at exit, so a server whose
    editor quit during jedi's slow first call would linger; this one exits.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Any, tuple[Any, ...]]] = queue.SimpleQueue()
        threading.Thread(target=self._work, name="pairls-jedi", daemon=True).start()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        self._jobs.put((fut, fn, args))
        return fut

    def _work(self) -> None:
        while True:
            fut, fn, args = self._jobs.get()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:
                fut.set_exception(exc)
