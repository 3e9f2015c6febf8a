"""Scenario 7: keystroke to peer editor: A's ``didChange`` to B's ``workspace/applyEdit`` through
both servers, the hub and the PostgreSQL commit, 10 edits/s per room, 5 rooms, timed at the
servers' pipes (:class:`KeystrokeRoom`); baselines: the same keystrokes with the test editors' own
time, the hub alone at the same shape, a plain LSP round trip."""

from __future__ import annotations

import argparse
import array
import asyncio
import fcntl
import json
import random
import shutil
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import psutil

from .client import make_room, ticker
from .env import Env, cpu_seconds, report_profile, run_time_ns, start_profiler
from .latency import Pair
from .lsp import METHOD, _bench_module, lsp_room, server_process, stop_editors
from .report import Results, percentile
from .scenario import Scenario


class KeystrokeRoom:
    """Editor A types one character at a time at a cursor; editor B (VS Code: applies the edit,
    answers ``applied: true``, reports the change) timestamps each ``workspace/applyEdit``.

    A keystroke is timed at the pipes, which is what pairls adds: from its ``didChange``
    written to A's server (after the test editor built it) to the ``applyEdit`` that brings it
    read from B's server (before the test editor parses it): :attr:`samples`.  The test editors
    are pygls clients in this process, whose own work on each message (the change's positions,
    cattrs, JSON) a real editor does natively; :attr:`full` times the same keystrokes from the
    key to B's handler, that work included."""

    TYPED = "value = compute(item, 42)\n"

    def __init__(self, a: Any, ua: str, b: Any, ub: str, cursor: int) -> None:
        self.a, self.ua, self.b, self.ub = a, ua, b, ub
        self.cursor = cursor
        self.base = len(b.text(ub))
        #: perf_counter at the key, at its didChange written; whether inside the window
        self.sent: list[tuple[float, float, bool]] = []
        self.seen = 0  # A's keystrokes B's buffer has
        self.edits = 0  # applyEdit requests B received
        self.measuring = False
        self.samples: list[float] = []  # ms, didChange written -> applyEdit read
        self.full: list[float] = []  # ms, key -> B's handler
        self.sample_at: list[float] = []  # each sample's keystroke, perf_counter at its key
        #: perf_counter when the body of B's server's last message was read off its stdout
        self.read_at = 0.0
        stdout: asyncio.StreamReader = b.stdout  # (pygls reads each body with readexactly)
        read = stdout.readexactly

        async def timed_read(n: int) -> bytes:
            body = await read(n)
            self.read_at = time.perf_counter()
            return body

        stdout.readexactly = timed_read  # type: ignore[method-assign]
        orig = b._apply_edit

        def timed(params: Any) -> Any:
            now, read_at = time.perf_counter(), self.read_at
            self.edits += 1
            answer = orig(params)  # B only receives: its buffer grows by A's characters
            n = len(b.text(ub)) - self.base
            while self.seen < n:
                self.arrived(self.seen, read_at, now)
                self.seen += 1
            return answer

        b._apply_edit = timed

    def pipe_ms(self, i: int, read_at: float) -> float:
        """Keystroke *i*'s time at the pipes, in ms: its didChange written to its applyEdit read."""
        return (read_at - self.sent[i][1]) * 1e3

    def arrived(self, i: int, read_at: float, now: float) -> None:
        """Keystroke *i* reached B: its applyEdit read at *read_at*, handled at *now*."""
        key_at, _, counted = self.sent[i]
        if counted:
            self.samples.append(self.pipe_ms(i, read_at))
            self.full.append((now - key_at) * 1e3)
            self.sample_at.append(key_at)

    def key(self) -> None:
        ch = self.TYPED[len(self.sent) % len(self.TYPED)]
        key_at = time.perf_counter()
        self.a.insert(self.ua, self.cursor, ch)  # VS Code: one didChange, written now
        self.sent.append((key_at, time.perf_counter(), self.measuring))
        self.cursor += 1


async def hub_latency_samples(
    url: str, rooms: int, rate: float, *, warmup: float, window: float
) -> list[float]:
    """Scenario 3's measurement (submit -> broadcast, ms) at another room count, on hub *url*."""
    rng = random.Random(7)
    text = "".join(rng.choice("abcdefgh \n") for _ in range(1000))
    pairs = []
    for _ in range(rooms):
        (typer, watcher), opened = await make_room(url, 2, path="notes.md", text=text)
        pairs.append(
            Pair(typer, watcher, "notes.md", opened["text"], opened["rev"], random.Random(rng.random()))
        )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(ticker(1 / rate, rng.random() / rate, p.edit, stop)) for p in pairs]
    await asyncio.sleep(warmup)
    for p in pairs:
        p.samples = []
    await asyncio.sleep(window)
    out = [x * 1e3 for p in pairs for x in p.samples or []]
    for p in pairs:
        p.samples = None
    stop.set()
    await asyncio.gather(*tasks)
    await asyncio.sleep(0.3)
    for p in pairs:
        await p.typer.close()
        await p.watcher.close()
    return out


async def bench_keystroke(
    res: Results,
    env: Env,
    *,
    rooms: int,
    rate: float,
    warmup: float,
    window: float,
    profile: Path | None,
    lines: int = 300,
) -> None:
    print(f"7. keystroke -> peer editor through pairls-lsp ({rooms} rooms x 2 servers, {rate:g} edits/s)",
          flush=True)  # fmt: skip
    from lsprotocol import types as T

    cb = _bench_module()
    hub = env.hub()
    eds: list[Any] = []
    spies: list[tuple[str, subprocess.Popen[bytes] | None, Path]] = []
    try:
        krooms: list[KeystrokeRoom] = []
        for r in range(rooms):
            text = cb.make_document(lines, seed=100 + r)
            a, b, ua, ub = await lsp_room(env, hub.url, f"k{r}", {"src/app.py": text}, "python")
            eds += [a, b]
            cursor = text.index("\n", len(text) // 2) + 1  # at the start of a line mid-file
            krooms.append(KeystrokeRoom(a, ua["src/app.py"], b, ub["src/app.py"], cursor))
        await asyncio.sleep(2.0)  # jedi's warm-up (first didOpen) is done
        # baseline: a plain LSP round trip (pairls.status, answered from memory), idle
        rt = []
        a0 = krooms[0].a
        for _ in range(200):
            t0 = time.perf_counter()
            await a0.client.workspace_execute_command_async(
                T.ExecuteCommandParams(command="pairls.status", arguments=[{}])
            )
            rt.append((time.perf_counter() - t0) * 1e3)
        stop = asyncio.Event()
        rng = random.Random(8)
        tasks = [asyncio.create_task(ticker(1 / rate, rng.random() / rate, k.key, stop)) for k in krooms]
        await asyncio.sleep(warmup)
        procs = [server_process(e) for e in eds]
        hub_p = psutil.Process(hub.proc.pid)
        me = psutil.Process()
        pg = env.postgres_processes()
        if profile is not None:
            for label, pid in (("hub", hub.proc.pid), ("lsp-a", procs[0].pid), ("lsp-b", procs[1].pid)):
                out = Path(f"{profile}.keystroke.{label}")
                spies.append((label, start_profiler(pid, window, out), out))
        cpu0 = (cpu_seconds(procs), cpu_seconds([hub_p]), cpu_seconds([me]), cpu_seconds(pg))
        typists0 = cpu_seconds(procs[0::2])  # (A of each room; B is procs[1::2])
        for k in krooms:
            k.measuring = True
        t0 = time.perf_counter()
        await asyncio.sleep(window)
        for k in krooms:
            k.measuring = False
        dt = time.perf_counter() - t0
        cpu1 = (cpu_seconds(procs), cpu_seconds([hub_p]), cpu_seconds([me]), cpu_seconds(pg))
        typists = cpu_seconds(procs[0::2]) - typists0
        stop.set()
        await asyncio.gather(*tasks)
        await asyncio.sleep(1.0)
        from tests.support.lsp_editor import settle

        for k in krooms:
            await settle([(k.a, k.ua), (k.b, k.ub)], "src/app.py", timeout=120)
            assert k.b.text(k.ub) == k.a.text(k.ua), "the peer editors did not converge"
        heals = [(await e.status())["heals"] for e in eds]
        lat = [x for k in krooms for x in k.samples]
        full = [x for k in krooms for x in k.full]
        keys = sum(1 for k in krooms for *_, c in k.sent if c)
        edits = sum(k.edits for k in krooms)
        total_keys = sum(len(k.sent) for k in krooms)
        await stop_editors(eds)
        eds = []
        # baseline: the hub alone, same shape (scenario 3's clients), same hub
        hub_only = await hub_latency_samples(hub.url, rooms, rate, warmup=2.0, window=min(window, 15.0))
        floors = {k: await wakeup_floor(rate, min(window, 10.0), c) for k, c in wakeup_commands().items()}
    finally:
        await stop_editors(eds)
        env.stop_hub(hub)
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    res.add(
        f"7. keystroke -> peer: A's didChange written to its pairls-lsp -> the applyEdit read from B's, "
        f"through 2 pairls-lsp + hub + PostgreSQL commit, {rooms} rooms x {rate:g} edits/s (p50 / p99)",
        f"{p50:.2f} / {p99:.2f} ms",
        "p50 <= 2 ms, p99 <= 10 ms",
        p50 <= 2 and p99 <= 10,
    )
    res.base(
        "the same keystrokes with the test editors' own time (pygls clients in the bench process: "
        "building the didChange, parsing the applyEdit), key -> B's handler (p50 / p99)",
        f"{percentile(full, 50):.2f} / {percentile(full, 99):.2f} ms",
    )
    res.base(
        f"hub only: submit -> broadcast, same hub, {rooms} rooms x {rate:g} ops/s (p50 / p99)",
        f"{percentile(hub_only, 50):.2f} / {percentile(hub_only, 99):.2f} ms",
    )
    res.base(
        "plain LSP round trip, `pairls.status` request to answer, one pairls-lsp, idle (p50 / p99)",
        f"{percentile(rt, 50):.2f} / {percentile(rt, 99):.2f} ms",
    )
    cpu = [(y - x) / dt for x, y in zip(cpu0, cpu1, strict=True)]
    per_key = cpu[0] / max(1, keys / dt) * 1e6 / 2
    typist_us = typists / max(1, keys) * 1e6
    peer_us = (cpu[0] * dt - typists) / max(1, keys) * 1e6
    res.add(
        f"7. pairls-lsp CPU per keystroke per server (A's and B's servers together, halved), "
        f"{rooms} rooms x {rate:g} edits/s",
        f"{per_key:.0f} us (typist {typist_us:.0f}, peer {peer_us:.0f})",
        "<= 200 us",
        per_key <= 200,
        baseline=f"the hub's CPU per keystroke, same window: {cpu[1] / max(1, keys / dt) * 1e6:.0f} us; "
        f"one wake-up of a bare process reading a didChange, {rate:g}/s: " + floor_text(floors),
    )
    res.note(
        f"keystroke: {len(lat):,} of {keys:,} keystrokes in the {dt:.0f} s window arrived (all arrive: "
        f"the rooms converged, checked after the run); p90 {percentile(lat, 90):.2f} ms, p99.9 "
        f"{percentile(lat, 99.9):.2f} ms, max {max(lat):.2f} ms; {edits:,} applyEdit requests for "
        f"{total_keys:,} keystrokes in all (fewer: several keystrokes in one edit); heals {sum(heals)}; "
        f"CPU (cores): {len(procs)} pairls-lsp {cpu[0]:.2f} ({cpu[0] / max(1, keys / dt) * 1e6 / 2:.0f} us "
        f"per keystroke per server), hub {cpu[1]:.2f}, bench process (10 pytest-lsp clients) {cpu[2]:.2f}, "
        "PostgreSQL " + (f"{cpu[3]:.2f}" if pg else "n/a (external)")
    )
    res.note(
        f"hub-only baseline of scenario 7: {len(hub_only):,} samples, p90 {percentile(hub_only, 90):.2f} ms, "
        f"max {max(hub_only):.2f} ms; LSP round trip: 200 sequential `pairls.status`, max {max(rt):.2f} ms"
    )
    for label, spy, out in spies:
        if spy is not None:
            spy.wait(60)
            print(f"  profile of {label}:")
            report_profile(out)


#: the bare readers of :func:`wakeup_floor`: each reads a didChange from its stdin and parses it;
#: Python's through a protocol, with no stream or task, as the language server reads
_PY_READER = (
    "import asyncio, json, sys\n"
    "class Reader(asyncio.Protocol):\n"
    "    def __init__(self, done):\n"
    "        self.done, self.buf = done, b''\n"
    "    def data_received(self, data):\n"
    "        *lines, self.buf = (self.buf + data).split(b'\\n')\n"
    "        for line in lines:\n"
    "            json.loads(line)\n"
    "    def connection_lost(self, exc):\n"
    "        self.done.set_result(None)\n"
    "async def main():\n"
    "    loop = asyncio.get_running_loop()\n"
    "    done = loop.create_future()\n"
    "    await loop.connect_read_pipe(lambda: Reader(done), sys.stdin.buffer)\n"
    "    await done\n"
)
_NODE_READER = (
    "let buf = '';"
    "process.stdin.on('data', (d) => { buf += d; let i;"
    " while ((i = buf.indexOf('\\n')) >= 0) { JSON.parse(buf.slice(0, i)); buf = buf.slice(i + 1); } });"
)


def wakeup_commands() -> dict[str, list[str]]:
    """The bare readers whose wake-up :func:`wakeup_floor` measures, by label: Python on uvloop (the
    language server's loop) and on asyncio's own loop; Node.js, Hocuspocus's runtime (the bench's
    Node 24 if installed, else a ``node`` on PATH); and ``cat``, a C program that only reads."""
    cmds = {
        "uvloop": [sys.executable, "-c", _PY_READER + "import uvloop; uvloop.run(main())\n"],
        "asyncio": [sys.executable, "-c", _PY_READER + "asyncio.run(main())\n"],
    }
    from .hocus import node_binary

    node = node_binary() if Path(node_binary()).is_file() else shutil.which("node")
    if node:
        cmds["node"] = [node, "-e", _NODE_READER]
    cat = shutil.which("cat")
    if cat:
        cmds["cat"] = [cat]
    return cmds


def _caught_up(fd: int, pid: int) -> bool:
    """Whether the reader *pid* has read all that was written to the pipe *fd* and sleeps again: the
    scheduler may run a wake-up's work after the window that caused it (on a virtual CPU the host
    has paused, as on a shared machine), and the count must hold all of it, and nothing of the
    warm-up's."""
    unread = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, unread)  # (a pipe answers it on either end)
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True  # (gone: the caller tells an exited reader by its return code)
    return unread[0] == 0 and state == "S"


async def wakeup_floor(rate: float, seconds: float, cmd: list[str]) -> float:
    """CPU (us) of one wake-up of a bare process (*cmd*, from :func:`wakeup_commands`) that reads a
    didChange from a pipe and parses it, nothing else, at *rate*: a keystroke wakes a language
    server at least once (the typist's: the didChange, the hub's ack; the peer's: the op, the
    editor's answers), whatever pygls or pairls do."""
    child = await asyncio.create_subprocess_exec(*cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    stdin = child.stdin
    assert stdin is not None
    await asyncio.sleep(1.0)
    change = {
        "range": {"start": {"line": 150, "character": 3}, "end": {"line": 150, "character": 3}},
        "text": "x",
    }
    params = {"textDocument": {"uri": "file:///w/src/app.py", "version": 9}, "contentChanges": [change]}
    line = (
        json.dumps({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": params}).encode() + b"\n"
    )
    wakes = max(1, int(rate * seconds))
    proc = psutil.Process(child.pid)

    def spent() -> float:  # (the scheduler's count where there is one, else psutil's ticks)
        ns = run_time_ns(child.pid)
        return ns / 1e9 if ns is not None else cpu_seconds([proc])

    async def wake(n: int) -> None:
        for _ in range(n):
            try:
                stdin.write(line)
                await stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                await child.wait()
                raise RuntimeError(f"the bare reader {cmd[0]} exited with {child.returncode}") from None
            await asyncio.sleep(1 / rate)

    pipe = stdin.transport.get_extra_info("pipe")

    async def settled() -> None:  # (the reader's work for what it was sent, all of it, then the count)
        for _ in range(1000):
            if _caught_up(pipe.fileno(), child.pid):
                return
            await asyncio.sleep(0.01)
        raise RuntimeError(f"the bare reader {cmd[0]} did not read what it was sent in 10 s")

    await wake(max(1, wakes // 5))  # not counted: the first reads page the runtime in (and JIT it)
    await settled()
    before = spent()
    await wake(wakes)
    await settled()
    used = spent() - before
    if child.returncode is not None:  # (a reader that failed would measure nothing)
        raise RuntimeError(f"the bare reader {cmd[0]} exited with {child.returncode}")
    stdin.close()
    await asyncio.wait_for(child.wait(), 10)
    return used / wakes * 1e6


_FLOOR_LABELS = {
    "uvloop": "Python on uvloop (the server's loop)",
    "asyncio": "on asyncio's own loop",
    "node": "Node.js (Hocuspocus's runtime)",
    "cat": "`cat` (C, reads only)",
}


def floor_text(floors: dict[str, float]) -> str:
    """The wake-up baselines, as the report gives them."""
    return ", ".join(f"{_FLOOR_LABELS[k]} {v:.0f} us" for k, v in floors.items())


async def run(res: Results, env: Env, args: argparse.Namespace) -> None:
    await bench_keystroke(
        res, env, rooms=args.keystroke_rooms, rate=10.0, warmup=3.0, window=args.keystroke_window,
        profile=Path(args.profile) if args.profile else None, lines=args.keystroke_lines,
    )  # fmt: skip


def method(args: argparse.Namespace) -> list[str]:
    """This scenario's paragraph of the report's Method (after the one 6-8 share)."""
    return [
        METHOD,
        f"- 7: {args.keystroke_rooms} rooms, each two servers (A and B, both VS Code at the boundary) "
        f"sharing a {args.keystroke_lines:,}-line Python module; "
        "A types `value = compute(item, 42)\\n` over and over at a "
        "cursor mid-file, one character per `didChange`, 10 per second (phases spread); latency = "
        "`perf_counter` just after A's `didChange` was written to the pipe to A's server (the test "
        "editor built it first) to the moment the body of the `workspace/applyEdit` that brings it was "
        "read off the pipe from B's server (before the test editor parses it): what pairls adds. The "
        "baseline beside it times the same keystrokes from the key to B's client handler (the test "
        "editors' own work included: the change's positions, pygls and cattrs, JSON, in this Python "
        "process; before 2026-12-01 that was the figure with the verdict). Path: A's server "
        "(EditorSync, DocumentClient, websocket) -> hub "
        "(sequencer, PostgreSQL commit, broadcast) -> B's server -> B. An applyEdit carrying k "
        "keystrokes gives k samples, each from its own send time. Every keystroke of the window "
        f"counts; {args.keystroke_window:g} s window after 3 s warm-up; the rooms must converge after. "
        "A's server guesses its cursor from each change, as in real use, and tells the hub when it "
        "moved other than by the typing (peers move a typist's cursor past what it types when the op "
        "arrives; while typing, a presence goes once a second); B's server notifies the cursors and "
        "asks VS Code to refresh inlay hints (at most every 50 ms). CPU per keystroke per server: "
        "all servers' CPU time in the window / keystrokes / 2; typist: the A servers' / keystrokes, "
        "peer: the B servers'. Baselines: scenario 3's hub-only measurement on the same hub at the "
        "same shape, 15 s; 200 sequential `pairls.status` requests on one idle server; the hub's CPU "
        "per keystroke; the CPU of one wake-up of a bare process that reads each line from its stdin and "
        "parses it as JSON, sent the same didChange JSON at the keystroke rate for 10 s each (after 2 s "
        "not counted), timed by the kernel's count in ns (the process's CPU clock, not psutil's 10 ms "
        "ticks): Python (an asyncio protocol on the pipe, with no stream or task, as the servers read) on "
        "uvloop as the servers run and on asyncio's own loop, Node.js (the "
        "runtime of Hocuspocus, scenario 13) and `cat` (C, reads only: what the kernel and the machine "
        "charge any process for a wake-up).",
    ]


SCENARIO = Scenario(
    key="keystroke",
    number=7,
    title="keystroke -> peer editor through two pairls-lsp",
    targets=(
        "p50 <= 2 ms, p99 <= 10 ms at 10 edits/s per room",
        "language-server CPU per keystroke <= 200 us",
    ),
    run=run,
    method=method,
)
