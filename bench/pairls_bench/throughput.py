"""Scenario 2: committed (acked) ops/s of one hub, 50 clients in 10 rooms, one op in flight per
client; baseline: single-row INSERT + COMMIT rate of the same PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import time
from pathlib import Path
from typing import Any

import psutil

from .client import WS, make_room
from .env import Env, cpu_seconds, report_profile, start_profiler
from .report import Results
from .scenario import Scenario

REV_RE = re.compile(rb'"rev":(\d+)')


def small_ops(rng: random.Random, count: int = 256) -> list[str]:
    """JSON of small ops valid on any revision of a document of >= 600 code points
    (inserts 1-3 chars or deletes 1 char at a position < 500; inserts outnumber deletes)."""
    out = []
    for _ in range(count):
        pos = rng.randrange(500)
        if rng.random() < 0.3:
            op: list[Any] = [pos, -1] if pos else [-1]
        else:
            text = "".join(rng.choice("abcdefgh ") for _ in range(rng.randint(1, 3)))
            op = [pos, text] if pos else [text]
        out.append(json.dumps(op, separators=(",", ":")))
    return out


class Typist:
    """A saturating client: it always has one edit buffered, and sends it the moment
    the previous op is acked (one op in flight, as the protocol demands)."""

    __slots__ = ("ws", "path", "rev", "seq", "ops", "k", "acks", "running", "idle", "errors")

    def __init__(self, ws: WS, path: str, rev: int, op_json: list[str]) -> None:
        self.ws, self.path, self.rev, self.seq = ws, path, rev, 0
        self.ops, self.k, self.acks = op_json, 0, 0
        self.running, self.idle, self.errors = True, asyncio.Event(), 0
        ws.on_text = self.on_text

    def send_next(self) -> None:
        self.seq += 1
        self.k = (self.k + 1) % len(self.ops)
        self.ws.send(
            f'{{"type":"op","path":"{self.path}","rev":{self.rev},"seq":{self.seq},"op":{self.ops[self.k]}}}'
        )

    def on_text(self, payload: bytes) -> None:
        if payload.startswith(b'{"type":"op"'):
            rev = int(REV_RE.search(payload).group(1))  # type: ignore[union-attr]
            if rev > self.rev:
                self.rev = rev
        elif payload.startswith(b'{"type":"ack"'):
            self.rev = json.loads(payload)["rev"]  # everything before it has arrived
            self.acks += 1
            if self.running:
                self.send_next()
            else:
                self.idle.set()
        elif payload.startswith(b'{"type":"error"'):
            self.errors += 1
            msg = json.loads(payload)
            if msg.get("seq") is not None and self.running:  # refused op: try again
                self.send_next()


async def raw_insert_rate(dsn: str, seconds: float, conns: int) -> float:
    """Single-row INSERT, each its own transaction (COMMIT = WAL flush), on *conns* connections."""
    import asyncpg

    setup = await asyncpg.connect(dsn)
    await setup.execute(
        "DROP TABLE IF EXISTS bench_raw;"
        " CREATE TABLE bench_raw (id bigserial PRIMARY KEY, k bigint, op text NOT NULL)"
    )
    pool = [await asyncpg.connect(dsn) for _ in range(conns)]
    stop = time.perf_counter() + seconds
    done = 0

    async def worker(c: Any, k: int) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await c.execute("INSERT INTO bench_raw (k, op) VALUES ($1, $2)", k, '[12,"a"]')
            done += 1

    t = time.perf_counter()
    await asyncio.gather(*(worker(c, i) for i, c in enumerate(pool)))
    rate = done / (time.perf_counter() - t)
    for c in pool:
        await c.close()
    await setup.execute("DROP TABLE bench_raw")
    await setup.close()
    return rate


async def xact_commits(dsn: str) -> int:
    import asyncpg

    c = await asyncpg.connect(dsn)
    try:
        return int(
            await c.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        )
    finally:
        await c.close()


async def bench_throughput(
    res: Results, env: Env, *, rooms: int, per_room: int, warmup: float, window: float,
    profile: Path | None,
) -> None:  # fmt: skip
    print(f"2. throughput ({rooms * per_room} clients in {rooms} rooms, one hub)", flush=True)
    hub = env.hub()
    rng = random.Random(2)
    op_json = small_ops(rng)
    typists: list[Typist] = []
    conns: list[WS] = []
    for _ in range(rooms):
        cs, opened = await make_room(hub.url, per_room, path="doc.txt", text="x" * 1000)
        conns += cs
        for c in cs:
            typists.append(Typist(c, "doc.txt", opened["rev"], rng.sample(op_json, len(op_json))))
    for t in typists:
        t.send_next()
    await asyncio.sleep(warmup)
    hub_p = psutil.Process(hub.proc.pid)
    me = psutil.Process()
    pg = env.postgres_processes()
    spy = start_profiler(hub.proc.pid, window, profile) if profile else None
    c0, x0 = sum(t.acks for t in typists), await xact_commits(env.dsn)
    cpu0 = (cpu_seconds([hub_p]), cpu_seconds([me]), cpu_seconds(pg))
    t0 = time.perf_counter()
    await asyncio.sleep(window)
    c1 = sum(t.acks for t in typists)
    dt = time.perf_counter() - t0
    cpu1 = (cpu_seconds([hub_p]), cpu_seconds([me]), cpu_seconds(pg))
    x1 = await xact_commits(env.dsn)
    for t in typists:
        t.running = False
    await asyncio.wait([asyncio.ensure_future(t.idle.wait()) for t in typists], timeout=10)
    rate = (c1 - c0) / dt
    per_client = [t.acks for t in typists]
    errors = sum(t.errors for t in typists)
    res.add(
        f"2. durable ops/s, 1 hub, {len(typists)} clients / {rooms} rooms, 1 op in flight each",
        f"{rate:,.0f} ops/s",
        ">= 20,000 ops/s",
        rate >= 20_000,
    )
    cpu = [(b - a) / dt for a, b in zip(cpu0, cpu1, strict=True)]
    res.note(
        f"throughput window {dt:.1f} s after {warmup:.0f} s warm-up; CPU use (cores): hub {cpu[0]:.2f}, "
        f"load generator (1 process) {cpu[1]:.2f}, PostgreSQL "
        + (f"{cpu[2]:.2f}" if pg else "n/a (external)")
        + f"; ~{(c1 - c0) / max(1, x1 - x0):.1f} ops per PostgreSQL transaction; "
        f"hub CPU {cpu[0] / rate * 1e6:.0f} us per committed op (ack + 4 broadcasts + its share of the "
        f"commit); client round trip {len(typists) / rate * 1e3:.1f} ms mean; "
        f"acks per client min/max {min(per_client)}/{max(per_client)}; errors {errors}"
    )
    for c in conns:
        await c.close()
    env.stop_hub(hub)
    if spy is not None:
        spy.wait(60)
        if profile is not None:
            report_profile(profile)
    # baselines: what one PostgreSQL commit costs here
    for n in (1, 10):
        raw = await raw_insert_rate(env.dsn, 5.0, n)
        res.base(
            f"PostgreSQL single-row INSERT + COMMIT, {n} connection{'s' * (n > 1)} (fsync on)",
            f"{raw:,.0f} commits/s" + (f" ({1e3 / raw:.2f} ms each)" if n == 1 else ""),
        )


async def run(res: Results, env: Env, args: argparse.Namespace) -> None:
    await bench_throughput(
        res, env, rooms=args.rooms, per_room=args.per_room, warmup=args.warmup,
        window=args.window, profile=Path(args.profile) if args.profile else None,
    )  # fmt: skip


def method(args: argparse.Namespace) -> list[str]:
    """This scenario's paragraph of the report's Method."""
    return [
        f"- 2: {args.rooms} rooms x {args.per_room} clients, one document per room (1000 chars). Each "
        "client is saturating: it always has one edit buffered and sends it the moment its previous op "
        "is acked, so each client has exactly one op in flight (protocol rule). Ops are precomputed "
        "(inserts of 1-3 chars / 1-char deletes at positions < 500, valid on any revision, transformed "
        "by the hub); the base revision is the newest the client has seen. "
        f"Committed ops = acks received in a {args.window:g} s window after {args.warmup:g} s warm-up. "
        "Baseline: single-row INSERT, one transaction each, on 1 and 10 connections, 5 s each.",
    ]


SCENARIO = Scenario(
    key="throughput",
    number=2,
    title="durable ops/s of one hub",
    targets=("at least 20,000 committed edits/s on one hub process with 50 clients",),
    run=run,
    method=method,
)
