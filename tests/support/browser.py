"""Pages in a real Chromium, driven through ``tests/e2e/web/driver.mjs`` (playwright-core).

``Browser`` runs the driver as a subprocess and speaks its line protocol; ``Page`` is one page in
its own browser context.  Functions run in the page are given as JavaScript source text.  Used by
``tests/e2e/test_web.py`` and ``bench/web_bench.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "e2e" / "web" / "driver.mjs"
PLAYWRIGHT = ROOT / "tests" / "e2e" / "vscode" / "node_modules" / "playwright-core"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def missing() -> list[str]:
    """What the browser tests need and this machine lacks."""
    out = []
    if shutil.which("node") is None:
        out.append("node")
    if not PLAYWRIGHT.is_dir():
        out.append("playwright-core (tests/e2e/vscode: make code-server)")
    if not os.access(CHROMIUM, os.X_OK):
        out.append(CHROMIUM)
    return out


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium (``await Browser().start()``, ``await b.stop()``)."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self._next = 0
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.stderr: list[str] = []

    async def start(self) -> Browser:
        self.proc = await asyncio.create_subprocess_exec(
            "node",
            str(DRIVER),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(os.environ, CHROMIUM=CHROMIUM),
            limit=1 << 24,
        )
        self._reader = asyncio.create_task(self._read())
        asyncio.create_task(self._read_stderr())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            msg = json.loads(line)
            fut = self._waiting.pop(msg["id"], None)
            if fut is None or fut.done():
                continue
            if msg["ok"]:
                fut.set_result(msg["result"])
            else:
                fut.set_exception(BrowserError(msg["error"]))
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(BrowserError("the driver exited:\n" + "\n".join(self.stderr[-30:])))

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.stderr.append(line.decode(errors="replace").rstrip())

    async def call(self, cmd: str, *, guard: float = 120, **args: Any) -> Any:
        """Run driver command *cmd*; *guard* bounds a hang of the driver."""
        assert self.proc is not None and self.proc.stdin is not None
        self._next += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[self._next] = fut
        self.proc.stdin.write((json.dumps({"id": self._next, "cmd": cmd, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        return await asyncio.wait_for(fut, guard)

    async def open(
        self, name: str, url: str, display_name: str | None = None, permissions: list[str] | None = None
    ) -> Page:
        await self.call("open", page=name, url=url, name=display_name, permissions=permissions or [])
        return Page(self, name)

    async def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            await self.call("quit", guard=10)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await self.proc.wait()


class Page:
    def __init__(self, browser: Browser, name: str) -> None:
        self.browser = browser
        self.name = name

    async def eval(self, fn: str, arg: Any = None) -> Any:
        return await self.browser.call("eval", page=self.name, fn=fn, arg=arg)

    async def wait(self, fn: str, arg: Any = None, timeout: float = 30) -> Any:
        """Run *fn* in the page until it returns something truthy (bounded by *timeout*, a hang
        guard, not a speed assertion)."""
        return await self.browser.call(
            "wait", guard=timeout + 30, page=self.name, fn=fn, arg=arg, timeout=timeout * 1000
        )

    async def do(self, method: str, *args: Any) -> Any:
        return await self.browser.call("call", page=self.name, method=method, args=list(args))

    async def status(self) -> dict[str, Any]:
        return await self.eval("() => window.pairls.status()")  # type: ignore[no-any-return]

    async def text(self) -> str:
        return await self.eval("() => window.pairls.text()")  # type: ignore[no-any-return]

    async def log(self) -> dict[str, Any]:
        return await self.browser.call("log", page=self.name)  # type: ignore[no-any-return]

    async def csp_violations(self) -> list[dict[str, Any]]:
        return await self.eval("() => window.__cspViolations")  # type: ignore[no-any-return]

    async def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        await self.browser.call("screenshot", page=self.name, path=str(path))
        return path
