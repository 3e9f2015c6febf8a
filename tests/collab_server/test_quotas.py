"""Admission and quotas (collab_server.quotas), sans-I/O: fed by hand with a made-up clock."""

from __future__ import annotations

import pytest

from collab_core.errors import ErrorCode
from collab_server.config import HubConfig
from collab_server.document import ClientId, Refusal, Rev, Sequenced, Sequencer, Submission, history_cost
from collab_server.quotas import AddressBook, HistoryBudget, TokenBucket, address_key, token_matches

A = ClientId("a")
B = ClientId("b")

# -- token buckets -------------------------------------------------------------------------------


def test_try_take_refuses_past_the_burst_and_refills_at_the_rate() -> None:
    b = TokenBucket(rate=8, burst=3, now=100.0)  # (times in binary fractions: exact sums)
    assert [b.try_take(1, 100.0) for _ in range(4)] == [True, True, True, False]
    assert not b.try_take(1, 100.0625)  # half a token earned
    assert b.try_take(1, 100.125)
    assert not b.full(100.125)
    assert b.full(100.5)  # 3 tokens back after 3/8 s
    assert b.try_take(3, 100.5) and not b.try_take(1, 100.5)


def test_try_take_takes_nothing_when_it_refuses() -> None:
    b = TokenBucket(rate=1, burst=10, now=0.0)
    assert b.try_take(8, 0.0)
    assert not b.try_take(5, 0.0)
    assert b.try_take(2, 0.0)


def test_take_borrows_and_says_how_long_to_wait() -> None:
    b = TokenBucket(rate=1000, burst=500, now=0.0)
    assert b.take(400, 0.0) == 0.0
    assert b.take(100, 0.0) == 0.0
    assert b.take(250, 0.0) == pytest.approx(0.25)  # 250 bytes in debt at 1000/s
    # a caller that waits before its next take is held to the rate
    assert b.take(1000, 0.25) == pytest.approx(1.0)
    assert b.take(1, 1.25) == pytest.approx(0.001)


def test_take_larger_than_the_burst_is_allowed_and_waited_for() -> None:
    b = TokenBucket(rate=100, burst=10, now=0.0)
    assert b.take(1010, 0.0) == pytest.approx(10.0)
    assert not b.full(9.9)
    assert b.take(0, 10.0) == pytest.approx(0.0, abs=1e-9)


def test_sending_n_bytes_takes_at_least_n_minus_burst_over_rate() -> None:
    rate, burst = 1000.0, 300.0
    b = TokenBucket(rate, burst, now=0.0)
    now = 0.0
    for _ in range(50):
        now += b.take(70, now)  # wait as told, then take the next
    assert now == pytest.approx((50 * 70 - burst) / rate)


def test_a_rate_of_zero_never_limits() -> None:
    b = TokenBucket(rate=0, burst=0, now=0.0)
    assert b.unlimited and b.full(0.0)
    assert all(b.try_take(10**9, 0.0) for _ in range(3))
    assert b.take(10**9, 0.0) == 0.0


def test_a_negative_burst_is_an_error() -> None:
    with pytest.raises(ValueError):
        TokenBucket(1, -1, 0.0)


# -- addresses -----------------------------------------------------------------------------------


def test_connections_per_address_are_counted_and_released() -> None:
    book = AddressBook(max_connections=2, rate=100, burst=100)
    assert book.admit("10.0.0.1", 0.0) and book.admit("10.0.0.1", 0.0)
    assert not book.admit("10.0.0.1", 0.0)
    assert book.refused == 1 and book.connections("10.0.0.1") == 2
    assert book.admit("10.0.0.2", 0.0)  # another address is not affected
    book.release("10.0.0.1", 0.0)
    assert book.admit("10.0.0.1", 0.0)
    assert book.refused == 1


def test_no_connection_limit_with_zero() -> None:
    book = AddressBook(max_connections=0, rate=0, burst=0)
    assert all(book.admit("h", 0.0) for _ in range(1000))
    assert book.connections("h") == 1000


def test_connections_of_an_address_share_one_byte_bucket() -> None:
    book = AddressBook(max_connections=4, rate=1000, burst=1000)
    book.admit("h", 0.0)
    book.admit("h", 0.0)
    first, second = book.bucket("h"), book.bucket("h")
    assert first is second and first is not None
    assert first.take(600, 0.0) == 0.0
    assert second.take(600, 0.0) == pytest.approx(0.2)  # the address owes 200 bytes


def test_an_address_keeps_its_bucket_until_it_refills() -> None:
    book = AddressBook(max_connections=1, rate=100, burst=100)
    book.admit("h", 0.0)
    bucket = book.bucket("h")
    assert bucket is not None
    bucket.take(300, 0.0)  # 200 in debt: full again at t=3
    book.release("h", 0.5)
    assert book.bucket("h") is bucket  # reconnecting does not buy a fresh burst
    assert book.admit("h", 1.0)
    assert book.bucket("h") is bucket
    book.release("h", 3.5)  # full again
    assert book.bucket("h") is None and len(book) == 0


def test_idle_addresses_are_swept_as_the_table_grows() -> None:
    book = AddressBook(max_connections=1, rate=1, burst=10)
    for i in range(3000):
        key = f"10.{i // 256}.{i % 256}.1"
        book.admit(key, float(i))
        bucket = book.bucket(key)
        assert bucket is not None
        bucket.take(20, float(i))  # in debt for 10 s: kept after release
        book.release(key, float(i))
    # without sweeping all 3000 would be kept; only the last ~10 s worth (and a table's slack) remain
    assert len(book) < 1100


def test_release_of_an_unknown_address_is_ignored() -> None:
    book = AddressBook(max_connections=1, rate=1, burst=1)
    book.release("nobody", 0.0)
    assert len(book) == 0


def test_address_keys() -> None:
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    # one host usually has a whole /64
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("not an address") == "not an address"


def test_token_matches() -> None:
    assert token_matches("s3cret-token", "s3cret-token")
    assert not token_matches("s3cret-tokeN", "s3cret-token")
    assert not token_matches("s3cret", "s3cret-token")
    assert not token_matches("", "s3cret-token")
    assert not token_matches(None, "s3cret-token")


# -- the history budget, with real sequencers ---------------------------------------------------


def sub(client: ClientId, seq: int, base: int, op: list[object]) -> Submission:
    return Submission(client, seq, Rev(base), op)  # type: ignore[arg-type]


def fill(s: Sequencer, client: ClientId, n: int, size: int = 100) -> None:
    """n ops of *size* inserted characters each, committed."""
    for i in range(n):
        out = s.submit(sub(client, s.rev + 1 + i * 0, s.rev, [len(s.text), "x" * size]))
        assert isinstance(out, Sequenced)
    s.take_unsent()
    s.commit(s.rev)


ENTRY = history_cost([0, "x" * 100])  # what fill() costs per op (the first op lacks the retain)


def test_history_cost_counts_inserted_text_in_utf8() -> None:
    assert history_cost(["é"]) - history_cost(["e"]) == 1
    assert history_cost([3, "abc", -2]) > history_cost(["abc"])


def test_the_budget_counts_every_sequencer_and_evicts_the_oldest_anywhere() -> None:
    budget = HistoryBudget(limit=10 * ENTRY)
    s1 = Sequencer("", 0, history_limit=100, ledger=budget)
    s2 = Sequencer("", 0, history_limit=100, ledger=budget)
    fill(s1, A, 6)
    fill(s2, B, 4)
    assert budget.used == s1.history_bytes + s2.history_bytes <= budget.limit
    assert budget.evicted == 0
    fill(s2, B, 3)  # 13 entries: the 3 oldest go, all of them s1's
    assert budget.evicted == 3 and budget.evicted_bytes > 0
    assert budget.used == s1.history_bytes + s2.history_bytes <= budget.limit
    assert s1.oldest_base == 3 and s2.oldest_base == 0
    # an op based on an evicted revision is refused; the client catches up
    out = s1.submit(sub(A, 100, 2, ["y"]))
    assert isinstance(out, Refusal) and out.code == ErrorCode.REVISION_TOO_OLD
    assert isinstance(s1.submit(sub(A, 100, 3, ["y"])), Sequenced)
    assert budget.used <= budget.limit


def test_ops_since_an_evicted_revision_are_left_to_the_store() -> None:
    budget = HistoryBudget(limit=3 * ENTRY)
    s = Sequencer("", 0, ledger=budget)
    fill(s, A, 5)
    assert s.ops_since(1) is None
    assert [x.rev for x in s.ops_since(2) or []] == [3, 4, 5]


def test_an_entry_larger_than_the_budget_is_evicted_at_once() -> None:
    budget = HistoryBudget(limit=1000)
    s = Sequencer("", 0, ledger=budget)
    assert isinstance(s.submit(sub(A, 1, 0, ["x" * 2000])), Sequenced)
    assert budget.used == s.history_bytes == 0 and s.oldest_base == 1
    assert isinstance(s.submit(sub(A, 2, 1, ["y"])), Sequenced)  # the head still takes ops


def test_the_per_document_op_limit_and_rollback_give_bytes_back() -> None:
    budget = HistoryBudget(limit=0)  # no limit: only counting
    s = Sequencer("", 0, history_limit=3, ledger=budget)
    fill(s, A, 5)
    assert budget.entries == 3 and budget.used == s.history_bytes == 3 * ENTRY
    s.submit(sub(A, 6, 5, [500, "y" * 50]))
    s.submit(sub(A, 7, 6, [550, "z"]))
    assert budget.entries == 3
    s.rollback()
    assert budget.entries == 1 and budget.used == s.history_bytes == ENTRY
    assert budget.evicted == 0


def test_a_released_sequencer_leaves_the_budget() -> None:
    budget = HistoryBudget(limit=5 * ENTRY)
    s1 = Sequencer("", 0, ledger=budget)
    s2 = Sequencer("", 0, ledger=budget)
    fill(s1, A, 4)
    s1.release_history()
    assert budget.used == 0 and budget.entries == 0
    fill(s2, B, 5)  # s1's stale ledger rows are skipped, nothing of s2 is evicted for them
    assert budget.evicted == 0 and s2.oldest_base == 0
    fill(s2, B, 1)
    assert budget.evicted == 1 and s2.oldest_base == 1


def test_history_loaded_with_the_document_is_counted() -> None:
    s = Sequencer("", 0)
    fill(s, A, 4)
    history = s.ops_since(0)
    assert history is not None
    budget = HistoryBudget(limit=0)
    loaded = Sequencer(s.text, s.rev, history=history, ledger=budget)
    assert budget.entries == 4 and budget.used == loaded.history_bytes == s.history_bytes


@pytest.mark.parametrize("limit", [0, 30 * ENTRY])
def test_the_budget_keeps_nothing_per_entry(limit: int) -> None:
    """A document at its --history limit drops its oldest op with every new one: the budget's
    own memory stays one row per document, not one per op ever kept (it grew to twice the
    entries kept before it was compacted: tens of MB at 100 typists)."""
    budget = HistoryBudget(limit=limit)
    seqs = [Sequencer("", 0, history_limit=10, ledger=budget) for _ in range(5)]
    for i in range(2000):
        fill(seqs[i % 5], ClientId(f"c{i % 5}"), 5)
    assert budget.entries == 50 if not limit else budget.entries <= 30
    assert len(budget._heap) <= 2 * 5 + 64
    seqs[0].release_history()
    seqs[1].release_history()
    for i in range(200):
        fill(seqs[2 + i % 3], ClientId(f"c{2 + i % 3}"), 5)
    assert len(budget._rows) <= 3 and len(budget._heap) <= 2 * 3 + 64


def test_the_oldest_entry_anywhere_goes_first() -> None:
    """Entries are evicted in the order they were kept, across sequencers, also after a
    sequencer dropped entries by itself (its --history limit, a rollback)."""
    budget = HistoryBudget(limit=0)
    s1 = Sequencer("", 0, history_limit=3, ledger=budget)
    s2 = Sequencer("", 0, history_limit=100, ledger=budget)
    fill(s1, A, 2)  # s1: revs 1-2
    fill(s2, B, 2)  # s2: revs 1-2
    fill(s1, A, 3)  # s1 keeps revs 3-5 (its limit dropped 1-2 by itself)
    fill(s2, B, 1)  # s2: revs 1-3
    budget.limit = budget.used - 1
    budget.enforce()  # the oldest kept anywhere: s2's rev 1 (s1's 1-2 are gone already)
    assert (s1.oldest_base, s2.oldest_base) == (2, 1)
    budget.limit = budget.used - 1
    budget.enforce()
    assert (s1.oldest_base, s2.oldest_base) == (2, 2)
    budget.limit = budget.used - 1
    budget.enforce()  # then s1's rev 3, kept before s2's rev 3
    assert (s1.oldest_base, s2.oldest_base) == (3, 2)


def test_a_negative_budget_is_an_error() -> None:
    with pytest.raises(ValueError):
        HistoryBudget(-1)


# -- the settings --------------------------------------------------------------------------------


def test_quota_settings_are_checked() -> None:
    HubConfig(max_rooms=0, max_connections_per_address=0, bytes_per_second=0)  # 0: no limit
    for name in ("max_rooms", "max_documents_per_room", "max_connections_per_address", "max_history_bytes"):
        with pytest.raises(ValueError, match=name):
            HubConfig(**{name: -1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="create_token"):
        HubConfig(create_token="")
    assert "hush" not in repr(HubConfig(create_token="hush"))
