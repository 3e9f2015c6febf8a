"""Run ``pairls-hub`` as a real subprocess, the way a user does."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

LISTENING = re.compile(r"^listening on (wss?://\S+)$")
#: what the hub logs when it fails itself (collab_server/hub.py: a request answered
#: internal, a document task lost, a frame it could not send, a connection whose handling
#: failed, a history index that refused a committed op; collab_server/peers.py: another
#: hub's notification that did not parse)
FAULT_MARKS = (
    "answered internal",
    "were told to reopen it",
    "cannot send a frame",
    "connection handler failed",
    "its history refused a committed op",
    "malformed pairls_peers notification",
    "ignoring a malformed",  # a pairls_ops or pairls_rooms notification
    "with no notification of it",  # a commit whose pairls_ops notification never came
)


class HubProcess:
    """``pairls-hub --port 0 ...``; ``url`` is read from its ``listening on`` line.

    A clean stop (:meth:`terminate`, :meth:`interrupt`, leaving the ``with``
    block) fails with AssertionError if the hub logged one of its own faults,
    unless *allow_faults*.  *module* is what ``python -m`` runs (a bench's
    variant of the hub; ``collab_server`` is the hub itself).
    """

    def __init__(
        self,
        *args: str,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
        allow_faults: bool = False,
        source: Path | None = None,
        module: str = "collab_server",
    ) -> None:
        self.allow_faults = allow_faults
        cmd = [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", "0", *args]
        if database_url:
            cmd += ["--database-url", database_url]
        full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        if database_url is None:
            full_env.pop("DATABASE_URL", None)
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
            # (``python -m`` imports from its working directory first: *source*, another
            # checkout of pairls, runs that one's hub; the benches compare two that way)
            cwd=source or Path(__file__).resolve().parents[2],
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.url = ""
        self._ready = threading.Event()
        self._pumps = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr, False), daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    def _pump(self, stream: object, sink: list[str], watch: bool) -> None:
        for line in stream:  # type: ignore[attr-defined]
            line = line.rstrip("\n")
            sink.append(line)
            if watch and not self.url:
                m = LISTENING.match(line)
                if m:
                    self.url = m.group(1)
                    self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if time.monotonic() > deadline:
                raise TimeoutError(f"hub did not start; stderr:\n{self.log}")
        if not self.url:
            raise RuntimeError(f"hub exited before listening (code {self.proc.poll()}); stderr:\n{self.log}")
        return self.url

    @property
    def log(self) -> str:
        return "\n".join(self.stderr)

    def faults(self) -> list[str]:
        """The log lines where the hub reported failing itself."""
        return [line for line in self.stderr if any(mark in line for mark in FAULT_MARKS)]

    def _check_faults(self) -> None:
        for pump in self._pumps:
            pump.join(5)  # the process has ended: the rest of its output is on its way
        if not self.allow_faults and self.faults():
            raise AssertionError("the hub failed:\n" + "\n".join(self.faults()))

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and wait: the clean shutdown path."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._check_faults()
        return code

    def interrupt(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout)
        self._check_faults()
        return code

    def kill(self) -> None:
        """kill -9: no cleanup at all."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)

    def __enter__(self) -> HubProcess:
        self.wait_ready()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self.proc.poll() is None:
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                self.kill()
            except AssertionError:
                if exc_type is None:  # the test's own failure says more
                    raise


async def start_hub(database_url: str, *args: str) -> HubProcess:
    """Start ``pairls-hub`` on *database_url* and wait (off the event loop) until it listens."""
    import asyncio

    hub = HubProcess(*args, database_url=database_url)
    try:
        await asyncio.to_thread(hub.wait_ready)
    except BaseException:
        hub.kill()
        raise
    return hub
