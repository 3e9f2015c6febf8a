"""A small asyncio TCP proxy that can cut a client off from its server and let it back.

``cut()`` closes every proxied connection (both sides, abruptly) and refuses
new ones (accepted, then closed at once: what a dead route looks like to a
websocket client); ``restore()`` forwards new connections again.  The client
is expected to reconnect by itself.  ``live_cuts`` counts the cuts that closed
at least one connection (an outage the client could notice).  With
``record=True`` the first 16 KiB each client sends on each connection are kept
in ``recorded`` (its request head, for a test to read).  ``drop_replies()``
lets what the client sends through but throws away what the server sends
back, until the next ``cut()``: a server's answer lost with a connection that
is about to fail.  ``lag(seconds)`` holds every byte, both ways, that long before
passing it on, in order (a slow route: the answers to a join, a share or an edit
come late); ``lag(0)`` ends it (what was held still comes in order).
:func:`database_proxy` puts one in front of PostgreSQL's Unix socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse

from lsp_bridge.invite import Invite, parse_invite


class TcpProxy:
    def __init__(
        self, target_host: str, target_port: int, *, record: bool = False, unix: str | None = None
    ) -> None:
        self.target = (target_host, target_port)
        #: a Unix socket to forward to instead (PostgreSQL's, say): clients still come over TCP
        self.unix = unix
        self.record = record
        #: with ``record``: what each client sent first, one bytearray per connection
        self.recorded: list[bytearray] = []
        self.port = 0
        self.cut_off = False
        self.refused = 0
        self.accepted = 0
        self.live_cuts = 0
        #: what the server sends is thrown away (drop_replies), and the bytes thrown away
        self.dropping = False
        self.dropped = 0
        #: seconds every byte is held (lag)
        self.delay = 0.0
        self._server: asyncio.Server | None = None
        self._conns: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    @property
    def connections(self) -> int:
        """Connections proxied now."""
        return len(self._conns)

    def drop_replies(self) -> None:
        self.dropping = True

    def invite(self, invite: str) -> str:
        """*invite* (any form) leading through this proxy to the same room."""
        inv = parse_invite(invite)
        return str(Invite(self.url, inv.room_id, inv.secret))

    def lag(self, seconds: float) -> None:
        self.delay = seconds

    def cut(self) -> None:
        self.cut_off = True
        self.dropping = False
        if self._conns:
            self.live_cuts += 1
        for down, up in list(self._conns):
            down.transport.abort()
            up.transport.abort()
        self._conns.clear()

    def restore(self) -> None:
        self.cut_off = False

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            if self.unix is not None:
                up_reader, up_writer = await asyncio.open_unix_connection(self.unix)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if self.cut_off:  # cut while connecting
            up_writer.transport.abort()
            writer.transport.abort()
            return
        self.accepted += 1
        pair = (writer, up_writer)
        self._conns.add(pair)
        sent: bytearray | None = None
        if self.record:
            sent = bytearray()
            self.recorded.append(sent)
        try:
            await asyncio.gather(
                _pipe(reader, up_writer, self, sent), _pipe(up_reader, writer, self, replies=True)
            )
        finally:
            self._conns.discard(pair)
            writer.transport.abort()
            up_writer.transport.abort()


async def database_proxy(database_url: str) -> tuple[TcpProxy, str]:
    """A proxy in front of PostgreSQL on its Unix socket (*database_url* names it with ``host``
    and ``port``, as the embedded server's does), started, and the URL that reaches the database
    over TCP through it (PostgreSQL sees a local connection)."""
    url = urllib.parse.urlsplit(database_url)
    query = urllib.parse.parse_qs(url.query)
    proxy = await TcpProxy("", 0, unix=f"{query['host'][0]}/.s.PGSQL.{query['port'][0]}").start()
    tcp = url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}", query="sslmode=disable")
    return proxy, urllib.parse.urlunsplit(tcp)


async def _pipe(
    src: asyncio.StreamReader,
    dst: asyncio.StreamWriter,
    proxy: TcpProxy,
    record: bytearray | None = None,
    *,
    replies: bool = False,
) -> None:
    loop = asyncio.get_running_loop()
    # what a lag holds, in order: (when to pass it on, the bytes); None: the end
    held: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    forwarding: asyncio.Task[None] | None = None

    async def forward() -> None:
        while (item := await held.get()) is not None:
            due, data = item
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if dst.transport.is_closing():
                return  # cut meanwhile: what was held goes with the connection
            dst.write(data)
            await dst.drain()

    try:
        with contextlib.suppress(Exception):
            while data := await src.read(65536):
                if record is not None and len(record) < 16384:
                    record += data[: 16384 - len(record)]
                if replies and proxy.dropping:
                    proxy.dropped += len(data)
                    continue
                if forwarding is None and proxy.delay > 0:
                    # from now on every byte goes through the queue (none overtakes one held)
                    forwarding = loop.create_task(forward())
                if forwarding is not None:
                    held.put_nowait((loop.time() + proxy.delay, data))
                    continue
                dst.write(data)
                await dst.drain()
            if forwarding is not None:
                held.put_nowait(None)
                await forwarding  # the end comes after what was held
    finally:
        if forwarding is not None:
            forwarding.cancel()
        dst.transport.abort()
