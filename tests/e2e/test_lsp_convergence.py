"""Randomized, model-based convergence: real ``pairls-lsp`` servers through the everyday detours.

Five language-server subprocesses, one per editor behaviour of
:data:`tests.support.lsp_editor.ALL_KINDS` (VS Code, Neovim 0.7, eglot,
Neovim with full sync, a client blind to an edit's version), two hub
subprocesses on one database (hub A, and hub B for the ``two hubs`` detour)
and the test's own embedded PostgreSQL (so that it can stop and start it
without disturbing other tests) are started once and reused by every seed.
Each server reaches a hub (A, unless the plan says B) through its own
:class:`~tests.support.proxy.TcpProxy`, so any of them can be cut off.

Each seed draws a :class:`Plan` from ``random.Random(seed)`` (the typing and
the simulated editors have generators of their own, seeded from the seed, so
a plan does not depend on timing or on the seeds run before it):

* 3 to 5 of the servers; one creates a room sharing a new document with
  random initial text (emoji, CRLF, combining marks), the others join (the
  room's text wins over their local copy);
* 10 to 30 user actions by random editors, concurrent with everything below:
  typing, multi-line pastes, pastes of 1 byte to 64 KB, deleting selections
  (not in insert-only seeds), each carrying a unique marker, with random
  short delays and debounce flushes.  A user never deletes a marker they can
  see (in a version-blind editor, nor what is left of one: see
  :func:`_untouchable`), and a full-sync editor's user never types inside text
  that appeared in the same debounce window (:attr:`SimEditor.fresh`);
* detours, each at a random action and interleaved with the typing:

  - ``leave``: ``pairls.leaveRoom`` once the status shows the leaver's edits
    shared, then later ``pairls.joinRoom`` with the same invite in the same
    server; its buffers stay open (autoShare shares them again) or are
    closed and opened again; nobody types there while out, nor before the
    status shows the buffers shared again;
  - ``alias``: a VS Code-like server opens a second buffer of the document
    through a symbolic link (another URI, the same room path: VS Code keeps
    one document per URI), typed into once shared, later perhaps closing one
    of the two, once a rejoin under way has answered (before, what was typed
    into the closed one was in that buffer alone) (Neovim and Emacs reuse the
    buffer they have for a linked file, so only VS Code-like editors get two);
  - ``big paste``: one paste of 256 KB to 5 MB, mostly over the hub's 1 MiB
    frame limit (a minority of seeds);
  - ``hub restart``: the hub is stopped (SIGTERM or SIGKILL) and a new one
    started on the same port and database;
  - ``postgres restart``: the database server under the hub is stopped and,
    after a while, started again;
  - ``cut``: one or two servers cut off from the hub for a while;
  - ``storm``: many quick cuts of one server in a row;
  - ``leave at once``: the leave does not wait for the status to show the
    leaver's edits shared (half of the leaves): the server waits until the
    hub has them, a few seconds at most; past that (an outage) it leaves
    anyway, says so, and sends them at the rejoin, as the same client.  In
    some of these the leaver is cut off first and types a last marker: the
    leave must say it left it unsent, and the marker must be in the end;
  - ``type at once``: users do not wait for the status to show a buffer
    shared before typing into it: right after opening it (a reopened or
    alias buffer) and while the rejoin is under way (the buffers still
    open); that typing is kept on top of the room's text;
  - ``lag``: one server's route to the hub holds every byte, both ways, for
    0.05 to 1 s over a span of actions (drawn by a generator of its own, so
    the other draws of a seed are as they were), mostly spanning a leaver's
    rejoin: the join, the shares and the acks answer late while its user
    types, opens and closes buffers;
  - ``slow database``: the hub's route to PostgreSQL holds every byte, both
    ways, 0.02 to 0.3 s over a span of actions (a generator of its own too):
    every commit, and so every ack, join and open, is late;
  - ``two hubs``: some of the servers reach the room through hub B from the
    start, the others through hub A (a generator of its own too), and one or
    two servers fail over: their route is cut and leads to the other hub
    when they reconnect, as a load balancer in front of several hubs would
    do; a hub restart then stops A or B;

* then waits (bounded) for quiescence and requires: every editor buffer ==
  every server's shadow (``pairls.status`` sha256) == the hub's text (a
  fresh :class:`~tests.support.hubclient.Peer`) == the hub's op log
  replayed; every marker exactly once (with a full-sync or version-blind
  client in the room a marker may be split by text typed into it, or lose
  characters a diff took for old ones, as the op log shows:
  tests/lsp_bridge/test_editor_sync.py allows the same); in insert-only
  seeds the hub's characters are exactly the initial text's plus everything
  typed and pasted (a ``Counter``); no heal in any server; no error shown to
  a user; no reconnect loop: each server shows "lost the connection"
  (and rejoins after a loss) at most once per outage it went through (cuts
  that closed its connection, hub and database restarts); and no resync (a
  buffer that moved without a didChange the server saw: the edits the
  editors refused, sent again or held are counted in the summary).  A buffer
  that grows past twice everything typed fails the seed at once (text taken
  for typing and sent again grows without end).

Seeds: ``PAIRLS_CONVERGENCE_SEEDS`` (default 200) from
``PAIRLS_CONVERGENCE_SEED_START`` (default 0); longer: ``make soak
SEEDS=2000``.  A failure names its seed, its plan and the command that
reruns it alone (timing still varies from run to run).  For narrowing a
failure down: ``PAIRLS_CONVERGENCE_DETOURS=cut,leave`` keeps only those
detours (the plans are otherwise the same; ``type at once`` happens after
the opens and joins of ``leave`` and ``alias``, so it keeps those two),
``PAIRLS_CONVERGENCE_KINDS=vscode,emacs``
only those servers (other plans), ``PAIRLS_CONVERGENCE_KEEP_GOING=1`` runs
every seed and lists all failures (after a failed seed every editor
and its server start again, and the network, hub and database are
brought back), ``PAIRLS_CONVERGENCE_DUMP=dir`` writes a failed
seed's op log, texts and statuses there.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pygls.exceptions import JsonRpcException

from collab_core import ops
from collab_server.database import EmbeddedPostgres, start_embedded
from lsp_bridge.invite import Invite, parse_invite
from tests.lsp_bridge.editors import PIECES, random_text, random_user_edit, splits_crlf
from tests.support import hubclient
from tests.support.hubproc import HubProcess, start_hub
from tests.support.lsp_editor import ALL_KINDS, TestEditor, settle, sha256, stop_checked
from tests.support.oplog import check_op_log
from tests.support.proxy import TcpProxy, database_proxy

SEEDS = int(os.environ.get("PAIRLS_CONVERGENCE_SEEDS", "200"))
START = int(os.environ.get("PAIRLS_CONVERGENCE_SEED_START", "0"))
KEEP_GOING = os.environ.get("PAIRLS_CONVERGENCE_KEEP_GOING") == "1"
DETOURS = (
    "leave",
    "alias",
    "big paste",
    "hub restart",
    "postgres restart",
    "cut",
    "storm",
    # impatient users: they leave, and type, without waiting for the status to say "shared"
    "leave at once",
    "type at once",
    # a slow route to the hub: every answer late (a join, a share, an ack)
    "lag",
    # the hub's route to PostgreSQL is slow: every commit, join and open late
    "slow database",
    # a room over two hubs on one database, and servers failing over between them
    "two hubs",
)
DEFAULT_DETOURS = list(DETOURS)
ONLY = {d.strip() for d in os.environ.get("PAIRLS_CONVERGENCE_DETOURS", ",".join(DEFAULT_DETOURS)).split(",")}
#: a failed seed's op log, texts and statuses go to this directory, if set
DUMP = os.environ.get("PAIRLS_CONVERGENCE_DUMP", "")
#: narrowing down: only servers of these kinds (this changes the plans)
KINDS = [k for k in os.environ.get("PAIRLS_CONVERGENCE_KINDS", ",".join(ALL_KINDS)).split(",") if k]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(max(600, 30 * SEEDS))]

MARKER = re.compile(r"«\d+\.\d+»")
#: anything a marker is made of (the text typed around markers has none of it but "= 1")
MARKER_PIECE = re.compile(r"[«»\d.]+")
#: counters of pairls.status stats summed over the seeds (see lsp_bridge/room.py)
EDIT_STATS = ("edits_refused", "edit_retries", "edits_held", "resyncs", "left_unsent", "carried")
FRAME_LIMIT = 1 << 20  # the hub's default maxMessageBytes
#: a seed that takes longer than this is a hang
SEED_TIMEOUT = 400
#: waiting for quiescence longer than this is a hang (a 5 MB paste settles in well under a minute)
SETTLE_TIMEOUT = 120
#: user actions on a text longer than this happen in a window of it (the simulated user's
#: choice of place is quadratic in the text)
WINDOW = 4000
RERUN = (
    "PAIRLS_CONVERGENCE_SEED_START={seed} PAIRLS_CONVERGENCE_SEEDS=1 "
    ".venv/bin/python -m pytest -q -s tests/e2e/test_lsp_convergence.py"
)


# -- the plan ------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What one seed does; editors are indexes into :attr:`kinds` (``kinds[0]`` creates the room)."""

    seed: int
    servers: list[int]
    kinds: list[str]
    n_actions: int
    insert_only: bool
    #: (editor, leave at, join at, close and reopen its buffers, at once rather than once
    #: the leaver's edits are shared, offline: cut off, typing a last word, then at once)
    leaves: list[tuple[int, int, int, bool, bool, bool]] = field(default_factory=list)
    #: (editor, open at, close one of the two at or None)
    alias: tuple[int, int, int | None] | None = None
    #: (at, size in bytes)
    big_paste: tuple[int, int] | None = None
    #: (at, SIGKILL rather than SIGTERM, hub B rather than A)
    hub_restarts: list[tuple[int, bool, bool]] = field(default_factory=list)
    #: (at, seconds down)
    pg_restarts: list[tuple[int, float]] = field(default_factory=list)
    #: (editor, cut at, restore at)
    cuts: list[tuple[int, int, int]] = field(default_factory=list)
    #: (editor, at, cuts)
    storms: list[tuple[int, int, int]] = field(default_factory=list)
    #: (editor, from, to, seconds every byte to and from the hub is held)
    lags: list[tuple[int, int, int, float]] = field(default_factory=list)
    #: (from, to, seconds every byte between the hub and PostgreSQL is held)
    db_lags: list[tuple[int, int, float]] = field(default_factory=list)
    #: editors reaching hub B at the start (the others: hub A)
    on_b: list[int] = field(default_factory=list)
    #: (editor, at): its route is cut and leads to the other hub when it reconnects
    failovers: list[tuple[int, int]] = field(default_factory=list)
    #: users type into a buffer they just opened (or got back by a rejoin) at once, rather
    #: than once the status shows it shared
    type_at_once: bool = False

    def describe(self) -> str:
        k = self.kinds
        parts = [f"{len(k)} servers {k} (editor 0 creates)", f"{self.n_actions} actions"]
        parts.append("insert-only" if self.insert_only else "with deletes")
        for e, a, b, reopen, at_once, offline in self.leaves:
            how = " offline, typing a last word, at once" if offline else " at once" if at_once else ""
            parts.append(f"leave{how} {k[e]}@{a} join@{b}{' reopening its buffers' if reopen else ''}")
        if self.alias is not None:
            e, a, c = self.alias
            parts.append(f"alias buffer {k[e]}@{a}" + (f" one closed@{c}" if c is not None else ""))
        if self.big_paste is not None:
            parts.append(f"big paste {self.big_paste[1]} B@{self.big_paste[0]}")
        for a, kill, b in self.hub_restarts:
            parts.append(f"hub {'B ' if b else ''}{'SIGKILL' if kill else 'SIGTERM'}@{a}")
        for a, down in self.pg_restarts:
            parts.append(f"postgres restart@{a} down {down}s")
        for e, a, b in self.cuts:
            parts.append(f"cut {k[e]}@{a}-{b}")
        for e, a, n in self.storms:
            parts.append(f"storm {k[e]}@{a} x{n}")
        for e, a, b, secs in self.lags:
            parts.append(f"lag {secs}s {k[e]}@{a}-{b}")
        for a, b, secs in self.db_lags:
            parts.append(f"slow database {secs}s @{a}-{b}")
        if self.on_b:
            parts.append(f"on hub B: {[k[e] for e in self.on_b]}")
        for e, a in self.failovers:
            parts.append(f"failover {k[e]}@{a}")
        if self.type_at_once and (self.leaves or self.alias):
            parts.append("typing at once after an open or a join")
        return "; ".join(parts)


def draw_plan(seed: int, n_servers: int) -> Plan:
    """The seed's plan; every draw happens whatever ``PAIRLS_CONVERGENCE_DETOURS`` keeps."""
    rng = random.Random(seed)
    pool = [i for i in range(n_servers) if ALL_KINDS[i] in KINDS]
    k = rng.randint(min(3, len(pool)), len(pool))
    servers = rng.sample(pool, k)
    kinds = [ALL_KINDS[s] for s in servers]
    n = rng.randint(10, 30)
    plan = Plan(seed, servers, kinds, n, insert_only=rng.random() < 0.3)

    def span() -> tuple[int, int]:
        a = rng.randrange(0, n)
        return a, rng.randint(a + 1, n)  # n: after the last action

    if rng.random() < 0.3:
        for e in rng.sample(range(k), rng.choice((1, 1, 2))):
            a, b = span()
            reopen = rng.random() < 0.4
            at_once = rng.random() < 0.5 and "leave at once" in ONLY
            # (a generator of its own: the other draws stay as they were)
            offline = at_once and random.Random(f"offline {seed} {e} {a}").random() < 0.4
            plan.leaves.append((e, a, b, reopen, at_once, offline))
    linked = [e for e in range(k) if kinds[e] in ("vscode", "blind")]
    if rng.random() < 0.3 and linked:
        e = rng.choice(linked)
        a = rng.randrange(0, n)
        close = rng.randrange(a, n + 1) if rng.random() < 0.4 else None
        plan.alias = (e, a, close if close is not None and close < n else None)
    if rng.random() < 0.06:
        low, high = (FRAME_LIMIT + 1, 5_000_000) if rng.random() < 0.75 else (256_000, FRAME_LIMIT)
        plan.big_paste = (rng.randrange(0, n), rng.randint(low, high))
    if rng.random() < 0.08:
        plan.hub_restarts.append((rng.randrange(0, n), rng.random() < 0.5, False))
    if rng.random() < 0.06:
        plan.pg_restarts.append((rng.randrange(0, n), rng.choice((0.1, 0.5, 1.5, 4.0))))
    cut_off = set()
    if rng.random() < 0.3:
        for e in rng.sample(range(k), rng.choice((1, 1, 2))):
            a, b = span()
            plan.cuts.append((e, a, b))
            cut_off.add(e)
    if rng.random() < 0.12:
        e = rng.choice([e for e in range(k) if e not in cut_off] or [0])
        if e not in cut_off:
            plan.storms.append((e, rng.randrange(0, n), rng.randint(5, 15)))
    plan.type_at_once = rng.random() < 0.5 and "type at once" in ONLY
    # (a generator of its own: the plans drawn before lags were added stay as they were)
    lag_rng = random.Random(f"lag {seed}")
    if lag_rng.random() < 0.2:
        secs = lag_rng.choice((0.05, 0.2, 0.5, 1.0))
        if plan.leaves and lag_rng.random() < 0.7:
            # slow when it matters most: the leaver's rejoin answers late while its user
            # types, opens and closes buffers
            e, a, b = plan.leaves[0][:3]
            plan.lags.append((e, lag_rng.randint(a, b), lag_rng.randint(b, n), secs))
        else:
            e = lag_rng.randrange(k)
            a = lag_rng.randrange(0, n)
            plan.lags.append((e, a, lag_rng.randint(a + 1, n), secs))
    db_rng = random.Random(f"slow database {seed}")
    if db_rng.random() < 0.1:
        a = db_rng.randrange(0, n)
        plan.db_lags.append((a, db_rng.randint(a + 1, n), db_rng.choice((0.02, 0.1, 0.3))))
    hubs_rng = random.Random(f"two hubs {seed}")
    if hubs_rng.random() < 0.2:
        plan.on_b = sorted(e for e in range(k) if hubs_rng.random() < 0.5)
        for _ in range(hubs_rng.choice((1, 1, 2))):
            plan.failovers.append((hubs_rng.randrange(k), hubs_rng.randrange(0, n)))
        # either hub may go down then (A's restarts were drawn above)
        plan.hub_restarts = [(a, kill, hubs_rng.random() < 0.5) for a, kill, _ in plan.hub_restarts]
        if hubs_rng.random() < 0.3:
            plan.hub_restarts.append((hubs_rng.randrange(0, n), hubs_rng.random() < 0.5, True))
    # narrowing a failure down: drop what was not asked for, keep the draws
    # (typing at once happens after the opens and joins of these two: it keeps them)
    if not {"leave", "leave at once", "type at once"} & ONLY:
        plan.leaves = []
    if not {"alias", "type at once"} & ONLY:
        plan.alias = None
    if "big paste" not in ONLY:
        plan.big_paste = None
    if "hub restart" not in ONLY:
        plan.hub_restarts = []
    if "postgres restart" not in ONLY:
        plan.pg_restarts = []
    if "cut" not in ONLY:
        plan.cuts = []
    if "storm" not in ONLY:
        plan.storms = []
    if "lag" not in ONLY:
        plan.lags = []
    if "slow database" not in ONLY:
        plan.db_lags = []
    if "two hubs" not in ONLY:
        plan.on_b, plan.failovers = [], []
    return plan


# -- the world: servers, proxies, hub, PostgreSQL ---------------------------------------------------


@dataclass
class World:
    editors: list[TestEditor]
    proxies: list[TcpProxy]
    hub: HubProcess
    hub_port: int
    pg: EmbeddedPostgres
    pg_dir: Path
    #: the hub reaches PostgreSQL through this (``hub_dsn``), so that it can be slowed
    pg_proxy: TcpProxy
    hub_dsn: str
    #: the second hub on the same database (``two hubs``), on a port of its own
    hub_b: HubProcess
    hub_b_port: int
    #: one hub or database restart at a time (a hub cannot start without its database)
    infra: asyncio.Lock = field(default_factory=asyncio.Lock)
    stats: Counter[str] = field(default_factory=Counter)
    per_seed: list[float] = field(default_factory=list)

    async def restart_hub(self, kill: bool, b: bool = False) -> None:
        async with self.infra:
            old = self.hub_b if b else self.hub
            if kill:
                await asyncio.to_thread(old.kill)
            else:
                code = await asyncio.to_thread(old.terminate)
                assert code == 0, f"the hub exited with {code} on SIGTERM:\n{_tail(old.log)}"
            # (the world's before it listens: whatever happens, the end of the test stops it)
            new = HubProcess(
                "--log-level",
                "WARNING",
                "--port",
                str(self.hub_b_port if b else self.hub_port),
                database_url=self.hub_dsn,
            )
            if b:
                self.hub_b = new
            else:
                self.hub = new
            await asyncio.to_thread(new.wait_ready)
            self.stats["hub restarts"] += 1

    async def restart_pg(self, down_for: float) -> None:
        async with self.infra:
            await asyncio.to_thread(self.pg.stop)
            await asyncio.sleep(down_for)  # the outage itself
            self.pg = await asyncio.to_thread(start_embedded, self.pg_dir)
            self.stats["postgres restarts"] += 1

    def route(self, proxy: TcpProxy, *, to_b: bool) -> None:
        """Where *proxy*'s next connections lead: hub B or hub A."""
        proxy.target = (proxy.target[0], self.hub_b_port if to_b else self.hub_port)


def _tail(text: str, n: int = 30) -> str:
    return "\n".join(text.splitlines()[-n:])


async def test_lsp_convergence(tmp_path: Path, pg_tmp: Path) -> None:
    pg_dir = pg_tmp / "postgres"
    pg = await asyncio.to_thread(start_embedded, pg_dir)
    editors: list[TestEditor] = []
    proxies: list[TcpProxy] = []
    hub: HubProcess | None = None
    hub_b: HubProcess | None = None
    world: World | None = None
    pg_proxy: TcpProxy | None = None
    try:
        pg_proxy, hub_dsn = await database_proxy(pg.dsn)
        hub, hub_b = await asyncio.gather(
            start_hub(hub_dsn, "--log-level", "WARNING"), start_hub(hub_dsn, "--log-level", "WARNING")
        )
        host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
        for i, kind in enumerate(ALL_KINDS):
            proxy = await TcpProxy(host, int(port)).start()
            proxies.append(proxy)
            ws = tmp_path / f"ws{i}"
            ws.mkdir()
            editors.append(TestEditor(kind, f"E{i}-{kind}", ws, proxy.url, seed=1000 + i, debounce=0.05))
        await asyncio.gather(*(e.start() for e in editors))
        port_b = int(hub_b.url.rsplit(":", 1)[1])
        world = World(editors, proxies, hub, int(port), pg, pg_dir, pg_proxy, hub_dsn, hub_b, port_b)
        failures: list[str] = []
        begun = time.monotonic()
        for seed in range(START, START + SEEDS):
            plan = draw_plan(seed, len(editors))
            t0 = time.monotonic()
            try:
                await asyncio.wait_for(_one_seed(plan, world), SEED_TIMEOUT)
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
                    raise
                what = f"{type(exc).__name__}: {exc}" if not isinstance(exc, TimeoutError) else repr(exc)
                report = (
                    f"seed {seed} failed: {what}\n  plan: {plan.describe()}\n"
                    f"  rerun alone: {RERUN.format(seed=seed)}"
                )
                if not KEEP_GOING:
                    raise AssertionError(report) from exc
                print("\n" + report[:4000], flush=True)
                failures.append(report.splitlines()[0][:300] + f"\n  plan: {plan.describe()}")
                await _recover(world)
                continue
            world.per_seed.append(time.monotonic() - t0)
            world.stats["seeds"] += 1
        total = time.monotonic() - begun
        st = world.stats
        per = sorted(world.per_seed) or [0.0]
        print(
            f"\nlsp convergence: {st['seeds']} seeds in {total:.1f}s (median {per[len(per) // 2]:.2f}s, "
            f"max {per[-1]:.2f}s); {st['edits']} edits ({st['insert-only seeds']} insert-only seeds), "
            f"{st['pastes']} sized pastes, {st['big pastes']} big pastes ({st['over frame']} over 1 MiB); "
            f"{st['leaves']} leave/rejoins ({st['leaves at once']} at once of which {st['offline leaves']} "
            f"offline, {st['reopens']} reopening, "
            f"{st['left_unsent']} with edits unsent and {st['carried']} taking them back), "
            f"{st['aliases']} alias buffers; "
            f"{st['cuts']} cuts ({st['storms']} storms of {st['storm cuts']}), {st['lags']} lags, "
            f"{st['slow databases']} slow databases; {st['two hubs']} seeds on two hubs "
            f"({st['failovers']} failovers); "
            f"{st['hub restarts']} hub restarts ({st['hub kills']} SIGKILL, {st['hub B restarts']} of B), "
            f"{st['postgres restarts']} postgres restarts; {st['lost']} 'lost' messages; "
            f"{st['split markers']} split markers; {st['edits_refused']} edits refused by editors "
            f"({st['edit_retries']} sent again unchanged, {st['edits_held']} held, "
            f"{st['resyncs']} resyncs, {st['late edits']} applied edits reported after they expired); "
            f"{st['joins retried']} joins retried after a cut outlasted them; "
            f"{st['heals']} heals; {len(failures)} failed seeds"
        )
        assert not failures, "failed seeds:\n" + "\n".join(failures)
    finally:
        try:
            # cuts, outages and restarts are this test's own doing; a failed task or an
            # error of the server's own is not (resyncs and heals are counted per seed above)
            await stop_checked(editors)
        finally:
            for p in proxies:
                await p.close()
            if world is not None:
                hub, hub_b = world.hub, world.hub_b
                pg = world.pg
            for h in (hub, hub_b):
                if h is not None:
                    await asyncio.to_thread(h.__exit__, None, None, None)
            if pg_proxy is not None:
                await pg_proxy.close()
            await asyncio.to_thread(pg.stop)


async def _recover(world: World) -> None:
    """After a failed seed (keep-going runs): everything reachable again for the next one,
    and every editor a new one with a new server.  A failed seed can leave an editor with
    requests it cancelled and a server with its state, so that every seed after it failed
    too; the failure was reported already."""
    for p in world.proxies:
        p.restore()
        p.lag(0)
    world.pg_proxy.lag(0)
    async with world.infra:
        if not world.pg.is_running():
            world.pg = await asyncio.to_thread(start_embedded, world.pg_dir)
        if world.hub.proc.poll() is not None:
            world.hub = await start_hub(
                world.hub_dsn, "--log-level", "WARNING", "--port", str(world.hub_port)
            )
        if world.hub_b.proc.poll() is not None:
            world.hub_b = await start_hub(
                world.hub_dsn, "--log-level", "WARNING", "--port", str(world.hub_b_port)
            )
    old = list(world.editors)
    await asyncio.gather(*(ed.stop() for ed in old))
    for i, ed in enumerate(old):
        # the same editor (kind, name, workspace, route, choices), started again
        world.editors[i] = TestEditor(
            ed.kind, ed.name, ed.workspace, ed.hub_url, seed=1000 + i, debounce=ed.debounce
        )
    await asyncio.gather(*(ed.start() for ed in world.editors))
    world.stats["editors restarted"] += len(old)


# -- one seed --------------------------------------------------------------------------------------


def _invite_for(ed: TestEditor, invite: str) -> str:
    """The invite as this server's user got it: through its own proxy to the hub."""
    inv = parse_invite(invite)
    assert ed.hub_url is not None
    return str(Invite(ed.hub_url, inv.room_id, inv.secret))


def _lost(ed: TestEditor) -> int:
    return sum("lost the connection" in m.message for m in ed.client.messages)


class _Seed:
    """The state of one seed's run (see :func:`_one_seed`)."""

    def __init__(self, plan: Plan, world: World) -> None:
        self.plan = plan
        self.world = world
        self.rng = random.Random(f"typing {plan.seed}")
        self.eds = [world.editors[s] for s in plan.servers]
        self.proxies = [world.proxies[s] for s in plan.servers]
        self.path = f"s{plan.seed}.txt"
        #: open buffers of each editor (index into eds)
        self.bufs: dict[int, list[str]] = {}
        #: editors out of the room (left, or not rejoined yet)
        self.out: set[int] = set()
        self.tasks: list[asyncio.Task[None]] = []
        self.markers: list[str] = []
        #: marker -> who typed it, how
        self.typed_by: dict[str, str] = {}
        self.inserted: Counter[str] = Counter()
        self.invite = ""
        self.initial = ""
        #: buffers just opened, not typed into until the server shows them shared
        self.unshared: set[tuple[int, str]] = set()
        #: leaves waiting for the leaver's edits to be shared
        self.leaving: dict[int, asyncio.Task[None]] = {}
        #: closed buffers to open again at a rejoin: editor -> [(uri, text)]
        self.reopen: dict[int, list[tuple[str, str]]] = {}
        #: each editor's last storm of cuts (it restores the network after each cut)
        self.storms: dict[int, asyncio.Task[None]] = {}
        #: each editor's last rejoin
        self.joining: dict[int, asyncio.Task[None]] = {}
        #: joins of each editor that gave up on a cut and were asked again (:func:`_join`): the
        #: error each showed the user is theirs
        self.joins_retried: Counter[int] = Counter()

    def spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.append(task)
        return task

    def live(self) -> list[tuple[int, str]]:
        return [
            (e, uri)
            for e, uris in sorted(self.bufs.items())
            if e not in self.out
            for uri in uris
            if (e, uri) not in self.unshared
        ]


async def _one_seed(plan: Plan, world: World) -> None:
    s = _Seed(plan, world)
    try:
        await _run(s)
    finally:
        for p in s.proxies:
            p.restore()
            p.lag(0)
        world.pg_proxy.lag(0)
        for t in s.tasks:
            if not t.done():
                t.cancel()
        # (a failed seed's typing must not go on into the next seed's)
        if s.tasks:
            await asyncio.wait(s.tasks, timeout=10)


async def _run(s: _Seed) -> None:
    plan, world, rng, eds = s.plan, s.world, s.rng, s.eds
    st = world.stats
    # leave the last seed's room (and close its documents) everywhere
    for ed in world.editors:
        for uri in list(ed.buffers):
            ed.close(uri)
    await asyncio.gather(*(ed.command("pairls.leaveRoom", {}) for ed in world.editors))
    # (a server that left closes its connection: the next one goes where this seed says)
    on_b = {plan.servers[e] for e in plan.on_b}
    for i, p in enumerate(world.proxies):
        world.route(p, to_b=i in on_b)
        for _ in range(250):
            if not p.connections:
                break
            await asyncio.sleep(0.02)
        assert not p.connections, f"{world.editors[i].name} still connected 5 s after leaving"
    for ed in world.editors:
        # the simulated editors' own choices (versions, debounce, how an edit is applied):
        # from the seed, not from the seeds run before it
        ed.rng.seed(f"{plan.seed} {ed.name}")
        ed.max_text, ed.runaway = None, []
    heals_before = sum([(await ed.status())["heals"] for ed in world.editors])
    lost_before = [_lost(ed) for ed in eds]
    stats_before = [(await ed.status())["stats"] for ed in eds]
    live_cuts_before = [p.live_cuts for p in s.proxies]
    messages_before = [len(ed.client.messages) for ed in eds]
    hub_restarts_before = st["hub restarts"]
    pg_restarts_before = st["postgres restarts"]

    s.initial = "\n".join(random_text(rng, 6) for _ in range(rng.randint(0, 4)))
    for ed in eds:
        assert ed.workspace is not None
        (ed.workspace / s.path).write_text(s.initial, encoding="utf-8", newline="")
    owner = eds[0]
    owner.open(owner.uri(s.path), s.initial, "plaintext")
    s.bufs[0] = [owner.uri(s.path)]
    room = await owner.command("pairls.createRoom", {"name": f"seed {plan.seed}"})
    s.invite = room["invite"]
    for e, ed in enumerate(eds[1:], 1):
        await ed.command("pairls.joinRoom", {"invite": _invite_for(ed, s.invite)})
        # a stale or empty local copy: the room's text wins
        ed.open(ed.uri(s.path), rng.choice(("", "stale copy\n", s.initial)), "plaintext")
        s.bufs[e] = [ed.uri(s.path)]
    await settle(_pairs(s), s.path, timeout=60)
    st["insert-only seeds"] += plan.insert_only

    at: dict[int, list[Any]] = {}
    for e, a, b, reopen, at_once, offline in plan.leaves:
        at.setdefault(a, []).append(("leave", e, reopen, at_once, offline))
        at.setdefault(b, []).append(("join", e))
    if plan.alias is not None:
        e, a, c = plan.alias
        at.setdefault(a, []).append(("alias", e))
        if c is not None:
            at.setdefault(c, []).append(("unalias", e))
    for a, kill, b in plan.hub_restarts:
        at.setdefault(a, []).append(("hub", kill, b))
    for a, down in plan.pg_restarts:
        at.setdefault(a, []).append(("pg", down))
    for e, a, b in plan.cuts:
        at.setdefault(a, []).append(("cut", e))
        at.setdefault(b, []).append(("restore", e))
    for e, a, n in plan.storms:
        at.setdefault(a, []).append(("storm", e, n))
    for e, a, b, secs in plan.lags:
        at.setdefault(a, []).append(("lag", e, secs))
        at.setdefault(b, []).append(("lag", e, 0.0))
    for a, b, secs in plan.db_lags:
        at.setdefault(a, []).append(("slow database", secs))
        at.setdefault(b, []).append(("slow database", 0.0))
    for e, a in plan.failovers:
        at.setdefault(a, []).append(("failover", e))
    st["two hubs"] += bool(plan.on_b or plan.failovers)

    for i in range(plan.n_actions + 1):
        for step in at.get(i, []):
            await _detour(s, step, at_end=i == plan.n_actions)
        if i == plan.n_actions:
            break
        if plan.big_paste is not None and plan.big_paste[0] == i:
            _big_paste(s, i, plan.big_paste[1])
        else:
            _user_action(s, i)
        await _no_runaway(s)
        r = rng.random()
        if r < 0.3:
            for e, uri in s.live():
                if rng.random() < 0.5:
                    eds[e].flush(uri)
        if r < 0.6:
            await asyncio.sleep(rng.choice((0, 0, 0.005, 0.02, 0.05)))

    for p in s.proxies:
        p.restore()
    if s.tasks:
        await asyncio.wait_for(asyncio.gather(*s.tasks), 240)
    assert not s.out, s.out

    pairs = _pairs(s)
    try:
        await settle(pairs, s.path, timeout=SETTLE_TIMEOUT)
    except TimeoutError:
        await _no_runaway(s)
        raise TimeoutError(f"no quiescence in {SETTLE_TIMEOUT}s: {await _unquiet(pairs, s.path)}") from None
    await _no_runaway(s)
    statuses = [await ed.status() for ed in eds]
    try:
        await _check(s, pairs, statuses)
    except AssertionError as exc:
        if DUMP:
            await _dump(s, pairs, statuses)
        views = {
            ed.name: {
                uri.rsplit("/", 1)[-1]: v["stats"] for uri, v in st_["documents"][s.path]["views"].items()
            }
            for ed, st_ in zip(eds, statuses, strict=True)
        }
        raise AssertionError(f"{exc}\n  editor sync stats: {views}") from None
    heals = sum([(await ed.status())["heals"] for ed in world.editors]) - heals_before
    st["heals"] += heals
    assert heals == 0, f"{heals} heals: " + ", ".join(
        f"{ed.name}: {st_['documents'][s.path]['heals']}" for ed, st_ in zip(eds, statuses, strict=True)
    )
    infra = st["hub restarts"] - hub_restarts_before + st["postgres restarts"] - pg_restarts_before
    for e, ed in enumerate(eds):
        outages = s.proxies[e].live_cuts - live_cuts_before[e] + infra
        lost = _lost(ed) - lost_before[e]
        reconnects = statuses[e]["stats"]["reconnects"] - stats_before[e]["reconnects"]
        st["lost"] += lost
        assert lost <= outages, f"{ed.name}: 'lost the connection' {lost} times in {outages} outages"
        assert reconnects <= outages, f"{ed.name}: {reconnects} reconnects in {outages} outages"
        errors = [m.message for m in ed.client.messages[messages_before[e] :] if m.type == 1]
        for _ in range(s.joins_retried[e]):  # (each join that gave up may say so, once)
            gave_up = next((m for m in errors if "cannot reach the hub" in m), None)
            if gave_up is not None:
                errors.remove(gave_up)
        assert not errors, f"{ed.name} showed errors: {errors}"
        # the editors' refusals: counted; a buffer that moved without a didChange the server
        # saw is a bug (the server would once re-send an edit at a stale version forever)
        counts = {k: statuses[e]["stats"][k] - stats_before[e][k] for k in EDIT_STATS}
        st.update(counts)
        views = statuses[e]["documents"][s.path]["views"].values()
        st["late edits"] += sum(v["stats"]["late"] for v in views)
        assert counts["resyncs"] == 0, f"{ed.name}: {counts['resyncs']} resyncs with its editor"


async def _no_runaway(s: _Seed) -> None:
    """No buffer far longer than everything typed could make it (see TestEditor.max_text:
    twice, as an edit's new text is counted on top of the text it replaces): else fail now,
    with the op log so far (``PAIRLS_CONVERGENCE_DUMP``)."""
    bound = 2 * (len(s.initial) + sum(s.inserted.values())) + 4096
    for ed in s.eds:
        ed.max_text = bound
    runaway = [f"{ed.name}: {r}" for ed in s.eds for r in ed.runaway]
    if runaway:
        pairs = _pairs(s)
        statuses = [await ed.status() for ed in s.eds]
        if DUMP:
            await _dump(s, pairs, statuses)
        unquiet = await _unquiet(pairs, s.path)
        raise AssertionError(f"text grows past everything typed: {runaway[:5]}{unquiet}")


async def _check(s: _Seed, pairs: list[tuple[TestEditor, str]], statuses: list[dict[str, Any]]) -> None:
    """Convergence and no lost keystroke (see the module docstring)."""
    world, plan = s.world, s.plan
    hub_text = await hubclient.hub_text(world.hub.url, s.invite, s.path)
    shadows = {ed.name: st_["documents"][s.path]["sha256"] for ed, st_ in zip(s.eds, statuses, strict=True)}
    want = sha256(hub_text)
    assert set(shadows.values()) == {want}, f"shadows differ from the hub's text: {shadows} vs {want}"
    for ed, uri in pairs:
        text = ed.text(uri)
        assert text == hub_text, (
            f"{ed.name} {uri}: buffer differs from the hub's text: {_diff(text, hub_text)}"
        )
    room_id = parse_invite(s.invite).room_id
    log = await check_op_log(world.pg.dsn, room_id, s.path)
    assert log.text == hub_text, f"the hub's op log replays to another text: {_diff(log.text, hub_text)}"
    wrong = [m for m in s.markers if hub_text.count(m) != 1]
    if wrong:
        history = await _marker_history(world.pg.dsn, room_id, s.path, wrong)
        # A client that reads a whole text by diffing (full sync) or shows a peer's text at a
        # shifted place for a moment (version-blind) may see its user type into a marker:
        # the marker is split, every character kept; and a diff may take characters the
        # user retyped for old ones kept, which a concurrent delete then takes away
        # (tests/lsp_bridge/test_editor_sync.py allows broken markers with these clients).
        # Doubled, deleted otherwise or never committed is a lost keystroke.
        diffing = {"neovim-full", "blind"} & set(plan.kinds)
        bad = [m for m in wrong if not (diffing and history[m][1] in ("split", "recycled"))]
        world.stats["split markers"] += len(wrong) - len(bad)
        assert not bad, "markers not exactly once: " + "; ".join(
            f"{m} x{hub_text.count(m)} (typed by {s.typed_by[m]}; {_remains(m, hub_text)}; "
            f"in the op log: {history[m][0]})"
            for m in bad[:10]
        )
    unknown = set(MARKER.findall(hub_text)) - set(s.markers)
    assert not unknown, f"unknown markers: {sorted(unknown)[:10]}"
    if plan.insert_only:
        have = Counter(hub_text)
        expect = Counter(s.initial) + s.inserted
        assert have == expect, (
            f"characters lost or added: missing {dict(expect - have)}, extra {dict(have - expect)}"
        )


async def _unquiet(pairs: list[tuple[TestEditor, str]], path: str) -> str:
    """Who is not quiet, in short: each server's connection and document, each buffer."""
    out = []
    for ed, uri in pairs:
        st = await ed.status()
        doc = st["documents"].get(path) or {}
        view = (doc.get("views") or {}).get(uri, {})
        buf = ed.buffers[uri]
        out.append(
            f"{ed.name} {uri.rsplit('/', 1)[-1]}: {st['state']} rev {doc.get('rev')} {doc.get('state')} "
            f"pending={doc.get('pending')} shadow {str(doc.get('sha256'))[:8]} buffer {sha256(buf.text)[:8]} "
            f"v{buf.version} unsent={len(buf.unsent)} "
            f"view={ {k: v for k, v in view.items() if k != 'stats'} } "
            f"stats={view.get('stats')} conn={st['stats']}"
        )
    return "\n    " + "\n    ".join(out)


def _pairs(s: _Seed) -> list[tuple[TestEditor, str]]:
    return [(s.eds[e], uri) for e, uris in sorted(s.bufs.items()) for uri in uris]


async def _detour(s: _Seed, step: tuple[Any, ...], *, at_end: bool) -> None:
    world, eds, st = s.world, s.eds, s.world.stats
    what = step[0]
    if what == "leave":
        _, e, reopen, at_once, offline = step
        s.out.add(e)  # the user stops typing there
        st["leaves"] += 1
        st["reopens"] += reopen
        st["leaves at once"] += at_once
        st["offline leaves"] += offline
        if at_once:
            await _leave(s, e, reopen, offline=offline)
        else:
            s.leaving[e] = asyncio.get_running_loop().create_task(_leave(s, e, reopen, synced=True))
            s.tasks.append(s.leaving[e])
    elif what == "join":
        s.joining[step[1]] = s.spawn(_rejoin(s, step[1]))
    elif what == "alias":
        e = step[1]
        ed = eds[e]
        assert ed.workspace is not None
        link = ed.workspace / f"alias-{s.path}"
        if not link.is_symlink():
            link.symlink_to(s.path)
        uri = ed.uri(link.name)
        # the editor reads the linked file from disk: not what the buffers show now
        ed.open(uri, link.read_text(encoding="utf-8"), "plaintext")
        s.bufs[e].append(uri)  # (out of the room: shared when it rejoins, as autoShare does)
        if not s.plan.type_at_once:
            s.unshared.add((e, uri))
            s.spawn(_until_shared(s, e, [uri]))
        st["aliases"] += 1
    elif what == "unalias":
        e = step[1]
        joining = s.joining.get(e)
        # what the user typed into a buffer before the room had it is in that buffer alone
        # until the join answers: closing it then (unsaved) would drop it, the user's own
        # doing (seed 4489, under load)
        if joining is not None and not joining.done() and s.proxies[e].cut_off:
            # the join waits for a route the plan gives back only later: the buffer closes
            # once it answers (waiting here held the plan back until the join gave up after
            # its 10 s; seed 18513 with PAIRLS_CONVERGENCE_KINDS=neovim-full,blind)
            s.spawn(_unalias(s, e, joining, random.Random(f"unalias {s.plan.seed}")))
        else:
            await _unalias(s, e, joining, s.rng)
    elif what == "hub":
        _, kill, b = step
        st["hub kills"] += kill
        st["hub B restarts"] += b
        s.spawn(world.restart_hub(kill, b))
    elif what == "pg":
        s.spawn(world.restart_pg(step[1]))
    elif what == "cut":
        s.proxies[step[1]].cut()
        st["cuts"] += 1
    elif what == "restore":
        if at_end:
            await asyncio.sleep(s.rng.choice((0.1, 0.4)))  # offline a little longer, then back
        s.proxies[step[1]].restore()
    elif what == "storm":
        _, e, n = step
        st["storms"] += 1
        st["storm cuts"] += n
        s.storms[e] = s.spawn(_storm(s.proxies[e], n, random.Random(f"storm {s.plan.seed}")))
    elif what == "lag":
        _, e, secs = step
        s.proxies[e].lag(secs)
        st["lags"] += secs > 0
    elif what == "slow database":
        world.pg_proxy.lag(step[1])
        st["slow databases"] += step[1] > 0
    elif what == "failover":
        proxy = s.proxies[step[1]]
        was_cut = proxy.cut_off  # (a cut of the plan's: it ends when the plan says)
        proxy.cut()
        world.route(proxy, to_b=proxy.target[1] != world.hub_b_port)
        if not was_cut:
            proxy.restore()
        st["failovers"] += 1
    else:
        raise AssertionError(step)


async def _unalias(s: _Seed, e: int, joining: asyncio.Task[None] | None, rng: random.Random) -> None:
    """One of editor *e*'s two buffers of the document (the file and its alias) is closed, once
    its join under way (*joining*) has answered."""
    if joining is not None:
        await joining
    uris = s.bufs.get(e, [])
    if len(uris) == 2:
        uri = rng.choice(uris)
        s.eds[e].close(uri)
        uris.remove(uri)
        s.unshared.discard((e, uri))


async def _leave(s: _Seed, e: int, reopen: bool, *, synced: bool = False, offline: bool = False) -> None:
    """``pairls.leaveRoom``, at once or (*synced*) once the server shows the leaver's edits
    shared, as a user would who waits for the status to say so; *offline*: the network drops,
    the user types a last word and leaves at once, and the network comes back after."""
    ed = s.eds[e]
    proxy = s.proxies[e]
    storm = s.storms.get(e)
    if offline and storm is not None:
        # a storm going on would bring the network back under the user's last word (seed 3383:
        # the word went through and the leave had nothing unsent): offline after it
        await storm
    was_cut = proxy.cut_off
    typed = False
    if offline:
        proxy.cut()
        if s.bufs[e]:
            uri = s.bufs[e][0]
            _type_marker(s, e, uri, f"«{s.plan.seed}.{900 + len(s.markers)}»")
            ed.flush(uri)
            typed = True
    if synced:
        deadline = asyncio.get_running_loop().time() + 120  # bounds a hang, nothing more
        while True:
            st = await ed.status()  # (flushes the editor's changes first, as Neovim and Emacs do)
            doc = st["documents"].get(s.path)
            if st["connected"] and doc is not None and not doc["pending"]:
                if not any(ed.buffers[uri].unsent for uri in s.bufs[e]):
                    break
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{ed.name} never showed its edits shared: {st}")
            await asyncio.sleep(0.02)
    if reopen:
        ed.flush()
        s.reopen[e] = [(uri, ed.text(uri)) for uri in s.bufs[e]]
        for uri in s.bufs[e]:
            ed.close(uri)
        s.bufs[e] = []
    left = await ed.command("pairls.leaveRoom", {})
    if offline:
        if not was_cut:
            proxy.restore()
        # the server could not have the last word: kept for the rejoin (the checks find it)
        assert not typed or left == {"unsent": [s.path]}, f"{ed.name} left offline: {left}"


def _type_marker(s: _Seed, e: int, uri: str, marker: str) -> None:
    """The user of editor *e* inserts *marker* in *uri* (where a cursor may be)."""
    ed = s.eds[e]
    text = ed.text(uri)
    start, end, new = _edit(s.rng, text, marker=marker, deletes=False, avoid=_untouchable(ed, uri))
    ed.replace(uri, start, end, new)
    s.markers.append(marker)
    s.typed_by[marker] = f"{ed.name} {uri.rsplit('/', 1)[-1]} {start}-{end} {new[:80]!r} (offline, leaving)"
    s.inserted.update(new)
    s.world.stats["edits"] += 1


async def _rejoin(s: _Seed, e: int) -> None:
    ed = s.eds[e]
    leaving = s.leaving.pop(e, None)
    if leaving is not None:
        await leaving
    join = asyncio.ensure_future(_join(s, e))
    if s.plan.type_at_once:
        await asyncio.sleep(0)  # (the request is on its way)
        s.out.discard(e)  # impatient: typing into the buffers still open while it joins
    await join
    for uri, text in s.reopen.pop(e, []):
        # opened again from disk (the seed's first text) or as the buffer was
        ed.open(uri, s.rng.choice((text, s.initial)), "plaintext")
        s.bufs[e].append(uri)
    if not s.plan.type_at_once:
        await _until_shared(s, e, list(s.bufs[e]))
    s.out.discard(e)


async def _join(s: _Seed, e: int) -> None:
    """``pairls.joinRoom``; asked again once the route is back if the join gave up because no
    connection got through for its whole patience (10 s): a cut of the plan can outlast it while
    the plan waits on something else, an offline leave's 5 s say (seed 21180: Emacs joined while
    cut, Neovim's offline leave held the plan past it). A user reads "cannot reach the hub" and
    joins again. Any other failure, one after a connection got through, or one the route did not
    refuse (a hub down) fails the seed; each retry is counted."""
    ed, proxy = s.eds[e], s.proxies[e]
    while True:
        through, refused = proxy.accepted, proxy.refused
        try:
            await ed.command("pairls.joinRoom", {"invite": _invite_for(ed, s.invite)})
            return
        except JsonRpcException as exc:
            cut = proxy.refused > refused and proxy.accepted == through  # (not a hub that was down)
            if "cannot reach the hub" not in str(exc) or not cut:
                raise
        s.world.stats["joins retried"] += 1
        s.joins_retried[e] += 1
        deadline = asyncio.get_running_loop().time() + 120  # (the plan restores every cut by its end)
        while proxy.cut_off:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{ed.name}: the route never came back to join again")
            await asyncio.sleep(0.02)


async def _until_shared(s: _Seed, e: int, uris: list[str]) -> None:
    """Wait until the server shows these buffers (if still open) in the room's open document,
    as a user would who waits for the status to say so before typing."""
    ed = s.eds[e]
    deadline = asyncio.get_running_loop().time() + 120  # bounds a hang, nothing more
    while True:
        uris = [u for u in uris if u in ed.buffers]
        doc = (await ed.status())["documents"].get(s.path)
        if not uris or (doc is not None and doc["state"] == "open" and all(u in doc["views"] for u in uris)):
            break
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{ed.name}: {uris} never shown shared: {doc}")
        await asyncio.sleep(0.02)
    for u in uris:
        s.unshared.discard((e, u))


async def _storm(proxy: TcpProxy, n: int, rng: random.Random) -> None:
    for _ in range(n):
        proxy.cut()
        await asyncio.sleep(rng.choice((0, 0.005, 0.02, 0.05)))
        proxy.restore()
        await asyncio.sleep(rng.choice((0.005, 0.02, 0.05, 0.1, 0.3)))


def _user_action(s: _Seed, i: int) -> None:
    live = s.live()
    if not live:
        return
    rng = s.rng
    e, uri = rng.choice(live)
    ed = s.eds[e]
    buf = ed.buffers[uri]
    text = buf.text
    avoid = _untouchable(ed, uri)
    marker = f"«{s.plan.seed}.{i}»"
    deletes = not s.plan.insert_only
    if rng.random() < 0.12:
        # a paste of 1 byte to 64 KB
        at, _, _ = _edit(rng, text, marker=None, deletes=False, avoid=avoid)
        size = int(math.exp(rng.uniform(0, math.log(65536))))
        new = _with_marker(rng, _paste_body(rng, size), marker)
        start = end = at
        s.world.stats["pastes"] += 1
    else:
        start, end, new = _edit(rng, text, marker=marker, deletes=deletes, avoid=avoid)
    ed.replace(uri, start, end, new)
    s.markers.append(marker)
    s.typed_by[marker] = f"{ed.name} {uri.rsplit('/', 1)[-1]} {start}-{end} {new[:80]!r}"
    s.inserted.update(new)
    s.world.stats["edits"] += 1


def _big_paste(s: _Seed, i: int, size: int) -> None:
    live = s.live()
    if not live:
        return
    rng = s.rng
    e, uri = rng.choice(live)
    ed = s.eds[e]
    buf = ed.buffers[uri]
    at, _, _ = _edit(rng, buf.text, marker=None, deletes=False, avoid=_untouchable(ed, uri))
    marker = f"«{s.plan.seed}.{i}»"
    new = _with_marker(rng, _paste_body(rng, size), marker)
    ed.replace(uri, at, at, new)
    s.markers.append(marker)
    s.typed_by[marker] = f"{ed.name} {uri.rsplit('/', 1)[-1]} {at} big paste of {len(new)}"
    s.inserted.update(new)
    st = s.world.stats
    st["big pastes"] += 1
    st["over frame"] += len(new.encode("utf-8")) > FRAME_LIMIT
    st["edits"] += 1


def _untouchable(ed: TestEditor, uri: str) -> list[tuple[int, int]]:
    """The spans of *uri*'s buffer the user of *ed* leaves alone: every marker they can see,
    with a full-sync editor the text that appeared in the current debounce window, and with a
    version-blind editor what is left of a marker, too.  Such an editor shows a peer's edit at
    shifted places until the server puts it right, and so may show a marker broken for a
    moment (the user's own among them); a user who deleted the piece they saw would delete
    that piece from the room, which is the user's doing, not a lost keystroke."""
    buf = ed.buffers[uri]
    pattern = MARKER_PIECE if ed.kind == "blind" else MARKER
    avoid = [(m.start(), m.end()) for m in pattern.finditer(buf.text)]
    if buf.avoid_fresh:
        avoid += buf.fresh
    return avoid


def _edit(
    rng: random.Random, text: str, *, marker: str | None, deletes: bool, avoid: list[tuple[int, int]]
) -> tuple[int, int, str]:
    """:func:`random_user_edit` on *text*, or on a window of it if it is long (same rules)."""
    if len(text) <= 2 * WINDOW:
        return random_user_edit(rng, text, marker=marker, deletes=deletes, avoid=avoid)
    lo = rng.randrange(0, len(text) - WINDOW)
    hi = lo + WINDOW
    # window edges where a cursor can be: outside every avoided span, not inside a CRLF
    moved = True
    while moved:
        moved = False
        for a, b in avoid:
            if a < lo < b:
                lo, moved = a, True
            if a < hi < b:
                hi, moved = b, True
        if splits_crlf(text, lo):
            lo, moved = lo - 1, True
        if splits_crlf(text, hi):
            hi, moved = hi + 1, True
    inside = [(a - lo, b - lo) for a, b in avoid if a < hi and b > lo]
    start, end, new = random_user_edit(rng, text[lo:hi], marker=marker, deletes=deletes, avoid=inside)
    return start + lo, end + lo, new


def _paste_body(rng: random.Random, size: int) -> str:
    """About *size* bytes of UTF-8 in lines (LF or CRLF) of the pieces users type."""
    if size <= 64:
        out = ""
        while len(out.encode("utf-8")) < size:
            out += rng.choice(PIECES)
        return out
    eol = rng.choice(("\n", "\r\n"))
    words = [*PIECES[:-3], "def", "return", "pairls", "    ", "(x)", "= 1", "#", "😀"]
    pool = ["".join(rng.choices(words, k=rng.randint(4, 30))) for _ in range(256)]
    avg = sum(len(p.encode("utf-8")) for p in pool) / len(pool) + len(eol)
    return eol.join(rng.choices(pool, k=max(1, int(size / avg))))


def _with_marker(rng: random.Random, body: str, marker: str) -> str:
    cut = rng.randint(0, len(body))
    if splits_crlf(body, cut):
        cut -= 1
    return body[:cut] + marker + body[cut:]


def _remains(marker: str, text: str) -> str:
    """What is left of a marker in *text*: its longest prefix found, in context."""
    for n in range(len(marker) - 1, 1, -1):
        at = text.find(marker[:n])
        if at >= 0:
            return f"{marker[:n]!r} at {at}: {text[max(0, at - 20) : at + 40]!r}"
    return "no trace"


def _diff(a: str, b: str) -> str:
    """Where two texts first differ, with a little context (the texts may be megabytes)."""
    i, step = 0, 4096
    while step:
        while a[i : i + step] == b[i : i + step] and i < min(len(a), len(b)):
            i += step
        step //= 2
    i = min(i, len(a), len(b))
    lo = max(0, i - 40)
    return f"lengths {len(a)} vs {len(b)}, first difference at {i}: {a[lo : i + 40]!r} vs {b[lo : i + 40]!r}"


async def _marker_history(
    dsn: str, room_id: str, path: str, markers: list[str]
) -> dict[str, tuple[str, str]]:
    """For each marker: the committed ops that changed its count (rev, author, op), and its
    fate: "intact", "doubled", "never committed", "deleted", or one of these two, which a
    client that reads whole texts by a diff can cause: "split" (other text went inside it,
    none of it deleted) and "recycled" (committed by a diff that kept some of the old text's
    characters as part of it, and only those were deleted since, by a concurrent edit)."""
    conn = await asyncpg.connect(dsn)
    try:
        doc = await conn.fetchrow("SELECT id FROM documents WHERE room_id = $1 AND path = $2", room_id, path)
        assert doc is not None
        snap = await conn.fetchval("SELECT text FROM snapshots WHERE document_id = $1 AND rev = 0", doc["id"])
        rows = await conn.fetch(
            "SELECT o.rev, o.client_seq, o.op, m.name FROM ops o "
            "LEFT JOIN members m ON m.room_id = $2 AND m.client_id = o.client_id "
            "WHERE o.document_id = $1 ORDER BY o.rev",
            doc["id"],
            room_id,
        )
    finally:
        await conn.close()
    text = snap or ""
    #: a marker split before it was committed: its characters in order in one op's insert
    spread = {m: re.compile(".*?".join(map(re.escape, m)), re.DOTALL) for m in markers}
    lines: dict[str, list[str]] = {m: [] for m in markers}
    fate = {m: "never committed" for m in markers}
    counts = {m: text.count(m) for m in markers}
    #: offsets in each marker that its committing op kept from the old text (a diff's choice)
    kept: dict[str, set[int]] = {m: set() for m in markers}
    for r in rows:
        op = json.loads(r["op"])
        before = text
        text = ops.apply(text, op)
        for m in markers:
            if fate[m] == "never committed" and (
                any(isinstance(c, str) and m not in c and spread[m].search(c) for c in op)
                or _split_across(m, _pieces(op, text, len(m)))
            ):
                fate[m] = "split"
                lines[m].append(f"rev {r['rev']} by {r['name']} seq {r['client_seq']}: split in {op}"[:300])
        for m in markers:
            n = text.count(m)
            if n == counts[m]:
                continue
            shown = [c if not isinstance(c, str) or len(c) < 60 else c[:60] + "..." for c in op]
            lines[m].append(f"rev {r['rev']} by {r['name']} seq {r['client_seq']}: {counts[m]}->{n} {shown}")
            if n > 1:
                fate[m] = "doubled"
            elif n == 1 and fate[m] in ("never committed", "split"):
                fate[m] = "intact"
                at = text.find(m)
                new = _inserted(op)
                kept[m] = {i for i in range(len(m)) if not any(a <= at + i < b for a, b in new)}
            elif n == 0 and fate[m] == "intact":
                gone = _deleted(op, before.find(m), len(m))
                fate[m] = "split" if not gone else "recycled" if gone <= kept[m] else "deleted"
            counts[m] = n
    return {m: (" | ".join(lines[m]) or "never committed", fate[m]) for m in markers}


async def _dump(s: _Seed, pairs: list[tuple[TestEditor, str]], statuses: list[dict[str, Any]]) -> None:
    """What a failed seed left (op log with authors, texts, statuses), to ``$PAIRLS_CONVERGENCE_DUMP``."""
    room_id = parse_invite(s.invite).room_id
    conn = await asyncpg.connect(s.world.pg.dsn)
    try:
        rows = await conn.fetch(
            "SELECT o.rev, o.client_seq, o.op, m.name FROM ops o JOIN documents d ON d.id = o.document_id "
            "LEFT JOIN members m ON m.room_id = d.room_id AND m.client_id = o.client_id "
            "WHERE d.room_id = $1 AND d.path = $2 ORDER BY o.rev",
            room_id,
            s.path,
        )
    finally:
        await conn.close()
    out = {
        "plan": s.plan.describe(),
        "initial": s.initial,
        "typed": s.typed_by,
        "ops": [[r["rev"], r["name"], r["client_seq"], json.loads(r["op"])] for r in rows],
        "buffers": {f"{ed.name} {uri}": ed.text(uri) for ed, uri in pairs},
        "statuses": statuses,
    }
    target = Path(DUMP) / f"seed-{s.plan.seed}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")


def _deleted(op: list[Any], at: int, length: int) -> set[int]:
    """The offsets of the *length* code points at *at* of its base text that *op* deletes."""
    out: set[int] = set()
    pos = 0
    for c in op:
        if isinstance(c, str):
            continue
        if c > 0:
            pos += c
        else:
            out.update(i - at for i in range(max(pos, at), min(pos - c, at + length)))
            pos -= c
    return out


def _pieces(op: list[Any], result: str, most: int) -> list[tuple[bool, str | None]]:
    """*op*'s components in order as (inserted, text) in its *result*: an insert's text, a
    retain's text if shorter than *most* (else None: too long to be part of a marker); deletes
    left out."""
    out: list[tuple[bool, str | None]] = []
    pos = 0
    for c in op:
        if isinstance(c, str):
            out.append((True, c))
            pos += len(c)
        elif c > 0:
            out.append((False, result[pos : pos + c] if c < most else None))
            pos += c
    return out


def _split_across(m: str, pieces: list[tuple[bool, str | None]]) -> bool:
    """Whether one op wrote marker *m* in parts, other text between them: it starts at the end of
    an insert and ends at the start of a later one, and what lies between is either whole
    components of it (a diff that kept some of the old text's characters as part of the user's
    typing) or retained text the parts go around (a concurrent insert, transformed into the op)."""

    def rest_from(rest: str, i: int) -> bool:
        for inserted, piece in pieces[i:]:
            if inserted and piece is not None and piece.startswith(rest):
                return True
            if (
                piece
                and len(piece) < len(rest)
                and rest.startswith(piece)
                and rest_from(rest[len(piece) :], i + 1)
            ):
                return True
            if inserted:
                return False  # (text this op typed inside the marker: not the user's marker)
            i += 1  # a retain gone around
        return False

    for i, (inserted, piece) in enumerate(pieces):
        if inserted and piece:
            for k in range(1, len(m)):
                if piece.endswith(m[:k]) and rest_from(m[k:], i + 1):
                    return True
    return False


@pytest.mark.parametrize(
    ("pieces", "split"),
    [
        ([(True, "x«1.2»y")], False),  # whole in one insert: not split
        ([(True, "«1."), (False, "2"), (True, "»")], True),  # a diff kept an old "2" as part of it
        ([(True, "a«1"), (False, None), (True, ".2»b")], True),  # a concurrent insert went inside
        ([(True, "«1"), (False, "q"), (False, "."), (True, "2»")], True),  # both
        ([(True, "«1"), (True, "zz"), (True, ".2»")], False),  # the op's own text inside it
        ([(True, "«1.2"), (False, "»")], False),  # its end not typed by this op
        ([(False, "«"), (True, "1.2»")], False),  # its start not typed by this op
        ([(True, "«1.3»"), (False, None), (True, "2»")], False),  # another marker's characters
    ],
)
def test_a_marker_one_op_wrote_in_parts_is_told_apart(
    pieces: list[tuple[bool, str | None]], split: bool
) -> None:
    assert _split_across("«1.2»", pieces) is split


def test_the_pieces_of_an_op_are_read_from_its_result() -> None:
    op: list[Any] = [2, "«1.", -2, 1, "»", 30, -1]
    result = ops.apply("ab" + "cd" + "2" + "e" * 30 + "f", op)
    assert _pieces(op, result, 5) == [(False, "ab"), (True, "«1."), (False, "2"), (True, "»"), (False, None)]
    assert _split_across("«1.2»", _pieces(op, result, 5))


def _inserted(op: list[Any]) -> list[tuple[int, int]]:
    """The spans of *op*'s result that its inserts wrote."""
    out = []
    pos = 0
    for c in op:
        if isinstance(c, str):
            out.append((pos, pos + len(c)))
            pos += len(c)
        elif c > 0:
            pos += c
    return out
