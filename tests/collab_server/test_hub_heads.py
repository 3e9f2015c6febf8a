"""A commit whose ``pairls_ops`` notification never came is caught up by the periodic check of the
open documents' heads (``Hub.check_heads``, run by the room keeper; ``lifecycle.heads_behind``).

Two hubs in this process share one real PostgreSQL and check every 0.2 s.  The commit with no
notification is written with SQL, as a hub whose notification was lost, or one of another
version whose notification this hub cannot read, would leave it.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from collab_server.hub import Hub, HubConfig
from collab_server.lifecycle import REGISTER_RESYNC_DELAY, heads_behind
from tests.support.hubclient import Peer, SharedDoc, until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def hub_config() -> HubConfig:
    return HubConfig(room_check_interval=0.2)


def test_heads_behind_names_the_known_documents_whose_head_is_past_what_is_known() -> None:
    heads = {1: 5, 2: 7, 3: 9, 4: 1}
    known = {1: 5, 2: 6, 3: 10, 5: 0}
    # 1 is at its head, 3 knows more than was read (it committed since), 4 and 5 are not both sides
    assert heads_behind(heads, known) == {2: 7}
    assert heads_behind({}, known) == {}


async def commit_without_notifying(database_url: str, room: str, path: str, op: str) -> None:
    """One op on *path*, committed as the hubs do but with no NOTIFY."""
    db = await asyncpg.connect(database_url)
    try:
        async with db.transaction():
            doc_id, rev = await db.fetchrow(
                "UPDATE documents SET rev = rev + 1 WHERE room_id = $1 AND path = $2 RETURNING id, rev",
                room,
                path,
            )
            await db.execute(
                "INSERT INTO ops (document_id, rev, author, client_id, client_seq, op, user_id)"
                " VALUES ($1, $2, 'elsewhere', 'other-version', $2, $3, 'other')",
                doc_id,
                rev,
                op,
            )
    finally:
        await db.close()


async def test_a_commit_nobody_was_told_of_reaches_every_hub_and_is_counted(
    two_hubs: tuple[Hub, Hub], database_url: str
) -> None:
    a, b = two_hubs
    await asyncio.sleep(REGISTER_RESYNC_DELAY)  # (past the hubs' second reading after they started)
    ada = await Peer(f"ws://127.0.0.1:{a.port}", "Ada").connect()
    bob = await Peer(f"ws://127.0.0.1:{b.port}", "Bob").connect()
    try:
        room = await ada.create_room("heads")
        await ada.create_document("a.txt", "abc")
        ada_doc = await ada.open("a.txt")
        await bob.join(room["room"], room["editorSecret"])
        bob_doc = await bob.open("a.txt")

        await commit_without_notifying(database_url, room["room"], "a.txt", '[3, "X"]')
        await until(lambda: ada_doc.text == bob_doc.text == "abcX")
        # each hub had the document open, and neither was told
        assert a.stats.missed_notifications == b.stats.missed_notifications == 1

        # the notified commits of every keystroke since are not taken for missed ones
        for ch in "typing on":
            await ada_doc.splice(len(ada_doc.text), 0, ch)
            await asyncio.sleep(0.02)
        await bob_doc.splice(0, 0, ">")
        await ada_doc.wait_synced()
        await bob_doc.wait_synced()
        await until(lambda: ada_doc.text == bob_doc.text == ">abcXtyping on")
        await asyncio.sleep(1.5)  # past a check's grace
        assert a.stats.missed_notifications == b.stats.missed_notifications == 1
        a.stats.missed_notifications = b.stats.missed_notifications = 0  # caused here on purpose
    finally:
        await ada.close()
        await bob.close()


async def test_a_document_not_open_here_is_not_checked(two_hubs: tuple[Hub, Hub], database_url: str) -> None:
    a, b = two_hubs
    await asyncio.sleep(REGISTER_RESYNC_DELAY)  # (past the hubs' second reading after they started)
    ada = await Peer(f"ws://127.0.0.1:{a.port}", "Ada").connect()
    try:
        room = await ada.create_room("elsewhere")
        await ada.create_document("a.txt", "abc")
        doc: SharedDoc = await ada.open("a.txt")
        await commit_without_notifying(database_url, room["room"], "a.txt", '[3, "X"]')
        await until(lambda: doc.text == "abcX")
        await asyncio.sleep(1.5)
        assert a.stats.missed_notifications == 1
        assert b.stats.missed_notifications == 0  # hub b never had it open
        a.stats.missed_notifications = 0
    finally:
        await ada.close()
