"""Randomized convergence: 3 to 5 real ``pairls-lsp`` servers, mixed editors, one hub, one PostgreSQL.

Five language-server subprocesses (VS Code, Neovim 0.7 and eglot boundary
behaviour, see :mod:`tests.support.lsp_editor`) and one hub subprocess are
started once and reused by every seed; one of the servers reaches the hub
through :class:`~tests.support.proxy.TcpProxy`.  Each seed, from its own
``random.Random(seed)``:

* picks 3 to 5 of the servers; they leave the last seed's room, one creates
  a new room sharing a new document with random initial text (emoji, CRLF,
  combining marks), the others join (the room's text wins over their copy);
* lets random editors type concurrently: typing, multi-line pastes (LF and
  CRLF), deleting selections, each action carrying a unique marker, with
  random short delays and random debounce flushes; deletes never touch a
  marker the typist can see;
* in some seeds, cuts the proxied server off from the hub for a while (its
  connections closed, new ones refused) while everybody keeps typing, then
  lets it back; it must reconnect by itself and resubmit what was typed;
* waits for quiescence, then requires every editor buffer == every server's
  shadow (``pairls.status`` sha256) == the hub's text (a fresh
  :class:`~tests.support.hubclient.Peer`), and every marker exactly once.

Seeds: ``PAIRLS_CONVERGENCE_SEEDS`` (default 300: ~0.6 s each, ~3 min in all on a 2-core box),
from ``PAIRLS_CONVERGENCE_SEED_START`` (default 0).  Longer run:
``make soak SEEDS=1000``.  A failure names its seed; rerun it alone with
``PAIRLS_CONVERGENCE_SEED_START=<seed> PAIRLS_CONVERGENCE_SEEDS=1``.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from lsp_bridge.invite import Invite, parse_invite
from tests.lsp_bridge.editors import random_text, random_user_edit
from tests.support.hubclient import Peer
from tests.support.hubproc import HubProcess
from tests.support.lsp_editor import TestEditor, settle, sha256
from tests.support.proxy import TcpProxy

SEEDS = int(os.environ.get("PAIRLS_CONVERGENCE_SEEDS", "300"))
START = int(os.environ.get("PAIRLS_CONVERGENCE_SEED_START", "0"))

pytestmark = [pytest.mark.slow, pytest.mark.timeout(max(300, 20 * SEEDS))]

KINDS = ("vscode", "neovim", "emacs", "vscode", "neovim")
PROXIED = 4  # the index of the server behind the proxy
MARKER = re.compile(r"«\d+\.\d+»")


async def test_lsp_convergence(pg_server: Any, tmp_path: Path) -> None:
    db = f"pairls_conv_{uuid.uuid4().hex}"
    admin = await asyncpg.connect(pg_server.admin_dsn)
    await admin.execute(f'CREATE DATABASE "{db}"')
    await admin.close()
    editors: list[TestEditor] = []
    proxy: TcpProxy | None = None
    hub = HubProcess("--log-level", "WARNING", database_url=pg_server.dsn_for(db)).__enter__()
    stats: dict[str, Any] = {"seeds": 0, "cuts": 0, "heals": 0, "actions": 0, "per_seed": []}
    try:
        host, port = hub.url.removeprefix("ws://").rsplit(":", 1)
        proxy = await TcpProxy(host, int(port)).start()
        for i, kind in enumerate(KINDS):
            ws = tmp_path / f"ws{i}"
            ws.mkdir()
            url = proxy.url if i == PROXIED else hub.url
            editors.append(TestEditor(kind, f"E{i}-{kind}", ws, url, seed=1000 + i, debounce=0.05))
        await asyncio.gather(*(e.start() for e in editors))
        begun = time.monotonic()
        for seed in range(START, START + SEEDS):
            t0 = time.monotonic()
            try:
                await _one_seed(seed, editors, hub, proxy, stats)
            except BaseException as exc:
                raise AssertionError(f"seed {seed} failed: {exc!r}") from exc
            stats["per_seed"].append(time.monotonic() - t0)
            stats["seeds"] += 1
        total = time.monotonic() - begun
        per = sorted(stats["per_seed"])
        print(
            f"\nlsp convergence: {stats['seeds']} seeds in {total:.1f}s "
            f"(median {per[len(per) // 2]:.2f}s, max {per[-1]:.2f}s), {stats['actions']} edits, "
            f"{stats['cuts']} cuts, {stats['heals']} heals"
        )
    finally:
        await asyncio.gather(*(e.stop() for e in editors))
        if proxy is not None:
            await proxy.close()
        hub.__exit__(None, None, None)
        admin = await asyncpg.connect(pg_server.admin_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()


def _invite_for(ed: TestEditor, invite: str) -> str:
    inv = parse_invite(invite)
    assert ed.hub_url is not None
    return str(Invite(ed.hub_url, inv.room_id, inv.secret))


async def _one_seed(
    seed: int, all_editors: list[TestEditor], hub: HubProcess, proxy: TcpProxy, stats: dict[str, Any]
) -> None:
    rng = random.Random(seed)
    k = rng.randint(3, len(all_editors))
    eds = rng.sample(all_editors, k)
    # leave the last seed's room (and close its document) everywhere
    for ed in all_editors:
        for uri in list(ed.buffers):
            ed.close(uri)
    await asyncio.gather(*(ed.command("pairls.leaveRoom", {}) for ed in all_editors))
    heals_before = {id(ed): 0 for ed in eds}

    path = f"s{seed}.txt"
    initial = "\n".join(random_text(rng, 6) for _ in range(rng.randint(0, 4)))
    owner = eds[0]
    uris = {id(ed): ed.uri(path) for ed in eds}
    owner.open(uris[id(owner)], initial, "plaintext")
    room = await owner.command("pairls.createRoom", {"name": f"seed {seed}"})
    for ed in eds[1:]:
        await ed.command("pairls.joinRoom", {"invite": _invite_for(ed, room["invite"])})
        # a stale or empty local copy: the room's text wins
        ed.open(uris[id(ed)], rng.choice(("", "stale copy\n", initial)), "plaintext")
    pairs = [(ed, uris[id(ed)]) for ed in eds]
    await settle(pairs, path, timeout=60)
    for ed in eds:
        heals_before[id(ed)] = (await ed.status())["heals"]

    proxied = all_editors[PROXIED]
    n_actions = rng.randint(10, 30)
    cut_at = restore_at = -1
    if proxied in eds and rng.random() < 0.35:
        cut_at = rng.randrange(0, n_actions // 2)
        restore_at = rng.randrange(cut_at + 1, n_actions + 1)
        stats["cuts"] += 1
    markers: list[str] = []
    for i in range(n_actions + 1):
        if i == cut_at:
            proxy.cut()
        if i == restore_at:
            proxy.restore()
        if i == n_actions:
            break
        ed = rng.choice(eds)
        uri = uris[id(ed)]
        text = ed.text(uri)
        avoid = [(m.start(), m.end()) for m in MARKER.finditer(text)]
        marker = f"«{seed}.{i}»"
        start, end, new = random_user_edit(rng, text, marker=marker, avoid=avoid)
        ed.replace(uri, start, end, new)
        markers.append(marker)
        stats["actions"] += 1
        r = rng.random()
        if r < 0.3:
            ed.flush(uri)
        if r < 0.6:
            await asyncio.sleep(rng.choice((0, 0, 0.005, 0.02, 0.05)))
    if cut_at >= 0 and restore_at == n_actions:
        await asyncio.sleep(rng.choice((0.1, 0.4)))  # offline a little longer, then back
    proxy.restore()

    await settle(pairs, path, timeout=90)
    texts = {ed.name: ed.text(uris[id(ed)]) for ed in eds}
    hub_text = await _hub_text(hub.url, room["invite"], path)
    statuses = [await ed.status() for ed in eds]
    shadows = {st["documents"][path]["sha256"] for st in statuses}
    assert shadows == {sha256(hub_text)}, (seed, texts, hub_text)
    for name, t in texts.items():
        assert t == hub_text, (seed, name, t, hub_text)
    for m in markers:
        assert hub_text.count(m) == 1, (seed, m, hub_text)
    assert len(MARKER.findall(hub_text)) == len(markers), (seed, hub_text)
    stats["heals"] += sum(st["heals"] - heals_before[id(ed)] for st, ed in zip(statuses, eds, strict=True))


async def _hub_text(url: str, invite: str, path: str) -> str:
    inv = parse_invite(invite)
    peer = await Peer(url, "checker").connect()
    try:
        await peer.join(inv.room_id, inv.secret)
        return (await peer.open(path)).text
    finally:
        await peer.close()
