"""The language server's work on large texts and large edits, against a baseline revision.

    .venv/bin/python bench/big_edits.py [--baseline REV] [--timeout SECONDS]

Each scenario runs in a subprocess, once with this checkout's ``collab_core``
and ``lsp_bridge`` and once with the baseline's (``git show REV:...`` of the
modules the scenarios use, in a temporary directory); a baseline that takes
longer than ``--timeout`` is reported as such.  Scenarios:

* ``diff-repeated``: ``ops.diff`` of 8,000 identical lines changed at both ends;
* ``diff-ordinary``: ``ops.diff`` of 8,000 lines of code (a blank line and a
  closing brace every four) with two far edits;
* ``catch-up``: an ``EditorSync`` on a 1 MB text of 100,000 lines sends a
  catch-up of 3,000 places and reads it back as VS Code reports it (one
  didChange, a change per place, the last first);
* ``catch-up-blind``: the same, the user's typing first, the edit applied as
  sent after it (a client that ignores versions);
* ``full-sync-repeated``: a full-sync client's whole text of 9,000 identical
  lines with the edit in flight and the user's typing at both ends;
* ``typing-10k``: 1,000 keystrokes typed mid-file in a 10,000-line text, one
  character per didChange, read as the server reads them (``apply_changes``
  for its copy, ``EditorSync.did_change`` for the room).

Prints seconds and the peak resident memory of each run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = [
    "collab_core/__init__.py",
    "collab_core/ops.py",
    "collab_core/view.py",
    "lsp_bridge/__init__.py",
    "lsp_bridge/positions.py",
    "lsp_bridge/editor_sync.py",
]

SCENARIOS = {
    "diff-repeated": """
from collab_core import ops
body = "x = 1\\n" * 8000
ops.diff("<" + body + ">", "[" + body + "]")
""",
    "diff-ordinary": """
from collab_core import ops
old = "".join(f"def f{i}(x):\\n    return x + {i}\\n\\n}}\\n" for i in range(2000))
new = old.replace("f10(", "g10(").replace("x + 1990", "x - 1990")
ops.diff(old, new)
""",
    "catch-up": """
from lsp_bridge.editor_sync import ContentChange, EditorSync
text = "".join(f"line {i}\\n" for i in range(100_000))
sync = EditorSync(text, 1, "utf-16")
for i in range(3000, 0, -1):
    sync.receive_remote([text.index(f"line {i * 30}\\n"), "+"])
edit = sync.edit_to_send()
changes = [ContentChange((*e.start, *e.end), e.new_text) for e in reversed(edit.edits)]
assert sync.did_change(2, changes) == []
sync.edit_answered(True)
assert sync.quiet
""",
    "catch-up-blind": """
from lsp_bridge.editor_sync import ContentChange, EditorSync
text = "".join(f"line {i}\\n" for i in range(100_000))
sync = EditorSync(text, 1, "utf-16")
for i in range(3000, 0, -1):
    sync.receive_remote([text.index(f"line {i * 30}\\n"), "+"])
edit = sync.edit_to_send()
sync.did_change(2, [ContentChange((0, 0, 0, 0), "!")])
changes = [ContentChange((*e.start, *e.end), e.new_text) for e in reversed(edit.edits)]
assert sync.did_change(3, changes) == []
""",
    "full-sync-repeated": """
from lsp_bridge.editor_sync import ContentChange, EditorSync
body = "    x = 1\\n" * 9000
sync = EditorSync("<" + body + ">", 3, "utf-16")
sync.receive_remote([1, "PEER "])
sync.edit_to_send()
sync.did_change(4, [ContentChange(None, "«<PEER " + body + ">»")])
""",
    "typing-10k": """
from lsp_bridge.editor_sync import ContentChange, EditorSync, apply_changes
text = "".join(f"    value_{i} = compute(item, {i})  # a comment here\\n" for i in range(10_000))
sync = EditorSync(text, 1, "utf-16")
source, line, col = text, 5000, 4
for i in range(1000):
    typed = "value = compute(item, 42)\\n"[i % 26]
    change = ContentChange((line, col, line, col), typed)
    source, _ = apply_changes(source, [change], "utf-16")  # as the server's didChange does
    sync.did_change(i + 2, [change])
    line, col = (line + 1, 0) if typed == "\\n" else (line, col + 1)
assert sync.text == source
""",
}

RUNNER = """
import resource, sys, time
sys.path.insert(0, {path!r})
t = time.perf_counter()
exec(compile({code!r}, "scenario", "exec"))
dt = time.perf_counter() - t
print(dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def run(path: Path, code: str, timeout: float) -> str:
    try:
        out = subprocess.run(
            [sys.executable, "-S", "-c", RUNNER.format(path=str(path), code=code)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
            cwd="/",
        ).stdout.split()
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s"
    except subprocess.CalledProcessError as exc:
        return "failed: " + (exc.stderr.strip().splitlines() or ["?"])[-1][:60]
    return f"{float(out[0]):8.2f} s {int(out[1]):6d} MB"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", default="main", help="git revision to compare with (default: main)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a run may take")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for module in MODULES:
            show = ["git", "show", f"{args.baseline}:{module}"]
            text = subprocess.run(show, cwd=ROOT, capture_output=True, text=True, check=True).stdout
            (base / module).parent.mkdir(parents=True, exist_ok=True)
            (base / module).write_text(text, encoding="utf-8")
        print(f"{'scenario':20s} {'this checkout':>20s}   baseline ({args.baseline})")
        for name, code in SCENARIOS.items():
            t0 = time.monotonic()
            ours = run(ROOT, code, args.timeout)
            theirs = run(base, code, args.timeout)
            print(f"{name:20s} {ours:>20s}   {theirs}   ({time.monotonic() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
