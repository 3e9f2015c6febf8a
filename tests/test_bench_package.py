"""bench/pairls_bench, the package ``make bench`` runs (no servers here): every scenario module is
one the command line lists and can run alone, and the verdict table marks each target pass or
MISS with the baseline measured beside it."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import pairls_bench  # noqa: E402
from pairls_bench import cli, hocus  # noqa: E402
from pairls_bench.report import Results, render, table  # noqa: E402
from pairls_bench.scenario import Scenario  # noqa: E402


def _scenario_modules() -> dict[str, Scenario]:
    found = {}
    for info in pkgutil.iter_modules(pairls_bench.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"pairls_bench.{info.name}")
        if isinstance(getattr(mod, "SCENARIO", None), Scenario):
            found[info.name] = mod.SCENARIO
    return found


def test_every_scenario_module_is_listed_by_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    modules = _scenario_modules()
    assert len(modules) == 13
    assert sorted(sc.number for sc in cli.SCENARIOS) == list(range(1, 14))
    assert {sc.key for sc in modules.values()} == {sc.key for sc in cli.SCENARIOS}
    assert cli.main(["--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == [sc.key for sc in cli.SCENARIOS]
    for name, sc in modules.items():
        # each runs alone, by its key or by its module's name
        assert cli.select([sc.key]) == [sc] == cli.select([name])
        assert sc.targets and all(
            t in next(x for x in listed if x.startswith(sc.key + " ")) for t in sc.targets
        )


def test_scenarios_run_in_their_order_and_an_unknown_name_is_refused() -> None:
    assert cli.select([]) == cli.SCENARIOS
    assert [sc.key for sc in cli.select(["keystroke", "core", "lsp_memory"])] == [
        "core",
        "keystroke",
        "lsp-memory",
    ]
    with pytest.raises(SystemExit, match="unknown scenario nope"):
        cli.select(["core", "nope"])


def test_the_verdict_table_marks_pass_and_miss_with_each_targets_baseline() -> None:
    res = Results()
    res.scenario = 2
    res.add("2. durable ops/s", "25,000 ops/s", ">= 20,000 ops/s", True)
    res.base("PostgreSQL INSERT + COMMIT, 1 connection", "3,900 commits/s")
    res.base("PostgreSQL INSERT + COMMIT, 10 connections", "9,900 commits/s")
    res.scenario = 7
    res.add("7. keystroke -> peer (p50 / p99)", "2.50 / 9.00 ms", "p50 <= 2 ms, p99 <= 10 ms", False)
    res.add("7. pairls-lsp CPU per keystroke", "150 us", "<= 200 us", True, baseline="hub 90 us")
    res.add("7. a figure without a target", "3", "none", None)
    res.base("hub only (p50 / p99)", "1.90 / 2.89 ms")
    rows = table(res)[2:]
    assert rows == [
        "| 2 | durable ops/s | 25,000 ops/s | >= 20,000 ops/s | pass | PostgreSQL INSERT + COMMIT, "
        "1 connection: 3,900 commits/s; PostgreSQL INSERT + COMMIT, 10 connections: 9,900 commits/s |",
        "| 7 | keystroke -> peer (p50 / p99) | 2.50 / 9.00 ms | p50 <= 2 ms, p99 <= 10 ms | **MISS** | "
        "hub only (p50 / p99): 1.90 / 2.89 ms |",
        "| 7 | pairls-lsp CPU per keystroke | 150 us | <= 200 us | pass | hub 90 us |",
        "| 7 | a figure without a target | 3 | none | - | (as above) |",
    ]
    args = cli.parser().parse_args([])
    chosen = cli.select(["completion", "keystroke", "memory"])
    text = render(res, chosen, args, "now", ["a machine"])
    assert text.count("- 6-8: the language server") == 1  # the paragraph 6-8 share, once
    for n in (5, 6, 7):
        assert f"\n- {n}: " in text
    assert "\n- 2: " not in text  # only the Method of what ran
    assert "- a machine" in text


def _hocus_run(server: str, p50: float, p99: float, cpu: float) -> dict[str, object]:
    return {"server": server, "shape": "a", "valid": True, "p50_ms": p50, "p99_ms": p99,
            "server_us_per_edit": cpu, "db_us_per_edit": 10.0, "acks_per_s": 1000.0,
            "load_cpu_s": 1.2, "window_s": 12.0}  # fmt: skip


def test_hocuspocus_ratios_are_rows_of_the_table_with_hocuspocus_as_their_baseline() -> None:
    res = Results()
    res.scenario = 13
    results = [_hocus_run("pairls", 3.0, 12.0, 400.0), _hocus_run("hocus-mem", 2.0, 10.0, 400.0)]
    hocus.add_rows(res, results, [hocus.SHAPES["a"], hocus.SHAPES["b"]])
    shape = "200 clients in 100 rooms, 1,000 edits/s"
    assert [r.what for r in res.rows[:3]] == [
        f"13. edit to peer p50, pairls / Hocuspocus in memory, {shape}",
        f"13. edit to peer p99, pairls / Hocuspocus in memory, {shape}",
        f"13. hub CPU per edit, pairls / Hocuspocus in memory, {shape}",
    ]
    assert [(r.measured, r.target, r.verdict, r.baseline) for r in res.rows[:3]] == [
        ("1.50x (pairls 3 ms)", "<= 1.5x", "pass", "Hocuspocus in memory 2 ms"),
        ("1.20x (pairls 12 ms)", "<= 1x", "**MISS**", "Hocuspocus in memory 10 ms"),
        ("1.00x (pairls 400 us)", "<= 1x", "pass", "Hocuspocus in memory 400 us"),
    ]
    # shape b did not run: its targets are in the table, without a verdict
    assert [(r.measured, r.verdict) for r in res.rows[3:]] == [("no valid run", "-")] * 3


def test_the_hub_without_its_commit_is_a_note_beside_the_targets_not_a_row_of_its_own() -> None:
    res = Results()
    res.scenario = 13
    results = [
        _hocus_run("pairls", 3.0, 12.0, 400.0),
        _hocus_run("pairls-uncommitted", 1.0, 5.0, 300.0),
        _hocus_run("hocus-mem", 2.0, 10.0, 200.0),
    ]
    hocus.add_rows(res, results, [hocus.SHAPES["a"]])
    assert len(res.rows) == 3  # the targets only
    baseline = [n for n in res.notes if "pairls without its commit / Hocuspocus in memory" in n]
    assert len(baseline) == 1
    assert "edit to peer p50 0.50x (1 / 2 ms)" in baseline[0]
    assert "hub CPU per edit 1.50x (300 / 200 us)" in baseline[0]
    # what the p50 target leaves the commit: 1.5 x 2 ms - 1 ms; what it added: 3 - 1 ms
    assert "the p50 target leaves the commit 2.00 ms (1.5 x 2.00 - 1.00)" in baseline[0]
    assert "the commit added 2.00 ms to pairls' p50" in baseline[0]


def test_the_hubs_commits_are_in_its_note() -> None:
    res = Results()
    res.scenario = 13
    mine = {**_hocus_run("pairls", 3.0, 12.0, 400.0), "commit_ms": 0.69, "ops_per_commit": 9.55}
    results = [mine, _hocus_run("hocus-mem", 2.0, 10.0, 200.0)]
    hocus.add_rows(res, results, [hocus.SHAPES["a"]])
    pairls = next(n for n in res.notes if ", pairls (PostgreSQL before ack), " in n)
    assert "its group commits over the whole run: 0.69 ms per statement (mean), 9.6 ops each" in pairls
    hocuspocus = next(n for n in res.notes if ", Hocuspocus in memory, " in n)
    assert "commits" not in hocuspocus


def test_the_entry_points_parse_as_before() -> None:
    args = cli.parser().parse_args(["--only", "core,memory", "--conns", "300", "--out", ""])
    assert (args.only, args.conns, args.out, args.scenarios) == ("core,memory", 300, "", [])
    assert isinstance(cli.parser().parse_args(["keystroke"]), argparse.Namespace)


class _Reports:
    """What scenario 8 asks of an editor: its server's ``pairls.status``."""

    def __init__(self, status: dict[str, object]) -> None:
        self._status = status

    async def status(self) -> dict[str, object]:
        return self._status


async def test_a_jedi_worker_is_measured_apart_when_the_server_gives_its_pid() -> None:
    from pairls_bench.lsp import jedi_worker_rss

    rss = await jedi_worker_rss(_Reports({"jediPid": os.getpid()}))
    assert rss is not None and rss > 1 << 20
    assert await jedi_worker_rss(_Reports({})) is None  # jedi in the server's own process


async def test_a_jedi_workers_own_subprocess_is_counted_with_it() -> None:
    """jedi starts a subprocess of its own under the worker: scenario 8 counts it with the worker."""
    import asyncio

    import psutil
    from pairls_bench.lsp import jedi_worker_rss

    # a "worker" with a child of its own; both idle (the child says so) when measured
    child_code = "import time; print('ready', flush=True); time.sleep(60)"
    code = (
        f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', {child_code!r}]); "
        "print(p.pid, flush=True); sys.stdin.read()"
    )
    pipe = asyncio.subprocess.PIPE
    worker = await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdin=pipe, stdout=pipe)
    try:
        assert worker.stdout is not None
        child = psutil.Process(int(await worker.stdout.readline()))
        assert await worker.stdout.readline() == b"ready\n"
        rss = await jedi_worker_rss(_Reports({"jediPid": worker.pid}))
        alone, child_rss = psutil.Process(worker.pid).memory_info().rss, child.memory_info().rss
        assert rss is not None and rss > alone + child_rss // 2
    finally:
        for c in psutil.Process(worker.pid).children(recursive=True):
            c.kill()
        worker.kill()
        await worker.wait()


def test_an_invite_goes_through_the_proxy_or_the_scenario_stops() -> None:
    """Scenarios 9 and 10 join through a proxy they cut: an invite the swap missed would
    join the hub directly, and the scenario would measure a network that never failed."""
    from pairls_bench.client import through

    hub, proxy = "ws://127.0.0.1:4000", "ws://127.0.0.1:5000"
    assert through("http://127.0.0.1:4000/room/r1#s", hub, proxy) == "http://127.0.0.1:5000/room/r1#s"
    assert through("ws://127.0.0.1:4000/room/r1#s", hub, proxy) == "ws://127.0.0.1:5000/room/r1#s"
    with pytest.raises(AssertionError):
        through("http://127.0.0.1:40001/room/r1#s", hub, proxy)


def test_scenario_13_reverses_the_servers_order_every_other_round(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []

    def one_run(env: object, node: str, server: str, shape: object, args: object) -> dict[str, object]:
        ran.append(server)
        return {"valid": True}

    monkeypatch.setattr(hocus, "one_run", one_run)
    args = argparse.Namespace(rounds=3, first_run=0, warmup=1.0, window=1.0)
    hocus.measure(None, "node", [hocus.SHAPES["a"]], ["pairls", "hocus-mem", "hocus-db"], args)
    assert ran == [
        "pairls", "hocus-mem", "hocus-db",
        "hocus-db", "hocus-mem", "pairls",
        "pairls", "hocus-mem", "hocus-db",
    ]  # fmt: skip


async def test_scenario_7s_bare_readers_each_read_and_are_timed_by_the_scheduler() -> None:
    """The wake-up baselines: every reader (Python on both loops, Node.js where installed, ``cat``)
    stays up while it is fed didChange lines, and its CPU comes from the kernel's count for all its
    threads in ns (its CPU clock), on the scale psutil's 10 ms ticks give a busy process."""
    import asyncio

    import psutil
    from pairls_bench.env import run_time_ns
    from pairls_bench.keystroke import wakeup_commands, wakeup_floor

    cmds = wakeup_commands()
    assert {"uvloop", "asyncio", "cat"} <= cmds.keys()
    for name, cmd in cmds.items():
        floor = await wakeup_floor(50.0, 0.2, cmd)
        assert floor > 0, name
    # a reader the scheduler runs late (here: it sleeps half a second after the warm-up, through the
    # whole window, as a virtual CPU the host pauses does) has its window's work counted all the same
    late = (
        "import json, sys, time\n"
        "for i, line in enumerate(sys.stdin):\n"
        "    json.loads(line)\n"
        "    if i == 1: time.sleep(0.5)\n"
    )
    assert await wakeup_floor(50.0, 0.2, [sys.executable, "-c", late]) > 0
    # a reader that dies is an error, not a floor of zero
    with pytest.raises(RuntimeError, match="exited"):
        await wakeup_floor(50.0, 0.2, [sys.executable, "-c", "import sys; sys.stdin.readline()"])

    # (the work in a thread of its own, which goes on living: the main thread's count alone is not it)
    spin = (
        "import threading, time\n"
        "def spin():\n"
        "    t = time.thread_time()\n"
        "    while time.thread_time() - t < 0.5: pass\n"
        "    threading.Event().wait()\n"
        "threading.Thread(target=spin, daemon=True).start()\n"
        "input()\n"
    )
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", spin, stdin=asyncio.subprocess.PIPE)
    try:
        await asyncio.sleep(1.0)
        ns, ticks = run_time_ns(child.pid), psutil.Process(child.pid).cpu_times()
        assert ns is not None
        assert abs(ns / 1e9 - (ticks.user + ticks.system)) < 0.1
    finally:
        child.kill()
        await child.wait()
    assert run_time_ns(child.pid) is None
