"""Scenario 12: the automerge-paper trace committed through the hub by two users taking turns, then
undo/redo, blame, history and revisions against replaying the log."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from collab_core import ops

from .client import WS, connect
from .env import Env
from .report import Results, percentile
from .scenario import Scenario
from .traces import load_trace, patch_op


class TraceLoader:
    """Sends trace patches through the hub as two users taking turns: each turn is a run of
    1 to 40 patches by one user, pipelined (each op's base is the revision the previous one
    gets, so the hub never transforms), and the next turn waits for the run's acks."""

    def __init__(self, conns: list[WS], path: str) -> None:
        self.conns, self.path = conns, path
        self.seq = [0] * len(conns)
        self.acks = [0] * len(conns)
        self.errors: list[dict[str, Any]] = []
        self.done = asyncio.Event()
        for i, ws in enumerate(conns):
            ws.on_text = self._handler(i)

    def _handler(self, i: int) -> Callable[[bytes], None]:
        def on_text(payload: bytes) -> None:
            if payload.startswith(b'{"type":"ack"'):
                self.acks[i] += 1
                if self.acks[i] == self.seq[i]:
                    self.done.set()
            elif payload.startswith(b'{"type":"error"'):
                self.errors.append(json.loads(payload))
                self.done.set()

        return on_text

    async def run(self, op_list: list[ops.Op], rev: int, rng: random.Random) -> int:
        i, turn = 0, 0
        while i < len(op_list):
            who = turn % len(self.conns)
            ws = self.conns[who]
            run = op_list[i : i + rng.randint(1, 40)]
            self.done.clear()
            for op in run:
                self.seq[who] += 1
                ws.send(
                    f'{{"type":"op","path":"{self.path}","rev":{rev},"seq":{self.seq[who]},'
                    f'"op":{json.dumps(op, ensure_ascii=False, separators=(",", ":"))}}}'
                )
                rev += 1
            while self.acks[who] < self.seq[who]:
                if self.errors:
                    raise RuntimeError(f"the hub refused a trace op: {self.errors[0]}")
                await self.done.wait()
                self.done.clear()
            i += len(run)
            turn += 1
        return rev


async def replay_the_log(dsn: str, doc_id: int, rev: int) -> str:
    """The baseline: the text at *rev* from the document's first text and every op up to it,
    read from PostgreSQL and applied here."""
    import asyncpg

    db = await asyncpg.connect(dsn)
    try:
        text = await db.fetchval("SELECT text FROM snapshots WHERE document_id = $1 AND rev = 0", doc_id)
        rows = await db.fetch(
            "SELECT op FROM ops WHERE document_id = $1 AND rev <= $2 ORDER BY rev", doc_id, rev
        )
    finally:
        await db.close()
    for (op,) in rows:
        text = ops.apply(text, json.loads(op))
    return str(text)


async def timed_request(ws: WS, msg: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    t = time.perf_counter()
    reply = await ws.request(msg)
    return (time.perf_counter() - t) * 1e3, reply


async def bench_history(res: Results, env: Env, trace: dict[str, Any], *, samples: int) -> None:
    """Scenario 12: the automerge-paper trace committed through the hub by two users taking
    turns, then undo/redo, blame, history and revisions against replaying the log."""
    import asyncpg

    print("12. history: undo, blame, history and revisions on automerge-paper's 259,778 ops", flush=True)
    op_list = [patch_op(p, d, ins) for txn in trace["txns"] for p, d, ins in txn["patches"]]
    path = "paper.tex"
    rng = random.Random(12)
    # no rate limit: the loader sends the trace as fast as the hub commits it
    hub = env.hub("--rate", "0")
    conns: list[WS] = []
    try:
        ada = await connect(hub.url, "Ada", user="ada-bench-user")
        bob = await connect(hub.url, "Bob", user="bob-bench-user")
        conns += [ada, bob]
        room = await ada.request({"type": "create_room", "name": "paper"})
        await ada.request({"type": "create_document", "path": path, "text": trace["startContent"]})
        await bob.request({"type": "join", "room": room["room"], "secret": room["editorSecret"]})
        for ws in conns:
            await ws.request({"type": "open", "path": path})
        # the index is built first (of an empty log), so it is kept up to date with every op
        await ada.request({"type": "history", "path": path, "limit": 1})
        t = time.perf_counter()
        head = await TraceLoader(conns, path).run(op_list, 0, rng)
        load = time.perf_counter() - t
        for ws in conns:
            ws.on_text = ws._generic
        res.note(
            f"history: the trace committed through the hub in {load:.0f} s ({head / load:,.0f} ops/s, two "
            "users taking turns of 1-40 patches, each turn pipelined, its index kept up to date)"
        )
        db = await asyncpg.connect(env.dsn)
        try:
            doc_id = await db.fetchval(
                "SELECT id FROM documents WHERE room_id = $1 AND path = $2", room["room"], path
            )
            decided, starts = await db.fetchrow(
                "SELECT count(change_rev), count(*) FILTER (WHERE change_rev = rev) FROM ops"
                " WHERE document_id = $1",
                doc_id,
            )
        finally:
            await db.close()
        del op_list
        # the load generator's own garbage collector must not stall the replies it times: the
        # trace it holds is over a million objects (a full collection of them takes most of a
        # second here); frozen, they are left out of every collection until the end
        gc.collect()
        gc.freeze()
        text = (await ada.request({"type": "revision", "path": path, "rev": head}))["text"]
        assert text == trace["endContent"], "the hub's text is not the trace's"
        lines = text.count("\n") + 1
        await asyncio.sleep(1.0)

        # one line (a hover), the whole document
        one: list[float] = []
        for _ in range(samples):
            line = rng.randrange(lines)
            ms, reply = await timed_request(
                bob, {"type": "blame", "path": path, "start": line, "end": line + 1}
            )
            assert len(reply["lines"]) == 1
            one.append(ms)
            await asyncio.sleep(0.01)
        whole: list[float] = []
        for _ in range(5):
            await asyncio.sleep(1.0)  # the hub paces a connection after a costly request
            ms, reply = await timed_request(bob, {"type": "blame", "path": path})
            assert len(reply["lines"]) == lines
            whole.append(ms)
        await asyncio.sleep(1.0)  # each phase starts with the connections' pacing paid off
        # history: the newest page, then pages at random depths (each costs the hub more:
        # 100 ms apart, as the hub paces a connection that sends costly requests back to back)
        first: list[float] = []
        deep: list[float] = []
        for i in range(2 * samples):
            page: dict[str, Any] = {"type": "history", "path": path, "limit": 50}
            if i >= samples:
                page["before"] = rng.randrange(1, head)
            ms, reply = await timed_request(bob, page)
            assert len(reply["changes"]) == 50 or not reply["more"]
            (deep if i >= samples else first).append(ms)
            await asyncio.sleep(0.01 if i < samples else 0.1)
        await asyncio.sleep(1.0)  # each phase starts with the connections' pacing paid off
        # undo and redo by Ada, one after the other: each is committed before it is answered
        toggles: list[float] = []
        for i in range(samples):
            kind = "undo" if i % 2 == 0 else "redo"
            ms, reply = await timed_request(ada, {"type": kind, "path": path, "key": i + 1})
            assert reply["type"] == ("undone" if kind == "undo" else "redone")
            toggles.append(ms)
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # each phase starts with the connections' pacing paid off
        # revisions at random revisions
        revs = [rng.randrange(head + 1) for _ in range(max(10, samples // 10))]
        revision: list[float] = []
        checked = 0
        for rev in revs:
            await asyncio.sleep(0.5)
            ms, reply = await timed_request(bob, {"type": "revision", "path": path, "rev": rev})
            revision.append(ms)
            if checked < 3:
                assert reply["text"] == await replay_the_log(env.dsn, doc_id, rev)
                checked += 1
        # the baselines: replay the log to the head (blame, history and undo need the text at
        # the head at least) and to the same random revisions
        to_head: list[float] = []
        for _ in range(3):
            t = time.perf_counter()
            assert (
                await replay_the_log(env.dsn, doc_id, head + samples)
                == (await bob.request({"type": "revision", "path": path, "rev": head + samples}))["text"]
            )
            to_head.append((time.perf_counter() - t) * 1e3)
        to_rev: list[float] = []
        for rev in revs[:5]:
            t = time.perf_counter()
            await replay_the_log(env.dsn, doc_id, rev)
            to_rev.append((time.perf_counter() - t) * 1e3)
    finally:
        gc.unfreeze()
        for ws in conns:
            await ws.close()
        env.stop_hub(hub)
    hub_says = next((line.split(": ", 1)[1] for line in hub.stderr if "slowest message" in line), "?")
    load_avg = os.getloadavg()[0]
    # the first request on a fresh hub builds the index from the whole log
    hub = env.hub()
    try:
        ws = await connect(hub.url, "Cy", user="cy-bench-user")
        await ws.request({"type": "join", "room": room["room"], "secret": room["viewerSecret"]})
        await ws.request({"type": "open", "path": path})
        cold, _ = await timed_request(ws, {"type": "blame", "path": path, "start": 0, "end": 1})
        await ws.close()
    finally:
        env.stop_hub(hub)

    replay_head = statistics.median(to_head)
    replay_rev = statistics.median(to_rev)

    def vs(ms: float, base: float) -> str:
        return f"{base / ms:,.0f}x faster than replaying the log"

    u99, b1, bw, h99 = percentile(toggles, 99), percentile(one, 99), max(whole), percentile(first, 99)
    r_max = max(revision)
    res.add(
        f"12. undo and redo of one's last change (requested to answered, committed) on automerge-paper's "
        f"{head:,} revisions, {len(toggles)} alternately (p50 / p99)",
        f"{percentile(toggles, 50):.1f} / {u99:.1f} ms ({vs(u99, replay_head)})",
        "p99 <= 20 ms",
        u99 <= 20,
    )
    res.add(
        f"12. blame of the whole document ({lines:,} lines), worst of {len(whole)}",
        f"{bw:.0f} ms (median {statistics.median(whole):.0f}; {vs(bw, replay_head)})",
        "<= 200 ms",
        bw <= 200,
    )
    res.add(
        f"12. blame of one line (a hover) at random lines, {len(one)} (p50 / p99)",
        f"{percentile(one, 50):.2f} / {b1:.2f} ms ({vs(b1, replay_head)})",
        "p99 <= 10 ms",
        b1 <= 10,
    )
    res.add(
        f"12. history, the newest page of 50 changes, {len(first)} (p50 / p99)",
        f"{percentile(first, 50):.2f} / {h99:.2f} ms ({vs(h99, replay_head)})",
        "<= 20 ms",
        h99 <= 20,
    )
    res.add(
        f"12. history, a page of 50 before a random revision, {len(deep)} (p50 / p99)",
        f"{percentile(deep, 50):.2f} / {percentile(deep, 99):.2f} ms",
        "<= 20 ms",
        percentile(deep, 99) <= 20,
    )
    res.add(
        f"12. revision at random revisions, {len(revision)} (median / worst)",
        f"{statistics.median(revision):.1f} / {r_max:.1f} ms ({vs(statistics.median(revision), replay_rev)})",
        "<= 100 ms",
        r_max <= 100,
    )
    res.base(
        "replay the log: read every op up to the head from PostgreSQL and apply it (what blame, history "
        "and undo would cost without the index), median of 3",
        f"{replay_head:,.0f} ms",
    )
    res.base("replay the log to the same random revisions, median of 5", f"{replay_rev:,.0f} ms")
    res.note(
        f"history: {decided:,} of the {head:,} ops stored with the change the index decided as they "
        f"were sequenced ({starts:,} of them starting one), the others sequenced behind another op of "
        "the same batch and left for the index to decide when it applies them; the first "
        f"request on a fresh hub builds the index from the whole log: {cold / 1e3:.1f} s (the document "
        f"goes on meanwhile); whole-document blame median {statistics.median(whole):.0f} ms; revisions "
        f"median {statistics.median(revision):.1f} ms, checked against the replayed log at 3 of them"
    )
    res.note(
        "history tails: "
        + "; ".join(
            f"{name} p90 {percentile(xs, 90):.1f}, max {max(xs):.1f} ms, {sum(x > limit for x in xs)} of "
            f"{len(xs)} over {limit:g} ms"
            for name, xs, limit in (
                ("undo/redo", toggles, 20),
                ("one-line blame", one, 10),
                ("newest history page", first, 20),
                ("history page before a revision", deep, 20),
                ("revision", revision, 100),
            )
        )
        + f"; load average {load_avg:.1f} at the end of the measurements; the hub: {hub_says}"
    )


async def run(res: Results, env: Env, args: argparse.Namespace) -> None:
    await bench_history(res, env, load_trace(), samples=args.history_samples)


def method(args: argparse.Namespace) -> list[str]:
    """This scenario's paragraph of the report's Method."""
    return [
        "- 12: fresh hub (`--rate 0`: the loader sends faster than a person types); Ada creates a room "
        "and `paper.tex` with the trace's `startContent`, Bob joins, both open it, Ada asks for the "
        "history once (so the index exists and is kept up to date with every op, as on a hub where "
        "someone looked). The 259,778 patches go through the hub as ops (`[p, ins, -d]`), Ada and Bob "
        "taking turns of 1 to 40 patches (seeded): a turn's ops are sent back to back, each based on "
        "the revision the previous one gets (the hub transforms nothing), and the next turn starts "
        "once the turn is acked; the final text must be `endContent`. The bench process then freezes "
        "its objects (`gc.freeze()`: the trace it holds is over a million, and a collection of its "
        "own would stall the replies it times). Then, each timed from sending the "
        "request to its reply, one at a time, phases 1 s apart (a request that cost the hub much "
        "makes the hub wait before it reads the connection's next message but one: pacing), and "
        f"within each phase: {args.history_samples} one-line blames at random lines "
        "(10 ms apart), 5 whole-document blames (1 s apart: the hub paces a connection after a costly "
        f"request), {args.history_samples} newest history pages of 50 (10 ms apart) and as many "
        f"`before` a random revision (100 ms apart), {args.history_samples} undos and redos by Ada in "
        "turn (50 ms apart; each answered once committed), and revisions at random revisions "
        "(0.5 s apart), three of them checked against the replayed log. Baseline, same run: "
        "`replay_the_log`, every op up to the revision read from PostgreSQL with asyncpg and applied "
        "to the first text in the bench process; to the head (what blame, history and undo would cost "
        "without an index) and to five of the same random revisions. Last, a fresh hub on the same "
        "database: its first one-line blame builds the index from the whole log.",
    ]


SCENARIO = Scenario(
    key="history",
    number=12,
    title="history: undo, blame, history, revisions",
    targets=(
        "undo/redo p99 <= 20 ms",
        "whole-document blame <= 200 ms",
        "one-line blame p99 <= 10 ms",
        "history pages p99 <= 20 ms",
        "revision <= 100 ms",
    ),
    run=run,
    method=method,
)
