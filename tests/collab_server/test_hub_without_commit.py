"""bench/hub_without_commit.py, scenario 13's baseline, run as the bench runs it: a real process
on PostgreSQL.  It must be what it says (the hub relaying and acking with nothing written to the
log), or the bench's "commit's share" would be a wrong figure.  Scenario 13 also reads each hub's
group commits from its ``/metrics``: here from the real hub and the baseline, as the bench does."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg  # type: ignore[import-untyped,unused-ignore]
import pytest

from tests.support.hubclient import Peer
from tests.support.hubproc import HubProcess

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from pairls_bench.hocus import scrape_commits  # noqa: E402

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
        commits = await asyncio.to_thread(scrape_commits, hub.url)
    assert a == b == "abcxyz"
    assert (ops, head) == (written, written)
    if written:
        # each character was acked before the next was typed: three commits of one op each,
        # each a round trip to PostgreSQL
        assert (commits["commits"], commits["ops_per_commit"]) == (3, 1.0)
        assert 0 < commits["commit_ms"] < 10_000
    else:
        assert commits == {}  # no statement ran: nothing for the bench to report
