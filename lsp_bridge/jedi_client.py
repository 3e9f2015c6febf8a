"""The language server's side of its jedi worker process (sans-I/O: no process, pipe or clock).

jedi runs in a worker process (:mod:`lsp_bridge.jedi_worker`), so its memory
and its GIL never touch the keystroke path.  :class:`JediClient` decides, and
the asyncio shell (:mod:`lsp_bridge.completion_service`) only spawns, writes,
reads and kills:

* **what to ask**: the engine's :meth:`~lsp_bridge.completion.CompletionEngine.semantic_job`
  (the document or a window of it, the cursor; the answer cached per word, the
  budget) turned into one line to write, or an answer at once (``off``,
  ``cached``, ``skipped``, ``unavailable``);
* **how long a completion waits** for the answer: *wait_s*, or not at all
  when jedi took longer than that on the document in one of its last four
  answers (the answer
  then serves the next keystrokes in the word, from the cache);
* **one question at a time**: jedi cannot be interrupted; a completion while
  the worker is still busy skips jedi (``skipped``, so the editor asks again)
  and its question waits, replacing any older one, until the worker is free
  (:meth:`to_send`), so jedi's next answer is for the newest word;
* **a worker is started lazily** (``Ask.spawn``: at the first question that
  needs one), and again after it died or hung;
* **a hung worker** (a question older than *hang_s*: :meth:`check`) is killed;
* **a dead worker** (:meth:`exited`) fails its question (``error``);
* after *failures_before_pause* deaths or hangs in a row with no answer
  between them, no worker is started for *pause_s* (jedi is ``unavailable``
  meanwhile), then one is tried again;
* a worker that says jedi is not installed makes jedi ``unavailable`` for good.

Each of these is counted (:attr:`stats`, shown by ``pairls.status``); a death,
a hang and a pause each give one line to log (:meth:`exited`, :meth:`check`).
Times are passed in as *now* (seconds, any monotonic clock).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from .completion import CompletionEngine, JediJob, SemanticResult

__all__ = ["Ask", "JediClient", "Received"]


@dataclass(frozen=True, slots=True)
class Ask:
    """Write *data* to the worker (start one first if *spawn*); its answer will carry *id*.
    The completion waits for it at most *wait_s* seconds (0: not at all)."""

    id: int
    data: bytes
    spawn: bool
    wait_s: float


@dataclass(frozen=True, slots=True)
class Received:
    """The answer to question *id*."""

    id: int
    result: SemanticResult


class JediClient:
    """The policy of one language server's jedi worker (see the module docstring)."""

    def __init__(
        self,
        engine: CompletionEngine,
        *,
        wait_s: float = 0.008,
        hang_s: float = 10.0,
        failures_before_pause: int = 3,
        pause_s: float = 60.0,
    ) -> None:
        self.engine = engine
        self.wait_s = wait_s
        self.hang_s = hang_s
        self.failures_before_pause = failures_before_pause
        self.pause_s = pause_s
        #: the worker's pid while one runs (set by the shell: :meth:`started`)
        self.pid: int | None = None
        #: False once a worker said jedi is not installed
        self.available = True
        #: starts, waits (questions a completion waits for), answers, late (answers after the
        #: completion stopped waiting or did not wait), busy (questions
        #: skipped: the worker was busy), errors (jedi failed), deaths, hangs, pauses, bad_lines
        self.stats: Counter[str] = Counter()
        self._next_id = 0
        self._asked: tuple[int, JediJob, float] | None = None
        self._pending: JediJob | None = None
        self._killing = False
        self._failures = 0  # deaths and hangs since the last answer
        self._paused_until = float("-inf")
        #: how long jedi took on each document, its last few answers
        self._took: dict[str, list[float]] = {}

    # -- the server asks

    def ask(
        self, path: str, text: str, offset: int, language_id: str | None, now: float
    ) -> SemanticResult | Ask:
        """A completion at code point *offset* of *text* (the current text of *path*) wants
        jedi's names: the answer now, or the question to send."""
        job = self.engine.semantic_job(path, text, offset, language_id)
        if isinstance(job, SemanticResult):
            return job
        if not self.available or (self.pid is None and now < self._paused_until):
            return SemanticResult([], "unavailable")
        if self._asked is not None or self._killing:
            # the newest question waits for the worker (it replaces an older one): its answer
            # serves the next keystrokes in this word
            self.stats["busy"] += 1
            self._pending = None if self._killing else job
            return SemanticResult([], "skipped")
        ask = self._ask(job, now)
        # a document jedi was slower on than the wait lately: waiting would only add the wait
        wait = self.wait_s if max(self._took.get(path, [0.0])) <= self.wait_s else 0.0
        if wait:
            self.stats["waits"] += 1
        return Ask(ask.id, ask.data, ask.spawn, wait)

    def to_send(self, now: float) -> Ask | None:
        """The question that waited for the worker, now that it is free (ask after each answer);
        nobody waits for its answer (``wait_s`` 0)."""
        job, self._pending = self._pending, None
        if job is None or self._asked is not None or self.pid is None or not self.available:
            return None
        return self._ask(job, now)

    def _ask(self, job: JediJob, now: float) -> Ask:
        self._next_id += 1
        self._asked = (self._next_id, job, now)
        msg = {
            "id": self._next_id,
            "path": job.jedi_path,
            "source": job.source,
            "line": job.line,
            "column": job.column,
        }
        data = json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
        return Ask(self._next_id, data + b"\n", spawn=self.pid is None, wait_s=0.0)

    def waited_out(self, ask_id: int) -> None:
        """The completion that asked *ask_id* answered without jedi (the answer is late)."""
        if self._asked is not None and self._asked[0] == ask_id:
            self.stats["late"] += 1

    # -- the worker

    def started(self, pid: int) -> None:
        """A worker process *pid* was started (its question, if any, written to it)."""
        self.pid = pid
        self._killing = False
        self.stats["starts"] += 1

    def received(self, line: bytes) -> Received | None:
        """One line from the worker's stdout: the answer to a question, or ``None``."""
        try:
            msg: Any = json.loads(line)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            self.stats["bad_lines"] += 1
            return None
        if "ready" in msg:
            if msg["ready"] is False:
                self.available = False
                return self._fail(SemanticResult([], "unavailable"))
            return None
        asked = self._asked
        if asked is None or msg.get("id") != asked[0]:
            self.stats["bad_lines"] += 1
            return None
        self._asked = None
        self._failures = 0
        job = asked[1]
        seconds = msg.get("seconds")
        seconds = float(seconds) if isinstance(seconds, int | float) else 0.0
        self._took[job.path] = [*self._took.get(job.path, [])[-3:], seconds]
        names = msg.get("names")
        if isinstance(names, list) and all(
            isinstance(n, list) and len(n) == 2 and all(isinstance(x, str) for x in n) for n in names
        ):
            self.stats["answers"] += 1
            return Received(asked[0], self.engine.semantic_done(job, [(n, t) for n, t in names], seconds))
        self.stats["errors"] += 1
        return Received(asked[0], self.engine.semantic_done(job, None, seconds))

    def check(self, now: float) -> str | None:
        """Whether to kill the worker now (its question is older than *hang_s*): the line to log, or None."""
        asked = self._asked
        if self.pid is None or self._killing or asked is None or now - asked[2] <= self.hang_s:
            return None
        self._killing = True
        self.stats["hangs"] += 1
        return self._failed_worker(f"gave no answer in {self.hang_s:g} s and was killed", now)

    def exited(self, now: float) -> tuple[str | None, Received | None]:
        """The worker's stdout ended (it exited, or was killed): the line to log (None when
        :meth:`check` killed it: said then), and the failed answer of its question, if any."""
        killed, self._killing = self._killing, False
        log = None
        if not killed:
            self.stats["deaths"] += 1
            log = self._failed_worker("died", now)
        self.pid = None
        self._pending = None  # a new worker starts at the next question
        return log, self._fail(SemanticResult([], "error"))

    def stopping(self) -> None:
        """The server stops its worker (closes its stdin): its end is no death, and the question
        that waited is not sent (the pipe is closed)."""
        self._killing = self.pid is not None
        self._pending = None

    def status(self) -> dict[str, Any]:
        """For ``pairls.status``: the worker's pid (None: none running), whether jedi is
        available, and the counters."""
        return {"pid": self.pid, "available": self.available, **self.stats}

    # -- helpers

    def _fail(self, result: SemanticResult) -> Received | None:
        asked, self._asked = self._asked, None
        return None if asked is None else Received(asked[0], result)

    def _failed_worker(self, what: str, now: float) -> str:
        self._failures += 1
        who = "" if self.pid is None else f" (pid {self.pid})"
        line = f"pairls: the jedi worker{who} {what}; Python completions go on without jedi"
        if self._failures >= self.failures_before_pause:
            self._paused_until = now + self.pause_s
            self._failures = 0
            self.stats["pauses"] += 1
            line += f"; {self.failures_before_pause} failures in a row: next worker in {self.pause_s:g} s"
        else:
            line += "; a new worker starts at the next one"
        return line
