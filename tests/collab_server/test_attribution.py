"""collab_server.attribution: the history index's life, its budget and the wire's replies (sans-I/O)."""

from __future__ import annotations

import gc
import random
import re
import sys
import tracemalloc

import pytest

from collab_core import ops
from collab_core.history import Change, LineBlame
from collab_server.attribution import (
    HistoryIndex,
    IndexBudget,
    IndexState,
    author_id,
    blame_range,
    blame_reply,
    history_page,
    history_reply,
    iso_time,
)
from collab_server.document import ClientId, Rev, Sequenced, toggle_client

T0 = 1_764_000_000.0


def op_at(rev: int, op: ops.Op, user: str = "ada", t: float = T0, **kw: int | None) -> Sequenced:
    return Sequenced(Rev(rev), op, ClientId("c"), rev, "p", user, t, kw.get("change_rev"), kw.get("toggles"))


def test_an_index_is_built_once_for_the_requests_that_wait_then_follows_the_commits() -> None:
    index: HistoryIndex[str] = HistoryIndex()
    assert index.state is IndexState.ABSENT
    assert index.want("blame-1") is True  # start a build
    assert index.want("undo-2") is False  # one is under way
    index.begin("ab", "ada", T0)
    index.feed([op_at(1, [2, "c"]), op_at(2, [3, "d"])])
    assert index.finish(3) is None  # the document is further on: read on
    index.committed([op_at(3, [4, "e"])])  # (a build ignores commits: it reads them from the log)
    index.feed([op_at(3, [4, "e"])])
    assert index.finish(3) == ["blame-1", "undo-2"]
    assert index.ready and index.rev == 3
    assert index.committed([op_at(4, [5, "f"], t=T0 + 0.5)])
    assert index.history is not None and index.history.text == "abcdef"
    with pytest.raises(ValueError):
        index.want("served at once")
    with pytest.raises(ValueError):
        index.finish(2)


def test_the_index_decides_a_change_only_at_the_head() -> None:
    index: HistoryIndex[str] = HistoryIndex()
    assert index.group("ada", ["x"], T0, 0) is None  # no index
    index.want("r")
    index.begin("", "ada", T0)
    assert index.group("ada", ["x"], T0, 0) is None  # still building
    assert index.finish(0) == ["r"]
    assert index.group("ada", ["x"], T0, 0) == 1  # a new change
    index.committed([op_at(1, ["x"], change_rev=1)])
    assert index.group("ada", [1, "y"], T0 + 0.5, 1) == 1  # typing on
    assert index.group("ada", [1, "y"], T0 + 0.5, 2) is None  # an op not at the index's head
    assert index.group("ada", [1, "y"], T0 + 5, 1) == 2  # after a pause


def test_a_commit_the_index_refuses_drops_it_and_is_counted() -> None:
    index: HistoryIndex[str] = HistoryIndex()
    index.want("r")
    index.begin("abc", "ada", T0)
    index.finish(0)
    bad_undo = Sequenced(Rev(1), [-3], toggle_client("ada-client"), 1, "p", "ada", T0, None, 0)
    assert index.committed([bad_undo]) is False
    assert index.state is IndexState.ABSENT and index.mismatches == 1 and index.history is None
    assert index.want("again") is True and index.builds == 2


def test_a_failed_build_hands_back_its_requests_and_can_start_again() -> None:
    index: HistoryIndex[str] = HistoryIndex()
    index.want("a")
    index.want("b")
    assert index.failed() == ["a", "b"]
    assert index.state is IndexState.ABSENT
    assert index.want("c") is True


def test_dropping_keeps_a_build_under_way() -> None:
    index: HistoryIndex[str] = HistoryIndex()
    index.want("a")
    index.begin("", "ada", T0)
    index.drop()
    assert index.state is IndexState.BUILDING
    assert index.finish(0) == ["a"]
    index.drop()
    assert index.state is IndexState.ABSENT and index.nbytes == 0


def test_the_budget_drops_the_least_recently_used_index_never_the_one_in_use() -> None:
    budget = IndexBudget(100)
    assert budget.charge(1, 40) == []
    assert budget.charge(2, 40) == []
    assert budget.charge(1, 40) == []  # 1 used again: 2 is now the oldest
    assert budget.charge(3, 40) == [2]
    assert budget.used == 80 and len(budget) == 2 and budget.evicted == 1
    assert budget.charge(3, 500) == [1]  # alone past the limit: kept (it is in use)
    assert budget.used == 500 and budget.evicted == 2
    budget.release(3)
    assert budget.used == 0 and len(budget) == 0
    unlimited = IndexBudget(0)
    assert unlimited.charge(1, 10**12) == [] and unlimited.charge(2, 10**12) == []


def test_author_ids_are_stable_opaque_and_differ_between_rooms() -> None:
    a = author_id("room-1", "ada-user-0001")
    assert a == author_id("room-1", "ada-user-0001")
    assert re.fullmatch(r"[A-Za-z0-9_-]{12}", a)
    assert a != author_id("room-2", "ada-user-0001") and a != author_id("room-1", "bob-user-0001")
    assert "ada" not in a
    assert author_id("room-1", "") == ""


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1_764_497_045.123456, "2025-11-30T10:04:05.123Z"),
        (1_764_497_045.9999, "2025-11-30T10:04:05.999Z"),
    ],
)
def test_times_are_iso_utc_with_milliseconds(seconds: float, text: str) -> None:
    assert iso_time(seconds) == text


def test_replies_name_authors_never_users() -> None:
    names = {"ada-user": "Ada"}
    changes = [
        Change(7, 7, "ada-user", T0, 0, 3, 1, "undo", 2),
        Change(5, 2, "ada-user", T0, 4, 1, 0),
        Change(1, 1, "gone-user", T0, 1, 0, 0),
    ]
    reply = history_reply("a.txt", "room", changes, True, names)
    assert reply["more"] is True
    first, second, third = reply["changes"]
    assert first == {
        "rev": 7,
        "firstRev": 7,
        "author": author_id("room", "ada-user"),
        "name": "Ada",
        "time": iso_time(T0),
        "inserted": 0,
        "deleted": 3,
        "line": 1,
        "kind": "undo",
        "toggles": 2,
    }
    assert "kind" not in second and "toggles" not in second and second["firstRev"] == 2
    assert third["name"] == ""
    blame = blame_reply("a.txt", "room", 9, [LineBlame(0, "", T0), LineBlame(5, "ada-user", T0)], names)
    assert blame["rev"] == 9
    assert blame["lines"][0] == {"author": "", "name": "", "time": iso_time(T0), "rev": 0}
    assert "ada-user" not in repr(reply) + repr(blame)


def test_request_ranges_are_clamped_and_defaulted() -> None:
    assert blame_range(3, None, None) == (0, 3)
    assert blame_range(3, 1, 2) == (1, 2)
    assert blame_range(3, 5, None) == (3, 3)
    assert blame_range(3, 2, 10**9) == (2, 3)
    assert history_page(None, None) == (None, 50)
    assert history_page(17, 500) == (17, 500)


def test_nbytes_is_what_the_index_takes_in_memory() -> None:
    """--max-index-bytes bounds memory: the estimate is within a third of what tracemalloc sees
    an index keep for a session of typing, deleting and pasting by two people."""
    rng = random.Random(3)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        index: HistoryIndex[str] = HistoryIndex()
        index.want("r")
        index.begin("", "ada", T0)
        index.finish(0)
        text = ""
        t = T0
        for rev in range(1, 20_001):
            user = "ada" if (rev // 50) % 2 else "bob"
            pos = rng.randrange(len(text) + 1)
            r = rng.random()
            if text and r < 0.25:
                op = ops.normalize([min(pos, len(text) - 1), -1])
            elif r < 0.27:
                op = ops.normalize([pos, "pasted line\n" * rng.randint(1, 20)])
            else:
                op = ops.normalize([pos, rng.choice("abc \n")])
            text = ops.apply(text, op)
            t += rng.choice([0.1, 0.3, 2.0])
            assert index.committed([op_at(rev, op, user, t)])
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before - sys.getsizeof(text)
    finally:
        tracemalloc.stop()
    assert index.history is not None and index.history.text == text
    print(f"\nindex estimate {index.nbytes:,} B, tracemalloc {kept:,} B")
    assert 0.75 <= index.nbytes / kept <= 1.33, (index.nbytes, kept)
