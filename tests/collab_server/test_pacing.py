"""collab_server.pacing: a connection's share of the event loop, fed costs by hand."""

from __future__ import annotations

import pytest

from collab_server.pacing import Pacer


def test_cheap_messages_never_wait() -> None:
    p = Pacer(0.25, free=0.001)
    for _ in range(1000):
        p.charge(0.0002)
        assert p.pause() == 0.0
    assert p.paused == 0.0


def test_a_costly_message_waits_so_the_connection_keeps_to_its_share() -> None:
    p = Pacer(0.25, free=0.001)
    p.charge(0.010)
    wait = p.pause()
    assert wait == pytest.approx(0.030)
    assert 0.010 / (0.010 + wait) == pytest.approx(0.25)
    assert p.pause() == 0.0, "paid"


def test_costs_charged_by_others_add_up_until_the_next_message() -> None:
    p = Pacer(0.5, free=0.001)
    p.charge(0.0008)  # the reader's decoding: free on its own
    p.charge(0.0042)  # what the document task spent on its op, charged later
    assert p.pause() == pytest.approx(0.005)
    assert p.paused == pytest.approx(0.005)


def test_no_wait_is_longer_than_the_longest() -> None:
    p = Pacer(0.1, longest=1.0)
    p.charge(0.5)  # a document of many megabytes encoded for its opening
    assert p.pause() == 1.0
    assert p.pause() == 0.0, "the rest is forgiven"


def test_a_share_of_one_never_waits() -> None:
    p = Pacer(1.0)
    p.charge(5.0)
    assert p.pause() == 0.0


@pytest.mark.parametrize(
    "share, free, longest", [(0.0, 0.001, 1), (1.5, 0.001, 1), (0.5, -1.0, 1), (0.5, 0, -1)]
)
def test_bad_settings_are_refused(share: float, free: float, longest: float) -> None:
    with pytest.raises(ValueError):
        Pacer(share, free, longest)
