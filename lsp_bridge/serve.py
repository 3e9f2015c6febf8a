"""Start ``pairls-lsp``: build the server with its handlers and serve LSP on stdio."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
import threading

from pygls.io_ import StdoutWriter, run_async

from .features import register
from .server import PairlsServer

__all__ = ["create_server", "serve_stdio"]

logger = logging.getLogger(__name__)


def create_server() -> PairlsServer:
    server = PairlsServer()
    register(server)
    return server


def serve_stdio(server: PairlsServer) -> None:
    """Serve LSP on stdin/stdout.

    pygls's own ``start_io`` reads stdin through a thread pool, three
    hand-offs per message (header line, blank line, body); on a pipe, an
    asyncio pipe reader reads in the event loop itself.
    """
    stdin = sys.stdin.buffer
    if not stat.S_ISFIFO(os.fstat(stdin.fileno()).st_mode):
        server.start_io()  # a file or a terminal: pygls's way works everywhere
        return

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 30)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
        server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))
        server._stop_event = stop = threading.Event()
        await run_async(
            stop_event=stop,
            reader=reader,
            protocol=server.protocol,
            logger=logger,
            error_handler=server.report_server_error,
        )

    try:
        asyncio.run(main())
    except (BrokenPipeError, KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()  # type: ignore[no-untyped-call]
