"""The hub tests' fixtures: an in-process hub on a real PostgreSQL; Hypothesis profiles
(HYPOTHESIS_PROFILE=ci runs more examples)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, settings

from collab_server.hub import Hub, HubConfig
from collab_server.store import Store, open_store

settings.register_profile("default", deadline=None)
settings.register_profile(
    "ci", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def hub_config() -> HubConfig:
    """The hub's configuration; a module overrides this fixture to test other limits."""
    return HubConfig()


@pytest.fixture
async def hub(store: Store, hub_config: HubConfig) -> AsyncIterator[Hub]:
    h = Hub(store, hub_config)
    await h.start("127.0.0.1", 0)
    try:
        yield h
    finally:
        await h.close()


@pytest.fixture
def url(hub: Hub) -> str:
    return f"ws://127.0.0.1:{hub.port}"


@pytest.fixture
async def two_hubs(database_url: str, hub_config: HubConfig) -> AsyncIterator[tuple[Hub, Hub]]:
    """Two in-process hubs (``hub-a``, ``hub-b``) on one database, each with its own store and
    *hub_config*; afterwards, nothing may have gone wrong behind the test's back."""
    stores: list[Store] = []
    hubs: list[Hub] = []
    try:
        for name in ("hub-a", "hub-b"):
            store = await open_store(database_url, hub_id=name)
            stores.append(store)
            hub = Hub(store, hub_config)
            await hub.start("127.0.0.1", 0)
            hubs.append(hub)
        yield hubs[0], hubs[1]
    finally:
        for hub in hubs:
            if not hub.closing:  # (a test may have stopped one)
                await hub.close()
        for store in stores:
            await store.close()
    for hub in hubs:
        stats = hub.stats
        assert stats.peer_failures == stats.room_check_failures == stats.sweep_failures == 0, stats
        # (a commit whose notification a hub missed: a test that causes one clears the count)
        assert stats.missed_notifications == 0, stats
