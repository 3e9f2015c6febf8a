"""The embedded PostgreSQL supervisor (collab_server.supervisor) on a real server.

The decisions (when to restart, backoff, giving up) are the sans-I/O
RestartPolicy's, tested in test_retry.py; here the shell polls a real
postmaster, which the test kills with SIGKILL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from collab_server.database import EmbeddedPostgres, start_embedded
from collab_server.retry import RestartPolicy
from collab_server.store import open_store
from collab_server.supervisor import PostgresSupervisor

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def server(pg_tmp: Path) -> AsyncIterator[list[EmbeddedPostgres]]:
    """[the server]; the test may replace it; whatever is last is stopped."""
    holder = [await asyncio.to_thread(start_embedded, pg_tmp / "pg")]
    yield holder
    await asyncio.to_thread(holder[-1].stop)


async def wait_until(cond: Callable[[], bool], timeout: float = 60) -> None:
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError


async def test_a_killed_postmaster_is_restarted_and_the_store_carries_on(
    server: list[EmbeddedPostgres], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collab_server")
    first = server[0]
    store = await open_store(first.dsn, hub_id="supervised")
    sup = PostgresSupervisor(first, policy=RestartPolicy(first_delay=0.1), poll_interval=0.1)
    sup.start()
    try:
        await store.create_room("r1", "kept", {"owner": b"x" * 32})
        doc = await store.create_document("r1", "a.txt", "survives")
        assert doc is not None
        await asyncio.sleep(0.5)
        assert (sup.deaths, sup.restarts) == (0, 0)  # a live server is left alone
        os.kill(first.pid, signal.SIGKILL)
        await wait_until(lambda: sup.restarts == 1)
        server.append(sup.server)
        assert sup.server.pid != first.pid and sup.server.is_running() and not first.is_running()
        assert sup.server.dsn == first.dsn
        # the pool reconnects by itself; what was committed is there
        loaded = await store.load_document(doc.id)
        assert loaded.text == "survives"
        assert [d.path for d in await store.list_documents("r1")] == ["a.txt"]
        gone = [r for r in caplog.records if "is gone; restarting" in r.getMessage()]
        assert len(gone) == 1 and gone[0].levelno == logging.WARNING
        assert sup.gave_up is None and sup.failed_starts == 0
    finally:
        await sup.close()
        await store.close()
    conn = await asyncpg.connect(sup.server.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM documents") == 1
    finally:
        await conn.close()


async def test_it_gives_up_after_failed_starts_in_a_row_with_a_clear_error(
    server: list[EmbeddedPostgres], caplog: pytest.LogCaptureFixture
) -> None:
    first = server[0]
    attempts: list[Path] = []

    def failing_start(data_dir: Path) -> EmbeddedPostgres:
        attempts.append(data_dir)
        raise RuntimeError("pg_ctl failed (1): could not start server")

    messages: list[str] = []
    sup = PostgresSupervisor(
        first,
        policy=RestartPolicy(max_failures=3, first_delay=0.05, max_delay=0.1),
        poll_interval=0.05,
        on_give_up=messages.append,
        starter=failing_start,
    )
    sup.start()
    try:
        os.kill(first.pid, signal.SIGKILL)
        await wait_until(lambda: bool(messages))
        assert attempts == [first.data_dir, first.data_dir]  # the death counted as the first failure
        assert sup.failed_starts == 2 and sup.restarts == 0
        assert messages == [sup.gave_up]
        assert "3 times in a row; giving up" in messages[0] and str(first.data_dir) in messages[0]
        assert [r.levelno for r in caplog.records if r.getMessage() == messages[0]] == [logging.ERROR]
        await asyncio.sleep(0.3)
        assert len(attempts) == 2  # no more tries once given up
    finally:
        await sup.close()
    # the real server is still dead; start it so the fixture can stop it cleanly
    server.append(await asyncio.to_thread(start_embedded, first.data_dir))
