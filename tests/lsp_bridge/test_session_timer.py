"""The session's room timer on the event loops the language server runs on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import uvloop

from lsp_bridge.session import Session


class _Editor:
    """An editor port that is never called here (the room has no document)."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the editor was called: {name}")


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_a_wakeup_already_due_goes_off_once(run: Callable[..., Any]) -> None:
    """A wake-up due already is set with ``call_at`` at once: uvloop hands back a plain
    ``Handle`` for it (no ``when()``), and the next step compares against it and keeps it."""

    async def main() -> list[float]:
        session = Session(_Editor(), name="Ada", encoding="utf-16")  # type: ignore[arg-type]
        room = session.room
        due: list[float | None] = [session.now - 1.0]
        ticks: list[float] = []

        def tick(now: float) -> None:
            ticks.append(now)
            due[0] = None  # nothing more is due

        room.next_wakeup = lambda: due[0]  # type: ignore[method-assign]
        room.tick = tick  # type: ignore[method-assign]
        session.flush()  # the timer, already due
        timer = session._timer
        session.flush()  # a second step before it went off: it goes off first anyway
        assert session._timer is timer is not None
        await asyncio.sleep(0.05)
        return ticks

    assert len(run(main())) == 1
