"""What websockets' asyncio connection costs per message over its sans-I/O core (issue 14).

    .venv/bin/python bench/ws_layer_bench.py [--rounds 5] [--seconds 10]

The hub reads each client with websockets' asyncio server: a task per connection, woken for
every frame (``async for frame in ws``), and writes with ``broadcast``, which uses the sans-I/O
protocol directly.  The question this answers: how much of the hub's CPU per edit would a
connection layer of its own (an ``asyncio.Protocol`` feeding ``websockets.server.ServerProtocol``
and handling each frame in ``data_received``, no task per connection) save?

Three echo servers on uvloop, as the hub runs, each a subprocess of this script, measured in the
same run, rounds interleaved:

- ``asyncio``: ``websockets.asyncio.server.serve``, the handler ``async for frame in ws`` and
  ``broadcast([ws], frame)``: the hub's reading and writing, without the hub;
- ``sans-io``: an ``asyncio.Protocol`` on ``ServerProtocol``; each text frame is answered in
  ``data_received``;
- ``short-way``: websockets' asyncio server, with each whole text frame answered as it is read
  (a ``ServerConnection`` whose ``process_event`` takes it), the handshake, keepalive and close
  still websockets'.  The hub was built this way once and measured against itself: no gain
  there (docs/benchmarks.md, "The short way in the hub").

The load: 200 connections from this process, each sending a keystroke-sized op and waiting for
its echo, 1,000 messages a second in all (phases spread).  Reported: each server's CPU time
(user + system, read as ``make bench`` reads it: ``pairls_bench.env.cpu_seconds``) over the
window, per message (a frame in and a frame out).

``--idle N`` measures what each server holds per idle connection instead: N connections, each
echoed once, then quiet; the server's RSS per connection, the objects its garbage collector
tracks per connection, and what one full collection of them takes (the server times a
``gc.collect()`` when told).  The ``sans-io`` echo has no keepalive: its figures are a bound
for a connection layer of our own, which would need one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pairls_bench.env import cpu_seconds  # noqa: E402

MESSAGE = '{"type":"op","path":"a.txt","rev":12,"seq":3,"op":[5,"x"]}'


# -- the servers (run as `ws_layer_bench.py --serve KIND`; print the port, then serve) ---------


async def serve_asyncio() -> None:
    from websockets.asyncio.server import broadcast
    from websockets.exceptions import ConnectionClosed

    async def handler(ws) -> None:  # type: ignore[no-untyped-def]
        try:
            async for frame in ws:
                broadcast([ws], frame, text=True)
        except ConnectionClosed:
            pass

    await _serve_with(handler)


async def _serve_with(handler, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """websockets' asyncio server with the hub's settings; the port on stdout, then serve."""
    from websockets.asyncio.server import serve

    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=2**20, **kwargs) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


async def serve_sans_io() -> None:
    from websockets.frames import Frame, Opcode
    from websockets.http11 import Request
    from websockets.protocol import State
    from websockets.server import ServerProtocol

    class Echo(asyncio.Protocol):
        def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
            self.transport = transport
            self.protocol = ServerProtocol(max_size=2**20)

        def data_received(self, data: bytes) -> None:
            protocol = self.protocol
            protocol.receive_data(data)
            for event in protocol.events_received():
                if isinstance(event, Request):
                    protocol.send_response(protocol.accept(event))
                elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    if protocol.state is State.OPEN:  # (not once the client's close came)
                        protocol.send_text(event.data)
            out = protocol.data_to_send()
            if out:
                self.transport.writelines(out)
            if protocol.close_expected():
                self.transport.close()

        def eof_received(self) -> None:
            self.protocol.receive_eof()

    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Future()


async def serve_short_way() -> None:
    from websockets.asyncio.server import ServerConnection, broadcast
    from websockets.exceptions import ConnectionClosed
    from websockets.frames import Frame, Opcode

    class ShortWay(ServerConnection):
        def process_event(self, event) -> None:  # type: ignore[no-untyped-def]
            text = isinstance(event, Frame) and event.opcode is Opcode.TEXT and event.fin
            if text and self.request is not None:
                broadcast([self], bytes(event.data).decode(), text=True)
                return
            super().process_event(event)

    async def handler(ws) -> None:  # type: ignore[no-untyped-def]
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass

    await _serve_with(handler, create_connection=ShortWay)


SERVERS = {"asyncio": serve_asyncio, "sans-io": serve_sans_io, "short-way": serve_short_way}


# -- the load ------------------------------------------------------------------------------------


def _collect_when_told() -> None:
    """On SIGUSR1: one full collection, timed; ``tracked objects, milliseconds`` on stdout."""
    import gc
    import signal

    def collect(*_: object) -> None:
        started = time.perf_counter()
        gc.collect()
        print(len(gc.get_objects()), (time.perf_counter() - started) * 1e3, flush=True)

    signal.signal(signal.SIGUSR1, collect)


async def idle(proc: subprocess.Popen[str], port: int, connections: int) -> tuple[float, float, float, float]:
    """(RSS bytes, tracked objects) per idle connection; a full collection's ms before and with them."""
    import signal

    from websockets.asyncio.client import connect

    assert proc.stdout is not None
    server = psutil.Process(proc.pid)

    def collect() -> tuple[int, float]:
        server.send_signal(signal.SIGUSR1)
        tracked, ms = proc.stdout.readline().split()  # type: ignore[union-attr]
        return int(tracked), float(ms)

    async def echoed_once() -> object:
        ws = await connect(f"ws://127.0.0.1:{port}", compression=None)
        await ws.send(MESSAGE)
        await ws.recv()
        return ws

    warm = [await echoed_once() for _ in range(20)]  # pools and caches the first ones touch
    for ws in warm:
        await ws.close()  # type: ignore[attr-defined]
    await asyncio.sleep(1)
    tracked0, ms0 = await asyncio.to_thread(collect)
    rss0 = server.memory_info().rss
    sockets = [await echoed_once() for _ in range(connections)]
    await asyncio.sleep(2)
    tracked1, ms1 = await asyncio.to_thread(collect)
    rss1 = server.memory_info().rss
    for ws in sockets:
        await ws.close()  # type: ignore[attr-defined]
    return (rss1 - rss0) / connections, (tracked1 - tracked0) / connections, ms0, ms1


async def load(port: int, pid: int, connections: int, rate: float, seconds: float) -> float:
    """Server CPU (us) per echoed message over *seconds*, after 2 s of warm-up."""
    from websockets.asyncio.client import connect

    sockets = [await connect(f"ws://127.0.0.1:{port}", compression=None) for _ in range(connections)]
    echoed = 0
    period = connections / rate

    async def client(ws, phase: float) -> None:  # type: ignore[no-untyped-def]
        nonlocal echoed
        await asyncio.sleep(phase)
        due = time.perf_counter()
        while True:
            await ws.send(MESSAGE)
            if await ws.recv() != MESSAGE:
                raise RuntimeError("the server answered something other than the message sent")
            echoed += 1
            due += period
            await asyncio.sleep(max(0.0, due - time.perf_counter()))

    server = [psutil.Process(pid)]
    tasks = [asyncio.create_task(client(ws, i * period / connections)) for i, ws in enumerate(sockets)]
    try:
        await asyncio.sleep(2)
        cpu0, echoed0 = cpu_seconds(server), echoed
        await asyncio.sleep(seconds)
        cpu1, echoed1 = cpu_seconds(server), echoed
        for task in tasks:
            if task.done():  # a client that stopped: its failure is the run's
                task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for ws in sockets:
            await ws.close()
    return (cpu1 - cpu0) / (echoed1 - echoed0) * 1e6


def measure(kind: str, args: argparse.Namespace) -> Any:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        if args.idle:
            return asyncio.run(idle(proc, port, args.idle))
        return asyncio.run(load(port, proc.pid, args.connections, args.rate, args.seconds))
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--rate", type=float, default=1000.0, help="messages a second, all connections")
    parser.add_argument("--idle", type=int, default=0, metavar="N", help="what N idle connections hold")
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        import uvloop

        _collect_when_told()
        uvloop.run(SERVERS[args.serve]())
        return
    if args.idle:
        report_idle(args)
        return
    results: dict[str, list[float]] = {kind: [] for kind in SERVERS}
    for n in range(args.rounds):
        for kind in SERVERS if n % 2 == 0 else reversed(SERVERS):
            results[kind].append(measure(kind, args))
            print(f"round {n + 1}: {kind}: {results[kind][-1]:.1f} us", flush=True)
    medians = {kind: statistics.median(values) for kind, values in results.items()}
    for kind, values in results.items():
        rounds = ", ".join(f"{v:.0f}" for v in values)
        print(f"{kind}: median {medians[kind]:.1f} us of server CPU per message (rounds: {rounds})")
    for kind in ("sans-io", "short-way"):
        ratio = medians["asyncio"] / medians[kind]
        saved = medians["asyncio"] - medians[kind]
        print(f"asyncio / {kind}: {ratio:.2f}x, {saved:.1f} us per message")
    print(f"load average {os.getloadavg()[0]:.2f}")


def report_idle(args: argparse.Namespace) -> None:
    for n in range(args.rounds):
        for kind in SERVERS if n % 2 == 0 else reversed(SERVERS):
            rss, tracked, ms0, ms1 = measure(kind, args)
            print(
                f"round {n + 1}: {kind}: {args.idle:,} idle connections: {rss / 1024:.1f} KiB and "
                f"{tracked:.1f} tracked objects each; a full collection {ms0:.1f} ms before them, "
                f"{ms1:.1f} ms with them",
                flush=True,
            )


if __name__ == "__main__":
    main()
