"""The PostgreSQL store against a real PostgreSQL (fixtures in tests/conftest.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib

import asyncpg
import pytest

from collab_core import ops
from collab_core.errors import DocumentGone, RevisionConflict, StoreError
from collab_server import store as store_module
from collab_server.document import ClientId, Rev, Sequenced
from collab_server.store import DocumentRecord, Store, _migrations, open_store, storable
from tests.conftest import PgServer

UNICODE = "naïve e\u0301 😀👩‍👩‍👧 \U0001f600\r\nline2\r\n\tend ␀ 𝔘𝔫𝔦 \u200d\ufeff"


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def batch(start_rev: int, op_list: list[ops.Op], client: str = "c1", first_seq: int = 1) -> list[Sequenced]:
    """Sequenced ops with revs start_rev+1, ... and seqs first_seq, ..."""
    return [
        Sequenced(Rev(start_rev + i + 1), op, ClientId(client), first_seq + i, f"author-{client}")
        for i, op in enumerate(op_list)
    ]


def typing(text: str, at: int = 0) -> list[ops.Op]:
    """One insert per code point, as a user typing *text* at *at*."""
    return [ops.insert(at + i, ch) for i, ch in enumerate(text)]


async def make_doc(store: Store, room: str = "r1", path: str = "a.txt", text: str = "") -> DocumentRecord:
    if not await store.room_exists(room):
        await store.create_room(room, "Room", {})
    doc = await store.create_document(room, path, text)
    assert doc is not None
    return doc


# -- migrations --------------------------------------------------------------


async def test_migrations_are_applied_once_and_reopening_is_harmless(database_url: str) -> None:
    first, second = await asyncio.gather(
        open_store(database_url, hub_id="h1"), open_store(database_url, hub_id="h2")
    )
    await first.close()
    await second.close()
    third = await open_store(database_url, hub_id="h3")
    await third.close()
    conn = await asyncpg.connect(database_url)
    try:
        versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        tables = {
            r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    finally:
        await conn.close()
    assert sorted(versions) == [
        "0001_init",
        "0002_owners_and_lifecycle",
        "0003_history",
        "0004_peers",
        "0005_ops_uncompressed",
    ]
    assert {"rooms", "invites", "members", "documents", "ops", "snapshots", "removals", "hubs"} <= tables


async def test_reopening_keeps_data(database_url: str) -> None:
    s = await open_store(database_url, hub_id="h1")
    doc = await make_doc(s, text="kept")
    await s.append(doc.id, 0, batch(0, [ops.insert(4, "!")]))
    await s.close()
    s = await open_store(database_url, hub_id="h1")
    try:
        loaded = await s.load_document(doc.id)
        assert (loaded.text, loaded.rev) == ("kept!", 1)
    finally:
        await s.close()


# -- rooms, invites, members ---------------------------------------------------


async def test_invites_grant_their_role_only_in_their_room(store: Store) -> None:
    await store.create_room("r1", "One", {"owner": digest("o"), "editor": digest("e"), "viewer": digest("v")})
    await store.create_room("r2", "Two", {"editor": digest("e2")})
    assert await store.room_exists("r1")
    assert not await store.room_exists("nope")
    facts = await store.admission("r1", digest("e"), "c1")
    assert facts.invites == (("editor", digest("e")), ("owner", digest("o")), ("viewer", digest("v")))
    assert (facts.assigned_role, facts.member, facts.removed, facts.withdrawn) == (None, False, False, False)
    assert (await store.admission("r2", digest("e"), "c1")).invites == (("editor", digest("e2")),)
    assert (await store.admission("nope", digest("e"), "c1")).invites == ()


async def test_creating_an_existing_room_or_unknown_role_raises_store_error(store: Store) -> None:
    await store.create_room("r1", "One", {"owner": digest("o")})
    with pytest.raises(StoreError):
        await store.create_room("r1", "Again", {"owner": digest("x")})
    with pytest.raises(StoreError):
        await store.create_room("r2", "Bad", {"admin": digest("y")})
    assert not await store.room_exists("r2")


async def test_add_member_upserts_name_and_role(store: Store, database_url: str) -> None:
    await store.create_room("r1", "One", {})
    await store.add_member("r1", "c1", "Ada", "editor")
    await store.add_member("r1", "c1", "Ada L.", "viewer")
    await store.add_member("r1", "c2", "Bob", "owner")
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT client_id, name, role, last_seen >= joined_at FROM members ORDER BY client_id"
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [("c1", "Ada L.", "viewer", True), ("c2", "Bob", "owner", True)]


# -- documents ---------------------------------------------------------------


async def test_documents_are_unique_per_room_and_listed_by_path(store: Store) -> None:
    await store.create_room("r1", "One", {})
    await store.create_room("r2", "Two", {})
    b = await store.create_document("r1", "src/b.py")
    a = await store.create_document("r1", "a.py", "print()\n")
    assert a is not None and b is not None
    assert a == DocumentRecord(a.id, "r1", "a.py", 0)
    assert await store.create_document("r1", "a.py", "other") is None
    other = await store.create_document("r2", "a.py")
    assert other is not None and other.id not in (a.id, b.id)
    assert [d.path for d in await store.list_documents("r1")] == ["a.py", "src/b.py"]
    assert await store.get_document("r1", "a.py") == a
    assert await store.get_document("r1", "missing.py") is None
    assert (await store.load_document(a.id)).text == "print()\n"
    await store.append(a.id, 0, batch(0, [ops.insert(0, "x")]))
    got = await store.get_document("r1", "a.py")
    assert got is not None and got.rev == 1


async def test_document_in_unknown_room_raises_store_error(store: Store) -> None:
    with pytest.raises(StoreError):
        await store.create_document("nope", "a.txt")


async def test_append_and_load_round_trip_unicode_exactly(store: Store) -> None:
    doc = await make_doc(store, text="\r\n")
    # (a batch of several ops: the group statement, whose rows travel as JSON; so escapes too)
    escapes = '"\\ \\u0000 \\" \x01\x1f\x7f </script> \\\\n'
    op_list = [*typing(UNICODE, 1), ops.insert(0, "\u0301\U0001f468\u200d"), [3, -2, "é"]]
    op_list.append(ops.insert(1, escapes))
    expected = "\r\n"
    for op in op_list:
        expected = ops.apply(expected, op)
    await store.append(doc.id, 0, batch(0, op_list))
    loaded = await store.load_document(doc.id)
    assert loaded.text == expected
    assert loaded.rev == len(op_list)
    assert [s.op for s in loaded.history] == op_list
    # the snapshot path round-trips too
    await store.save_snapshot(doc.id, loaded.rev, loaded.text)
    assert (await store.load_document(doc.id)).text == expected


async def test_history_is_the_last_ops_oldest_first_wherever_the_snapshot_is(store: Store) -> None:
    doc = await make_doc(store)
    await store.append(doc.id, 0, batch(0, typing("hello"), client="a"))
    await store.save_snapshot(doc.id, 5, "hello")
    await store.append(doc.id, 5, batch(5, typing(" world", 5), client="b", first_seq=1))
    loaded = await store.load_document(doc.id, history=8)
    assert loaded.text == "hello world"
    assert loaded.rev == 11
    assert [s.rev for s in loaded.history] == list(range(4, 12))
    first = loaded.history[0]
    assert first == Sequenced(Rev(4), ops.insert(3, "l"), ClientId("a"), 4, "author-a")
    assert loaded.history[-1] == Sequenced(Rev(11), ops.insert(10, "d"), ClientId("b"), 6, "author-b")
    assert (await store.load_document(doc.id, history=0)).history == []
    assert len((await store.load_document(doc.id, history=1000)).history) == 11
    # history shorter than the tail after the snapshot
    short = await store.load_document(doc.id, history=2)
    assert [s.rev for s in short.history] == [10, 11]
    assert short.text == "hello world"


async def test_snapshot_plus_tail_gives_the_head_text(store: Store) -> None:
    doc = await make_doc(store, text="base")
    await store.append(doc.id, 0, batch(0, [ops.insert(4, "!"), ops.delete(0, 1)]))
    await store.save_snapshot(doc.id, 2, "ase!")
    await store.append(doc.id, 2, batch(2, [ops.insert(0, "B"), ops.insert(5, "?")], first_seq=3))
    loaded = await store.load_document(doc.id, history=0)
    assert (loaded.text, loaded.rev) == ("Base!?", 4)
    # a snapshot is taken as written: the log after it is what is applied
    await store.save_snapshot(doc.id, 4, "Base!?")
    await store.save_snapshot(doc.id, 4, "ignored: exists")
    assert (await store.load_document(doc.id)).text == "Base!?"


async def test_ops_since_returns_committed_ops_after_a_revision(store: Store) -> None:
    doc = await make_doc(store)
    sent = batch(0, typing("abcdef"))
    await store.append(doc.id, 0, sent[:3])
    await store.append(doc.id, 3, sent[3:])
    assert await store.ops_since(doc.id, 0) == sent
    assert await store.ops_since(doc.id, 4) == sent[4:]
    assert await store.ops_since(doc.id, 1, limit=2) == sent[1:3]
    assert await store.ops_since(doc.id, 6) == []


async def test_last_client_seq_and_find_op(store: Store) -> None:
    doc = await make_doc(store)
    await store.append(doc.id, 0, batch(0, typing("ab"), client="a", first_seq=7))
    await store.append(doc.id, 2, batch(2, typing("c", 2), client="b", first_seq=1))
    assert await store.last_client_seq(doc.id, "a") == (8, 2)
    assert await store.last_client_seq(doc.id, "b") == (1, 3)
    assert await store.last_client_seq(doc.id, "z") is None
    assert await store.find_op(doc.id, "a", 7) == 1
    assert await store.find_op(doc.id, "b", 1) == 3
    assert await store.find_op(doc.id, "a", 9) is None


# -- append: conflicts and failures ------------------------------------------


async def test_stale_expected_rev_raises_revision_conflict_and_writes_nothing(store: Store) -> None:
    doc = await make_doc(store)
    await store.append(doc.id, 0, batch(0, typing("ab"), client="a"))
    with pytest.raises(RevisionConflict):
        await store.append(doc.id, 1, batch(1, [ops.insert(0, "X")], client="b"))
    with pytest.raises(RevisionConflict):
        await store.append(doc.id, 3, batch(3, [ops.insert(0, "X")], client="b"))
    loaded = await store.load_document(doc.id)
    assert (loaded.text, loaded.rev) == ("ab", 2)
    assert await store.last_client_seq(doc.id, "b") is None
    assert store.stats.conflicts == 2


async def test_an_append_after_the_room_was_deleted_raises_document_gone(store: Store) -> None:
    doc = await make_doc(store, text="abc")
    other = await make_doc(store, room="r2", text="kept")
    await store.append(doc.id, 0, batch(0, [ops.insert(3, "d")]))
    assert await store.delete_room("r1", by="owner")
    with pytest.raises(DocumentGone):
        await store.append(doc.id, 1, batch(1, [ops.insert(0, "x")]))
    assert await store.ops_since(doc.id, 0) == []
    assert not await store.room_exists("r1") and not await store.delete_room("r1", by="owner")
    assert (await store.load_document(other.id)).text == "kept"
    assert [r.id for r in await store.list_rooms()] == ["r2"]


async def test_duplicate_client_seq_fails_only_its_own_document_in_a_group(database_url: str) -> None:
    store = await open_store(database_url, hub_id="h", commit_concurrency=1)
    try:
        bad = await make_doc(store, path="bad.txt")
        good = await make_doc(store, path="good.txt")
        await store.append(bad.id, 0, batch(0, [ops.insert(0, "a")], client="c", first_seq=1))
        before = store.stats.transactions
        results = await asyncio.gather(
            # seq 1 again from the same client: violates UNIQUE (document_id, client_id, client_seq)
            store.append(bad.id, 1, batch(1, [ops.insert(0, "b")], client="c", first_seq=1)),
            store.append(good.id, 0, batch(0, [ops.insert(0, "g")], client="c", first_seq=1)),
            return_exceptions=True,
        )
        assert isinstance(results[0], StoreError) and not isinstance(results[0], RevisionConflict)
        assert isinstance(results[0].__cause__, asyncpg.UniqueViolationError)
        assert results[1] is None
        assert store.stats.split_retries == 1
        assert store.stats.transactions == before + 3  # the group, then each document alone
        assert (await store.load_document(bad.id)).text == "a"
        assert (await store.load_document(good.id)).text == "g"
        assert (await store.get_document("r1", "bad.txt")) == DocumentRecord(bad.id, "r1", "bad.txt", 1)
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("error", "message", "chained"),
    [
        (asyncpg.DataError("bad value «secret»"), "append failed: a value is not valid text", False),
        (
            UnicodeEncodeError("utf-8", "«secret»", 0, 1, "surrogates"),
            "append failed: a value is not valid text",
            False,
        ),
        (asyncpg.UniqueViolationError("dup «secret»"), "append failed: UniqueViolationError (23505)", True),
        (asyncpg.InterfaceError("«secret»"), "append failed: InterfaceError", True),
        (ConnectionResetError("«secret»"), "append failed: ConnectionResetError", True),
        (TimeoutError(), "append failed: TimeoutError", True),
    ],
)
async def test_database_errors_become_store_errors_without_their_values(
    error: BaseException, message: str, chained: bool
) -> None:
    with pytest.raises(StoreError) as raised:
        async with store_module._db_errors("append"):
            raise error
    assert str(raised.value) == message
    assert (raised.value.__cause__ is error) == chained
    assert raised.value.__suppress_context__


@pytest.mark.parametrize("error", [ValueError("x"), asyncio.CancelledError(), KeyboardInterrupt()])
async def test_other_errors_pass_through_the_database_errors_unchanged(error: BaseException) -> None:
    with pytest.raises(type(error)) as raised:
        async with store_module._db_errors("append"):
            raise error
    assert raised.value is error
    async with store_module._db_errors("append"):
        pass  # (nothing raised: nothing to say)


async def test_unstorable_text_is_refused_with_store_error(store: Store) -> None:
    doc = await make_doc(store)
    other = await make_doc(store, path="other.txt")
    assert not storable("a\x00b") and not storable("\ud800") and storable(UNICODE)
    with pytest.raises(StoreError):
        await store.append(doc.id, 0, batch(0, [ops.insert(0, "a\x00b")]))
    with pytest.raises(StoreError):
        await store.create_document("r1", "nul.txt", "\x00")
    with pytest.raises(StoreError):
        await store.save_snapshot(doc.id, 0, "x\x00")
    results = await asyncio.gather(
        store.append(doc.id, 0, batch(0, [ops.insert(0, "lone \ud800")])),
        store.append(other.id, 0, batch(0, [ops.insert(0, "fine")])),
        return_exceptions=True,
    )
    assert isinstance(results[0], StoreError)
    assert "lone" not in str(results[0]) and results[0].__cause__ is None  # no text in errors
    assert results[1] is None
    assert (await store.load_document(doc.id)).rev == 0
    assert (await store.load_document(other.id)).text == "fine"
    assert await store.get_document("r1", "nul.txt") is None
    # in a batch of several ops (the group statement: its rows go as JSON), a lone surrogate
    # in an op or in a name the edge let through fails that append alone
    two = batch(0, [ops.insert(0, "x"), ops.insert(1, "y")])
    bad_name = [dataclasses.replace(s, author="ada \ud800") for s in two]
    bad_op = [two[0], dataclasses.replace(two[1], op=[1, "lone \ud800"])]
    for i, bad in enumerate((bad_name, bad_op)):
        rev = (await store.load_document(other.id)).rev
        results = await asyncio.gather(
            store.append(doc.id, 0, bad),
            store.append(other.id, rev, batch(rev, [["y"], ["z"]], first_seq=2 + 2 * i)),
            return_exceptions=True,
        )
        assert isinstance(results[0], StoreError)
        assert "lone" not in str(results[0]) and results[0].__cause__ is None
        assert results[1] is None
        assert (await store.load_document(other.id)).rev == rev + 2
    assert (await store.load_document(doc.id)).rev == 0


async def test_store_recovers_when_its_connections_are_killed(store: Store, database_url: str) -> None:
    doc = await make_doc(store)
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    # the pool notices dead connections and reconnects; the store keeps working
    for _ in range(3):
        try:
            await store.append(doc.id, 0, batch(0, [ops.insert(0, "x")]))
            break
        except StoreError:
            pass
    assert (await store.load_document(doc.id)).text == "x"


# -- group commit --------------------------------------------------------------


async def test_concurrent_appends_to_many_documents_share_few_transactions(store: Store) -> None:
    docs = [await make_doc(store, path=f"f{i}.txt") for i in range(50)]
    before = store.stats.transactions
    await asyncio.gather(
        *(store.append(d.id, 0, batch(0, typing(f"doc {i}"), client=f"c{i}")) for i, d in enumerate(docs))
    )
    used = store.stats.transactions - before
    assert used <= 4, used
    for i, d in enumerate(docs):
        loaded = await store.load_document(d.id)
        assert (loaded.text, loaded.rev) == (f"doc {i}", len(f"doc {i}"))
    assert store.stats.appends == 50


async def test_group_commit_sustains_a_stream_of_appends(store: Store) -> None:
    docs = [await make_doc(store, path=f"f{i}.txt") for i in range(20)]
    rounds = 25

    async def writer(doc: DocumentRecord) -> None:
        for r in range(rounds):
            await store.append(doc.id, r, batch(r, [ops.insert(r, "x")], first_seq=r + 1))

    before = store.stats.transactions
    await asyncio.gather(*(writer(d) for d in docs))
    assert store.stats.transactions - before < len(docs) * rounds / 2
    for d in docs:
        assert (await store.load_document(d.id)).text == "x" * rounds


async def test_a_group_commit_holds_at_most_its_byte_budget() -> None:
    loop = asyncio.get_running_loop()

    def item(doc_id: int, size: int) -> store_module._Append:
        return store_module._Append(doc_id, 0, 1, [], [], loop.create_future(), size)

    big, small, other, again = item(1, 300_000), item(2, 10), item(3, 20), item(2, 10)
    # a large append goes alone; what follows waits for the next group
    assert store_module.take_group([big, small, other], 1000) == ([big], [small, other])
    # small ones go together; a large one after them waits
    assert store_module.take_group([small, other, big], 1000) == ([small, other], [big])
    # one append per document in a group
    assert store_module.take_group([small, again, other], 1000) == ([small, other], [again])
    # up to the budget exactly
    assert store_module.take_group([item(4, 600), item(5, 400), item(6, 1)], 1000)[1][0].doc_id == 6


async def test_a_keystroke_is_not_committed_inside_a_large_append(store: Store) -> None:
    """A megabyte pasted (or printed by a run) in one document and a keystroke in another,
    queued together: two transactions on two connections, so the keystroke's commit does not
    carry the megabyte."""
    big_doc, small_doc = await make_doc(store, path="big.txt"), await make_doc(store, path="small.txt")
    before = store.stats.transactions
    await asyncio.gather(
        store.append(big_doc.id, 0, batch(0, [ops.insert(0, "x" * (store_module.GROUP_BYTES * 4))])),
        store.append(small_doc.id, 0, batch(0, [ops.insert(0, "k")], client="c2")),
    )
    assert store.stats.transactions - before == 2
    assert (await store.load_document(small_doc.id)).text == "k"
    assert len((await store.load_document(big_doc.id)).text) == store_module.GROUP_BYTES * 4


async def test_a_big_op_is_stored_as_it_is_not_compressed(store: Store, database_url: str) -> None:
    """A paste's op is stored uncompressed (migration 0005): PostgreSQL's pglz took 19 ms of
    its CPU to compress a 1 MB op in the commit the paste's ack waits for, against 4 ms to
    store it as it is.  Small ops are never compressed either way."""
    doc = await make_doc(store)
    pasted = "def f(x):\n    return x * 2\n" * 4_000  # 108 KB that pglz would shrink to under 10%
    await store.append(doc.id, 0, batch(0, [ops.insert(0, pasted)]))
    conn = await asyncpg.connect(database_url)
    try:
        method, size = await conn.fetchrow(
            "SELECT pg_column_compression(op), pg_column_size(op) FROM ops WHERE document_id = $1", doc.id
        )
    finally:
        await conn.close()
    assert method is None
    assert size >= len(pasted)
    assert (await store.load_document(doc.id)).text == pasted


async def test_close_waits_for_in_flight_commits(database_url: str) -> None:
    store = await open_store(database_url, hub_id="h")
    docs = [await make_doc(store, path=f"f{i}.txt") for i in range(10)]
    tasks = [asyncio.create_task(store.append(d.id, 0, batch(0, [ops.insert(0, "z")]))) for d in docs]
    await asyncio.sleep(0)
    await store.close()
    await asyncio.gather(*tasks)
    reopened = await open_store(database_url, hub_id="h")
    try:
        assert [(await reopened.load_document(d.id)).text for d in docs] == ["z"] * len(docs)
    finally:
        await reopened.close()
    with pytest.raises(StoreError):
        await reopened.append(docs[0].id, 1, batch(1, [ops.insert(0, "y")]))


async def test_an_append_whose_caller_is_cancelled_is_committed_and_counted(store: Store) -> None:
    docs = [await make_doc(store, path=f"c{i}.txt") for i in range(3)]
    tasks = [asyncio.create_task(store.append(d.id, 0, batch(0, [ops.insert(0, "z")]))) for d in docs]
    await asyncio.sleep(0)  # (queued)
    tasks[1].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]
    await asyncio.gather(tasks[0], tasks[2])
    await wait_for(lambda: store.stats.ops == 3)
    assert [(await store.load_document(d.id)).text for d in docs] == ["z"] * 3
    # the document goes on from there
    await store.append(docs[1].id, 1, batch(1, [ops.insert(1, "y")], first_seq=2))
    assert (await store.load_document(docs[1].id)).text == "zy"


# -- notifications -------------------------------------------------------------


async def wait_for(cond: object, seconds: float = 5.0) -> None:
    assert callable(cond)
    deadline = asyncio.get_running_loop().time() + seconds
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_commits_are_notified_to_every_listening_store(store: Store, database_url: str) -> None:
    other = await open_store(database_url, hub_id="other-hub")
    try:
        await store.register_hub()
        await other.register_hub()
        seen: list[tuple[str, int, int]] = []
        mine: list[tuple[str, int, int]] = []
        await other.listen(lambda *a: seen.append(a))
        await store.listen(lambda *a: mine.append(a))
        doc = await make_doc(store)
        doc2 = await make_doc(store, path="b.txt")
        await asyncio.gather(
            store.append(doc.id, 0, batch(0, typing("abc"))),
            store.append(doc2.id, 0, batch(0, typing("x"))),
        )
        await wait_for(lambda: len(seen) == 2 and len(mine) == 2)
        assert sorted(seen) == sorted([("test-hub", doc.id, 3), ("test-hub", doc2.id, 1)])
        assert sorted(mine) == sorted(seen)
        with pytest.raises(RevisionConflict):
            await other.append(doc.id, 0, batch(0, [ops.insert(0, "late")], client="z"))
        await other.append(doc.id, 3, batch(3, [ops.insert(0, ">")], client="z"))
        await wait_for(lambda: ("other-hub", doc.id, 4) in mine)
        assert len(mine) == 3  # nothing for the conflicting append
    finally:
        await other.close()


@pytest.mark.parametrize(
    "payload", ["", "hub", "hub 7", "hub 7 12 9 1", " 7 12", "hub 7 x", "hub 7  12", "hub 7 1.5"]
)
def test_malformed_ops_notifications_do_not_parse(payload: str) -> None:
    with pytest.raises(ValueError):
        store_module.parse_ops_notification(payload)


@pytest.mark.parametrize("hub_id", ["", "a b", "x" * (store_module.MAX_HUB_ID_BYTES + 1)])
async def test_a_hub_id_that_cannot_go_in_a_notification_is_refused(database_url: str, hub_id: str) -> None:
    with pytest.raises(ValueError):
        await open_store(database_url, hub_id=hub_id)


async def test_a_malformed_notification_is_counted_and_the_next_one_heard(
    store: Store, database_url: str
) -> None:
    seen: list[tuple[str, int, int]] = []
    rooms: list[tuple[str, str, str]] = []
    await store.listen(lambda *a: seen.append(a), on_room=lambda *a: rooms.append(a))
    admin = await asyncpg.connect(database_url)
    try:
        for channel, payload in [
            (store_module.CHANNEL, "other-hub 5"),
            (store_module.CHANNEL, "other-hub 5 6 8 9"),
            (store_module.ROOMS_CHANNEL, "other-hub r1"),
            (store_module.CHANNEL, "other-hub 5 6"),
            (store_module.ROOMS_CHANNEL, "other-hub r1 rotated"),
        ]:
            await admin.execute("SELECT pg_notify($1, $2)", channel, payload)
    finally:
        await admin.close()
    await wait_for(lambda: len(seen) == 1 and len(rooms) == 1)
    assert seen == [("other-hub", 5, 6)]
    assert rooms == [("other-hub", "r1", "rotated")]
    assert store.stats.malformed_notifications == 3


async def test_a_hub_alone_on_its_database_notifies_nobody(store: Store, database_url: str) -> None:
    """Commits notify while a hub other than their committer is registered, and only then."""
    raw = await asyncpg.connect(database_url)
    heard: list[str] = []
    other = await open_store(database_url, hub_id="other-hub")
    try:
        await raw.add_listener(store_module.CHANNEL, lambda *a: heard.append(a[3]))
        doc = await make_doc(store)
        await store.register_hub()
        await store.append(doc.id, 0, batch(0, [ops.insert(0, "a")]))  # alone
        await other.register_hub()
        await store.append(doc.id, 1, batch(1, [ops.insert(1, "b")], first_seq=2))
        await other.unregister_hub()
        await store.append(doc.id, 2, batch(2, [ops.insert(2, "c")], first_seq=3))  # alone again
        await raw.execute("SELECT pg_notify($1, 'marker 0 0')", store_module.CHANNEL)
        await wait_for(lambda: "marker 0 0" in heard)
        assert heard == [f"test-hub {doc.id} 2", "marker 0 0"]
    finally:
        await other.close()
        await raw.close()


async def test_listener_reconnects_after_losing_its_connection(store: Store, database_url: str) -> None:
    seen: list[tuple[str, int, int]] = []
    other = await open_store(database_url, hub_id="other-hub")
    await other.register_hub()  # (commits notify only while another hub is registered)
    await other.close()
    reconnected = asyncio.Event()
    await store.listen(lambda *a: seen.append(a), on_reconnect=reconnected.set)
    doc = await make_doc(store)
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE '%listener'"
        )
    finally:
        await admin.close()
    await asyncio.wait_for(reconnected.wait(), 10)
    await store.append(doc.id, 0, batch(0, [ops.insert(0, "a")]))
    await wait_for(lambda: ("test-hub", doc.id, 1) in seen)


# -- observing -------------------------------------------------------------------


async def test_ping_answers_true_while_postgres_answers_and_false_past_its_timeout(database_url: str) -> None:
    store = await open_store(database_url, hub_id="ping-test")
    try:
        assert await store.ping(5) is True
        # no answer can come before the first await: too slow, never an exception
        assert await store.ping(0) is False
        assert await store.ping(5) is True  # the pool is still fine
    finally:
        await store.close()
    assert await store.ping(5) is False  # closed: False, not an exception


async def test_commit_observers_get_each_transaction_time_and_size(store: Store) -> None:
    seen: list[tuple[float, int]] = []

    def broken(seconds: float, n: int) -> None:
        raise RuntimeError("an observer bug must not fail the commit")

    store.add_commit_observer(broken)
    store.add_commit_observer(lambda seconds, n: seen.append((seconds, n)))
    docs = [await make_doc(store, path=f"o{i}.txt") for i in range(10)]
    before = store.stats.transactions
    await asyncio.gather(
        *(store.append(d.id, 0, batch(0, typing("abc"), client=f"c{i}")) for i, d in enumerate(docs))
    )
    assert len(seen) == store.stats.transactions - before
    assert sum(n for _, n in seen) == 30 == store.stats.ops
    assert all(0 < seconds < 10 for seconds, _ in seen)
    store.remove_commit_observer(broken)
    await store.append(docs[0].id, 3, batch(3, typing("d"), first_seq=4))
    assert seen[-1][1] == 1


# -- history (migration 0003) ----------------------------------------------------


def attributed(s: Sequenced) -> tuple[object, ...]:
    return (s.rev, s.op, s.client_id, s.seq, s.author, s.user, s.time, s.change_rev, s.toggles)


async def test_ops_keep_their_user_change_toggles_and_exact_time(store: Store) -> None:
    doc = await make_doc(store)
    t0 = 1_764_000_000.123457  # not a whole microsecond: the log keeps the nearest one
    sent = [
        Sequenced(Rev(1), ["a"], ClientId("c1"), 1, "p1", "ada-user", 1_764_000_000.123456, 1, None),
        Sequenced(Rev(2), [1, "b"], ClientId("c1"), 2, "p1", "ada-user", 1_764_000_000.9, 1, None),
        Sequenced(Rev(3), [-2], ClientId(""), 3, "p1", "ada-user", 1_764_000_001.5, None, 1),
        Sequenced(Rev(4), ["x"], ClientId("c2"), 1, "p2", "bob-user", t0, None, None),
    ]
    await store.append(doc.id, 0, sent)
    back = await store.ops_since(doc.id, 0)
    assert [attributed(s) for s in back[:3]] == [attributed(s) for s in sent[:3]]
    assert back[3].time == round(t0 * 1e6) / 1e6
    # the time comes back as the very float a hub computes from whole microseconds
    assert all(s.time == round(s.time * 1e6) / 1e6 for s in back)
    assert (back[3].change_rev, back[3].toggles, back[3].user) == (None, None, "bob-user")


async def test_an_op_without_a_time_gets_the_databases(store: Store) -> None:
    doc = await make_doc(store)
    await store.append(doc.id, 0, batch(0, ["a"]))  # alone: the one-op statement
    await store.append(doc.id, 1, batch(1, typing("bc", at=1), first_seq=2))  # the group's
    back = await store.ops_since(doc.id, 0)
    assert len(back) == 3
    assert all(s.time > 1_700_000_000 for s in back)


async def test_an_op_committed_alone_is_written_as_in_a_group(store: Store) -> None:
    """A group of one op takes a statement of its own (scalars, not arrays): same rows."""
    alone, together = await make_doc(store), await make_doc(store, path="b.txt")
    sent = [
        Sequenced(Rev(1), ["a"], ClientId("c1"), 1, "p1", "ada-user", 1_764_000_000.123456, 1, None),
        Sequenced(Rev(2), [1, "é😀"], ClientId("c1"), 2, "p1", "ada-user", 1_764_000_000.9, 1, None),
        Sequenced(Rev(3), [-2], ClientId(""), 3, "p1", "ada-user", 1_764_000_001.5, None, 1),
        Sequenced(Rev(4), ["x"], ClientId("c2"), 1, "p2", "bob-user", 1_764_000_002.0, None, None),
    ]
    before = store.stats.transactions
    for i, s in enumerate(sent):
        await store.append(alone.id, i, [s])
    assert store.stats.transactions - before == 4
    await store.append(together.id, 0, sent)
    one_by_one = await store.ops_since(alone.id, 0)
    assert [attributed(s) for s in one_by_one] == [attributed(s) for s in sent]
    in_a_group = await store.ops_since(together.id, 0)
    assert [attributed(s) for s in one_by_one] == [attributed(s) for s in in_a_group]
    loaded = await store.load_document(alone.id)
    assert (loaded.rev, loaded.text) == (4, "x😀")
    # the compare-and-set holds for a lone op too: nothing written past a stale head
    with pytest.raises(RevisionConflict):
        await store.append(alone.id, 3, [Sequenced(Rev(4), ["y"], ClientId("c3"), 1, "p3")])
    assert (await store.load_document(alone.id)).rev == 4


async def test_revision_is_the_nearest_snapshot_and_the_ops_after_it(store: Store) -> None:
    doc = await make_doc(store, text="start ")
    sent = batch(0, typing("abcdefgh", 6))
    await store.append(doc.id, 0, sent)
    await store.save_snapshot(doc.id, 5, "start abcde")
    texts = ["start ", *("start " + "abcdefgh"[:i] for i in range(1, 9))]
    for rev, want in enumerate(texts):
        parts = await store.revision(doc.id, rev)
        assert parts is not None
        assert parts.snapshot_rev == (5 if rev >= 5 else 0)
        text = parts.snapshot
        for op in parts.ops:
            text = ops.apply(text, op)
        assert text == want
    assert await store.revision(doc.id, 9) is None


async def test_document_origin_is_revision_0_by_its_creator(store: Store) -> None:
    await store.create_room("r1", "Room", {})
    doc = await store.create_document("r1", "a.txt", "hello", created_by="ada-user")
    assert doc is not None
    origin = await store.document_origin(doc.id)
    assert (origin.text, origin.created_by) == ("hello", "ada-user")
    assert origin.time > 1_700_000_000
    legacy = await make_doc(store, path="b.txt")
    assert (await store.document_origin(legacy.id)).created_by == ""


async def test_user_names_are_the_newest_per_user(store: Store) -> None:
    await store.create_room("r1", "Room", {})
    await store.add_member("r1", "entry-1", "Ada", "editor", user="ada-user")
    await asyncio.sleep(0.01)
    await store.add_member("r1", "entry-2", "Ada L.", "editor", user="ada-user")
    await store.add_member("r1", "bob-entry", "Bob", "editor")  # no user: the client id is
    assert await store.user_names("r1", ["ada-user", "bob-entry", "nobody"]) == {
        "ada-user": "Ada L.",
        "bob-entry": "Bob",
    }
    assert await store.user_names("other", ["ada-user"]) == {}


async def test_ops_stored_before_migration_0003_read_as_their_client_ids(pg_server: object) -> None:
    """A database at 0002 with ops and members: after 0003 the ops' user is their client id."""

    assert isinstance(pg_server, PgServer)
    name = await pg_server.create_database()
    dsn = pg_server.dsn_for(name)
    try:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "CREATE TABLE schema_migrations (version text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for version, sql in _migrations()[:2]:
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            await conn.execute("INSERT INTO rooms (id, name) VALUES ('r1', 'old')")
            doc_id = await conn.fetchval(
                "INSERT INTO documents (room_id, path, rev) VALUES ('r1', 'a.txt', 1) RETURNING id"
            )
            await conn.execute("INSERT INTO snapshots (document_id, rev, text) VALUES ($1, 0, '')", doc_id)
            await conn.execute(
                "INSERT INTO ops (document_id, rev, author, client_id, client_seq, op)"
                " VALUES ($1, 1, 'p1', 'old-client', 1, '[\"a\"]')",
                doc_id,
            )
            await conn.execute(
                "INSERT INTO members (room_id, client_id, name, role)"
                " VALUES ('r1', 'old-client', 'Old', 'editor')"
            )
        finally:
            await conn.close()
        s = await open_store(dsn, hub_id="h1")
        try:
            (op,) = await s.ops_since(doc_id, 0)
            assert (op.user, op.change_rev, op.toggles) == ("old-client", None, None)
            assert op.time > 1_700_000_000
            assert await s.user_names("r1", ["old-client"]) == {"old-client": "Old"}
            assert (await s.document_origin(doc_id)).created_by == ""
        finally:
            await s.close()
    finally:
        await pg_server.drop_database(name)


async def test_an_append_as_a_committer_stops_lingering_is_committed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A committer out of work waits a while for more, then ends.  An append queued just as
    they end (their linger over, before they ran again) must still be committed, not wait
    for the next append."""
    monkeypatch.setattr(store_module, "COMMITTER_LINGER", 30.0)
    docs = [await make_doc(store, path=f"d{i}.txt") for i in range(4)]
    revs = [0] * len(docs)

    async def append(k: int) -> None:
        await store.append(docs[k].id, revs[k], batch(revs[k], [ops.insert(0, "x")], first_seq=revs[k] + 1))
        revs[k] += 1

    for _ in range(3):
        await asyncio.gather(*(append(k) for k in range(len(docs))))  # both committers at work
        for _ in range(1000):  # then both waiting for more
            if len(store._idle) == 2:
                break
            await asyncio.sleep(0.01)
        for waiting in list(store._idle):
            waiting.set_result(False)  # what their linger's end does
        await asyncio.wait_for(append(0), 10)
    assert (await store.load_document(docs[0].id)).rev == revs[0] == 6
