"""Run it together: the policy of a run for the room (sans-I/O).

One participant runs a command on their own machine, in their workspace folder; its
output goes to a room document under ``.pairls/runs/`` that everyone can follow and
nobody can edit.  This module decides, and does nothing itself: no process, no clock,
no randomness (ids and times are passed in).  The shell (``lsp_bridge/features/run.py``
once written) starts the process, feeds :meth:`Run.output_received` with what it prints
and appends :meth:`Run.text_to_send` to the output document.

* :func:`choose_command`: the command line of a run, from the current file's language
  (``python3``, ``node``, ``go run``, ``cargo run``, ``bash``), a typed line, or a named
  task of the workspace's ``.pairls/run.toml``;
* :class:`Run`: one run's state machine ``STARTING -> RUNNING -> (STOPPING ->) ENDED``,
  its output capped (default 1 MiB, then cut with a clear note) and its end line
  (command, who ran it, exit status, duration);
* :class:`RunRequests`: "ask a peer to run".  A request from someone else is only ever a
  question shown to the user; the only way from a request to a command line to start is
  :meth:`RunRequests.decide` with the user's own ``accept=True``.  Nothing runs because
  of a message.
"""

from __future__ import annotations

import codecs
import enum
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from collab_core.wire import RUNS_DIR, is_run_path

__all__ = [
    "DEFAULT_CAP",
    "RUNS_DIR",
    "ChoiceError",
    "Run",
    "RunRequest",
    "RunRequests",
    "RunState",
    "choose_command",
    "default_command",
    "is_run_path",
    "parse_tasks",
    "output_change",
    "run_outcome",
    "run_path",
]

DEFAULT_CAP = 1 << 20
"""Bytes of output a run keeps in its document before it is cut (1 MiB)."""

KEEP_RATE = 4 << 20
"""Bytes per second of output read while it is kept (each byte kept goes through the hub,
PostgreSQL and every peer's language server): a program that prints faster waits on its
pipe, as on a slow terminal, and the room's typing keeps its pace."""

DRAIN_RATE = 16 << 20
"""Bytes per second of output read once the cap cut it (read and counted, not kept)."""

PACE_BURST = 64 << 10
"""Bytes of output read at once before the pace applies: a program that prints a little
at a time is never held back."""

TASKS_FILE = ".pairls/run.toml"

# The language's usual runner, by file suffix; the file's path is appended.
RUNNERS: dict[str, tuple[str, ...]] = {
    ".py": ("python3",),
    ".js": ("node",),
    ".mjs": ("node",),
    ".cjs": ("node",),
    ".go": ("go", "run"),
    ".rs": ("cargo", "run"),
    ".sh": ("bash",),
}


class ChoiceError(ValueError):
    """No command line can be chosen; the message says what the user can do."""


def default_command(path: str) -> list[str] | None:
    """The usual runner for the file at *path* (relative to the workspace), or None.

    ``cargo run`` runs the crate, so the file is not passed to it."""
    suffix = PurePosixPath(path).suffix.lower()
    runner = RUNNERS.get(suffix)
    if runner is None:
        return None
    if runner[0] == "cargo":
        return list(runner)
    return [*runner, path]


def parse_tasks(text: str) -> dict[str, list[str]]:
    """Named tasks of ``.pairls/run.toml``::

        [tasks]
        test = "python3 -m pytest -q"
        serve = ["node", "server.js"]

    A task is a string (split like a shell line, never run by a shell) or a list of
    strings.  Raises :class:`ChoiceError` on a file that is not such a table."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ChoiceError(f"{TASKS_FILE} is not valid TOML: {exc}") from None
    tasks = data.get("tasks", {})
    if not isinstance(tasks, dict):
        raise ChoiceError(f"{TASKS_FILE}: [tasks] must be a table of name = command")
    out: dict[str, list[str]] = {}
    for name, value in tasks.items():
        argv = _argv(value)
        if argv is None:
            raise ChoiceError(f"{TASKS_FILE}: task {name!r} must be a command line or a list of strings")
        out[str(name)] = argv
    return out


def _argv(value: object) -> list[str] | None:
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError:
            return None
        return argv or None
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return list(value)
    return None


def choose_command(
    *,
    path: str | None = None,
    command: object = None,
    task: object = None,
    tasks: dict[str, list[str]] | None = None,
) -> tuple[list[str], str]:
    """The argv of a run and its name, from (in this order) a typed *command* line, a
    *task* of *tasks*, or the file at *path* and its language's runner."""
    if command is not None:
        argv = _argv(command)
        if argv is None:
            raise ChoiceError("the command line is empty or not a command")
        return argv, PurePosixPath(argv[0]).name
    if task is not None:
        if not isinstance(task, str) or not task:
            raise ChoiceError("a task is named by a string")
        if tasks is None:
            raise ChoiceError(f"no {TASKS_FILE} in the workspace folder")
        if task not in tasks:
            known = ", ".join(sorted(tasks)) or "none"
            raise ChoiceError(f"no task {task!r} in {TASKS_FILE} (tasks: {known})")
        return tasks[task], task
    if path is None:
        raise ChoiceError("give a file to run, a command line or a task")
    argv = default_command(path)
    if argv is None:
        raise ChoiceError(f"no usual runner for {PurePosixPath(path).name}: type a command line")
    return argv, PurePosixPath(path).name


def command_line(argv: list[str]) -> str:
    """*argv* as the user would type it (what the room sees)."""
    return shlex.join(argv)


def run_path(run_id: str) -> str:
    """The room path of the output document of run *run_id*."""
    return f"{RUNS_DIR}/{run_id}.log"


class RunState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    ENDED = "ended"


@dataclass
class Run:
    """One run for the room.  The shell calls, in order: :meth:`started` (or
    :meth:`failed_to_start`), :meth:`output_received` any number of times, maybe
    :meth:`stop_requested`, then :meth:`exited`; after each, it appends
    :meth:`text_to_send` to the output document."""

    run_id: str
    argv: list[str]
    name: str
    by: str
    created_at: float
    cap: int = DEFAULT_CAP
    state: RunState = RunState.STARTING
    exit_code: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    kept: int = 0
    dropped: int = 0
    stopped: bool = False
    cut: bool = False
    error: str | None = None
    #: bytes that may be read now without waiting, as of ``_paced_at`` (see :meth:`read_wait`)
    _allowance: float = PACE_BURST
    _paced_at: float | None = None
    _pending: list[str] = field(default_factory=list)
    _decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))

    @property
    def path(self) -> str:
        return run_path(self.run_id)

    @property
    def command(self) -> str:
        return command_line(self.argv)

    def header(self) -> str:
        """The document's first line."""
        return f"$ {self.command}    (run by {self.by})\n"

    def started(self, now: float) -> None:
        if self.state is not RunState.STARTING:
            return
        self.state = RunState.RUNNING
        self.started_at = now

    def failed_to_start(self, reason: str, now: float) -> None:
        """The process could not start (no such program...): the run ends with the reason."""
        if self.state is not RunState.STARTING:
            return
        self.error = reason
        self.started_at = now
        self._end(None, now)

    def output_received(self, data: bytes) -> None:
        """Bytes the process printed (stdout and stderr as they arrive).  Past the cap they
        are counted, not kept; the note that the output was cut goes once."""
        if self.state not in (RunState.RUNNING, RunState.STOPPING) or not data:
            return
        room = self.cap - self.kept
        keep, rest = data[:room], data[room:]
        if keep:
            self.kept += len(keep)
            text = self._decoder.decode(keep)
            if text:
                self._pending.append(text)
        if rest:
            self.dropped += len(rest)
            if not self.cut:
                self.cut = True
                tail = self._decoder.decode(b"", final=True)
                if tail:
                    self._pending.append(tail)
                self._pending.append(f"\n[pairls: output cut at {_size(self.cap)}; the rest is not shown]\n")

    def read_wait(self, size: int, now: float) -> float:
        """The shell read *size* bytes of output at *now* (a monotonic clock): seconds to
        wait before reading more.  Output is read at :data:`KEEP_RATE` while it is kept and
        :data:`DRAIN_RATE` once cut, after a burst of :data:`PACE_BURST`; while the shell
        waits the pipe fills and the program waits too."""
        rate = DRAIN_RATE if self.cut else KEEP_RATE
        if self._paced_at is not None:
            self._allowance = min(PACE_BURST, self._allowance + (now - self._paced_at) * rate)
        self._paced_at = now
        self._allowance -= size
        return max(0.0, -self._allowance / rate)

    def stop_requested(self) -> bool:
        """The runner asked to stop: True if the shell should now end the process."""
        if self.state is not RunState.RUNNING:
            return False
        self.state = RunState.STOPPING
        self.stopped = True
        return True

    def exited(self, code: int, now: float) -> None:
        """The process ended with *code* (negative: killed by that signal)."""
        if self.state is RunState.ENDED:
            return
        if self.state is RunState.STARTING:
            self.started_at = now
        self._end(code, now)

    def _end(self, code: int | None, now: float) -> None:
        if not self.cut:
            tail = self._decoder.decode(b"", final=True)
            if tail:
                self._pending.append(tail)
        self.state = RunState.ENDED
        self.exit_code = code
        self.ended_at = now
        self._pending.append(self.end_line())

    def end_line(self) -> str:
        """The last line: command, who ran it, exit status, duration."""
        if self.error is not None:
            status = f"could not start: {self.error}"
        elif self.stopped:
            status = f"stopped (exit status {self.exit_code})"
        else:
            status = f"exit status {self.exit_code}"
        took = (self.ended_at or 0.0) - (self.started_at if self.started_at is not None else self.created_at)
        dropped = f", {_size(self.dropped)} of output not shown" if self.dropped else ""
        return f"\n[pairls: {self.command} run by {self.by}: {status} after {took:.1f}s{dropped}]\n"

    def text_to_send(self) -> str:
        """What to append to the output document since the last call (one op per batch)."""
        text = "".join(self._pending)
        self._pending.clear()
        return text

    def room_status(self) -> dict[str, Any]:
        """What the room is told of the run (``run_status``): running until it ended, then
        its exit status (None: it could not start) and whether it was stopped."""
        out: dict[str, Any] = {
            "path": self.path,
            "state": "ended" if self.state is RunState.ENDED else "running",
            "command": self.command,
            "startedAt": self.started_at if self.started_at is not None else self.created_at,
        }
        if self.state is RunState.ENDED:
            out.update(exitCode=self.exit_code, stopped=self.stopped, endedAt=self.ended_at)
        return out

    def describe(self) -> dict[str, Any]:
        """The run as ``pairls.runs`` and the ``pairls/runs`` notification show it."""
        out: dict[str, Any] = {
            "runId": self.run_id,
            "path": self.path,
            "by": self.by,
            "name": self.name,
            "command": self.command,
            "state": self.state.value,
            "startedAt": self.started_at if self.started_at is not None else self.created_at,
        }
        if self.state is RunState.ENDED:
            out["exitCode"] = self.exit_code
            out["endedAt"] = self.ended_at
        return out


def output_change(path: str, old: str, op: list[Any], new: str) -> dict[str, Any]:
    """``pairls/runOutput`` for one change of a run's output document: what it appended
    (``{path, at, text}``, *at* the length before it in code points), or, for any other
    change (which its runner never makes), the whole text (``{path, at: null, text}``)."""
    if len(op) == 2 and op[0] == len(old) and isinstance(op[1], str):
        return {"path": path, "at": len(old), "text": op[1]}
    if len(op) == 1 and not old and isinstance(op[0], str):
        return {"path": path, "at": 0, "text": op[0]}
    return {"path": path, "at": None, "text": new}


def run_outcome(status: dict[str, Any]) -> str:
    """How a run the room was told of ended, in words: ``python3 a.py ended: exit status 3``."""
    command = status.get("command")
    what = f"`{command}` " if isinstance(command, str) and command else ""
    code = status.get("exitCode")
    if code is None:
        how = "could not start"
    elif status.get("stopped") is True:
        how = f"was stopped (exit status {code})"
    else:
        how = f"ended: exit status {code}"
    return what + how


def _size(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 10:
        return f"{n / 1024:.0f} KiB"
    return f"{n} bytes"


# what could make a command line shown to the user read as something else: control
# characters (line breaks included), bidirectional marks and overrides, invisible characters
_HIDING = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


class Choice(enum.Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"


@dataclass
class RunRequest:
    request_id: str
    sender: str
    sender_name: str
    argv: list[str]
    #: the command line as the peer sent it (what the user is shown, exactly)
    line: str
    choice: Choice = Choice.PENDING

    @property
    def command(self) -> str:
        return self.line

    def question(self) -> str:
        """What the user is asked: the exact command line, and who asks."""
        return f"pairls: {self.sender_name} asks you to run `{self.command}` in your workspace folder"


@dataclass
class RunRequests:
    """Requests to run from other participants, and the user's answers.

    :meth:`received` turns a peer's message into a question (or nothing, for a malformed
    one); :meth:`decide` is the user's answer and the only call that can hand back a
    command line to run.  A request is answered once: a second answer, or an answer to
    an unknown id, starts nothing."""

    max_pending: int = 4
    pending: dict[str, RunRequest] = field(default_factory=dict)
    refused: int = 0

    def received(self, msg: dict[str, Any], sender: str, sender_name: str) -> RunRequest | None:
        """A peer's request; None (counted) when it is malformed or too many are open."""
        rid = msg.get("requestId")
        raw = msg.get("command")
        if isinstance(raw, str) and _HIDING.search(raw):
            # a line the user could not read as it is (line breaks, controls, bidi tricks)
            self.refused += 1
            return None
        argv = _argv(raw)
        if not isinstance(rid, str) or not rid or len(rid) > 64 or argv is None or rid in self.pending:
            self.refused += 1
            return None
        if len(self.pending) >= self.max_pending:
            self.refused += 1
            return None
        line = msg["command"] if isinstance(msg["command"], str) else command_line(argv)
        req = RunRequest(rid, sender, sender_name, argv, line)
        self.pending[rid] = req
        return req

    def decide(self, request_id: str, accept: bool) -> list[str] | None:
        """The user's own answer: the argv to run when they accepted, else None."""
        req = self.pending.pop(request_id, None)
        if req is None:
            return None
        req.choice = Choice.ACCEPTED if accept is True else Choice.DECLINED
        return list(req.argv) if req.choice is Choice.ACCEPTED else None
