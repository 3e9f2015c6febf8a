"""The retry policies (collab_server.retry), fed failures by hand."""

from __future__ import annotations

import pytest

from collab_server.retry import Backoff


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
