"""Start ``pairls-lsp``: build the server with its handlers and serve LSP on stdio."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import stat
import sys
import threading
from collections.abc import Coroutine
from typing import Any, BinaryIO

from pygls.exceptions import JsonRpcException, JsonRpcInternalError

from collab_core import jsonio

from .features import register
from .framing import MessageReader
from .rpc import NotJsonRpc, PyglsLogFilter, is_json_rpc, raised_at, unreadable
from .server import PairlsServer

__all__ = ["StdinProtocol", "StepWriter", "create_server", "serve_stdio"]

logger = logging.getLogger(__name__)


#: what an editor ends its server with when it goes without ``shutdown``: SIGTERM (Neovim 0.7,
#: 500 ms after ``:q``), SIGHUP (Emacs, as it exits, to every process it started; then it closes
#: the pipes); each starts the departure as the end of stdin does
_ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def create_server() -> PairlsServer:
    server = PairlsServer()
    register(server)
    pygls_rpc = logging.getLogger("pygls.protocol.json_rpc")
    if not any(isinstance(f, PyglsLogFilter) for f in pygls_rpc.filters):
        pygls_rpc.addFilter(PyglsLogFilter())
    return server


def serve_stdio(server: PairlsServer, *, event_loop: str = "auto") -> None:
    """Serve LSP on stdin/stdout.

    pygls's own ``start_io`` reads stdin through a thread pool, three
    hand-offs per message (header line, blank line, body); on a pipe or a
    socket, the event loop reads stdin itself and handles each message as it is read
    (:class:`StdinProtocol`), and what one step of the loop writes goes out
    in one write (:class:`StepWriter`).

    *event_loop* ``"auto"`` runs on uvloop when it is installed: every keystroke
    wakes a server two or three times, and a wake-up of uvloop costs about
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
    mode = os.fstat(stdin.fileno()).st_mode
    # a pipe, or a socket: editors built on libuv (Neovim, VS Code's Node.js) give their
    # servers a socket pair for each of stdin and stdout
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        server.start_io()  # a file or a terminal: pygls's way works everywhere
        return
    server.stdio_reader = "loop"
    writer: StepWriter | None = None

    async def main() -> None:
        nonlocal writer
        loop = asyncio.get_running_loop()
        writer = StepWriter(sys.stdout.buffer, loop)
        server.protocol.set_writer(writer)
        server._stop_event = stop = threading.Event()
        ended: asyncio.Future[None] = loop.create_future()
        _, reader = await loop.connect_read_pipe(lambda: StdinProtocol(server, stop, ended), stdin)
        assert isinstance(reader, StdinProtocol)

        def terminated() -> None:  # as the end of stdin; a second signal ends the process
            for sig in _ENDING_SIGNALS:
                loop.remove_signal_handler(sig)
            reader.end()

        for sig in _ENDING_SIGNALS:
            loop.add_signal_handler(sig, terminated)
        try:
            await ended
        finally:
            # the editor has gone: what its user typed last goes to the hub first (an editor
            # that waits no longer for ``shutdown``'s answer leaves the server doing so)
            await server.depart()

    try:
        _run(main(), event_loop)
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        # (a SystemExit goes on after this: LSP's exit code, 1 for an exit without shutdown)
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


class StdinProtocol(asyncio.Protocol):
    """The editor's messages, handled as they are read (LSP's base protocol:
    :class:`lsp_bridge.framing.MessageReader`), until stdin ends or the server stops.

    Each whole message is handled in the read's own step of the loop, with no task to wake.
    *ended* gets the end: None, or what handling raised past its own handler (pygls's ``exit``
    raises ``SystemExit`` with LSP's exit code), which ``serve_stdio`` raises after its clean-up."""

    def __init__(self, server: PairlsServer, stop: threading.Event, ended: asyncio.Future[None]) -> None:
        self._server = server
        self._stop = stop
        self._ended = ended
        self._reader = MessageReader()
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._ended.done():
            return
        reader = self._reader
        skipped = reader.skipped
        bodies = reader.feed(data)
        for _ in range(reader.skipped - skipped):
            logger.warning("a message without a Content-Length: skipped")
        try:
            for body in bodies:
                if self._stop.is_set():
                    break
                self._handle(body)
        except BaseException as exc:  # (SystemExit from pygls's exit): serve_stdio's to see
            self._end(exc)
            return
        if self._stop.is_set():
            self._end(None)

    def _handle(self, body: bytes) -> None:
        server = self._server
        protocol = server.protocol
        data: Any = None
        try:
            data = jsonio.loads(body)
            if not is_json_rpc(data):
                raise NotJsonRpc()
            # (only the message itself is structured: pygls's object_hook tried every object in it)
            message = protocol.structure_message(data)
        except Exception as exc:  # as pygls's reader: logged, reported, the next message read
            # one line, where and what kind: pygls's log, and cattrs' traceback, quote the message
            mistake = unreadable(exc)
            if mistake is not None:
                logger.warning("Unable to read a message: %s", mistake)
                server._report_server_error(exc, JsonRpcException)  # (the editor's: not counted)
            else:
                logger.error("Unable to read a message: %s", raised_at(exc))
                server._report_server_error(exc, JsonRpcInternalError)  # (ours: counted)
            server.rpc.refuse(data, exc)  # (and a request is answered: the editor waits for it)
            return
        try:
            protocol.handle_message(message)
        except Exception as exc:  # a JSON-RPC 2.0 message handled: what escapes is ours, counted
            logger.exception("Unable to handle message")
            server._report_server_error(exc, JsonRpcInternalError)

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(None)

    def end(self) -> None:
        """Stop reading, as at the end of stdin."""
        self._end(None)

    def _end(self, exc: BaseException | None) -> None:
        if self._ended.done():
            return
        if exc is None:
            self._ended.set_result(None)
        else:
            self._ended.set_exception(exc)
        if self._transport is not None:
            self._transport.close()
