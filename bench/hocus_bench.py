"""The pairls hub side by side with Hocuspocus under one load generator (``make bench-hocus``).

    .venv/bin/python bench/hocus_bench.py [--rounds 3] [--window 12] [--shapes a,b] [--first-run 3]

Needs ``make bench-hocus-deps`` first (Node 24 from npm ``node@24`` and bench/hocus/node_modules).

Starts an embedded PostgreSQL (in a temp dir unless ``DATABASE_URL`` is set); a first short run
of each server (``--first-run`` seconds, not reported: a fresh PostgreSQL is slow at first); then,
interleaved, ``--rounds`` times over: a fresh ``pairls-hub`` process (commits every op to
PostgreSQL before its ack), a fresh Hocuspocus 4 in memory, and a fresh Hocuspocus with
``@hocuspocus/extension-database`` on the same PostgreSQL (bench/hocus/server.mjs: its default
debounce, the state stored seconds after the answer).  Against each, in each shape, one run of
the same Node.js load generator (bench/hocus/load.mjs: one typist per room, one edit in flight,
a one-character insert at the end per edit):

* a: 100 rooms x 2 clients, 1,000 edits/s in all;
* b: 1,500 clients in 500 rooms, 350 edits/s in all.

Prints one table: per shape, edit-to-peer p50/p99 and CPU per acknowledged edit of each server
(PostgreSQL's processes counted apart, for the durable ones), each figure the median of its runs;
then the ratios pairls / Hocuspocus-in-memory against issue 14's targets with a verdict.  A run
that fails validation (an edit a peer never saw, texts that differ, an error) is reported and its
figures are not used.  Nothing is asserted: figures only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import importlib.util  # noqa: E402

_spec = importlib.util.spec_from_file_location("pairls_bench", ROOT / "bench" / "bench.py")
assert _spec is not None and _spec.loader is not None
B = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(B)

HOCUS = ROOT / "bench" / "hocus"
SERVERS = ("pairls", "hocus-mem", "hocus-db")
LABELS = {
    "pairls": "pairls (PostgreSQL before ack)",
    "hocus-mem": "Hocuspocus in memory",
    "hocus-db": "Hocuspocus + PostgreSQL (debounced)",
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


def one_run(env: Any, node: str, server: str, shape: Shape, args: argparse.Namespace) -> dict[str, Any]:
    db_pid = env.embedded.pid if env.embedded is not None else None
    if server == "pairls":
        hub = env.hub()
        try:
            r = run_load(node, "pairls", hub.url, shape, args, server_pid=hub.proc.pid, db_pid=db_pid)
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


def report(results: list[dict[str, Any]], shapes: list[Shape]) -> str:
    """The Markdown tables of a run: figures per shape and server, then ratios and verdicts."""
    out = [
        "| shape | server | runs (valid) | edit to peer p50 / p99 | server CPU per edit (+ PostgreSQL)"
        " | acked edits/s | load generator cores |",
        "|---|---|---|---|---|---|---|",
    ]
    ratios = [
        "| shape | pairls / Hocuspocus in memory | measured | target | verdict |",
        "|---|---|---|---|---|",
    ]
    for shape in shapes:
        figs: dict[str, dict[str, float | None]] = {}
        for server in SERVERS:
            runs = [r for r in results if r.get("shape") == shape.key and r.get("server") == server]
            if not runs:
                continue
            ok = [r for r in runs if r.get("valid")]
            f = {
                k: med(ok, k)
                for k in ("p50_ms", "p99_ms", "server_us_per_edit", "db_us_per_edit", "acks_per_s")
            }
            f["load_cores"] = statistics.median(r["load_cpu_s"] / r["window_s"] for r in ok) if ok else None
            figs[server] = f
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
            row = [shape.title, LABELS[server], f"{len(runs)} ({len(ok)})", lat, cpu, eps, cores]
            out.append("| " + " | ".join(row) + " |")
        p, h = figs.get("pairls"), figs.get("hocus-mem")
        if p is None or h is None:
            continue
        for key, what, field, unit in (
            ("p50", "edit to peer p50", "p50_ms", "ms"),
            ("p99", "edit to peer p99", "p99_ms", "ms"),
            ("cpu", "hub CPU per edit", "server_us_per_edit", "us"),
        ):
            a, b = p[field], h[field]
            ratio = a / b if a is not None and b else None
            measured = f"{ratio:.2f}x ({a:.4g} / {b:.4g} {unit})" if ratio is not None else "-"
            limit = TARGETS[key]
            row = [shape.title, what, measured, f"<= {limit:g}x", verdict(ratio, limit)]
            ratios.append("| " + " | ".join(row) + " |")
    return "\n".join(out) + "\n\n" + "\n".join(ratios)


def run(args: argparse.Namespace) -> int:
    node = node_binary()
    if not Path(node).exists() or not (HOCUS / "node_modules" / "@hocuspocus" / "server").is_dir():
        print(f"no Node 24 at {node} or no bench/hocus/node_modules: run `make bench-hocus-deps`")
        return 2
    shapes = [SHAPES[k.strip()] for k in args.shapes.split(",")]
    servers = [s.strip() for s in args.servers.split(",")]
    env = B.Env()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results: list[dict[str, Any]] = []
    try:
        env.start_db()
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
            for server in servers:
                for shape in shapes:
                    r = one_run(env, node, server, shape, args)
                    results.append(r)
                    state = "valid" if r.get("valid") else f"INVALID {r.get('problems')}"
                    print(
                        f"round {rnd}, {server}, shape {shape.key}: p50 {r.get('p50_ms') or 0:.2f} ms,"
                        f" p99 {r.get('p99_ms') or 0:.2f} ms, {r.get('server_us_per_edit') or 0:.0f} us"
                        f" (+{r.get('db_us_per_edit') or 0:.0f} us db) per edit,"
                        f" {r.get('acks_per_s') or 0:,.0f} acked/s, {r.get('skipped', 0)} skipped,"
                        f" setup {r.get('setup_s') or 0:.1f} s; {state}"
                        + (f"; server: {' | '.join(r['server_said'])}" if r.get("server_said") else ""),
                        flush=True,
                    )
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--window", type=float, default=12.0)
    ap.add_argument("--shapes", default="a,b")
    ap.add_argument(
        "--first-run",
        type=float,
        default=3.0,
        help="window of a first run per server, not reported (0: none)",
    )
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--json", default="", help="also write every run's figures to this file")
    return run(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
