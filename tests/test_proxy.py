"""The test proxy's lag (tests/support/proxy.py): the convergence test's slow route holds
bytes as long as it says, in order, and lets go of them when the lag ends."""

from __future__ import annotations

import asyncio

from tests.support.proxy import TcpProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_a_lag_holds_every_byte_both_ways_in_order_and_ends() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    proxy = await TcpProxy("127.0.0.1", server.sockets[0].getsockname()[1]).start()
    loop = asyncio.get_running_loop()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"a")
        assert await reader.readexactly(1) == b"a"

        proxy.lag(0.2)
        t0 = loop.time()
        for i in range(50):  # many writes, to be passed on in order
            writer.write(b"%03d" % i)
            await asyncio.sleep(0.001)
        got = await reader.readexactly(50 * 3)
        # held on the way there and on the way back (more is the machine's, not the proxy's)
        assert loop.time() - t0 >= 0.4
        assert got == b"".join(b"%03d" % i for i in range(50))

        writer.write(b"held")
        await asyncio.sleep(0.05)
        proxy.lag(0)  # ended while bytes are held: they still come first
        writer.write(b"after")
        assert await reader.readexactly(9) == b"heldafter"

        t0 = loop.time()
        writer.write(b"z")
        assert await reader.readexactly(1) == b"z"
        assert loop.time() - t0 < 0.4  # no longer held (a bound that only a lag still on crosses)
        writer.close()
    finally:
        await proxy.close()
        server.close()
