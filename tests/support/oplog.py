"""Check a document's op log straight in PostgreSQL (asyncpg, no hub code involved)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from collab_core import ops


@dataclass
class OpLog:
    head: int
    text: str
    #: (client_id, client_seq) -> rev
    by_client: dict[tuple[str, int], int]


async def check_op_log(database_url: str, room: str, path: str) -> OpLog:
    """Replay the ``ops`` table in rev order from the creation snapshot.

    Asserts the revisions are exactly 1..documents.rev (contiguous, no
    gaps, no duplicates) and each (client_id, client_seq) appears once; any
    later snapshot must equal the replayed text at its revision.
    """
    conn = await asyncpg.connect(database_url)
    try:
        doc = await conn.fetchrow(
            "SELECT id, rev FROM documents WHERE room_id = $1 AND path = $2", room, path
        )
        assert doc is not None, "no such document"
        doc_id, head = doc["id"], doc["rev"]
        snaps = {
            r["rev"]: r["text"]
            for r in await conn.fetch("SELECT rev, text FROM snapshots WHERE document_id = $1", doc_id)
        }
        rows = await conn.fetch(
            "SELECT rev, client_id, client_seq, op FROM ops WHERE document_id = $1 ORDER BY rev", doc_id
        )
    finally:
        await conn.close()
    revs = [r["rev"] for r in rows]
    assert revs == list(range(1, head + 1)), "op log is not contiguous 1..head"
    text = snaps[0]
    by_client: dict[tuple[str, int], int] = {}
    for r in rows:
        key = (r["client_id"], r["client_seq"])
        assert key not in by_client, (
            f"(client_id, seq) {key[1]} applied twice: revs {by_client[key]}, {r['rev']}"
        )
        by_client[key] = r["rev"]
        text = ops.apply(text, json.loads(r["op"]))
        if r["rev"] in snaps:
            assert snaps[r["rev"]] == text, f"snapshot at rev {r['rev']} differs from the replayed log"
    return OpLog(head, text, by_client)
