"""Scenario 5: hub RSS per idle connection (hello + join + open), 2,000 connections."""

from __future__ import annotations

import argparse
import asyncio

import psutil

from .client import WS, connect, gather_limited, make_room
from .env import Env, KiB, cpu_seconds
from .report import Results
from .scenario import Scenario


async def bench_memory(res: Results, env: Env, *, conns: int, per_room: int) -> None:
    print(f"5. hub memory per idle connection ({conns} connections)", flush=True)
    hub = env.hub()
    hub_p = psutil.Process(hub.proc.pid)
    # warm-up: import paths, pools and caches the first connections touch
    warm, _ = await make_room(hub.url, 5, path="small.txt", text="hello\n" * 20)
    for c in warm:
        await c.close()
    await asyncio.sleep(1.0)
    before = hub_p.memory_info().rss
    pg = env.postgres_processes()
    alone, pg_alone = await cpu_per_second([hub_p], pg, seconds=ALONE_WINDOW)
    all_conns: list[WS] = []

    async def room() -> None:
        owner = await connect(hub.url, "owner")
        r = await owner.request({"type": "create_room", "name": "idle"})
        await owner.request({"type": "create_document", "path": "small.txt", "text": "hello\n" * 20})
        await owner.request({"type": "open", "path": "small.txt"})
        all_conns.append(owner)
        for i in range(per_room - 1):
            c = await connect(hub.url, f"idle{i}")
            await c.request({"type": "join", "room": r["room"], "secret": r["editorSecret"]})
            await c.request({"type": "open", "path": "small.txt"})
            all_conns.append(c)

    await gather_limited([room() for _ in range(conns // per_room)], limit=20)
    await asyncio.sleep(SETTLE)
    after = hub_p.memory_info().rss
    per = (after - before) / len(all_conns)
    res.add(
        f"5. hub RSS per idle connection (hello + join + open), {len(all_conns):,} connections",
        f"{per / KiB:.1f} KiB ({before / 2**20:.0f} -> {after / 2**20:.0f} MiB)",
        "<= 20 KiB",
        per <= 20 * KiB,
    )
    # quiet for longer than the hub's keepalive interval (20 s): each is pinged now and then
    await asyncio.sleep(KEEPALIVE_QUIET)
    pg = env.postgres_processes()  # (again: the hub's pool may have opened connections since)
    idle, pg_idle = await cpu_per_second([hub_p], pg, seconds=CPU_WINDOW)
    rooms = conns // per_room
    db = f"; PostgreSQL's {pg_idle * 1e3:.1f} ms a second ({pg_alone * 1e3:.1f} before them)" if pg else ""
    res.note(
        f"idle connections: the hub's CPU with the {len(all_conns):,} connections in {rooms:,} rooms quiet "
        f"for {SETTLE + KEEPALIVE_QUIET:.0f} s and more (each pinged after 20-25 s of quiet, and answering), "
        f"{CPU_WINDOW:.0f} s: "
        f"{idle * 1e3:.1f} ms a second, {(idle - alone) / len(all_conns) * 1e6:.1f} us a second per "
        f"connection; the hub alone before them: {alone * 1e3:.1f} ms a second{db}"
    )
    await gather_limited([c.close() for c in all_conns], limit=200)
    env.stop_hub(hub)


#: seconds after the last connection before its RSS is read
SETTLE = 2.0
#: seconds the idle connections stay quiet before their CPU is measured (past the hub's keepalive
#: interval of 20 s: each is pinged after 20-25 s), and the window of that measurement
KEEPALIVE_QUIET = 22.0
CPU_WINDOW = 20.0
#: the window of the hub's own CPU before the connections
ALONE_WINDOW = 5.0


async def cpu_per_second(*groups: list[psutil.Process], seconds: float) -> tuple[float, ...]:
    """Each group's CPU seconds per second over the next *seconds* (an empty group: 0)."""
    start = [cpu_seconds(g) for g in groups]
    await asyncio.sleep(seconds)
    return tuple((cpu_seconds(g) - s) / seconds for g, s in zip(groups, start, strict=True))


async def run(res: Results, env: Env, args: argparse.Namespace) -> None:
    await bench_memory(res, env, conns=args.conns, per_room=args.mem_per_room)


def method(args: argparse.Namespace) -> list[str]:
    """This scenario's paragraph of the report's Method."""
    return [
        f"- 5: fresh hub; warm-up room of 5 connections opened and closed; RSS (psutil) before, then "
        f"{args.conns:,} connections in rooms of {args.mem_per_room} (each: hello, join or create, open a "
        f"120-char document), {SETTLE:.0f} s settle, RSS after; per connection = delta / N (rooms and "
        "documents amortized in). Then the connections stay quiet past the hub's keepalive interval "
        f"(the bench's client answers pings) and the hub's CPU is read over {CPU_WINDOW:.0f} s; per "
        f"connection against the hub's own CPU over {ALONE_WINDOW:.0f} s before the connections.",
    ]


SCENARIO = Scenario(
    key="memory",
    number=5,
    title="hub memory per idle connection",
    targets=("<= 20 KiB per idle connection",),
    run=run,
    method=method,
)
