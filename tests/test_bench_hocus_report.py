"""bench/hocus_bench.py's report (the Python side of ``make bench-hocus``; no Node.js here):
figures are medians of the valid runs only, and each ratio pairls / Hocuspocus-in-memory gets
issue 14's target and a verdict."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _module() -> Any:
    spec = importlib.util.spec_from_file_location("hocus_bench", ROOT / "bench" / "hocus_bench.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _run(
    server: str,
    p50: float,
    p99: float,
    cpu: float,
    *,
    valid: bool = True,
    db: float = 0.0,
    wakes: float | None = None,
    commits: tuple[float, float] | None = None,
) -> dict[str, Any]:
    run: dict[str, Any] = {
        "server": server,
        "shape": "a",
        "valid": valid,
        "p50_ms": p50,
        "p99_ms": p99,
        "server_us_per_edit": cpu,
        "db_us_per_edit": db,
        "acks_per_s": 1000.0,
        "load_cpu_s": 1.2,
        "window_s": 12.0,
    }
    if wakes is not None:
        run["server_wake_ups_per_edit"] = wakes
    if commits is not None:
        run["commit_ms"], run["ops_per_commit"] = commits
    return run


def test_ratios_use_the_medians_of_valid_runs_and_say_pass_or_miss() -> None:
    hb = _module()
    results = [
        _run("pairls", 2.0, 8.0, 300.0, db=200.0, wakes=2.0, commits=(0.5, 9.0)),
        _run("pairls", 4.0, 12.0, 500.0, db=200.0, wakes=3.0, commits=(0.7, 10.0)),
        _run("pairls", 90.0, 900.0, 9000.0, valid=False, wakes=50.0, commits=(90.0, 1.0)),  # not used
        _run("hocus-mem", 2.0, 10.0, 400.0),
        _run("hocus-db", 2.0, 10.0, 400.0, db=10.0),
    ]
    text = hb.report(results, [hb.SHAPES["a"]])
    pairls_row = next(line for line in text.splitlines() if "| pairls" in line)
    assert "| 3 (2) | 3.00 / 10.00 ms | 400 us (600 us) | 2.50 |" in pairls_row
    assert pairls_row.endswith("| 0.60 ms, 9.5 ops |")  # the hub's commits, medians of the valid runs
    # a run without the wake-ups (a load generator before they were counted) shows none
    hocus_row = next(line for line in text.splitlines() if "| Hocuspocus in memory" in line)
    assert "| 1 (1) | 2.00 / 10.00 ms | 400 us | - |" in hocus_row
    assert hocus_row.endswith("| - |")  # no commits to report
    shape = "| 200 clients in 100 rooms, 1,000 edits/s |"
    ratio_rows = [line for line in text.splitlines() if line.startswith(shape) and "<=" in line]
    assert ratio_rows == [
        f"{shape} edit to peer p50 | 1.50x (3 / 2 ms) | <= 1.5x | pass |",
        f"{shape} edit to peer p99 | 1.00x (10 / 10 ms) | <= 1x | pass |",
        f"{shape} hub CPU per edit | 1.00x (400 / 400 us) | <= 1x | pass |",
    ]
    slower = [*results, _run("pairls", 5.0, 30.0, 900.0), _run("pairls", 6.0, 40.0, 950.0)]
    text = hb.report(slower, [hb.SHAPES["a"]])
    assert text.count("**MISS**") == 3


def test_a_checkout_before_the_change_is_compared_with_pairls_without_a_target() -> None:
    hb = _module()
    results = [
        _run("pairls", 3.0, 9.0, 200.0, db=100.0),
        _run("pairls-before", 4.0, 12.0, 250.0, db=100.0),
        _run("hocus-mem", 2.0, 10.0, 400.0),
    ]
    text = hb.report(results, [hb.SHAPES["a"]])
    assert "| pairls before (another checkout) | 1 (1) | 4.00 / 12.00 ms | 250 us (350 us) |" in text
    shape = "| 200 clients in 100 rooms, 1,000 edits/s |"
    assert f"{shape} hub CPU per edit, pairls / pairls before | 0.80x (200 / 250 us) | - | - |" in text
    # the targets stay pairls / Hocuspocus in memory
    assert f"{shape} hub CPU per edit | 0.50x (200 / 400 us) | <= 1x | pass |" in text


def test_the_hub_without_its_commit_is_a_baseline_against_hocuspocus_without_a_target() -> None:
    hb = _module()
    results = [
        _run("pairls", 3.0, 9.0, 200.0, db=100.0),
        _run("pairls-uncommitted", 1.0, 4.0, 110.0),
        _run("hocus-mem", 2.0, 10.0, 100.0),
    ]
    text = hb.report(results, [hb.SHAPES["a"]])
    assert "| pairls, its commit taken out (a baseline) | 1 (1) | 1.00 / 4.00 ms | 110 us (110 us) |" in text
    shape = "| 200 clients in 100 rooms, 1,000 edits/s |"
    compared = "pairls without its commit / Hocuspocus in memory"
    assert f"{shape} hub CPU per edit, {compared} | 1.10x (110 / 100 us) | - | - |" in text
    assert f"{shape} edit to peer p50, {compared} | 0.50x (1 / 2 ms) | - | - |" in text
    # the targets stay pairls / Hocuspocus in memory, and only they get a verdict
    assert f"{shape} hub CPU per edit | 2.00x (200 / 100 us) | <= 1x | **MISS** |" in text
    assert text.count("**MISS**") + text.count("| pass |") == 3
