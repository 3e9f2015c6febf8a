"""Scenario 4: cold open of the automerge-paper document from PostgreSQL on a fresh hub; baseline:
the open of the same document already loaded."""

from __future__ import annotations

import argparse
import hashlib
import secrets
import statistics
import time
from typing import Any

from .client import connect
from .env import Env
from .report import Results
from .scenario import Scenario
from .traces import load_trace, patch_op


async def load_trace_into_db(env: Env, trace: dict[str, Any], snapshot_every: int) -> tuple[str, str, str]:
    """What a hub would have written: the op log (group-commit batches) and a snapshot
    every *snapshot_every* revisions.  Returns (room id, editor secret, path)."""
    from collab_server.document import ClientId, Rev, Sequenced
    from collab_server.store import open_store

    store = await open_store(env.dsn, hub_id="bench-loader")
    try:
        room_id = secrets.token_urlsafe(16)
        secret = secrets.token_urlsafe(32)
        await store.create_room(room_id, "paper", {"editor": hashlib.sha256(secret.encode()).digest()})
        record = await store.create_document(room_id, "paper.tex", trace["startContent"])
        assert record is not None
        text = trace["startContent"]
        batch: list[Sequenced] = []
        rev = 0
        cid = ClientId("trace-author-0001")
        for txn in trace["txns"]:
            for p, d, ins in txn["patches"]:
                op = patch_op(p, d, ins)
                text = text[:p] + ins + text[p + d :]
                rev += 1
                batch.append(Sequenced(Rev(rev), op, cid, rev, "author"))
                if rev % snapshot_every == 0:
                    await store.append(record.id, batch[0].rev - 1, batch)
                    batch = []
                    await store.save_snapshot(record.id, rev, text)
        if batch:
            await store.append(record.id, batch[0].rev - 1, batch)
        assert text == trace["endContent"]
        return room_id, secret, record.path
    finally:
        await store.close()


async def bench_cold_open(res: Results, env: Env, trace: dict[str, Any], *, starts: int) -> None:
    print("4. cold open of automerge-paper from PostgreSQL", flush=True)
    t = time.perf_counter()
    room_id, secret, path = await load_trace_into_db(env, trace, 500)
    res.note(f"cold open: loaded {sum(len(x['patches']) for x in trace['txns']):,} ops + snapshots "
             f"every 500 revs through the Store API in {time.perf_counter() - t:.1f} s")  # fmt: skip
    cold: list[float] = []
    warm: list[float] = []
    for _ in range(starts):
        hub = env.hub()
        try:
            ws = await connect(hub.url)
            await ws.request({"type": "join", "room": room_id, "secret": secret})
            t0 = time.perf_counter()
            reply = await ws.request({"type": "open", "path": path})
            cold.append((time.perf_counter() - t0) * 1e3)
            assert reply["text"] == trace["endContent"], "cold open returned the wrong text"
            ws2 = await connect(hub.url)
            await ws2.request({"type": "join", "room": room_id, "secret": secret})
            t0 = time.perf_counter()
            await ws2.request({"type": "open", "path": path})
            warm.append((time.perf_counter() - t0) * 1e3)
            await ws.close()
            await ws2.close()
        finally:
            env.stop_hub(hub)
    med = statistics.median(cold)
    res.add(
        f"4. cold open of automerge-paper (259,778 revs, 104,852 chars), median of {starts} fresh hubs",
        f"{med:.1f} ms (min {min(cold):.1f}, max {max(cold):.1f})",
        "<= 50 ms",
        med <= 50,
    )
    res.base(
        "open of the same document already loaded in the hub", f"{statistics.median(warm):.1f} ms median"
    )


async def run(res: Results, env: Env, args: argparse.Namespace) -> None:
    await bench_cold_open(res, env, load_trace(), starts=args.starts)


def method(args: argparse.Namespace) -> list[str]:
    """This scenario's paragraph of the report's Method."""
    return [
        f"- 4: the trace is written through `collab_server.store` (`append` batches of 500 ops, a "
        f"snapshot every 500 revisions, as a hub with `--snapshot-every 500` writes); then {args.starts} "
        "times: start a fresh hub, connect, hello, join, and time `open` (first open: the DocumentTask "
        "loads the snapshot, the tail and 2000 ops of history, then replies with the 104,852-char text). "
        "The text is checked against `endContent`.",
    ]


SCENARIO = Scenario(
    key="open",
    number=4,
    title="cold open of automerge-paper",
    targets=("median <= 50 ms",),
    run=run,
    method=method,
)
