"""Fixtures for the end-to-end tests that run hub processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.support.hubproc import HubProcess


@pytest.fixture
async def hubs() -> AsyncIterator[list[HubProcess]]:
    """Hub processes a test started; whatever is still running at the end is killed."""
    started: list[HubProcess] = []
    yield started
    for h in started:
        await asyncio.to_thread(h.kill)
