"""Scenario 3: submit-to-broadcast p50/p99 at 10 ops/s per room over 100 rooms; baseline: a
websocket echo round trip at the same rate."""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from collab_core import ops
from collab_core.client import DocumentClient

from .client import WS, make_room, ticker
from .env import Env, cpu_seconds, report_profile, start_profiler
from .report import Results, percentile
from .scenario import Scenario


class Pair:
    """One room: a typist at a fixed rate (real client state machine, composing while
    an op is in flight) and a watcher that timestamps each broadcast."""

    def __init__(self, typer: WS, watcher: WS, path: str, text: str, rev: int, rng: random.Random) -> None:
        self.typer, self.watcher, self.path = typer, watcher, path
        self.client = DocumentClient(text, rev, "typer")
        self.rng = rng
        self.sent: collections.deque[float] = collections.deque()
        self.samples: list[float] | None = None  # set during the window
        self.composed = 0
        self.edits = 0
        self.errors = 0
        typer.on_text = self.on_typer
        watcher.on_text = self.on_watcher

    def edit(self) -> None:
        n = len(self.client.text)
        pos = self.rng.randrange(n + 1)
        if n > 200 and self.rng.random() < 0.4:
            op = ops.normalize([pos if pos < n else n - 1, -1])
        else:
            op = ops.normalize([pos, self.rng.choice("abcdef ")])
        self.edits += 1
        out = self.client.apply_local(op)
        if out is None:
            self.composed += 1
        else:
            self.submit(out)

    def submit(self, out: Any) -> None:
        self.sent.append(time.perf_counter())
        self.typer.send(
            json.dumps(
                {"type": "op", "path": self.path, "rev": out.base_rev, "seq": out.seq, "op": out.op},
                separators=(",", ":"),
                ensure_ascii=False,
            )
        )

    def on_typer(self, payload: bytes) -> None:
        msg = json.loads(payload)
        if msg["type"] == "ack":
            out = self.client.receive_ack(msg["rev"])
            if out is not None:
                self.submit(out)
        elif msg["type"] == "error":
            self.errors += 1

    def on_watcher(self, payload: bytes) -> None:
        now = time.perf_counter()
        if payload.startswith(b'{"type":"op"'):
            sent = self.sent.popleft()
            if self.samples is not None:
                self.samples.append(now - sent)


async def bench_latency(
    res: Results, env: Env, *, rooms: int, rate: float, warmup: float, window: float, profile: Path | None
) -> None:
    print(f"3. latency ({rooms} rooms x 2 clients, {rate:g} ops/s per room)", flush=True)
    hub = env.hub()
    rng = random.Random(3)
    pairs: list[Pair] = []
    text = "".join(rng.choice("abcdefgh \n") for _ in range(1000))
    for _ in range(rooms):
        (typer, watcher), opened = await make_room(hub.url, 2, path="notes.md", text=text)
        pairs.append(
            Pair(typer, watcher, "notes.md", opened["text"], opened["rev"], random.Random(rng.random()))
        )
    stop = asyncio.Event()
    period = 1 / rate
    tasks = [asyncio.create_task(ticker(period, rng.random() * period, p.edit, stop)) for p in pairs]
    await asyncio.sleep(warmup)
    hub_p = psutil.Process(hub.proc.pid)
    spy = start_profiler(hub.proc.pid, window, profile) if profile else None
    cpu0 = cpu_seconds([hub_p])
    edits0 = sum(p.edits for p in pairs)
    composed0 = sum(p.composed for p in pairs)
    for p in pairs:
        p.samples = []
    t0 = time.perf_counter()
    await asyncio.sleep(window)
    for p in pairs:
        samples, p.samples = p.samples, None
        p.samples_done = samples  # type: ignore[attr-defined]
    dt = time.perf_counter() - t0
    cpu = (cpu_seconds([hub_p]) - cpu0) / dt
    stop.set()
    await asyncio.gather(*tasks)
    await asyncio.sleep(0.5)
    lat = [x * 1e3 for p in pairs for x in p.samples_done]  # type: ignore[attr-defined]
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    res.add(
        f"3. submit -> broadcast latency, {rooms} rooms x {rate:g} ops/s (p50 / p99)",
        f"{p50:.2f} / {p99:.2f} ms",
        "p99 <= 5 ms",
        p99 <= 5.0,
    )
    edits = sum(p.edits for p in pairs) - edits0
    composed = sum(p.composed for p in pairs) - composed0
    res.note(
        f"latency: {len(lat):,} samples over {dt:.0f} s, p90 {percentile(lat, 90):.2f} ms, "
        f"p99.9 {percentile(lat, 99.9):.2f} ms, max {max(lat):.2f} ms; {composed} of {edits} edits "
        f"composed into a buffer (op in flight); hub CPU {cpu:.2f} cores "
        f"({cpu / max(1, len(lat)) * dt * 1e6:.0f} us per op); "
        f"errors {sum(p.errors for p in pairs)}"
    )
    for p in pairs:
        await p.typer.close()
        await p.watcher.close()
    env.stop_hub(hub)
    if spy is not None and profile is not None:
        spy.wait(60)
        report_profile(profile)
    # baseline: a plain websocket echo server (same library and settings as the hub), same load shape
    echo = await websocket_echo(rooms, rate, warmup=2.0, window=min(window, 15.0))
    res.base(
        f"websocket echo round trip, {rooms} connections x {rate:g} msg/s (p50 / p99)",
        f"{percentile(echo, 50):.2f} / {percentile(echo, 99):.2f} ms",
    )


ECHO_SERVER = """
import asyncio, sys
from websockets.asyncio.server import serve
async def echo(ws):
    async for m in ws:
        await ws.send(m)
async def main():
    async with serve(echo, "127.0.0.1", 0, compression=None, max_queue=64) as s:
        print(s.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


async def websocket_echo(n: int, rate: float, *, warmup: float, window: float) -> list[float]:
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
        [sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        host = "127.0.0.1"
        samples: list[float] = []
        measuring = False
        conns = []
        for _ in range(n):
            _, ws = await asyncio.get_running_loop().create_connection(lambda: WS(host, port), host, port)
            await ws.opened
            conns.append(ws)
        msg = '{"type":"op","path":"notes.md","rev":123,"seq":45,"op":[417,"a"]}'

        def make(ws: WS) -> Callable[[], None]:
            sent: collections.deque[float] = collections.deque()

            def got(_: bytes) -> None:
                t = sent.popleft()
                if measuring:
                    samples.append((time.perf_counter() - t) * 1e3)

            ws.on_text = got

            def tick() -> None:
                sent.append(time.perf_counter())
                ws.send(msg)

            return tick

        stop = asyncio.Event()
        rng = random.Random(4)
        tasks = [asyncio.create_task(ticker(1 / rate, rng.random() / rate, make(c), stop)) for c in conns]
        await asyncio.sleep(warmup)
        measuring = True
        await asyncio.sleep(window)
        measuring = False
        stop.set()
        await asyncio.gather(*tasks)
        for c in conns:
            await c.close()
        return samples
    finally:
        proc.terminate()
        proc.wait(10)


async def run(res: Results, env: Env, args: argparse.Namespace) -> None:
    await bench_latency(
        res, env, rooms=args.latency_rooms, rate=10.0, warmup=3.0, window=args.latency_window,
        profile=Path(args.profile + ".latency") if args.profile else None,
    )  # fmt: skip


def method(args: argparse.Namespace) -> list[str]:
    """This scenario's paragraph of the report's Method."""
    return [
        f"- 3: {args.latency_rooms} rooms x 2 clients; one types at 10 edits/s (phases spread), "
        "through the real `DocumentClient` state machine (edits made while an op is in flight are "
        "composed and sent on the ack); latency = `time.perf_counter()` at send of an op to receipt of "
        f"its broadcast by the other client (same process). {args.latency_window:g} s window after 3 s "
        "warm-up. Baseline: a websockets echo server subprocess (same library and settings as the hub), "
        "same connection count and rate, round trip.",
    ]


SCENARIO = Scenario(
    key="latency",
    number=3,
    title="submit -> broadcast latency",
    targets=("p99 <= 5 ms at 10 ops/s per room, 100 rooms",),
    run=run,
    method=method,
)
