"""collab_server.pacing: a connection's share of the event loop, fed costs and times by hand."""

from __future__ import annotations

import pytest

from collab_server.pacing import Pacer


def test_cheap_messages_never_wait() -> None:
    p = Pacer(0.25, free=0.001)
    for i in range(1000):
        p.charge(0.0002)
        assert p.pause(i * 0.0002) == 0.0
    assert p.paused == 0.0


def test_a_costly_message_waits_so_the_connection_keeps_to_its_share() -> None:
    p = Pacer(0.25, free=0.001)
    assert p.pause(0.0) == 0.0
    p.charge(0.010)
    wait = p.pause(0.010)  # the next message, right behind it
    assert wait == pytest.approx(0.030)
    assert 0.010 / (0.010 + wait) == pytest.approx(0.25)
    assert p.pause(0.041) == 0.0, "paid"


def test_costs_charged_by_others_add_up_until_the_next_message() -> None:
    p = Pacer(0.5, free=0.001)
    assert p.pause(0.0) == 0.0
    p.charge(0.0008)  # the reader's decoding: free on its own
    p.charge(0.0042)  # what the document task spent on its op, charged later
    assert p.pause(0.005) == pytest.approx(0.005)
    assert p.paused == pytest.approx(0.005)


def test_time_spent_idle_after_a_costly_request_counts_as_waited() -> None:
    """A whole-document blame costs the document task 25 ms after the reader took the next
    message: the one after that, ten seconds later, does not wait for it."""
    p = Pacer(0.1, free=0.001)
    assert p.pause(100.0) == 0.0  # the blame goes to its document
    assert p.pause(100.0001) == 0.0  # the next message (its cost is not charged yet)
    p.charge(0.025)  # the blame, charged by the document task
    assert p.pause(110.0) == 0.0
    assert p.paused == 0.0
    # a part of the time passed counts for that part: 0.25 s of the loop's time is its due
    p.charge(0.025)
    assert p.pause(110.1) == pytest.approx(0.15)
    # and the wait counts as time passed for the next one
    p.charge(0.025)
    assert p.pause(110.25 + 0.025) == pytest.approx(0.225)


def test_back_to_back_costly_messages_get_their_share_and_no_more() -> None:
    p = Pacer(0.1, free=0.001)
    now = 50.0
    assert p.pause(now) == 0.0
    spent = 0.0
    for _ in range(100):
        p.charge(0.020)  # each message costs 20 ms, handled at once
        now += 0.020
        spent += 0.020
        now += p.pause(now)
    assert spent / (now - 50.0) == pytest.approx(0.1)


def test_no_wait_is_longer_than_the_longest() -> None:
    p = Pacer(0.1, longest=1.0)
    p.charge(0.5)  # a document of many megabytes encoded for its opening
    assert p.pause(0.5) == 1.0
    assert p.pause(1.5) == 0.0, "the rest is forgiven"


def test_a_share_of_one_never_waits() -> None:
    p = Pacer(1.0)
    p.charge(5.0)
    assert p.pause(5.0) == 0.0


@pytest.mark.parametrize(
    "share, free, longest", [(0.0, 0.001, 1), (1.5, 0.001, 1), (0.5, -1.0, 1), (0.5, 0, -1)]
)
def test_bad_settings_are_refused(share: float, free: float, longest: float) -> None:
    with pytest.raises(ValueError):
        Pacer(share, free, longest)
