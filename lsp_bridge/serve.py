"""Start ``pairls-lsp``: build the server with its handlers and serve LSP on stdio."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import stat
import sys
import threading
from collections.abc import Coroutine
from typing import Any, BinaryIO

from pygls.exceptions import JsonRpcException

from .features import register
from .server import PairlsServer

__all__ = ["StepWriter", "create_server", "read_messages", "serve_stdio"]

logger = logging.getLogger(__name__)


def create_server() -> PairlsServer:
    server = PairlsServer()
    register(server)
    return server


def serve_stdio(server: PairlsServer, *, event_loop: str = "auto") -> None:
    """Serve LSP on stdin/stdout.

    pygls's own ``start_io`` reads stdin through a thread pool, three
    hand-offs per message (header line, blank line, body); on a pipe, an
    asyncio pipe reader reads in the event loop itself, and what one step
    of the loop writes goes out in one write (:class:`StepWriter`).

    *event_loop* ``"auto"`` runs on uvloop when it is installed: every keystroke
    wakes a server two to four times, and a wake-up of uvloop costs about
    100 us of CPU less than one of asyncio's own loop (docs/benchmarks.md).
    ``"asyncio"`` runs on asyncio's loop.
    """
    # What the server holds by now (pygls, lsprotocol's types, the handlers: some 56,000
    # objects) lives as long as the process: out of every full collection from here on, each
    # of which walked them for about 40 ms (docs/benchmarks.md, "The history and the garbage
    # collector")
    gc.collect()
    gc.freeze()
    server.gc_frozen = gc.get_freeze_count()  # (it walks them: counted once, here)
    stdin = sys.stdin.buffer
    if not stat.S_ISFIFO(os.fstat(stdin.fileno()).st_mode):
        server.start_io()  # a file or a terminal: pygls's way works everywhere
        return
    writer: StepWriter | None = None

    async def main() -> None:
        nonlocal writer
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 30)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
        writer = StepWriter(sys.stdout.buffer, loop)
        server.protocol.set_writer(writer)
        server._stop_event = stop = threading.Event()
        await read_messages(reader, server, stop)

    try:
        _run(main(), event_loop)
    except (BrokenPipeError, KeyboardInterrupt, SystemExit):
        pass
    finally:
        if writer is not None:
            writer.flush()
        server.shutdown()  # type: ignore[no-untyped-call]


def _run(main: Coroutine[Any, Any, None], event_loop: str) -> None:
    if event_loop == "auto":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


class StepWriter:
    """stdout for the protocol: the messages one step of the event loop writes (a peer's
    edit, the cursors it moved, an inlay hint refresh) go out together, in one write, at the
    end of the step, in the order they were written."""

    def __init__(self, out: BinaryIO, loop: asyncio.AbstractEventLoop) -> None:
        self._out = out
        self._loop = loop
        self._pending: list[bytes] = []
        #: writes that failed (the editor is gone): counted, logged once
        self.failed = 0

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        try:
            self._out.write(data)
            self._out.flush()
        except (OSError, ValueError):  # (the editor closed the pipe: stdin's end stops us)
            self.failed += 1
            if self.failed == 1:
                logger.info("cannot write to the editor")

    def close(self) -> None:
        self.flush()
        self._out.close()


async def read_messages(reader: asyncio.StreamReader, server: PairlsServer, stop: threading.Event) -> None:
    """Read LSP messages (LSP 3.17 "Base Protocol": headers, an empty line, a JSON body of
    Content-Length bytes) until stdin ends, and hand each to the protocol."""
    protocol = server.protocol
    while not stop.is_set():
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            break
        length = None
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None
        if length is None or length < 0:
            logger.warning("a message without a Content-Length: skipped")
            continue
        try:
            body = await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            break
        try:
            data = json.loads(body)
            # (only the message itself is structured: pygls's object_hook tried every object in it)
            message = protocol.structure_message(data) if isinstance(data, dict) else data
            protocol.handle_message(message)
        except Exception as exc:  # as pygls's reader: logged, reported, the next message read
            logger.exception("Unable to handle message")
            server._report_server_error(exc, JsonRpcException)
