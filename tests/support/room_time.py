"""Time passing for a language server's room (``lsp_bridge.room.Room``) driven by hand, as the
language server's timer drives it: every wake-up on the way is ticked."""

from __future__ import annotations

from collections.abc import Callable

from lsp_bridge.room import Room


def advance(room: Room, now: float, seconds: float, step: Callable[[float], None]) -> float:
    """Tick *room* at each wake-up from *now* for *seconds*, then at the end, calling *step*
    with the time after each tick (to take what the room sends and tells); returns the end."""
    end = now + seconds
    for _ in range(100_000):
        wake = room.next_wakeup()
        if wake is None or wake > end:
            break
        now = max(now, wake)
        room.tick(now)
        step(now)
    else:
        raise AssertionError(f"the room woke 100,000 times before {end}: a timer that never settles")
    room.tick(end)
    step(end)
    return end
