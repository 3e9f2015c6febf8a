"""A keystroke's commit while another document commits a large append, with and without the
group commit's byte budget (``collab_server.store.GROUP_BYTES``), interleaved in one run.

    .venv/bin/python bench/group_bench.py [--big-kib 256] [--rounds 40]

Its own embedded PostgreSQL in a temp dir (unless ``DATABASE_URL`` is set).  Each round starts
an append of ``--big-kib`` KiB to one document and, in the same event-loop turn, a one-character
append to another, and times the small one (``Store.append`` until it returned, i.e. after
COMMIT).  "budget": the store as it is (the large append goes in a transaction of its own, the
keystroke in another, on the other connection); "one group": the budget lifted, as before it
existed (both in one transaction).  Prints p50 / p90 / max of each, two blocks each, interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from pairls_bench.env import Env  # noqa: E402

from collab_core import ops  # noqa: E402
from collab_server import store as store_module  # noqa: E402
from collab_server.document import ClientId, Rev, Sequenced  # noqa: E402


async def measure(dsn: str, big_kib: int, rounds: int) -> None:
    store = await store_module.open_store(dsn, hub_id="group-bench")
    try:
        room = f"group-bench-{time.time_ns()}"
        await store.create_room(room, "group bench", {})
        big = await store.create_document(room, "big.txt", "")
        small = await store.create_document(room, "small.txt", "")
        assert big is not None and small is not None
        revs = {big.id: 0, small.id: 0}

        def one(doc_id: int, text: str) -> list[Sequenced]:
            rev = revs[doc_id] = revs[doc_id] + 1
            return [Sequenced(Rev(rev), ops.insert(0, text), ClientId(f"c{doc_id}"), rev)]

        lifted: Any = lambda queue, budget=0: budgeted(queue, 1 << 40)  # noqa: E731
        budgeted = store_module.take_group
        for label in ("budget", "one group", "budget", "one group"):
            store_module.take_group = budgeted if label == "budget" else lifted
            times = []
            for _ in range(rounds):
                text = "x" * big_kib * 1024
                large = asyncio.create_task(store.append(big.id, revs[big.id], one(big.id, text)))
                await asyncio.sleep(0)  # (the large append is queued first)
                t0 = time.perf_counter()
                await store.append(small.id, revs[small.id], one(small.id, "k"))
                times.append((time.perf_counter() - t0) * 1e3)
                await large
                await asyncio.sleep(0.05)
            times.sort()
            print(
                f"{label:9s}: a keystroke's commit beside a {big_kib} KiB append, p50 "
                f"{statistics.median(times):.2f} ms, p90 {times[int(len(times) * 0.9)]:.2f}, "
                f"max {times[-1]:.2f} ({rounds} rounds)",
                flush=True,
            )
        store_module.take_group = budgeted
    finally:
        await store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--big-kib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args()
    env = Env()  # (the bench's PostgreSQL: embedded in a temp dir unless DATABASE_URL is set)
    try:
        env.start_db()
        asyncio.run(measure(env.dsn, args.big_kib, args.rounds))
    finally:
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
