"""Shared fixtures: a real PostgreSQL for the whole session, a fresh database per test.

* ``pg_server`` (session): one embedded PostgreSQL in a temporary directory,
  or the server named by ``DATABASE_URL`` if that is set (it must allow
  CREATE DATABASE).
* ``database_url`` (function): DSN of a new, empty database on it, dropped
  after the test.
* ``store`` (function): a :class:`collab_server.store.Store` opened (and
  migrated) on ``database_url``, closed after the test.
* ``reachable_tmp`` (session) and ``pg_tmp`` (function): temporary
  directories for an embedded PostgreSQL.  Run as root, PostgreSQL runs as
  the ``pairls`` account, which must be able to walk down to its data, and
  the hub changes no directory's mode outside its data dir; pytest's own
  temporary directories are private (0700, under a 0700
  ``/tmp/pytest-of-root``), so these live in a directory of our own under
  ``/tmp`` (0711), removed at the end of the session.  Not as root they are
  pytest's.

And a check on every test: a hub that answered a request ``internal``, lost
a document task, could not send a frame or failed a connection outside any
request (its ``HubStats`` fault counters) fails the test that was running,
unless it is marked ``hub_faults`` (it causes them on purpose).  Hubs run as
processes are checked by ``tests.support.hubproc.HubProcess`` through their log.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from collab_server.database import EmbeddedPostgres, start_embedded
from collab_server.hub import Hub
from collab_server.store import Store, open_store

#: the HubStats counters of the hub's own failures
FAULTS = ("internal_errors", "document_crashes", "send_failures", "connection_crashes", "history_mismatches")


@dataclass
class PgServer:
    """A PostgreSQL server the tests may create databases on."""

    #: DSN of a database to run CREATE/DROP DATABASE from
    admin_dsn: str
    #: the embedded server, or None when DATABASE_URL is used
    embedded: EmbeddedPostgres | None = None

    def dsn_for(self, database: str) -> str:
        parts = urllib.parse.urlsplit(self.admin_dsn)
        return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(database)))

    async def create_database(self) -> str:
        """A new, empty database; returns its name."""
        name = f"pairls_test_{uuid.uuid4().hex}"
        await self._admin(f'CREATE DATABASE "{name}"')
        return name

    async def drop_database(self, name: str) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _admin(self, sql: str) -> None:
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute(sql)
        finally:
            await admin.close()


@pytest.fixture(scope="session")
def reachable_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Path]]:
    """``make(name)``: a new directory that an embedded PostgreSQL's account can reach."""
    if os.geteuid() != 0:
        yield tmp_path_factory.mktemp
        return
    base = Path(tempfile.mkdtemp(prefix="pairls-tests-"))
    base.chmod(0o711)  # our own directory: walkable, not listable

    def make(name: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=re.sub(r"[^\w-]", "_", name)[:30] + "-", dir=base))
        path.chmod(0o711)
        return path

    try:
        yield make
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_tmp(request: pytest.FixtureRequest, reachable_tmp: Callable[[str], Path]) -> Path:
    """A fresh directory for this test's embedded PostgreSQL (see the module docstring)."""
    return reachable_tmp(request.node.name)


@pytest.fixture(scope="session")
def pg_server(reachable_tmp: Callable[[str], Path]) -> Iterator[PgServer]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield PgServer(url)
        return
    server = start_embedded(reachable_tmp("postgres") / "data")
    try:
        yield PgServer(server.dsn, server)
    finally:
        server.stop()


@pytest.fixture
async def database_url(pg_server: PgServer) -> AsyncIterator[str]:
    name = await pg_server.create_database()
    yield pg_server.dsn_for(name)
    await pg_server.drop_database(name)


@pytest.fixture(scope="module")
async def module_database_url(pg_server: PgServer) -> AsyncIterator[str]:
    """A database of its own for a whole test module (its tests make their own rooms)."""
    name = await pg_server.create_database()
    yield pg_server.dsn_for(name)
    await pg_server.drop_database(name)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = await open_store(database_url, hub_id="test-hub")
    try:
        yield s
    finally:
        await s.close()


# -- hub faults fail the test ----------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _hubs() -> Iterator[list[Hub]]:
    """Every in-process Hub made during the session (module fixtures' hubs included)."""
    hubs: list[Hub] = []
    original = Hub.__init__

    def init(self: Hub, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        hubs.append(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Hub, "__init__", init)
        yield hubs


def _faults(hub: Hub) -> tuple[int, ...]:
    return tuple(getattr(hub.stats, name) for name in FAULTS)


@pytest.fixture(autouse=True)
def _no_hub_faults(request: pytest.FixtureRequest, _hubs: list[Hub]) -> Iterator[None]:
    before = {id(h): _faults(h) for h in _hubs}
    yield
    if request.node.get_closest_marker("hub_faults"):
        return
    for hub in _hubs:
        now = _faults(hub)
        if now != before.get(id(hub), (0,) * len(FAULTS)):
            pytest.fail(f"the hub failed during the test: {dict(zip(FAULTS, now, strict=True))}")
