"""Scenario 9: keystroke to peer editor while, on the same hub, a server leaves and rejoins, pastes
larger than a frame go in pieces, the network is cut and storms; quiet and detour windows
interleaved in one run.

The detours run in a process of their own (``python -m pairls_bench.detours HUB_URL TMP``, this
module), with their two editors and the TCP proxy: the bench process that times the keystrokes
then does none of their work (a 1.5 MB paste is a 1.5 MB LSP message for an editor to write and
read), and what its event loop's lag adds to a sample is the same in both phases.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil

from . import ROOT
from .client import _split, through, ticker
from .env import Env, cpu_seconds
from .keystroke import KeystrokeRoom
from .lsp import METHOD, _bench_module, lsp_editor, lsp_room, server_process, stop_editors
from .report import Results, percentile
from .scenario import Scenario


class PhasedKeystrokeRoom(KeystrokeRoom):
    """A :class:`KeystrokeRoom` whose samples are filed by the phase they were typed in."""

    def __init__(self, a: Any, ua: str, b: Any, ub: str, cursor: int) -> None:
        super().__init__(a, ua, b, ub, cursor)
        self.phase: str | None = None
        self.by_phase: dict[str, list[float]] = {}
        self.phases: list[str | None] = []

    def arrived(self, i: int, read_at: float, now: float) -> None:
        super().arrived(i, read_at, now)
        label = self.phases[i]
        if label is not None:
            self.by_phase.setdefault(label, []).append(self.pipe_ms(i, read_at))

    def key(self) -> None:
        self.phases.append(self.phase)
        super().key()


#: how the detour process's lines to the bench begin (the editors may print lines of their own)
SAYS = "detours: "
COUNTS = ("pastes", "cuts", "storms", "rejoins", "heals")


async def detours(
    env: Any, hub_url: str, proxy: Any, stop: asyncio.Event, counts: dict[str, int], ready: Callable[[], None]
) -> None:
    """The everyday detours, over and over, in a room of their own on the same hub: a server
    leaves and joins again, pastes larger than a hub frame, network cuts, reconnect storms.
    *ready* is called once the room is set up and the first step begins; *env* is anything
    with a ``tmp`` directory for the editors' workspaces."""
    from tests.support.lsp_editor import settle

    c = await lsp_editor(env, "Cy", hub_url)
    d = await lsp_editor(env, "Dee", proxy.url)
    try:
        uc = c.uri("big.txt")
        c.open(uc, "start\n", "plaintext")
        room = await c.command("pairls.createRoom", {"name": "detours"})
        inv = through(room["invite"], hub_url, proxy.url)
        await d.command("pairls.joinRoom", {"invite": inv})
        ud = d.uri("big.txt")
        d.open(ud, "", "plaintext")
        await settle([(c, uc), (d, ud)], "big.txt", timeout=120)
        big = ("detour line with some text in it, ünïcode and 😀\n" * 30_000)[:1_500_000]
        # about what a busy room goes through: a big paste now and then, a flaky network, a
        # colleague who leaves and comes back
        step = 0
        ready()
        while not stop.is_set():
            step += 1
            if step % 8 == 2:
                c.insert(uc, 0, big)  # one change over the hub's 1 MiB frame
                counts["pastes"] += 1
            elif step % 8 == 6 and len(c.text(uc)) > len(big):
                c.delete(uc, 0, len(big))
            if step % 4 == 0:
                proxy.cut()
                await asyncio.sleep(0.5)
                proxy.restore()
                counts["cuts"] += 1
            if step % 10 == 5:
                for _ in range(5):  # a reconnect storm
                    proxy.cut()
                    await asyncio.sleep(0.05)
                    proxy.restore()
                    await asyncio.sleep(0.05)
                counts["storms"] += 1
            if step % 7 == 0:
                d.close(ud)
                await d.command("pairls.leaveRoom", {})
                await d.command("pairls.joinRoom", {"invite": inv})
                d.open(ud, "", "plaintext")
                counts["rejoins"] += 1
            d.append(ud, f"d{step} ")
            await asyncio.sleep(1.0)
        await settle([(c, uc), (d, ud)], "big.txt", timeout=300)
        counts["heals"] = sum([(await e.status())["heals"] for e in (c, d)])
    finally:
        await stop_editors([c, d])


async def detour_process(hub_url: str, tmp: Path) -> None:
    """The detours as a process of their own: a line ``detours: ready`` once under way, until a
    line on stdin (or its end); then ``detours: {counts as JSON}``."""
    from tests.support.proxy import TcpProxy

    host, port = _split(hub_url)
    proxy = await TcpProxy(host, port).start()
    counts = dict.fromkeys(COUNTS, 0)
    stop = asyncio.Event()
    env = SimpleNamespace(tmp=tmp)  # (all lsp_editor takes of an Env)
    driver = asyncio.create_task(
        detours(env, hub_url, proxy, stop, counts, lambda: print(f"{SAYS}ready", flush=True))
    )
    stdin = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    told = asyncio.ensure_future(stdin.readline())
    try:
        await asyncio.wait([driver, told], return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        await driver  # (a failure of the detours fails this process, and so the scenario)
    finally:
        told.cancel()
        await proxy.close()
    print(f"{SAYS}{json.dumps(counts)}", flush=True)


class DetourProcess:
    """The bench's side of :func:`detour_process`: its stdout is read all along (what else the
    child prints must never fill the pipe and stall it), its own lines are kept for :meth:`_said`."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._pump = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := (await self.proc.stdout.readline()).decode():
            if line.startswith(SAYS):
                self._lines.put_nowait(line[len(SAYS) :].strip())
        self._lines.put_nowait(None)  # (the child closed its stdout: it ended)

    @classmethod
    async def start(cls, hub_url: str, tmp: Path) -> DetourProcess:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "bench"), str(ROOT)]))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pairls_bench.detours", hub_url, str(tmp),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        self = cls(proc)
        said = await self._said(300)
        if said != "ready":
            raise RuntimeError(f"the detour process did not get under way: {said!r}")
        return self

    def processes(self) -> list[psutil.Process]:
        """It and its children (the detour editors' servers)."""
        me = psutil.Process(self.proc.pid)
        return [me, *me.children(recursive=True)]

    async def _said(self, timeout: float) -> str:
        line = await asyncio.wait_for(self._lines.get(), timeout)
        if line is None:
            code = await self.proc.wait()
            raise RuntimeError(f"the detour process ended ({code}) before it said what it did")
        return line

    async def kill(self) -> None:
        """End it without asking (the scenario failed: its error is the one to see)."""
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._pump.cancel()

    async def stop(self, counts: dict[str, int]) -> None:
        """Tell it to stop; add what it did to *counts*."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"stop\n")
        await self.proc.stdin.drain()
        done = json.loads(await self._said(600))
        code = await asyncio.wait_for(self.proc.wait(), 60)
        await self._pump
        if code != 0:
            raise RuntimeError(f"the detour process exited with {code}")
        for key in COUNTS:
            counts[key] += done[key]


async def bench_keystroke_detours(res: Results, env: Env, *, rooms: int, rate: float, window: float) -> None:
    print(f"9. keystroke -> peer editor while detours happen on the same hub ({rooms} rooms)", flush=True)
    from tests.support.lsp_editor import settle

    cb = _bench_module()
    hub = env.hub()
    eds: list[Any] = []
    counts = dict.fromkeys(COUNTS, 0)
    tasks: list[asyncio.Task[None]] = []
    driver: DetourProcess | None = None
    try:
        krooms: list[PhasedKeystrokeRoom] = []
        for r in range(rooms):
            text = cb.make_document(300, seed=200 + r)
            a, b, ua, ub = await lsp_room(env, hub.url, f"d{r}", {"src/app.py": text}, "python")
            eds += [a, b]
            cursor = text.index("\n", len(text) // 2) + 1
            krooms.append(PhasedKeystrokeRoom(a, ua["src/app.py"], b, ub["src/app.py"], cursor))
        await asyncio.sleep(2.0)
        stop = asyncio.Event()
        rng = random.Random(9)
        tasks = [asyncio.create_task(ticker(1 / rate, rng.random() / rate, k.key, stop)) for k in krooms]
        await asyncio.sleep(2.0)
        # where the time goes: this process's event loop (it times the keystrokes), and the CPU
        # of the hub, of this process, of the servers
        lags: dict[str, list[float]] = {"quiet": [], "detours": []}
        lag_task = asyncio.create_task(loop_lag(lambda: krooms[0].phase, lags, stop))
        me, hub_p = psutil.Process(), psutil.Process(hub.proc.pid)
        servers = [server_process(e) for e in eds]
        pg = env.postgres_processes()
        cpu = {
            ph: {"hub": 0.0, "bench": 0.0, "servers": 0.0, "detours": 0.0, "postgres": 0.0}
            for ph in ("quiet", "detours")
        }
        # quiet and detours, twice each, interleaved (the machine drifts; both see the drift)
        for phase in ("quiet", "detours", "quiet", "detours"):
            if phase == "detours":  # (returns once the detours are under way)
                driver = await DetourProcess.start(hub.url, Path(tempfile.mkdtemp(dir=env.tmp)))
            # the detour process with its editors' servers (on this machine's cores too)
            away = driver.processes() if driver is not None else []
            for k in krooms:
                k.phase = phase
            c0 = {
                "hub": cpu_seconds([hub_p]), "bench": cpu_seconds([me]), "servers": cpu_seconds(servers),
                "detours": cpu_seconds(away), "postgres": cpu_seconds(pg),
            }  # fmt: skip
            await asyncio.sleep(window)
            c1 = {
                "hub": cpu_seconds([hub_p]), "bench": cpu_seconds([me]), "servers": cpu_seconds(servers),
                "detours": cpu_seconds(away), "postgres": cpu_seconds(pg),
            }  # fmt: skip
            for k in krooms:
                k.phase = None
            for who in c0:
                cpu[phase][who] += (c1[who] - c0[who]) / (2 * window)
            if driver is not None:
                await driver.stop(counts)
                driver = None
        stop.set()
        await asyncio.gather(*tasks, lag_task)
        await asyncio.sleep(1.0)
        for k in krooms:
            await settle([(k.a, k.ua), (k.b, k.ub)], "src/app.py", timeout=120)
            assert k.b.text(k.ub) == k.a.text(k.ua), "the peer editors did not converge"
        heals = sum([(await e.status())["heals"] for e in eds]) + counts["heals"]
    finally:
        for t in tasks:
            t.cancel()
        if driver is not None:
            await driver.kill()
        await stop_editors(eds)
        env.stop_hub(hub)
    hub_says = next((line.split(": ", 1)[1] for line in hub.stderr if "slowest message" in line), "?")
    quiet = [x for k in krooms for x in k.by_phase.get("quiet", [])]
    busy = [x for k in krooms for x in k.by_phase.get("detours", [])]
    q99, d99 = percentile(quiet, 99), percentile(busy, 99)
    res.add(
        "9. keystroke -> peer editor's applyEdit while, on the same hub, a server leaves and rejoins, "
        "1.5 MB pastes go in pieces, the network is cut and storms (p99 with detours / p99 quiet)",
        f"{d99:.2f} / {q99:.2f} ms = {d99 / q99:.2f}x (p50 {percentile(busy, 50):.2f} / "
        f"{percentile(quiet, 50):.2f} ms)",
        "p99 with detours <= 2x the quiet p99 of the same run",
        d99 <= 2 * q99,
    )
    res.note(
        f"detours: {counts['pastes']} pastes of 1.5 MB, {counts['cuts']} cuts, {counts['storms']} "
        f"reconnect storms (5 cuts each), {counts['rejoins']} leave-and-rejoins; {len(quiet):,} quiet and "
        f"{len(busy):,} detour samples ({window:g} s windows, quiet and detours interleaved twice); "
        f"heals {heals}; every room converged"
    )
    res.note(
        "detours, where the time goes (quiet / with detours): this bench process's event loop lag "
        f"p99 {percentile(lags['quiet'], 99):.1f} / {percentile(lags['detours'], 99):.1f} ms, max "
        f"{max(lags['quiet']):.1f} / {max(lags['detours']):.1f} ms (it timestamps the keystrokes; the "
        "detours run in a process of their own); CPU in cores: hub "
        f"{cpu['quiet']['hub']:.2f} / {cpu['detours']['hub']:.2f}, the typing rooms' {len(servers)} servers "
        f"{cpu['quiet']['servers']:.2f} / {cpu['detours']['servers']:.2f}, bench process "
        f"{cpu['quiet']['bench']:.2f} / {cpu['detours']['bench']:.2f}, the detour process with its two "
        f"servers - / {cpu['detours']['detours']:.2f}, PostgreSQL {cpu['quiet']['postgres']:.2f} / "
        f"{cpu['detours']['postgres']:.2f}; load average "
        f"{os.getloadavg()[0]:.1f}; the hub over the whole run: {hub_says}"
    )


async def loop_lag(
    phase: Callable[[], str | None], out: dict[str, list[float]], stop: asyncio.Event, every: float = 0.005
) -> None:
    """How late this event loop wakes a 5 ms sleep, in ms, filed by *phase*."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t0 = loop.time()
        await asyncio.sleep(every)
        label = phase()
        if label in out:
            out[label].append((loop.time() - t0 - every) * 1e3)


async def run(res: Results, env: Env, args: argparse.Namespace) -> None:
    await bench_keystroke_detours(res, env, rooms=args.keystroke_rooms, rate=10.0, window=args.detour_window)


def method(args: argparse.Namespace) -> list[str]:
    """This scenario's paragraph of the report's Method (after the one 6-8 share)."""
    return [
        METHOD,
        f"- 9: fresh hub; {args.keystroke_rooms} rooms as in 7 (two servers sharing a 300-line Python "
        "module, A typing 10 characters a second, timed the same way); beside them, on the same hub, a "
        "room of two more servers (C directly, D through a TCP proxy) going through the everyday detours "
        "over and over, a step a second: a 1.5 MB paste (over the hub's 1 MiB frame) every 8th step and "
        "its deletion 4 steps later, a 0.5 s network cut every 4th, a reconnect storm (5 cuts of 50 ms) "
        "every 10th, D leaving and rejoining every 7th, D typing at each. Windows of "
        f"{args.detour_window:g} s, quiet and with detours, interleaved twice; a keystroke's sample is "
        "filed under the window it was typed in; every room must converge after. The detours run in "
        "a process of their own (their editors and the proxy), so the bench process that times the "
        "keystrokes does none of their work. Also measured per phase: this bench process's event-loop "
        "lag (how late a 5 ms sleep wakes) and the CPU of the hub, the typing rooms' servers and this "
        "process.",
    ]


SCENARIO = Scenario(
    key="detours",
    number=9,
    title="keystrokes during detours",
    targets=("p99 with detours <= 2x the quiet p99 of the same run",),
    run=run,
    method=method,
)


if __name__ == "__main__":
    asyncio.run(detour_process(sys.argv[1], Path(sys.argv[2])))
