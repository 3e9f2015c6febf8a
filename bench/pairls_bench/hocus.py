"""Scenario 13: the pairls hub side by side with Hocuspocus 4 under one Node.js load generator
(issue 14), in the two shapes of ``SHAPES``; the ratios pairls / Hocuspocus-in-memory against
``TARGETS``, each with the Hocuspocus figure as its baseline. ``bench/hocus_bench.py`` (``make
bench-hocus``) runs it alone with its own table; ``run_cli`` is that.

Needs ``make bench-hocus-deps`` (Node 24 from npm ``node@24`` and bench/hocus/node_modules).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from . import ROOT
from .env import Env
from .report import Results
from .scenario import Scenario

HOCUS = ROOT / "bench" / "hocus"
#: the hub with its commit taken out (``bench/hub_without_commit.py``): a baseline, no target
UNCOMMITTED = "pairls-uncommitted"
SERVERS = ("pairls", UNCOMMITTED, "hocus-mem", "hocus-db")
#: the hub of another checkout (``--pairls-before DIR``): a change's before and after in one run
BEFORE = "pairls-before"
LABELS = {
    "pairls": "pairls (PostgreSQL before ack)",
    UNCOMMITTED: "pairls, its commit taken out (a baseline)",
    "hocus-mem": "Hocuspocus in memory",
    "hocus-db": "Hocuspocus + PostgreSQL (debounced)",
    BEFORE: "pairls before (another checkout)",
}


@dataclass(frozen=True)
class Shape:
    key: str
    rooms: int
    per_room: int
    rate: float

    @property
    def title(self) -> str:
        return f"{self.rooms * self.per_room:,} clients in {self.rooms} rooms, {self.rate:,.0f} edits/s"


SHAPES = {"a": Shape("a", 100, 2, 1000.0), "b": Shape("b", 500, 3, 350.0)}

#: issue 14: pairls / Hocuspocus-in-memory at most these
TARGETS = {"p50": 1.5, "p99": 1.0, "cpu": 1.0}


def node_binary() -> str:
    """Node 24: $PAIRLS_NODE, else where scripts/install-bench-hocus.sh puts it."""
    if os.environ.get("PAIRLS_NODE"):
        return os.environ["PAIRLS_NODE"]
    cache = os.environ.get("PAIRLS_CODE_SERVER_DIR") or str(
        Path(os.environ.get("PAIRLS_CACHE", Path.home() / ".cache" / "pairls")) / "code-server"
    )
    return str(Path(cache) / "node24" / "node_modules" / "node" / "bin" / "node")


class HocusServer:
    """``node bench/hocus/server.mjs [--db DSN]``; ``url`` from its ``listening on`` line."""

    def __init__(self, node: str, dsn: str | None) -> None:
        cmd = [node, str(HOCUS / "server.mjs"), *(["--db", dsn] if dsn else [])]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HOCUS
        )
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(
                f"Hocuspocus did not start: {first}{self.proc.stderr.read() if self.proc.stderr else ''}"
            )
        self.url = first.split()[-1]
        self._pumps = [
            threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True),
        ]
        for t in self._pumps:
            t.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for t in self._pumps:
            t.join(5)


def run_load(
    node: str, kind: str, url: str, shape: Shape, args: argparse.Namespace, **pids: int | None
) -> dict[str, Any]:
    cmd = [
        node,
        str(HOCUS / "load.mjs"),
        *("--kind", kind, "--url", url),
        *("--rooms", str(shape.rooms), "--per-room", str(shape.per_room), "--rate", str(shape.rate)),
        *("--warmup", str(args.warmup), "--window", str(args.window)),
        *("--clk-tck", str(os.sysconf("SC_CLK_TCK")), "--doc-prefix", f"r{time.monotonic_ns()}"),
    ]
    for name, pid in pids.items():
        if pid is not None:
            cmd += [f"--{name.replace('_', '-')}", str(pid)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=HOCUS, timeout=600)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return {"valid": False, "problems": [f"load generator exited {out.returncode}: {out.stderr[-500:]}"]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


#: the hub's group-commit series in its ``/metrics`` (collab_server/metrics.py)
_COMMIT_SERIES = re.compile(r"^pairls_commit_(seconds|batch_ops)_(sum|count) ([0-9.e+-]+)$", re.MULTILINE)


def commit_figures(metrics: str) -> dict[str, float]:
    """From a hub's ``/metrics`` text: its group commits so far (``commits``), their mean
    statement time (``commit_ms``: one round trip with its WAL flush) and mean ops each
    (``ops_per_commit``); empty if it committed nothing."""
    found = {f"{name}_{part}": float(value) for name, part, value in _COMMIT_SERIES.findall(metrics)}
    n = found.get("seconds_count", 0.0)
    if not n:
        return {}
    return {
        "commits": n,
        "commit_ms": found["seconds_sum"] / n * 1e3,
        "ops_per_commit": found["batch_ops_sum"] / found["batch_ops_count"],
    }


def scrape_commits(ws_url: str) -> dict[str, float]:
    """:func:`commit_figures` of the hub at *ws_url* (its ``/metrics`` on the same port)."""
    http = "http" + ws_url.removeprefix("ws").rstrip("/") + "/metrics"
    with urllib.request.urlopen(http, timeout=10) as answer:
        return commit_figures(answer.read().decode())


def one_run(env: Any, node: str, server: str, shape: Shape, args: argparse.Namespace) -> dict[str, Any]:
    db_pid = env.embedded.pid if env.embedded is not None else None
    if server in ("pairls", BEFORE, UNCOMMITTED):
        before = getattr(args, "pairls_before", None)
        hub = env.hub(
            source=Path(before) if server == BEFORE and before else None,
            module="bench.hub_without_commit" if server == UNCOMMITTED else "collab_server",
        )
        try:
            r = run_load(node, "pairls", hub.url, shape, args, server_pid=hub.proc.pid, db_pid=db_pid)
            if server != UNCOMMITTED:
                # over the whole run, warm-up included (the hub counts from its start)
                r.update(scrape_commits(hub.url))
        finally:
            env.stop_hub(hub)
    else:
        hp = HocusServer(node, env.dsn if server == "hocus-db" else None)
        try:
            r = run_load(
                node,
                "hocus",
                hp.url,
                shape,
                args,
                server_pid=hp.proc.pid,
                db_pid=db_pid if server == "hocus-db" else None,
            )
        finally:
            hp.stop()
        if hp.lines:
            r["server_said"] = [line[:200] for line in hp.lines[-3:]]
    r["server"] = server
    r["shape"] = shape.key
    return r


def med(runs: list[dict[str, Any]], key: str) -> float | None:
    xs = [float(r[key]) for r in runs if r.get(key) is not None]
    return statistics.median(xs) if xs else None


def verdict(ratio: float | None, limit: float) -> str:
    if ratio is None:
        return "-"
    return "pass" if ratio <= limit else "**MISS**"


def figures(results: list[dict[str, Any]], shape: Shape) -> dict[str, dict[str, float | None]]:
    """Per server that ran in *shape*: the median of each figure over its valid runs."""
    figs: dict[str, dict[str, float | None]] = {}
    for server in (*SERVERS, BEFORE):
        runs = [r for r in results if r.get("shape") == shape.key and r.get("server") == server]
        if not runs:
            continue
        ok = [r for r in runs if r.get("valid")]
        f = {
            k: med(ok, k)
            for k in (
                "p50_ms",
                "p99_ms",
                "server_us_per_edit",
                "db_us_per_edit",
                "acks_per_s",
                "server_wake_ups_per_edit",
                "commit_ms",
                "ops_per_commit",
            )
        }
        f["load_cores"] = statistics.median(r["load_cpu_s"] / r["window_s"] for r in ok) if ok else None
        figs[server] = f
    return figs


#: the ratios issue 14 sets a target on: (TARGETS key, what, figure, unit)
RATIOS = (
    ("p50", "edit to peer p50", "p50_ms", "ms"),
    ("p99", "edit to peer p99", "p99_ms", "ms"),
    ("cpu", "hub CPU per edit", "server_us_per_edit", "us"),
)


def _wake_ups(value: float | None) -> str:
    """Wake-ups per edit as the tables show them ("-": the load generator could not read them)."""
    return f"{value:.2f}" if value is not None else "-"


def _ratio(a: float | None, b: float | None, unit: str) -> str:
    """*a* / *b* as the tables show it ("1.10x (106 / 96.2 us)"), or "-" without both figures."""
    return f"{a / b:.2f}x ({a:.4g} / {b:.4g} {unit})" if a is not None and b else "-"


def _commits(f: dict[str, float | None]) -> str:
    """A hub's group commits as the tables show them: "0.69 ms, 9.6 ops" ("-": none counted)."""
    ms, ops = f.get("commit_ms"), f.get("ops_per_commit")
    return f"{ms:.2f} ms, {ops:.1f} ops" if ms is not None and ops is not None else "-"


def report(results: list[dict[str, Any]], shapes: list[Shape]) -> str:
    """The Markdown tables of a run: figures per shape and server, then ratios and verdicts."""
    out = [
        "| shape | server | runs (valid) | edit to peer p50 / p99 | server CPU per edit (+ PostgreSQL)"
        " | server wake-ups per edit | acked edits/s | load generator cores"
        " | the hub's commits: statement (mean), ops each |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ratios = [
        "| shape | pairls / Hocuspocus in memory | measured | target | verdict |",
        "|---|---|---|---|---|",
    ]
    for shape in shapes:
        figs = figures(results, shape)
        for server, f in figs.items():
            runs = [r for r in results if r.get("shape") == shape.key and r.get("server") == server]
            ok = [r for r in runs if r.get("valid")]
            db = f["db_us_per_edit"] if server != "hocus-mem" else None
            cpu = (
                f"{f['server_us_per_edit']:.0f} us"
                + (f" ({f['server_us_per_edit'] + db:.0f} us)" if db is not None else "")
                if f["server_us_per_edit"] is not None
                else "-"
            )
            lat = (
                f"{f['p50_ms']:.2f} / {f['p99_ms']:.2f} ms"
                if f["p50_ms"] is not None and f["p99_ms"] is not None
                else "-"
            )
            eps = f"{f['acks_per_s']:,.0f}" if f["acks_per_s"] is not None else "-"
            cores = f"{f['load_cores']:.2f}" if f["load_cores"] is not None else "-"
            wakes = _wake_ups(f["server_wake_ups_per_edit"])
            row = [shape.title, LABELS[server], f"{len(runs)} ({len(ok)})", lat, cpu, wakes, eps, cores]
            row.append(_commits(f))
            out.append("| " + " | ".join(row) + " |")
        p, h = figs.get("pairls"), figs.get("hocus-mem")
        for mine, theirs, compared in (
            (p, figs.get(BEFORE), "pairls / pairls before"),
            (figs.get(UNCOMMITTED), h, "pairls without its commit / Hocuspocus in memory"),
        ):
            if mine is None or theirs is None:
                continue
            for _, what, field, unit in RATIOS:
                measured = _ratio(mine[field], theirs[field], unit)
                ratios.append(f"| {shape.title} | {what}, {compared} | {measured} | - | - |")
        if p is None or h is None:
            continue
        for key, what, field, unit in RATIOS:
            a, b = p[field], h[field]
            ratio = a / b if a is not None and b else None
            measured = _ratio(a, b, unit)
            limit = TARGETS[key]
            row = [shape.title, what, measured, f"<= {limit:g}x", verdict(ratio, limit)]
            ratios.append("| " + " | ".join(row) + " |")
    return "\n".join(out) + "\n\n" + "\n".join(ratios)


def installed(node: str) -> bool:
    return Path(node).exists() and (HOCUS / "node_modules" / "@hocuspocus" / "server").is_dir()


def round_order(servers: list[str], rnd: int) -> list[str]:
    """The servers in round *rnd* (from 1): as given in odd rounds, reversed in even ones.

    In the A/Bs of 2026-12-01 the hub that ran first in a round did worse, whichever checkout it
    was; alternating puts each server first in half of the rounds."""
    return list(servers) if rnd % 2 else list(reversed(servers))


def measure(
    env: Env, node: str, shapes: list[Shape], servers: list[str], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """A first short run of each server (not kept), then ``args.rounds`` rounds of one run per
    server and shape, interleaved, the servers' order reversed every other round
    (:func:`round_order`); every run's figures (``args``: rounds, warmup, window, first_run)."""
    results: list[dict[str, Any]] = []
    if args.first_run:
        # a fresh PostgreSQL (and machine) is slow at first: in a run without this, pairls' first
        # runs measured p50 6.5 and 12.4 ms, its second 3.4 and 2.0 ms
        warm = argparse.Namespace(**{**vars(args), "warmup": 1.0, "window": args.first_run})
        for server in servers:
            r = one_run(env, node, server, shapes[-1], warm)
            print(
                f"warm-up, {server}, shape {shapes[-1].key}: not reported (valid: {r.get('valid')})",
                flush=True,
            )
    for rnd in range(1, args.rounds + 1):
        for server in round_order(servers, rnd):
            for shape in shapes:
                r = one_run(env, node, server, shape, args)
                results.append(r)
                state = "valid" if r.get("valid") else f"INVALID {r.get('problems')}"
                print(
                    f"round {rnd}, {server}, shape {shape.key}: p50 {r.get('p50_ms') or 0:.2f} ms,"
                    f" p99 {r.get('p99_ms') or 0:.2f} ms, {r.get('server_us_per_edit') or 0:.0f} us"
                    f" (+{r.get('db_us_per_edit') or 0:.0f} us db,"
                    f" {_wake_ups(r.get('server_wake_ups_per_edit'))} wake-ups) per edit,"
                    f" {r.get('acks_per_s') or 0:,.0f} acked/s, {r.get('skipped', 0)} skipped,"
                    f" setup {r.get('setup_s') or 0:.1f} s"
                    + (f", commits {_commits(r)}" if r.get("commit_ms") is not None else "")
                    + f"; {state}"
                    + (f"; server: {' | '.join(r['server_said'])}" if r.get("server_said") else ""),
                    flush=True,
                )
    return results


def run_cli(args: argparse.Namespace) -> int:
    """``bench/hocus_bench.py``: its own PostgreSQL, the runs, its own tables."""
    node = node_binary()
    if not installed(node):
        print(f"no Node 24 at {node} or no bench/hocus/node_modules: run `make bench-hocus-deps`")
        return 2
    shapes = [SHAPES[k.strip()] for k in args.shapes.split(",")]
    servers = [s.strip() for s in args.servers.split(",")]
    if getattr(args, "pairls_before", ""):
        if not (Path(args.pairls_before) / "collab_server" / "__main__.py").is_file():
            print(f"--pairls-before {args.pairls_before}: not a pairls checkout")
            return 2
        servers.insert(servers.index("pairls") + 1 if "pairls" in servers else 0, BEFORE)
    env = Env()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results: list[dict[str, Any]] = []
    try:
        env.start_db()
        results = measure(env, node, shapes, servers, args)
    finally:
        with contextlib.suppress(Exception):
            env.close()
    load = os.getloadavg()
    print(
        f"\nHocuspocus side by side, {started}, {psutil.cpu_count()} CPUs, {args.rounds} round(s) of"
        f" {args.window:g} s windows after {args.warmup:g} s warm-up; load average at the end"
        f" {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}\n"
    )
    print(report(results, shapes))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _commit_budget(p: dict[str, float | None], u: dict[str, float | None], h: dict[str, float | None]) -> str:
    """What the p50 target leaves the commit, beside what it added and what its statement took:
    the p50 ratio could pass only if the commit added at most 1.5 x Hocuspocus' p50 less the
    hub's own p50 without it ("" without the figures)."""
    mine, bare, theirs = p.get("p50_ms"), u.get("p50_ms"), h.get("p50_ms")
    if mine is None or bare is None or theirs is None:
        return ""
    limit = TARGETS["p50"]
    said = f"; the p50 target leaves the commit {limit * theirs - bare:.2f} ms"
    said += f" ({limit:g} x {theirs:.2f} - {bare:.2f}), the commit added {mine - bare:.2f} ms to pairls' p50"
    if p.get("commit_ms") is not None:
        said += f" (its statement: {p['commit_ms']:.2f} ms, mean)"
    return said


def add_rows(res: Results, results: list[dict[str, Any]], shapes: list[Shape]) -> None:
    """Scenario 13's rows: per shape, each ratio of ``RATIOS`` with its target and verdict, and the
    Hocuspocus-in-memory figure beside it as its baseline; every server's figures as notes."""
    for shape in shapes:
        figs = figures(results, shape)
        for server, f in figs.items():
            runs = [r for r in results if r.get("shape") == shape.key and r.get("server") == server]
            valid = sum(1 for r in runs if r.get("valid"))
            if not valid:
                res.note(
                    f"Hocuspocus side by side, {shape.title}, {LABELS[server]}: no valid run of {len(runs)}"
                )
                continue
            db = f" (+{f['db_us_per_edit']:.0f} us PostgreSQL)" if server != "hocus-mem" else ""
            wakes = f["server_wake_ups_per_edit"]
            woke = f", {wakes:.2f} wake-ups of its event loop per edit" if wakes is not None else ""
            commits = (
                f", its group commits over the whole run: {f['commit_ms']:.2f} ms per statement"
                f" (mean), {f['ops_per_commit']:.1f} ops each"
                if f["commit_ms"] is not None and f["ops_per_commit"] is not None
                else ""
            )
            res.note(
                f"Hocuspocus side by side, {shape.title}, {LABELS[server]}, medians of {valid} valid of "
                f"{len(runs)} runs: edit to peer p50 / p99 {f['p50_ms']:.2f} / {f['p99_ms']:.2f} ms, CPU "
                f"{f['server_us_per_edit']:.0f} us per edit{db}{woke}{commits},"
                f" {f['acks_per_s']:,.0f} acked edits/s, load "
                f"generator {f['load_cores']:.2f} cores"
            )
        p, h, u = figs.get("pairls", {}), figs.get("hocus-mem", {}), figs.get(UNCOMMITTED)
        if u is not None and h:
            res.note(
                f"Hocuspocus side by side, {shape.title}, pairls without its commit / Hocuspocus in "
                "memory (a baseline: the ratios below as they would be with no commit): "
                + ", ".join(f"{what} {_ratio(u[field], h[field], unit)}" for _, what, field, unit in RATIOS)
                + _commit_budget(p, u, h)
            )
        for key, what, field, unit in RATIOS:
            a, b = p.get(field), h.get(field)
            ratio = a / b if a is not None and b else None
            limit = TARGETS[key]
            res.add(
                f"13. {what}, pairls / Hocuspocus in memory, {shape.title}",
                f"{ratio:.2f}x (pairls {a:.4g} {unit})" if ratio is not None else "no valid run",
                f"<= {limit:g}x",
                None if ratio is None else ratio <= limit,
                baseline=f"Hocuspocus in memory {b:.4g} {unit}" if b is not None else "no valid run",
            )


async def run(res: Results, env: Env, args: argparse.Namespace) -> None:
    print("13. the hub side by side with Hocuspocus 4, one Node.js load generator", flush=True)
    shapes = list(SHAPES.values())
    node = node_binary()
    if not installed(node):
        for shape in shapes:
            for key, what, _, _ in RATIOS:
                res.add(
                    f"13. {what}, pairls / Hocuspocus in memory, {shape.title}",
                    "not run: no Node 24 or bench/hocus/node_modules (`make bench-hocus-deps`)",
                    f"<= {TARGETS[key]:g}x",
                    None,
                    baseline="-",
                )
        return
    runs = argparse.Namespace(
        rounds=args.hocus_rounds, warmup=args.hocus_warmup, window=args.hocus_window,
        first_run=args.hocus_first_run,
    )  # fmt: skip
    results = measure(env, node, shapes, list(SERVERS), runs)
    add_rows(res, results, shapes)


def method(args: argparse.Namespace) -> list[str]:
    """This scenario's paragraph of the report's Method."""
    return [
        "- 13: the hub against Hocuspocus 4 (npm `@hocuspocus/server`) under one Node.js load generator "
        "(`bench/hocus/load.mjs`: one typist per room, one edit in flight, a one-character insert at "
        "the end per edit; the pairls wire protocol, and raw Hocuspocus sync with a Y.Doc per client), "
        "on the same PostgreSQL: a fresh `pairls-hub` (commits every op before its ack), a fresh hub "
        "with its commit taken out (`bench/hub_without_commit.py`: a baseline with no target, the "
        "commit's share of each figure), a fresh Hocuspocus in memory, a fresh Hocuspocus with "
        "`@hocuspocus/extension-database` (its default "
        f"debounce). A first {args.hocus_first_run:g} s run of each server, not kept; then "
        f"{args.hocus_rounds} rounds, interleaved (the servers' order reversed every other round), of one "
        "run per server and shape "
        f"({args.hocus_window:g} s window after {args.hocus_warmup:g} s warm-up): shape a, 100 rooms x 2 "
        "clients at 1,000 edits/s in all; shape b, 1,500 clients in 500 rooms at 350 edits/s. A run "
        "that fails validation (an edit a peer never saw, texts that differ, an error) is not used. "
        "Each figure is the median of its valid runs; CPU per edit is the server process's CPU over "
        "the window per acknowledged edit (PostgreSQL's apart, in the notes). For the hub, the notes "
        "also give its group commits from its `/metrics` over the whole run (warm-up included): the "
        "statement's mean time, one round trip with its WAL flush, and ops per commit. `make bench-hocus` "
        "(`bench/hocus_bench.py`) runs this alone with its full table.",
    ]


SCENARIO = Scenario(
    key="hocus",
    number=13,
    title="the hub side by side with Hocuspocus in memory",
    targets=(
        "CPU per edit at most Hocuspocus-in-memory's, in both shapes",
        "edit-to-peer p50 at most 1.5x Hocuspocus-in-memory's and p99 at most equal, in both shapes",
    ),
    run=run,
    method=method,
)
