"""The bench's command line: which scenarios run, with which settings, and the report.

.venv/bin/python bench/bench.py                       # all of them (make bench)
.venv/bin/python bench/bench.py keystroke lsp-memory  # some (or --only keystroke,lsp-memory)
.venv/bin/python bench/bench.py --list                # names, numbers, targets
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from pathlib import Path

from . import (
    ROOT,
    attack,
    catch_up,
    cold_open,
    completion,
    core,
    detours,
    history,
    hocus,
    keystroke,
    latency,
    lsp_memory,
    memory,
    throughput,
)
from .env import Env
from .report import Results, machine_notes, render, write_report
from .scenario import Scenario

#: every scenario, in the order ``make bench`` runs them
SCENARIOS: list[Scenario] = [
    m.SCENARIO
    for m in (
        core,
        throughput,
        latency,
        cold_open,
        memory,
        completion,
        keystroke,
        lsp_memory,
        catch_up,
        detours,
        attack,
        history,
        hocus,
    )
]


def select(names: list[str]) -> list[Scenario]:
    """The scenarios *names* ask for (keys or module names), in run order; all for none."""
    if not names:
        return list(SCENARIOS)
    by_name = {sc.key: sc for sc in SCENARIOS}
    by_name.update({sc.run.__module__.rpartition(".")[2]: sc for sc in SCENARIOS})
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown scenario {', '.join(unknown)}; --list shows them")
    wanted = {by_name[n].key for n in names}
    return [sc for sc in SCENARIOS if sc.key in wanted]


def listing() -> str:
    """One line per scenario: its key, its number and title, its targets."""
    return "\n".join(f"{sc.key:<11} {sc.number:>2}. {sc.title}: {'; '.join(sc.targets)}" for sc in SCENARIOS)


async def run(args: argparse.Namespace) -> int:
    names = [n for arg in [*(args.only or "").split(","), *args.scenarios] for n in arg.split(",") if n]
    chosen = select(names)
    res = Results()
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    env = Env()
    try:
        if any(sc.database for sc in chosen):
            env.start_db()
        for sc in chosen:
            res.scenario = sc.number
            await sc.run(res, env, args)
        res.scenario = None
        report = render(res, chosen, args, started, machine_notes(env))
    finally:
        env.close()
    print()
    print(report)
    if args.out and not names:
        write_report(Path(args.out), report)
        print(f"(written to {args.out})")
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description="pairls end-to-end benchmark: one table, measured in one run on this machine."
    )
    ap.add_argument(
        "scenarios", nargs="*", metavar="SCENARIO", help="run only these (--list shows them); all by default"
    )
    ap.add_argument(
        "--only", help="comma-separated, the same as naming them: " + ",".join(s.key for s in SCENARIOS)
    )
    ap.add_argument("--list", action="store_true", help="list the scenarios and their targets, run nothing")
    ap.add_argument(
        "--out",
        default=str(ROOT / "docs" / "benchmarks.md"),
        help="report file ('' for none; written only when every scenario ran)",
    )
    ap.add_argument("--rooms", type=int, default=10)
    ap.add_argument("--per-room", type=int, default=5)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--latency-rooms", type=int, default=100)
    ap.add_argument("--latency-window", type=float, default=30.0)
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--conns", type=int, default=2000)
    ap.add_argument("--mem-per-room", type=int, default=20)
    ap.add_argument("--completion-lines", type=int, default=10_000)
    ap.add_argument("--completion-requests", type=int, default=300)
    ap.add_argument("--keystroke-rooms", type=int, default=5)
    ap.add_argument("--keystroke-window", type=float, default=30.0)
    ap.add_argument(
        "--keystroke-lines", type=int, default=300, help="lines of each document in 7 (the target's: 300)"
    )
    ap.add_argument("--detour-window", type=float, default=15.0, help="each of scenario 9's four windows")
    ap.add_argument("--cut", type=float, default=60.0, help="scenario 10's network cut, seconds")
    ap.add_argument("--attack-window", type=float, default=10.0, help="each of scenario 11's four windows")
    ap.add_argument("--history-samples", type=int, default=200, help="scenario 12's requests of each kind")
    ap.add_argument(
        "--hocus-rounds", type=int, default=3, help="scenario 13's rounds (each: every server, both shapes)"
    )
    ap.add_argument("--hocus-warmup", type=float, default=3.0)
    ap.add_argument("--hocus-window", type=float, default=12.0)
    ap.add_argument(
        "--hocus-first-run",
        type=float,
        default=3.0,
        help="scenario 13's first run per server, not kept (0: none)",
    )
    ap.add_argument(
        "--profile",
        help="py-spy the hub during scenarios 2 and 3, and the hub and room 0's two pairls-lsp during 7; "
        "collapsed stacks to this file (and .latency, .keystroke.{hub,lsp-a,lsp-b})",
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.list:
        print(listing())
        return 0
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
