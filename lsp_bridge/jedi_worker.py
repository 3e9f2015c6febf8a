"""jedi, and the worker process the language server runs it in.

:class:`JediRunner` calls jedi (imported lazily) and keeps parso's memory in
check; :class:`~lsp_bridge.completion.CompletionEngine` uses it inline (tests,
benchmarks).  The language server runs it in a worker process instead
(``python -c`` :data:`BOOT`, started by :mod:`lsp_bridge.completion_service`
at the first Python completion), so jedi's memory and its GIL never touch the
keystroke path.  The worker speaks line-delimited JSON on its stdin and
stdout (one object a line; JSON escapes every newline in a string):

* worker -> server, once at start: ``{"ready": true}``, or
  ``{"ready": false, "why": "no jedi"}`` (then it exits);
* server -> worker: ``{"id": N, "path": ..., "source": ..., "line": L, "column": C}``
  (``line`` from 1, ``column`` in code points, as jedi counts);
* worker -> server: ``{"id": N, "names": [[name, type], ...], "seconds": S}``
  or ``{"id": N, "error": "internal", "seconds": S}`` (jedi raised: its
  inference has internal errors on odd code; no text of the document or the
  exception is sent).

The worker exits when its stdin ends (the server exited, even by SIGKILL: the
kernel closes the pipe), also in the middle of a jedi call: a thread reads
stdin.  It ignores SIGINT (a Ctrl-C meant for the editor's terminal), and
runs at a lower CPU priority (nice 10): on a busy machine jedi waits, not the
server answering a keystroke.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["BOOT", "JediRunner", "main"]

#: the worker's command line after ``python -c`` (then the directory holding ``lsp_bridge``):
#: that directory replaces ``-c``'s current directory on ``sys.path`` (a workspace's own
#: ``json.py`` or ``jedi.py`` must not shadow the real ones), and works for a bundled copy too
BOOT = "import sys; sys.path[0] = sys.argv[1]; from lsp_bridge.jedi_worker import main; main()"


#: how much lower the worker's CPU priority is than the language server's
NICE = 10


class JediRunner:
    """jedi's completions at a position of a source; keeps parso's trees of the last few documents.

    ``JediRunner.load()`` is ``None`` when jedi is not installed.
    """

    def __init__(self, jedi: Any, *, root: str | None = None, parsed_documents: int = 2) -> None:
        self.jedi = jedi
        self.project = jedi.Project(root) if root is not None else None
        self.parsed_documents = parsed_documents
        self._parsed: list[str] = []  # jedi's paths whose parse trees parso keeps, oldest first

    @classmethod
    def load(cls, *, root: str | None = None, parsed_documents: int = 2) -> JediRunner | None:
        try:
            import jedi  # type: ignore[import-untyped]
        except ImportError:
            return None
        return cls(jedi, root=root, parsed_documents=parsed_documents)

    def complete(self, path: str, source: str, line: int, column: int) -> list[tuple[str, str]]:
        """``(name, jedi type)`` at *line* (from 1), *column* (code points); raises what jedi raises."""
        try:
            script = self.jedi.Script(source, path=path, project=self.project)
            return [(c.name, c.type) for c in script.complete(line, column)]
        finally:
            self._keep_parsed(path)

    def _keep_parsed(self, jedi_path: str) -> None:
        """Let parso keep the parse trees of the last few documents only.

        parso keeps every parsed file's tree in ``parso.cache.parser_cache``
        (for its diff parser) until it holds 600 files: about 2.5 MB for a
        2,000-line module, 50 MB for 20 open documents.  The trees of the
        documents completed in most recently stay (typing in one document
        re-parses only the changed lines); older ones are dropped, and
        re-parsed if completed in again.  Stub and library trees stay: they
        are shared by every document.
        """
        key = str(Path(jedi_path).absolute())  # as jedi.Script does
        if key in self._parsed:
            self._parsed.remove(key)
        self._parsed.append(key)
        if len(self._parsed) <= self.parsed_documents:
            return
        old, self._parsed = self._parsed[: -self.parsed_documents], self._parsed[-self.parsed_documents :]
        try:
            import parso.cache
        except ImportError:  # pragma: no cover - jedi depends on parso
            return
        stale = set(old)
        for trees in parso.cache.parser_cache.values():
            for tree_path in [p for p in trees if p is not None and os.fspath(p) in stale]:
                del trees[tree_path]


def _read_stdin(jobs: queue.SimpleQueue[bytes]) -> None:
    for line in sys.stdin.buffer:
        jobs.put(line)
    # EOF: the language server is gone; exit now, even in the middle of a jedi call
    os._exit(0)


def main() -> None:
    """The worker process: jobs from stdin, answers to stdout, until stdin ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the editor and the language server come first when the cores are busy
    with contextlib.suppress(OSError):
        os.nice(NICE)
    out = sys.stdout.buffer

    def send(msg: dict[str, Any]) -> None:
        out.write(json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
        out.flush()

    runner = JediRunner.load()
    if runner is None:
        send({"ready": False, "why": "no jedi"})
        return
    send({"ready": True})
    jobs: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    threading.Thread(target=_read_stdin, args=(jobs,), name="stdin", daemon=True).start()
    while True:
        line = jobs.get()
        try:
            job = json.loads(line)
            job_id = job["id"]
            path, source, row, column = job["path"], job["source"], job["line"], job["column"]
        except (ValueError, KeyError, TypeError):
            send({"error": "bad request"})
            continue
        t0 = time.perf_counter()
        try:
            names = runner.complete(path, source, row, column)
        except Exception:  # jedi's inference has internal errors on odd code
            send({"id": job_id, "error": "internal", "seconds": time.perf_counter() - t0})
        else:
            send({"id": job_id, "names": names, "seconds": time.perf_counter() - t0})


if __name__ == "__main__":
    main()
