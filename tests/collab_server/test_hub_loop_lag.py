"""The hub's measure of how late its event loop runs (``pairls_max_loop_lag_seconds``).

The hub checks it every :data:`LAG_PERIOD` while clients send frames, and every
:data:`IDLE_LAG_PERIOD` once none has for that long: each check wakes the loop,
and twenty a second were most of an idle hub's CPU (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from collab_server.hub import IDLE_LAG_PERIOD, LAG_PERIOD, Hub, lag_period
from tests.support.hubclient import Peer

pytestmark = pytest.mark.timeout(60)

#: how long the test holds the hub's loop (the hub runs in the test's thread)
STALL = 0.3


def test_the_loop_is_checked_often_while_frames_come_and_seldom_once_none_has() -> None:
    now = 1000.0
    assert lag_period(now, now) == LAG_PERIOD
    assert lag_period(now, now - IDLE_LAG_PERIOD + 0.01) == LAG_PERIOD
    assert lag_period(now, now - IDLE_LAG_PERIOD) == IDLE_LAG_PERIOD
    assert lag_period(now, 0.0) == IDLE_LAG_PERIOD  # (no frame yet)
    assert LAG_PERIOD < STALL / 2 < IDLE_LAG_PERIOD


async def test_a_stall_while_a_client_types_is_measured(hub: Hub) -> None:
    peer = await Peer(f"ws://127.0.0.1:{hub.port}", "Ada").connect()
    await peer.create_room("lag")
    await peer.create_document("a.txt", "")
    doc = await peer.open("a.txt")
    # typing for longer than the idle period: the check that was asleep for it has woken
    typing_until = time.monotonic() + IDLE_LAG_PERIOD + 0.3
    while time.monotonic() < typing_until:
        await doc.splice(len(doc.text), 0, "x")
        await doc.wait_synced()
        await asyncio.sleep(0.02)
    hub.stats.max_loop_lag_seconds = 0.0
    time.sleep(STALL)  # noqa: ASYNC251 - the loop is held on purpose: the check due meanwhile runs late
    await asyncio.sleep(2 * LAG_PERIOD)
    assert hub.stats.max_loop_lag_seconds >= STALL - LAG_PERIOD, hub.stats.max_loop_lag_seconds
    await peer.close()
