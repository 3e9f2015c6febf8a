"""Scenario 9's detours in a process of their own (``bench/pairls_bench/detours.py``), run as the
bench runs them: a real hub on PostgreSQL, the child with its two language servers over stdio and
its TCP proxy.  If the child stopped doing a kind of detour, or its room stopped converging,
scenario 9 would compare quiet windows with quiet windows and say nothing."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.support.hubproc import HubProcess

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from pairls_bench.detours import COUNTS, DetourProcess  # noqa: E402

pytestmark = pytest.mark.timeout(300)

#: seconds of detours: steps of a second and more each (a paste's, a cut's and a storm's longer)
#: reach a paste (2), a cut (4), a reconnect storm (5) and a leave-and-rejoin (7); 15 s was enough
#: here, and a slower machine gets ten more
DETOUR_SECONDS = 25


async def test_the_detour_process_does_every_detour_and_its_room_converges(
    database_url: str, tmp_path: Path
) -> None:
    # (leaving the block fails the test if the hub logged a failure of its own)
    with HubProcess(database_url=database_url) as hub:
        child = await DetourProcess.start(hub.url, tmp_path)
        try:
            await asyncio.sleep(DETOUR_SECONDS)
            counts = dict.fromkeys(COUNTS, 0)
            # stop: it settles its room (both editors and the hub equal) before it answers
            await child.stop(counts)
        except BaseException:
            await child.kill()
            raise
    assert counts["pastes"] >= 1
    assert counts["cuts"] >= 1
    assert counts["storms"] >= 1
    assert counts["rejoins"] >= 1
    assert counts["heals"] == 0  # no editor had to be healed: every change arrived as an edit
