"""The hub's keepalive (``collab_server/keepalive.py``): the decisions without sockets, then a
real hub with short intervals and real clients: one that answers, one that sends, one that only
pings, and one that stopped reading (its pongs never come)."""

from __future__ import annotations

import asyncio
import random
import weakref
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect

from collab_server.hub import Hub, HubConfig
from collab_server.keepalive import JITTER, Action, Timetable, next_look, next_wait, step, sweep_period
from collab_server.store import Store
from tests.support.hubclient import Peer

INTERVAL = 0.2
#: long beside the interval: a client answering late because this busy process was (a loaded CI
#: machine) must not be taken for one that does not answer
TIMEOUT = 2.0


def test_a_connection_is_pinged_once_quiet_for_its_wait() -> None:
    assert step(now=119.9, heard_at=100.0, wait=20.0, pinged_at=None, timeout=20.0) is None
    assert step(now=120.0, heard_at=100.0, wait=20.0, pinged_at=None, timeout=20.0) is Action.PING
    assert step(now=500.0, heard_at=100.0, wait=20.0, pinged_at=None, timeout=20.0) is Action.PING


def test_a_pinged_connection_is_not_pinged_again_and_is_closed_if_it_stays_quiet() -> None:
    assert step(now=130.0, heard_at=100.0, wait=20.0, pinged_at=120.0, timeout=20.0) is None
    assert step(now=139.9, heard_at=100.0, wait=20.0, pinged_at=120.0, timeout=20.0) is None
    assert step(now=140.0, heard_at=100.0, wait=20.0, pinged_at=120.0, timeout=20.0) is Action.CLOSE


def test_anything_heard_after_the_ping_answers_it() -> None:
    # its pong, or any other frame: it is alive; its next wait counts from then
    assert step(now=121.0, heard_at=120.5, wait=20.0, pinged_at=120.0, timeout=20.0) is Action.ANSWERED
    assert step(now=500.0, heard_at=139.0, wait=20.0, pinged_at=120.0, timeout=20.0) is Action.ANSWERED


def test_a_wait_is_between_the_interval_and_a_quarter_more() -> None:
    assert next_wait(20.0, 0.0) == 20.0
    assert next_wait(20.0, 0.999) < 25.0 == next_wait(20.0, 1.0) == 20.0 * (1 + JITTER)


def test_connections_that_went_quiet_together_are_pinged_over_many_sweeps() -> None:
    """2,000 connections heard at the same moment (they answered one sweep's pings): no sweep
    pings more than a few times its share of them."""
    draw = random.Random(7).random
    waits = [next_wait(20.0, draw()) for _ in range(2000)]
    period = sweep_period(20.0)
    assert period <= 0.5
    pinged = [False] * len(waits)
    per_sweep = []
    for k in range(1, int(26 / period)):
        now = k * period
        due = [
            i for i, w in enumerate(waits) if not pinged[i] and step(now, 0.0, w, None, 20.0) is Action.PING
        ]
        for i in due:
            pinged[i] = True
        per_sweep.append(len(due))
    assert all(pinged)
    sweeps_in_the_spread = 20.0 * JITTER / period
    assert max(per_sweep) <= 2 * len(waits) / sweeps_in_the_spread


def test_a_timetable_gives_each_item_to_the_first_sweep_at_or_after_its_time() -> None:
    table: Timetable[str] = Timetable()
    table.put("a", 10.1)
    table.put("b", 10.5)
    table.put("c", 12.0)
    table.put("gone", 10.2)
    table.drop("gone")
    assert table.due(10.05) == [] and len(table) == 3
    assert sorted(table.due(10.5)) == ["a", "b"] and len(table) == 1
    table.put("c", 11.0)  # put again: its earlier time is gone
    table.put("d", 3.0)  # already past: the next sweep
    table.put("e", 10.6)
    table.drop("e")
    table.put("e", 10.6)  # (dropped and put again at the same time: once)
    assert sorted(table.due(11.1)) == ["c", "d", "e"]
    assert table.due(100.0) == [] and len(table) == 0


def test_a_timetable_holds_no_item_it_dropped() -> None:
    class Conn:
        pass

    table: Timetable[Conn] = Timetable()
    kept, gone = Conn(), Conn()
    table.put(kept, 30.0)
    table.put(gone, 25.0)
    ref = weakref.ref(gone)
    table.drop(gone)
    del gone
    assert ref() is None  # freed now, though its time (25 s) has not come
    assert table.due(40.0) == [kept]


def _sweeps(timetable: bool, seed: int) -> list[tuple[int, int, Action]]:
    """Pings, answers and closes over 120 s of 300 connections (quiet ones that answer, chatty
    ones, dead ones), swept every connection at each sweep (as the hub swept before its
    timetable) or by the timetable: (sweep, connection, action)."""
    rng = random.Random(seed)
    interval, timeout = 20.0, 20.0
    period = sweep_period(interval)
    kinds = [rng.choice(("quiet", "chatty", "dead", "late")) for _ in range(300)]
    heard = [rng.uniform(0, 5) for _ in kinds]
    wait = [next_wait(interval, rng.random()) for _ in kinds]
    pinged: list[float | None] = [None] * len(kinds)
    closed: set[int] = set()
    table: Timetable[int] = Timetable()
    for i in range(len(kinds)):
        table.put(i, heard[i] + wait[i])
    done = []
    before = 5.0
    for k in range(1, int(120 / period)):
        now = k * period + rng.uniform(0, 0.01)  # (a sweep's sleep ends a little late)
        for i, kind in enumerate(kinds):  # what each connection sent since the last sweep
            if i in closed:
                continue
            if kind == "chatty" and rng.random() < 0.05:
                heard[i] = max(heard[i], rng.uniform(before, now))
            answer = pinged[i] is not None and kind in ("quiet", "late")
            if answer and (kind == "quiet" or now - pinged[i] > 9.0):
                heard[i] = max(heard[i], pinged[i] + 0.01)
        looked = table.due(now) if timetable else [i for i in range(len(kinds)) if i not in closed]
        for i in looked:
            action = step(now, heard[i], wait[i], pinged[i], timeout)
            if action is Action.PING:
                pinged[i] = now
            elif action is Action.ANSWERED:
                pinged[i] = None
                wait[i] = next_wait(interval, (i * 7919 + k) % 1000 / 1000)  # (the same draw either way)
            elif action is Action.CLOSE:
                closed.add(i)
            if action is not None:
                done.append((k, i, action))
            if timetable and action is not Action.CLOSE:
                table.put(i, next_look(now, heard[i], wait[i], pinged[i]))
        before = now
    return done


@pytest.mark.parametrize("seed", range(5))
def test_the_timetable_sweeps_act_as_sweeps_of_every_connection(seed: int) -> None:
    every = _sweeps(False, seed)
    assert {a for _, _, a in every} == set(Action)  # (each kind of action happened)
    assert sorted(_sweeps(True, seed), key=lambda d: d[:2]) == sorted(every, key=lambda d: d[:2])


def test_the_keepalive_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="keepalive"):
        HubConfig(keepalive_timeout=0)
    with pytest.raises(ValueError, match="keepalive"):
        HubConfig(keepalive_interval=-1)


@pytest.fixture
async def hub(store: Store) -> AsyncIterator[Hub]:
    h = Hub(store, HubConfig(keepalive_interval=INTERVAL, keepalive_timeout=TIMEOUT))
    await h.start("127.0.0.1", 0)
    try:
        yield h
    finally:
        await h.close()


async def test_a_quiet_client_that_answers_stays_connected(hub: Hub) -> None:
    a = await Peer(f"ws://127.0.0.1:{hub.port}", "Ada").connect()
    await asyncio.sleep(8 * INTERVAL)
    assert hub.stats.keepalive_pings >= 3  # one every 0.15-0.2 s or so, each answered
    assert hub.stats.keepalive_timeouts == 0
    assert len(hub.connections) == 1
    assert (await a.request({"type": "ping"}))["type"] == "pong"
    await a.close()


async def test_a_client_that_sends_is_not_pinged(store: Store) -> None:
    # a longer interval here: a pause of this process of more than 0.7 s would be taken for quiet
    hub = Hub(store, HubConfig(keepalive_interval=1.0, keepalive_timeout=TIMEOUT))
    await hub.start("127.0.0.1", 0)
    a = await Peer(f"ws://127.0.0.1:{hub.port}", "Ada").connect()
    for _ in range(40):
        assert (await a.request({"type": "ping"}))["type"] == "pong"
        await asyncio.sleep(0.05)
    assert hub.stats.keepalive_pings == 0
    await a.close()
    await hub.close()


async def test_a_client_that_does_not_answer_is_closed_with_1011(hub: Hub) -> None:
    a = await Peer(f"ws://127.0.0.1:{hub.port}", "Ada").connect()
    b = await Peer(f"ws://127.0.0.1:{hub.port}", "Bob").connect()
    assert a.ws is not None and a.ws.transport is not None
    a.ws.transport.pause_reading()  # its pongs will not come: it reads nothing
    for _ in range(200):
        if hub.stats.keepalive_timeouts:
            break
        await asyncio.sleep(0.05)
    assert hub.stats.keepalive_timeouts == 1
    a.ws.transport.resume_reading()  # it reads the close now, and answers it
    assert a.closed is not None
    code, reason = await asyncio.wait_for(a.closed, 10)
    assert (code, reason) == (1011, "keepalive ping timeout")
    for _ in range(100):
        if len(hub.connections) == 1:
            break
        await asyncio.sleep(0.05)
    assert [c.name for c in hub.connections] == ["Bob"]
    assert (await b.request({"type": "ping"}))["type"] == "pong"  # the other one answered its pings
    await b.close()


async def test_a_client_that_pings_the_hub_is_not_pinged(store: Store) -> None:
    """A language server pings the hub (websockets' keepalive on its side): those pings are heard,
    so the hub has no need to ping it back."""
    hub = Hub(store, HubConfig(keepalive_interval=1.0, keepalive_timeout=TIMEOUT))
    await hub.start("127.0.0.1", 0)
    async with connect(f"ws://127.0.0.1:{hub.port}", ping_interval=0.1, ping_timeout=TIMEOUT) as ws:
        await ws.send('{"type": "hello", "protocol": 1, "name": "LS", "clientId": "language-server-1"}')
        assert '"welcome"' in str(await ws.recv())
        await asyncio.sleep(2.5)  # quiet but for its pings, past the hub's longest wait (1 s)
        assert hub.stats.keepalive_pings == 0
        assert len(hub.connections) == 1
    await hub.close()


async def test_stopping_the_keepalive_closes_nothing_and_waits_for_nothing(store: Store) -> None:
    """A hub shutting down stops its keepalive first: a ping still unanswered (here from a client
    that reads nothing) leaves nothing to wait for, and the connection is left to the hub's
    shutdown."""
    hub = Hub(store, HubConfig(keepalive_interval=INTERVAL, keepalive_timeout=60))
    await hub.start("127.0.0.1", 0)
    a = await Peer(f"ws://127.0.0.1:{hub.port}", "Ada").connect()
    assert a.ws is not None and a.ws.transport is not None
    a.ws.transport.pause_reading()
    for _ in range(200):
        if hub.stats.keepalive_pings:
            break
        await asyncio.sleep(0.01)
    [conn] = hub.connections
    assert conn.pinged_at is not None and hub.stats.keepalive_timeouts == 0  # its pong cannot come
    await asyncio.wait_for(hub.keepalive.stop(), 5)
    assert len(hub.connections) == 1
    a.ws.transport.resume_reading()
    await a.close()
    await hub.close()
