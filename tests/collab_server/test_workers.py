"""``pairls-hub --workers N`` as a real process tree (collab_server/workers.py).

Two workers share one port: clients are spread over both (the
``participants`` table names the hub of each connection) and still form one
room; a worker killed with SIGKILL is counted, logged and started again on
the same port; SIGTERM to the parent stops every worker cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal

import asyncpg
import psutil
import pytest

from collab_server.workers import worker_argv
from tests.support.hubclient import Peer
from tests.support.hubproc import HubProcess

pytestmark = pytest.mark.timeout(180)


def test_a_worker_runs_the_same_command_on_the_shared_port() -> None:
    argv = ["--workers", "2", "--port", "0", "--host", "0.0.0.0", "--workers=3", "--port=9", "--rate", "5"]
    cmd = worker_argv(argv, 8765)
    assert cmd[1:3] == ["-m", "collab_server"]
    assert cmd[3:] == ["--host", "0.0.0.0", "--rate", "5", "--port", "8765", "--reuse-port"]


def workers_of(parent: HubProcess) -> list[psutil.Process]:
    return [p for p in psutil.Process(parent.proc.pid).children() if "collab_server" in " ".join(p.cmdline())]


async def hubs_serving(database_url: str) -> set[str]:
    db = await asyncpg.connect(database_url)
    try:
        return {r[0] for r in await db.fetch("SELECT DISTINCT hub_id FROM participants")}
    finally:
        await db.close()


async def test_two_workers_share_the_port_restart_when_killed_and_stop_on_sigterm(database_url: str) -> None:
    hub = HubProcess("--workers", "2", database_url=database_url)
    try:
        url = await asyncio.to_thread(hub.wait_ready)
        workers = workers_of(hub)
        assert len(workers) == 2
        owner = await Peer(url, "Owner").connect()
        room = await owner.create_room()
        peers = [owner]
        for i in range(19):
            p = await Peer(url, f"P{i}").connect()
            await p.join(room["room"], room["editorSecret"])
            peers.append(p)
        # both workers got connections, and every member sees all 20 (across the two)
        assert len(await hubs_serving(database_url)) == 2
        last = await Peer(url, "Last").connect()
        joined = await last.join(room["room"], room["editorSecret"])
        assert len(joined["participants"]) == 21

        # a worker dies: counted, logged, started again on the same port
        victim = workers[0]
        os.kill(victim.pid, signal.SIGKILL)
        for _ in range(300):
            if sum(" listens" in line and "collab_server.workers" in line for line in hub.stderr) == 3:
                break
            await asyncio.sleep(0.1)
        assert any("exited with status -9; starting it again" in line for line in hub.stderr), hub.log
        alive = {w.pid for w in workers_of(hub)}
        assert len(alive) == 2 and victim.pid not in alive
        again = await Peer(url, "Again").connect()
        await again.join(room["room"], room["editorSecret"])
        for p in [*peers, last, again]:
            await p.close()
        children = workers_of(hub)
        assert await asyncio.to_thread(hub.terminate) == 0
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert any(
            "stopped (1 workers died and 1 were started again meanwhile)" in line for line in hub.stderr
        )
        assert not [line for line in hub.stderr if "Traceback" in line], hub.log
    finally:
        if hub.proc.poll() is None:
            hub.kill()
