"""The bench's environment: PostgreSQL (embedded in a temp dir unless ``DATABASE_URL`` is set),
hub subprocesses, CPU accounting and py-spy profiles."""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from tests.support.hubproc import HubProcess

KiB = 1024


class Env:
    """PostgreSQL (embedded in a temp dir unless DATABASE_URL is set) and hub processes."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="pairls-bench-"))
        self.tmp.chmod(0o711)  # as root, PostgreSQL's own account must walk through it
        self.embedded: Any = None
        self.dsn = os.environ.get("DATABASE_URL", "")
        self.hubs: list[HubProcess] = []

    def start_db(self) -> None:
        if self.dsn:
            return
        from collab_server.database import start_embedded

        self.embedded = start_embedded(self.tmp / "pg")
        self.dsn = self.embedded.dsn

    def hub(self, *args: str, source: Path | None = None, module: str = "collab_server") -> HubProcess:
        """A fresh hub process on the bench's PostgreSQL (from the checkout *source*, if given; run
        as ``python -m`` *module*)."""
        # the load generator is one address standing in for thousands of users (scenario 5
        # holds 2,000 connections): no per-address connection quota
        h = HubProcess(
            "--max-connections-per-address", "0", *args, database_url=self.dsn, source=source, module=module
        )
        self.hubs.append(h)
        h.wait_ready()
        return h

    def stop_hub(self, h: HubProcess) -> None:
        try:
            code = h.terminate(60)
        except subprocess.TimeoutExpired:
            h.kill()
            code = -9
        if code != 0:
            print(f"  (hub exited with {code}; last log lines:\n{chr(10).join(h.stderr[-20:])})")

    def postgres_processes(self) -> list[psutil.Process]:
        if self.embedded is None:
            return []
        try:
            master = psutil.Process(self.embedded.pid)
            return [master, *master.children()]
        except psutil.Error:
            return []

    def close(self) -> None:
        for h in self.hubs:
            if h.proc.poll() is None:
                with contextlib.suppress(Exception):
                    self.stop_hub(h)
        if self.embedded is not None:
            with contextlib.suppress(Exception):
                self.embedded.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


#: processes :func:`cpu_seconds` could not read (gone, most often a PostgreSQL backend that
#: ended between two readings): their CPU is missing from the figure, so the report counts them
cpu_misses = 0


def cpu_seconds(procs: list[psutil.Process]) -> float:
    global cpu_misses
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:
            cpu_misses += 1
            continue
        total += t.user + t.system
    return total


def run_time_ns(pid: int) -> int | None:
    """The CPU time process *pid* has run, all its threads (ended ones too), in ns: the kernel's own
    count, read through the process's CPU clock (``clock_gettime`` of the clock id Linux gives a
    process, ``~pid << 3 | CPUCLOCK_SCHED``), or None where there is no such process. psutil's user and
    system times count in ticks of 10 ms, too coarse for a hundred wake-ups of 100-300 us. (The
    other place the count shows, ``/proc/PID/task/*/schedstat``, misses threads that ended, and reads
    ``0 0 0`` on a kernel built without scheduler info.)"""
    try:
        return time.clock_gettime_ns(((~pid) << 3) | 2)
    except OSError:  # (EINVAL: no such process, or not in our PID namespace)
        return None


def start_profiler(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("  (py-spy not installed in the venv: no profile)")
        return None
    return subprocess.Popen(
        [spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200", "-f", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def report_profile(path: Path) -> None:
    if not path.exists():
        print("  (py-spy wrote no profile)")
        return
    summary = summarize_profile(path)
    Path(str(path) + ".summary.txt").write_text("\n".join(summary) + "\n")
    print("\n".join("  | " + s for s in summary[:60]))


def summarize_profile(path: Path, top: int = 25) -> list[str]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    self_s: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        count = int(n)
        frames = [re.sub(r" \((.*/)?([^/]+):\d+\)$", r" (\2)", f) for f in stack.split(";")]
        # py-spy's raw lines start with the process/thread; keep the python frames
        frames = [f for f in frames if "(" in f]
        if not frames:
            continue
        total += count
        self_s[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    lines = [f"{total} samples"]
    lines.append("top self time:")
    lines += [f"  {c / total:6.1%}  {f}" for f, c in self_s.most_common(top)]
    lines.append("top inclusive time:")
    lines += [f"  {c / total:6.1%}  {f}" for f, c in incl.most_common(top + 15)]
    return lines
