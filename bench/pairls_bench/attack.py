"""Scenario 11: typing under attack: two clients type in one room while another client sends its
worst within the hub's limits (``tests/support/attack.py``); their p99 ack latency, quiet and under
attack, interleaved in one run."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import psutil

from .env import Env, cpu_seconds
from .report import Results
from .scenario import Scenario


async def bench_attack(res: Results, env: Env, *, window: float) -> None:
    """Two typists' ack latency, quiet and while one client sends its worst (tests/support/attack.py)."""
    print("11. typing under attack: two clients type while another sends its worst", flush=True)
    from collab_server.config import HubConfig
    from tests.support.attack import Attacker, Limits, Typist
    from tests.support.attack import percentile as pct
    from tests.support.hubclient import Peer

    cfg = HubConfig()
    hub = env.hub()
    peers: list[Any] = []
    attacker = Attacker(hub.url, Limits.of(cfg))
    try:
        a, b = await Peer(hub.url, "Ada").connect(), await Peer(hub.url, "Bob").connect()
        peers += [a, b]
        room = await a.create_room("typing")
        await a.create_document("notes.md", "# notes\n" * 50)
        await b.join(room["room"], room["editorSecret"])
        typists = [Typist(await a.open("notes.md"), "A"), Typist(await b.open("notes.md"), "B")]
        t = time.perf_counter()
        await attacker.setup()
        res.note(f"attack set-up (a {attacker.big_size / 1e6:.1f} MB document, in ops that fit a frame): "
                 f"{time.perf_counter() - t:.1f} s")  # fmt: skip
        stop = asyncio.Event()
        typing = [asyncio.create_task(ty.run(stop)) for ty in typists]
        proc = psutil.Process(hub.proc.pid)
        windows: dict[str, list[tuple[float, float]]] = {"quiet": [], "attack": []}
        cpu: dict[str, float] = {"quiet": 0.0, "attack": 0.0}
        await asyncio.sleep(2.0)
        for phase in ("quiet", "attack", "quiet", "attack"):
            stop_attack = asyncio.Event()
            driver = asyncio.create_task(attacker.run(stop_attack)) if phase == "attack" else None
            c0, t0 = cpu_seconds([proc]), time.perf_counter()
            await asyncio.sleep(window)
            windows[phase].append((t0, time.perf_counter()))
            cpu[phase] += cpu_seconds([proc]) - c0
            if driver is not None:
                stop_attack.set()
                await driver
        stop.set()
        await asyncio.gather(*typing)
        da, db = typists[0].doc, typists[1].doc
        await da.wait_rev(db.rev)
        await db.wait_rev(da.rev)
        assert da.text == db.text, "the typists' documents did not converge"
        assert da.text.count("A") == typists[0].typed and da.text.count("B") == typists[1].typed
        errors = len(da.errors) + len(db.errors)
        closed = [p.name for p in (a, b, *attacker.peers) if p.closed is not None and p.closed.done()]
    finally:
        await attacker.close()
        for p in peers:
            await p.close()
        env.stop_hub(hub)
    hub_says = next((line.split(": ", 1)[1] for line in hub.stderr if "slowest message" in line), "?")
    lat = {ph: [x * 1e3 for ty in typists for w in ws for x in ty.window(*w)] for ph, ws in windows.items()}
    q99, a99 = pct(lat["quiet"], 0.99), pct(lat["attack"], 0.99)
    res.add(
        "11. typing under attack: two typists' ack latency while one client sends ops of maxOpComponents "
        "against the oldest base the budget allows, digests of a 16 MB document changed before each, and "
        "1 MiB frames of one-char inserts (p99 under attack / p99 quiet)",
        f"{a99:.1f} / {q99:.1f} ms (p50 {pct(lat['attack'], 0.5):.1f} / {pct(lat['quiet'], 0.5):.1f} ms)",
        "p99 under attack < 100 ms",
        a99 < 100,
    )
    res.note(
        f"attack: {dict(attacker.counts)} over {2 * window:g} s; {len(lat['quiet']):,} quiet and "
        f"{len(lat['attack']):,} attack samples ({window:g} s windows, interleaved twice); max under attack "
        f"{max(lat['attack']):.1f} ms; hub CPU quiet {cpu['quiet'] / (2 * window):.2f} cores, under attack "
        f"{cpu['attack'] / (2 * window):.2f}; typists' refused ops {errors}; connections closed: "
        f"{closed or 'none'}; the typists' documents converged with every keystroke; the hub: {hub_says}"
    )


async def run(res: Results, env: Env, args: argparse.Namespace) -> None:
    await bench_attack(res, env, window=args.attack_window)


def method(args: argparse.Namespace) -> list[str]:
    """This scenario's paragraph of the report's Method."""
    return [
        f"- 11: fresh hub, default limits; two clients (`tests/support/hubclient.py`) in one room each "
        "type one character every 50 ms mid-document, waiting for each ack; latency = send to ack. The "
        "attacker (`tests/support/attack.py`) is three connections of one client in its own room, each "
        "as fast as the hub reads: ops of `maxOpComponents` components (insert one, delete one, so the "
        "document keeps its size) against the oldest base the transform budget allows, after three "
        "keystrokes so it reaches three revisions back; a keystroke into a document as large as "
        "`maxDocumentBytes` allows (built in ops that fit a frame) then a `digest` of it; 1 MiB frames "
        "of one-character inserts (refused `too_large` as they are decoded) on a connection in no "
        f"room, ten at a time, then a ping. Quiet and attack windows of {args.attack_window:g} s, "
        "interleaved twice; the typists' documents must converge with every keystroke.",
    ]


SCENARIO = Scenario(
    key="attack",
    number=11,
    title="typing under attack",
    targets=("p99 under attack < 100 ms",),
    run=run,
    method=method,
)
