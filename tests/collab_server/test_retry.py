"""The retry policies (collab_server.retry), fed failures by hand."""

from __future__ import annotations

import pytest

from collab_server.retry import Backoff, GiveUp, Restart, RestartPolicy


def test_backoff_doubles_up_to_the_cap_then_gives_up() -> None:
    b = Backoff(attempts=5, first=0.1, cap=0.3)
    assert [b.failed() for _ in range(5)] == [0.1, 0.2, 0.3, 0.3, None]
    assert b.budget == pytest.approx(0.9)


def test_backoff_reset_starts_a_new_count() -> None:
    b = Backoff(attempts=3, first=1.0, cap=10.0)
    assert b.failed() == 1.0
    b.reset()
    assert [b.failed(), b.failed(), b.failed()] == [1.0, 2.0, None]


def test_one_attempt_means_no_retry() -> None:
    b = Backoff(attempts=1, first=1.0, cap=1.0)
    assert b.failed() is None
    assert b.budget == 0


@pytest.mark.parametrize("args", [(0, 0.1, 1.0), (3, -1.0, 1.0), (3, 0.1, -1.0)])
def test_backoff_refuses_nonsense(args: tuple[int, float, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(*args)


# -- RestartPolicy ----------------------------------------------------------------


def test_a_server_that_ran_long_enough_is_restarted_at_once() -> None:
    p = RestartPolicy(max_failures=3, first_delay=1.0, max_delay=8.0, stable_after=60.0)
    p.started(0.0)
    assert p.died(3600.0) == Restart(0.0)
    p.started(3601.0)
    assert p.died(7200.0) == Restart(0.0)  # a death now and then never adds up
    assert p.failures == 0


def test_failed_starts_back_off_then_give_up() -> None:
    p = RestartPolicy(max_failures=4, first_delay=1.0, max_delay=3.0, stable_after=60.0)
    p.started(0.0)
    assert p.died(100.0) == Restart(0.0)
    assert p.start_failed(101.0) == Restart(1.0)
    assert p.start_failed(103.0) == Restart(2.0)
    assert p.start_failed(106.0) == Restart(3.0)
    assert p.start_failed(110.0) == GiveUp(4)


def test_a_server_that_dies_soon_after_starting_counts_as_a_failed_start() -> None:
    p = RestartPolicy(max_failures=3, first_delay=0.5, max_delay=10.0, stable_after=30.0)
    p.started(0.0)
    assert p.died(5.0) == Restart(0.5)  # crash loop suspected: wait a little
    p.started(6.0)
    assert p.died(7.0) == Restart(1.0)
    p.started(9.0)
    assert p.died(10.0) == GiveUp(3)


def test_a_stable_run_clears_the_count_of_failed_starts() -> None:
    p = RestartPolicy(max_failures=3, first_delay=1.0, max_delay=10.0, stable_after=30.0)
    p.started(0.0)
    assert p.died(1.0) == Restart(1.0)
    assert p.start_failed(2.0) == Restart(2.0)
    p.started(5.0)
    assert p.died(100.0) == Restart(0.0)
    assert p.start_failed(101.0) == Restart(1.0)


def test_a_death_seen_before_any_start_counts_as_a_failure() -> None:
    p = RestartPolicy(max_failures=1)
    assert p.died(0.0) == GiveUp(1)
    with pytest.raises(ValueError):
        RestartPolicy(max_failures=0)
