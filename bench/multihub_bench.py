"""Several hubs against one, side by side in one run (``make bench-multihub``).

    .venv/bin/python bench/multihub_bench.py [--clients 1500 --rooms 500 --rate 350]

Three set-ups on the same PostgreSQL (embedded in a temp dir unless
``DATABASE_URL`` is set), each with fresh rooms:

* ``1 hub``: one ``pairls-hub`` process;
* ``2 hubs``: two processes on their own ports; each room's members are
  spread over both (as a load balancer would: every op and cursor crosses);
  in scenario B also ``2 hubs, each room on one`` (rooms placed by room,
  as a load balancer that hashes the room id would);
* ``--workers 2``: one ``pairls-hub --workers 2`` (two workers sharing a
  port, placed by the kernel).

Scenario A (the issue's): ``--clients`` connections in ``--rooms`` rooms of
equal size, typing ``--rate`` edits per second in all (a random client not
waiting for an ack types one character at a time, and moves its cursor with
it).  Measured over ``--window`` seconds after ``--warmup``: committed ops/s
(acks), keystroke to peer (the op's send to its receipt by each other member
of the room, p50/p99), cursor to peer (a presence's send to its receipt;
"across hubs": sender and receiver on different hubs), CPU of the hub
processes and of PostgreSQL per committed op (/proc, through psutil), and
the load generator's own CPU (it is one process on the same 2 cores).

Scenario B (what they hold): ``--sat-clients`` saturating clients (each sends
its next op the moment the previous is acked) in rooms of 2, ``--sat-window``
seconds: the most committed ops/s each set-up gives on this machine.

Prints a Markdown table (docs/benchmarks.md, "Several hubs").  Nothing is
asserted: figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))

from pairls_bench.client import connect, gather_limited  # noqa: E402
from pairls_bench.env import Env, cpu_seconds  # noqa: E402
from pairls_bench.report import percentile  # noqa: E402

from tests.support.hubproc import HubProcess  # noqa: E402

PATH = "notes.md"


@dataclass
class Member:
    ws: Any
    room: Room
    hub: int | None
    rev: int = 0
    seq: int = 0
    in_flight: float | None = None
    acks: int = 0
    errors: int = 0
    saturating: bool = False


@dataclass
class Room:
    members: list[Member] = field(default_factory=list)
    #: rev -> (send time, sender) of ops acked
    sent: dict[int, tuple[float, Member]] = field(default_factory=dict)
    #: (rev, receipt time, receiver) of ops broadcast
    received: list[tuple[int, float, Member]] = field(default_factory=list)


class Load:
    """All rooms of one set-up, and what was measured."""

    def __init__(self) -> None:
        self.rooms: list[Room] = []
        self.members: list[Member] = []
        self.measuring = False
        #: presence id -> (send time, sender)
        self.pres_sent: dict[int, tuple[float, Member]] = {}
        #: (presence id, receipt time, receiver)
        self.pres_received: list[tuple[int, float, Member]] = []
        self.next_presence = 0
        self.window_acks = 0
        self.skipped = 0

    def handler(self, m: Member) -> Any:
        def on_text(payload: bytes) -> None:
            now = time.perf_counter()
            if payload.startswith(b'{"type":"op"'):
                rev = json.loads(payload)["rev"]
                m.rev = max(m.rev, rev)
                if self.measuring:
                    m.room.received.append((rev, now, m))
            elif payload.startswith(b'{"type":"ack"'):
                rev = json.loads(payload)["rev"]
                m.rev = max(m.rev, rev)
                m.acks += 1
                if self.measuring:
                    self.window_acks += 1
                    if m.in_flight is not None:
                        m.room.sent[rev] = (m.in_flight, m)
                m.in_flight = None
                if m.saturating:
                    self.edit(m, presence=False)
            elif payload.startswith(b'{"type":"presence"'):
                if self.measuring:
                    msg = json.loads(payload)
                    self.pres_received.append((msg["ranges"][0][0], now, m))
            elif payload.startswith(b'{"type":"error"'):
                m.errors += 1
                if json.loads(payload).get("seq") is not None:
                    m.in_flight = None
                    if m.saturating:
                        self.edit(m, presence=False)
            else:
                m.ws._generic(payload)

        return on_text

    def edit(self, m: Member, *, presence: bool = True) -> None:
        m.seq += 1
        m.in_flight = time.perf_counter()
        m.ws.send(f'{{"type":"op","path":"{PATH}","rev":{m.rev},"seq":{m.seq},"op":["x"]}}')
        if presence:
            k = self.next_presence = self.next_presence + 1
            if self.measuring:
                self.pres_sent[k] = (time.perf_counter(), m)
            m.ws.send(f'{{"type":"presence","path":"{PATH}","rev":{m.rev},"ranges":[[{k},{k}]]}}')

    async def type_at(self, rate: float, stop: asyncio.Event, rng: random.Random) -> None:
        """*rate* edits per second in all, by random members with no op in flight."""
        tick = 0.02
        loop = asyncio.get_running_loop()
        due = 0.0
        nxt = loop.time()
        while not stop.is_set():
            nxt += tick
            await asyncio.sleep(max(0.0, nxt - loop.time()))
            due += rate * tick
            while due >= 1:
                due -= 1
                m = rng.choice(self.members)
                if m.in_flight is None:
                    self.edit(m)
                else:
                    self.skipped += 1


async def join_all(urls: list[str], clients: int, rooms: int, spread: bool, *, placed: bool = True) -> Load:
    """*clients* connections in *rooms* rooms over *urls*: a room's members spread over them if
    *spread*, else each room on one (room by room, in turn); *placed*:
    we know which hub each is on (not so with --workers: the kernel places them)."""
    load = Load()
    per_room = clients // rooms

    async def one_room(r: int) -> None:
        room = Room()
        hub0 = r % len(urls)
        owner = await connect(urls[hub0], "owner")
        created = await owner.request({"type": "create_room", "name": "bench"})
        await owner.request({"type": "create_document", "path": PATH, "text": "hello\n"})
        wss = [(owner, hub0)]
        for i in range(1, per_room):
            h = (r + i) % len(urls) if spread else hub0
            ws = await connect(urls[h], f"p{i}")
            await ws.request({"type": "join", "room": created["room"], "secret": created["editorSecret"]})
            wss.append((ws, h))
        for ws, h in wss:
            opened = await ws.request({"type": "open", "path": PATH})
            m = Member(ws, room, h if placed else None, rev=opened["rev"])
            ws.on_text = load.handler(m)
            room.members.append(m)
        load.rooms.append(room)

    await gather_limited([one_room(r) for r in range(rooms)], limit=25)
    load.members = [m for room in load.rooms for m in room.members]
    return load


def pct(xs: list[float], q: float) -> float:
    return percentile(xs, q) if xs else float("nan")


@dataclass
class Figures:
    label: str
    clients: int = 0
    ops_per_s: float = 0.0
    key_p50: float = 0.0
    key_p99: float = 0.0
    cur_p50: float = 0.0
    cur_p99: float = 0.0
    cross_p99: float | None = None
    cross_n: int = 0
    hub_us_per_op: float = 0.0
    pg_us_per_op: float = 0.0
    hub_cores: float = 0.0
    pg_cores: float = 0.0
    me_cores: float = 0.0
    errors: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)


class Setup:
    """The hub processes of one set-up."""

    def __init__(self, env: Any, kind: str) -> None:
        self.kind = kind
        self.env = env
        self.procs: list[HubProcess] = []

    def start(self) -> list[str]:
        if self.kind == "1 hub":
            self.procs = [self.env.hub()]
        elif self.kind.startswith("2 hubs"):
            self.procs = [self.env.hub(), self.env.hub()]
        else:
            self.procs = [self.env.hub("--workers", "2")]
        return [p.url for p in self.procs]

    def processes(self) -> list[psutil.Process]:
        out = []
        for h in self.procs:  # (a hub that is gone fails the bench here: its figures would be wrong)
            p = psutil.Process(h.proc.pid)
            out += [p, *p.children(recursive=True)]
        return out

    def stop(self) -> None:
        for h in self.procs:
            self.env.stop_hub(h)


async def scenario_a(env: Any, kind: str, args: argparse.Namespace) -> Figures:
    setup = Setup(env, kind)
    urls = await asyncio.to_thread(setup.start)
    fig = Figures(kind)
    try:
        t0 = time.perf_counter()
        load = await join_all(
            urls, args.clients, args.rooms, spread=(kind == "2 hubs"), placed=not kind.startswith("workers")
        )
        fig.clients = len(load.members)
        fig.notes.append(
            f"{fig.clients} clients connected and in their rooms in {time.perf_counter() - t0:.1f} s"
        )
        stop = asyncio.Event()
        typing = asyncio.create_task(load.type_at(args.rate, stop, random.Random(1)))
        await asyncio.sleep(args.warmup)
        procs, pg, me = setup.processes(), env.postgres_processes(), psutil.Process()
        cpu0 = (cpu_seconds(procs), cpu_seconds(pg), cpu_seconds([me]))
        load.measuring = True
        start = time.perf_counter()
        await asyncio.sleep(args.window)
        load.measuring = False
        dt = time.perf_counter() - start
        cpu1 = (cpu_seconds(procs), cpu_seconds(pg), cpu_seconds([me]))
        stop.set()
        await typing
        await asyncio.sleep(1.0)  # what is on its way arrives
        acks = load.window_acks
        fig.ops_per_s = acks / dt
        fig.hub_cores, fig.pg_cores, fig.me_cores = ((b - a) / dt for a, b in zip(cpu0, cpu1, strict=True))
        fig.hub_us_per_op = (cpu1[0] - cpu0[0]) / max(1, acks) * 1e6
        fig.pg_us_per_op = (cpu1[1] - cpu0[1]) / max(1, acks) * 1e6 if pg else float("nan")
        keys = [
            (t - room.sent[rev][0]) * 1e3
            for room in load.rooms
            for rev, t, _ in room.received
            if rev in room.sent
        ]
        fig.key_p50, fig.key_p99 = pct(keys, 50), pct(keys, 99)
        cur, cross = [], []
        for k, t, receiver in load.pres_received:
            sent = load.pres_sent.get(k)
            if sent is None:
                continue
            ms = (t - sent[0]) * 1e3
            cur.append(ms)
            if receiver.hub is not None and sent[1].hub is not None and receiver.hub != sent[1].hub:
                cross.append(ms)
        fig.cur_p50, fig.cur_p99 = pct(cur, 50), pct(cur, 99)
        if cross:
            fig.cross_p99, fig.cross_n = pct(cross, 99), len(cross)
        fig.errors = sum(m.errors for m in load.members)
        fig.skipped = load.skipped
        fig.notes.append(
            f"{acks:,} ops acked in {dt:.1f} s; {len(keys):,} keystroke and {len(cur):,} cursor samples"
            f" (p90 {pct(keys, 90):.1f} / {pct(cur, 90):.1f} ms, max {max(keys, default=0):.0f} /"
            f" {max(cur, default=0):.0f} ms); {load.skipped} edits skipped (that client had an op in flight);"
            f" errors {fig.errors}"
        )
        for m in load.members:
            await m.ws.close()
    finally:
        await asyncio.to_thread(setup.stop)
    return fig


async def scenario_b(env: Any, kind: str, args: argparse.Namespace) -> tuple[float, float, float, int]:
    """Saturating clients: (committed ops/s, hub CPU us per op, PostgreSQL CPU us per op, errors)."""
    setup = Setup(env, kind)
    urls = await asyncio.to_thread(setup.start)
    try:
        load = await join_all(urls, args.sat_clients, args.sat_clients // 2, spread=(kind == "2 hubs"))
        if len(urls) > 1 and kind != "2 hubs":
            assert all(len({m.hub for m in room.members}) == 1 for room in load.rooms)
        for m in load.members:
            m.saturating = True
            load.edit(m, presence=False)
        await asyncio.sleep(args.warmup)
        procs, pg = setup.processes(), env.postgres_processes()
        cpu0 = (cpu_seconds(procs), cpu_seconds(pg))
        a0 = sum(m.acks for m in load.members)
        start = time.perf_counter()
        await asyncio.sleep(args.sat_window)
        a1 = sum(m.acks for m in load.members)
        dt = time.perf_counter() - start
        cpu1 = (cpu_seconds(procs), cpu_seconds(pg))
        for m in load.members:
            m.saturating = False
        await asyncio.sleep(1.0)
        n = max(1, a1 - a0)
        errors = sum(m.errors for m in load.members)
        for m in load.members:
            await m.ws.close()
        return (a1 - a0) / dt, (cpu1[0] - cpu0[0]) / n * 1e6, (cpu1[1] - cpu0[1]) / n * 1e6, errors
    finally:
        await asyncio.to_thread(setup.stop)


def table(
    figs: list[Figures], sat: dict[str, tuple[float, float, float, int]], args: argparse.Namespace
) -> str:
    head = (
        "| set-up | clients / rooms | committed ops/s | keystroke to peer p50 / p99"
        " | cursor to peer p50 / p99 | cursor across hubs p99 | hub CPU per op | PostgreSQL CPU per op"
        " | cores: hubs / PostgreSQL / load |"
        f" saturated: ops/s (hub, PostgreSQL CPU per op) |\n|{'---|' * 10}"
    )
    rows = []
    for f in figs:
        cross = f"{f.cross_p99:.1f} ms ({f.cross_n:,})" if f.cross_p99 is not None else "-"
        s = sat.get(f.label)
        sat_text = f"{s[0]:,.0f} ({s[1]:.0f} us, {s[2]:.0f} us)" if s else "-"
        rows.append(
            f"| {f.label} | {f.clients:,} / {args.rooms} | {f.ops_per_s:,.0f}"
            f" | {f.key_p50:.1f} / {f.key_p99:.1f} ms | {f.cur_p50:.1f} / {f.cur_p99:.1f} ms | {cross}"
            f" | {f.hub_us_per_op:.0f} us | {f.pg_us_per_op:.0f} us"
            f" | {f.hub_cores:.2f} / {f.pg_cores:.2f} / {f.me_cores:.2f} | {sat_text} |"
        )
    for label, s in sat.items():
        if label not in {f.label for f in figs}:
            rows.append(
                f"| {label} | - | - | - | - | - | - | - | - | {s[0]:,.0f} ({s[1]:.0f} us, {s[2]:.0f} us) |"
            )
    return head + "\n" + "\n".join(rows)


async def run(args: argparse.Namespace) -> int:
    env = Env()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        await asyncio.to_thread(env.start_db)
        kinds = [k.strip() for k in args.setups.split(",")]
        if args.warm_up_clients:
            # a fresh PostgreSQL (and machine) is slow at first: whichever set-up came first paid
            # for it (a first run measured 1 hub at p99 3 s, and again alone at 30 ms); not reported
            print(f"warm-up: 1 hub, {args.warm_up_clients} clients, not reported", flush=True)
            warm = argparse.Namespace(**{**vars(args), "clients": args.warm_up_clients, "window": 3.0})
            warm.rooms = max(1, args.warm_up_clients // max(1, args.clients // args.rooms))
            await scenario_a(env, "1 hub", warm)
        figs: list[Figures] = []
        for kind in kinds:
            print(
                f"A. {kind}: {args.clients} clients / {args.rooms} rooms, {args.rate:g} edits/s", flush=True
            )
            figs.append(await scenario_a(env, kind, args))
            print("   " + "; ".join(figs[-1].notes), flush=True)
        sat: dict[str, tuple[float, float, float, int]] = {}
        if args.sat_clients:
            for kind in [*kinds, *(["2 hubs, each room on one"] if "2 hubs" in kinds else [])]:
                print(f"B. {kind}: {args.sat_clients} saturating clients", flush=True)
                sat[kind] = await scenario_b(env, kind, args)
                print(f"   {sat[kind][0]:,.0f} ops/s, errors {sat[kind][3]}", flush=True)
        print(f"\nSeveral hubs, {started}, {psutil.cpu_count()} CPUs\n")
        print(table(figs, sat, args))
        for f in figs:
            print(f"- {f.label}: " + "; ".join(f.notes))
    finally:
        await asyncio.to_thread(env.close)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=1500)
    ap.add_argument("--rooms", type=int, default=500)
    ap.add_argument("--rate", type=float, default=350.0, help="edits per second, all clients together")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--window", type=float, default=12.0)
    ap.add_argument("--sat-clients", type=int, default=60, help="scenario B's clients (0: skip it)")
    ap.add_argument("--sat-window", type=float, default=6.0)
    ap.add_argument("--setups", default="1 hub,2 hubs,workers 2")
    ap.add_argument("--warm-up-clients", type=int, default=300, help="a first round, not reported (0: none)")
    args = ap.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
