"""``pairls-hub --workers N``: N hub processes on one machine, sharing one port.

A hub is one process with one event loop, so it uses one core.  With
``--workers N`` the ``pairls-hub`` process runs no hub itself: it starts N
worker processes (``python -m collab_server`` with the same options), each a
whole hub listening on the same host and port with ``SO_REUSEPORT``, so the
kernel spreads new connections over them.  They share one PostgreSQL (the
one of ``--database-url``, or the embedded one this process starts, keeps
running and stops, as a single hub would) and cross room events through it
like any hubs on one database (``roster.py``).

This process supervises them:

* it prints ``listening on ws://HOST:PORT`` once every worker listens
  (with ``--port 0`` it picks the port first, holding it with a socket that
  never listens, so every worker binds the same one);
* SIGINT and SIGTERM are passed to every worker (each shuts down cleanly:
  ``Hub.close``), SIGHUP too (TLS files reloaded); it exits once they have,
  with status 0 if each exited 0;
* a worker that dies is counted and logged, and started again on the same
  port, when :class:`~collab_server.retry.RestartPolicy` (sans-I/O) says;
  after repeated failed starts of one worker it gives up: everything stops
  and it exits with status 1.

The workers' log lines go to the same stderr; a worker's connections are
lost with it (their clients reconnect, to the other workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

from .retry import GiveUp, RestartPolicy

__all__ = ["WorkerPool", "reserve_port", "worker_argv"]

logger = logging.getLogger("collab_server.workers")

#: seconds a worker has to print its ``listening on`` line
READY_TIMEOUT = 60.0


def worker_argv(argv: list[str], port: int) -> list[str]:
    """The command line of a worker: *argv* without ``--workers``, on *port*, sharing it."""
    out: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if arg in ("--workers", "--port"):
            next(rest, None)
        elif not arg.startswith(("--workers=", "--port=")):
            out.append(arg)
    return [sys.executable, "-m", "collab_server", *out, "--port", str(port), "--reuse-port"]


def reserve_port(host: str) -> socket.socket:
    """A socket bound (not listening) to a free port of *host* with ``SO_REUSEPORT``: the
    workers bind the same port; it receives no connection, and keeps the port ours."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, 0))
    return sock


@dataclass
class _Worker:
    index: int
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    proc: asyncio.subprocess.Process | None = None
    #: the ``listening on`` line it printed
    url: str = ""


class WorkerPool:
    """Starts, watches, restarts and stops the workers; see the module docstring."""

    def __init__(self, n: int, argv: list[str], env: dict[str, str]) -> None:
        if n < 1:
            raise ValueError("at least one worker")
        self.argv = argv
        self.env = env
        self.workers = [_Worker(i + 1) for i in range(n)]
        self.stopping = False
        #: workers that died (not at a stop), and the restarts that followed
        self.deaths = 0
        self.restarts = 0
        #: the message of giving up, if it did
        self.gave_up: str | None = None
        self.done = asyncio.Event()
        self._watchers: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        """Start every worker; the URL they listen on once all do.  Raises RuntimeError if one
        does not come up."""
        await asyncio.gather(*(self._spawn(w) for w in self.workers))
        return self.workers[0].url

    async def _spawn(self, w: _Worker) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self.argv, stdout=asyncio.subprocess.PIPE, env=self.env, start_new_session=False
        )
        w.proc = proc
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                while True:
                    line = (await proc.stdout.readline()).decode(errors="replace")
                    if not line:
                        code = await proc.wait()
                        raise RuntimeError(f"worker {w.index} exited with status {code} before listening")
                    if line.startswith("listening on "):
                        w.url = line.removeprefix("listening on ").strip()
                        break
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"worker {w.index} did not listen within {READY_TIMEOUT:.0f} s") from None
        w.policy.started(time.monotonic())
        logger.info("worker %d (pid %d) listens", w.index, proc.pid)
        task = asyncio.get_running_loop().create_task(self._watch(w, proc), name=f"worker-{w.index}")
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _watch(self, w: _Worker, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while await proc.stdout.readline():  # (what it says after listening: hints for people)
            pass
        code = await proc.wait()
        if self.stopping:
            return
        self.deaths += 1
        decision = w.policy.died(time.monotonic())
        while not isinstance(decision, GiveUp):
            logger.error(
                "worker %d (pid %d) exited with status %s; starting it again in %.0f s"
                " (%d worker deaths so far)",
                w.index,
                proc.pid,
                code,
                decision.after,
                self.deaths,
            )
            await asyncio.sleep(decision.after)
            if self.stopping:
                return
            try:
                await self._spawn(w)
            except (RuntimeError, OSError) as exc:
                logger.error("worker %d did not start again: %s", w.index, exc)
                decision = w.policy.start_failed(time.monotonic())
                continue
            self.restarts += 1
            return
        self.gave_up = (
            f"worker {w.index} died or failed to start {decision.failures} times in a row; giving up"
        )
        logger.error("%s", self.gave_up)
        self.done.set()

    def signal(self, sig: int) -> None:
        """Pass *sig* on to every worker running."""
        for w in self.workers:
            if w.proc is not None and w.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.send_signal(sig)

    async def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM to every worker and wait for them (SIGKILL past *timeout*); 0 if all exited 0."""
        self.stopping = True
        self.signal(signal.SIGTERM)
        status = 0
        for w in self.workers:
            if w.proc is None:
                continue
            try:
                code = await asyncio.wait_for(w.proc.wait(), timeout)
            except TimeoutError:
                logger.error("worker %d did not stop within %.0f s; killing it", w.index, timeout)
                w.proc.kill()
                code = await w.proc.wait()
            if code != 0:
                logger.error("worker %d exited with status %s", w.index, code)
                status = 1
        for task in list(self._watchers):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return status


def worker_env(dsn: str | None) -> dict[str, str]:
    """The workers' environment: ours, with the database they share (never on a command line,
    which every user of the machine can read)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if dsn:
        env["DATABASE_URL"] = dsn
    return env
