"""Run it together: ``pairls.run``, ``pairls.stopRun``, ``pairls.runs``, ``pairls.requestRun``.

The shell of :mod:`lsp_bridge.runs`: the process runs on this machine, in the workspace
folder, with the user's own environment (none of it is sent to the room); what it prints
(stdout and stderr as they arrive) is appended to the run's room document under
``.pairls/runs/`` in batches (one op per read), read no faster than :meth:`Run.read_wait`
allows (a program that floods its output waits on its pipe, not the room's typing).  The
hub takes ops to that document only from this user (docs/protocol.md, "Runs").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.uris import to_fs_path

from ..runs import TASKS_FILE, ChoiceError, Run, RunState, choose_command, is_run_path, parse_tasks
from ..server import PairlsServer
from ..session import SessionError
from .commands import Handler, _arg, user_error

logger = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
#: after Stop, how long the process has to end on SIGTERM before SIGKILL
STOP_GRACE = 3.0
#: how long a request to run waits for the other's choice
REQUEST_TIMEOUT = 300.0


@dataclass
class LocalRun:
    run: Run
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)


def _runs(ls: PairlsServer) -> dict[str, LocalRun]:
    runs: dict[str, LocalRun] = ls.runs
    return runs


async def run(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """Start a run for the room: ``{uri?, command?, task?}`` -> ``{runId, path}``."""
    arg = _arg(args)
    session = ls.require_session()
    room = session.room
    if not room.in_room:
        raise user_error("join or create a room first")
    if room.role == "viewer":
        raise user_error("viewers cannot run for the room")
    root = ls.paths.root()
    if root is None:
        raise user_error("open a workspace folder: a run runs in it")
    uri = arg.get("uri")
    rel: str | None = None
    if isinstance(uri, str) and arg.get("command") is None and arg.get("task") is None:
        rel = ls.paths.room_path(uri)
        if rel is None:
            fs = to_fs_path(uri)
            rel = str(Path(fs)) if fs else None
    tasks = None
    toml = root / TASKS_FILE
    try:
        if arg.get("task") is not None and toml.is_file():
            tasks = parse_tasks(await asyncio.to_thread(toml.read_text, encoding="utf-8"))
        argv, name = choose_command(path=rel, command=arg.get("command"), task=arg.get("task"), tasks=tasks)
    except (ChoiceError, OSError, UnicodeDecodeError) as exc:
        raise user_error(f"pairls: cannot run: {exc}") from None
    return await _start(ls, argv, name, root)


async def _start(ls: PairlsServer, argv: list[str], name: str, root: Path) -> dict[str, Any]:
    session = ls.require_session()
    run_id = time.strftime("%Y%m%d-%H%M%S", time.localtime()) + "-" + secrets.token_hex(3)
    state = Run(run_id, argv, name, by=ls.display_name, created_at=time.time())
    try:
        await session.publish(state.path, state.header())
    except SessionError as exc:
        raise user_error(str(exc)) from None
    local = LocalRun(state)
    _runs(ls)[run_id] = local
    local.task = asyncio.get_running_loop().create_task(_supervise(ls, local, root))
    _announce(ls, state)
    _tell_room(ls, state)
    return {"runId": run_id, "path": state.path}


async def _supervise(ls: PairlsServer, local: LocalRun, root: Path) -> None:
    state = local.run
    try:
        try:
            proc = await asyncio.create_subprocess_exec(
                *state.argv,
                cwd=str(root),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            state.failed_to_start(exc.strerror or type(exc).__name__, time.time())
            _flush(ls, state)
            return
        local.process = proc
        state.started(time.time())
        _announce(ls, state)
        assert proc.stdout is not None
        while True:
            data = await proc.stdout.read(READ_SIZE)
            if not data:
                break
            state.output_received(data)
            _flush(ls, state)
            wait = state.read_wait(len(data), time.monotonic())
            if wait > 0:
                await asyncio.sleep(wait)
        code = await proc.wait()
        state.exited(code, time.time())
        _flush(ls, state)
    except (Exception, asyncio.CancelledError):
        if local.process is not None and local.process.returncode is None:
            _signal(local.process, signal.SIGKILL)
        raise
    finally:
        local.finished.set()
        _announce(ls, state)
        _tell_room(ls, state)


def _flush(ls: PairlsServer, state: Run) -> None:
    text = state.text_to_send()
    if not text or ls.session is None:
        return
    room = ls.session.room
    if not ls.session.call(lambda now: room.append(state.path, text, now)):
        logger.warning("run %s: output not appended (the document is not open here)", state.run_id)


def _tell_room(ls: PairlsServer, state: Run) -> None:
    """The room learns the run goes on, or ended (once its output before is acknowledged)."""
    if ls.session is None:
        return
    room = ls.session.room
    ls.session.call(lambda now: room.run_status(state.room_status(), now))


def _announce(ls: PairlsServer, state: Run) -> None:
    # (straight to the editor: the offer to open the output is for the others' runs)
    ls.protocol.notify("pairls/runs", {"event": state.state.value, **state.describe()})


def _signal(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


async def stop_run(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """Stop one of this user's runs: SIGTERM to its process group, SIGKILL after a grace."""
    run_id = _arg(args).get("runId")
    local = _runs(ls).get(run_id) if isinstance(run_id, str) else None
    if local is None:
        raise user_error("no such run of yours")
    if local.run.stop_requested() and local.process is not None:
        _signal(local.process, signal.SIGTERM)
        try:
            await asyncio.wait_for(local.finished.wait(), STOP_GRACE)
        except TimeoutError:
            _signal(local.process, signal.SIGKILL)
            await local.finished.wait()
    return {}


async def runs(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """This user's runs, and the other run documents the room has (as far as known here)."""
    mine = [{**local.run.describe(), "mine": True} for local in _runs(ls).values()]
    known = {r["path"] for r in mine}
    others: list[dict[str, Any]] = []
    if ls.session is not None:
        room = ls.session.room
        for path in sorted(room.room_documents):
            if is_run_path(path) and path not in known:
                # as the room told it (started, ended), or only that the document is there
                told = room.room_runs.get(path, {"state": "elsewhere"})
                others.append({"runId": Path(path).stem, **told, "path": path, "mine": False})
    return {"runs": mine + others}


async def stop_all(ls: PairlsServer) -> None:
    """The language server is ending: no run outlives it."""
    for local in list(_runs(ls).values()):
        if local.run.state is not RunState.ENDED and local.process is not None:
            _signal(local.process, signal.SIGKILL)
        if local.task is not None:
            local.task.cancel()


# -- asking a peer to run ----------------------------------------------------------------


async def request_run(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """Ask *participantId* to run *command* on their machine: ``{accepted, path?}`` once they
    chose Run or Decline (``{accepted: false}`` if they do not answer in time)."""
    arg = _arg(args)
    pid, command = arg.get("participantId"), arg.get("command")
    session = ls.require_session()
    room = session.room
    if not isinstance(pid, str) or pid not in room.participants:
        raise user_error("no such participant in the room")
    if not isinstance(command, str) or not command.strip():
        raise user_error("requestRun needs {participantId, command}")
    rid = secrets.token_urlsafe(9)
    fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    ls.run_asks[rid] = (pid, fut)
    msg = {"type": "run_request", "participant": pid, "requestId": rid, "command": command}
    try:
        if not session.call(lambda now: room.send_run_message(msg)):
            raise user_error("not connected to the room")
        try:
            return await asyncio.wait_for(fut, REQUEST_TIMEOUT)
        except TimeoutError:
            return {"accepted": False}
    finally:
        ls.run_asks.pop(rid, None)


async def answer_received(ls: PairlsServer, params: dict[str, Any]) -> None:
    """A peer answered one of this user's requests (only the one asked may answer it)."""
    rid = params.get("requestId")
    ask = ls.run_asks.get(rid) if isinstance(rid, str) else None
    if ask is None or ask[0] != params.get("participant") or ask[1].done():
        return
    result: dict[str, Any] = {"accepted": params.get("accepted") is True}
    if result["accepted"] and isinstance(params.get("path"), str):
        result["path"] = params["path"]
    ask[1].set_result(result)


async def request_received(ls: PairlsServer, params: dict[str, Any]) -> None:
    """A peer asks this user to run a command: the user sees the exact command line and
    chooses Run or Decline.  Only their Run starts anything."""
    sender = str(params.get("participant"))
    who = ls.session.room.participants.get(sender) if ls.session is not None else None
    name = who.name if who is not None else "someone"
    req = ls.run_requests.received(params, sender, name)
    if req is None:
        ls.editor.log("pairls: a request to run was not understood and was ignored")
        return
    try:
        answer = await ls.window_show_message_request_async(
            lsp.ShowMessageRequestParams(
                type=lsp.MessageType.Warning,
                message=req.question(),
                actions=[lsp.MessageActionItem(title="Run"), lsp.MessageActionItem(title="Decline")],
            )
        )
    except Exception:  # an editor that cannot ask: the answer is no
        logger.info("window/showMessageRequest failed")
        answer = None
    argv = ls.run_requests.decide(req.request_id, answer is not None and answer.title == "Run")
    reply: dict[str, Any] = {
        "type": "run_answer",
        "participant": sender,
        "requestId": req.request_id,
        "accepted": False,
    }
    if argv is not None:
        root = ls.paths.root()
        try:
            if root is None:
                raise user_error("open a workspace folder: a run runs in it")
            started = await _start(ls, argv, PurePosixPath(argv[0]).name, root)
        except JsonRpcException as exc:
            ls.editor.show_message(f"pairls: could not run it: {exc.message}", error=True)
        else:
            reply.update(accepted=True, path=started["path"])
    if ls.session is not None:
        room = ls.session.room
        ls.session.call(lambda now: room.send_run_message(reply))


async def run_output(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """``{path}`` -> ``{path, text}``: a run's output as this language server has it now (a
    client that shows it its own way follows its growth with ``pairls/runOutput``)."""
    path = _arg(args).get("path")
    session = ls.require_session()
    text = session.room.document_text(path) if isinstance(path, str) and is_run_path(path) else None
    if text is None:
        raise user_error("no such run output in the room (yet)")
    return {"path": path, "text": text}


COMMANDS: dict[str, Handler] = {
    "pairls.run": run,
    "pairls.requestRun": request_run,
    "pairls.stopRun": stop_run,
    "pairls.runs": runs,
    "pairls.runOutput": run_output,
}
