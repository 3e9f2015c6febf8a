"""bench/hub_without_commit.py, scenario 13's baseline, run as the bench runs it: a real process
on PostgreSQL.  It must be what it says (the hub relaying and acking with nothing written to the
log), or the bench's "commit's share" would be a wrong figure."""

from __future__ import annotations

import asyncio

import asyncpg  # type: ignore[import-untyped,unused-ignore]
import pytest

from tests.support.hubclient import Peer
from tests.support.hubproc import HubProcess

pytestmark = pytest.mark.timeout(180)


async def _edit_and_count_rows(hub: HubProcess, database_url: str) -> tuple[str, str, int, int]:
    """Ada types three characters, Bob sees them; then the texts and what the log holds."""
    url = await asyncio.to_thread(hub.wait_ready, 120)
    ada, bob = Peer(url, "Ada"), Peer(url, "Bob")
    await ada.connect()
    await bob.connect()
    room = await ada.create_room("r")
    await bob.join(room["room"], room["editorSecret"])
    await ada.create_document("a.txt", "abc")
    doc_a, doc_b = await ada.open("a.txt"), await bob.open("a.txt")
    for i, ch in enumerate("xyz"):
        await doc_a.splice(3 + i, 0, ch)
        await doc_a.wait_synced()  # acked: one op per character
    await doc_b.wait_rev(3)
    await ada.close()
    await bob.close()
    conn = await asyncpg.connect(database_url)
    try:
        ops = await conn.fetchval("SELECT count(*) FROM ops")
        head = await conn.fetchval("SELECT rev FROM documents WHERE path = 'a.txt'")
    finally:
        await conn.close()
    return doc_a.text, doc_b.text, ops, head


@pytest.mark.parametrize(("module", "written"), [("collab_server", 3), ("bench.hub_without_commit", 0)])
async def test_the_baseline_acks_and_relays_with_nothing_written(
    database_url: str, module: str, written: int
) -> None:
    with HubProcess(database_url=database_url, module=module) as hub:
        a, b, ops, head = await _edit_and_count_rows(hub, database_url)
    assert a == b == "abcxyz"
    assert (ops, head) == (written, written)
