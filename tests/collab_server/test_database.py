"""Starting and stopping the embedded PostgreSQL on a real data directory."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest

from collab_server.database import (
    Account,
    DirMode,
    EmbeddedPostgres,
    blocking_dir,
    make_dirs,
    start_embedded,
    unreachable_message,
)


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """Live (non-zombie) postmasters whose command line names *data_dir*."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        if proc.info["name"] == "postgres" and proc.info["status"] != psutil.STATUS_ZOMBIE:
            if str(data_dir) in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
    return found


def server_processes(server: EmbeddedPostgres) -> list[psutil.Process]:
    """The postmaster and all its children (checkpointer, walwriter, backends...)."""
    postmaster = psutil.Process(server.pid)
    return [postmaster, *postmaster.children(recursive=True)]


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


async def fetch(dsn: str, sql: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


@pytest.fixture
def data_dir(pg_tmp: Path) -> Path:
    return pg_tmp / "pgdata"


@pytest.fixture
def servers() -> Iterator[list[EmbeddedPostgres]]:
    """Servers a test started; stopped at teardown even if the test fails."""
    started: list[EmbeddedPostgres] = []
    yield started
    for s in started:
        s.stop()


async def test_start_connect_stop_and_restart_keeps_data(
    data_dir: Path, servers: list[EmbeddedPostgres]
) -> None:
    server = await asyncio.to_thread(start_embedded, data_dir)
    servers.append(server)
    assert not server.reused
    assert await fetch(server.dsn, "SELECT current_database()") == "pairls"
    assert await fetch(server.dsn, "SHOW fsync") == "on"
    assert await fetch(server.dsn, "SHOW synchronous_commit") == "on"
    # (a new WAL segment not zero-filled first: docs/benchmarks.md, "A new WAL segment")
    assert await fetch(server.dsn, "SHOW wal_init_zero") == "off"
    assert await fetch(server.dsn, "SHOW max_connections") == "200"
    assert (
        await fetch(
            server.dsn, "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'pairls'"
        )
        == "UTF8"
    )
    await fetch(server.dsn, "CREATE TABLE kept AS SELECT 'survives 😀'::text AS v")
    assert [p.pid for p in postgres_processes(data_dir)] == [server.pid]
    procs = server_processes(server)
    assert len(procs) > 3

    await asyncio.to_thread(server.stop)
    assert postgres_processes(data_dir) == []
    assert alive(procs) == []
    server.stop()  # idempotent

    again = await asyncio.to_thread(start_embedded, data_dir)
    servers.append(again)
    assert not again.reused
    assert await fetch(again.dsn, "SELECT v FROM kept") == "survives 😀"
    await asyncio.to_thread(again.stop)
    assert postgres_processes(data_dir) == []
    assert (data_dir / "PG_VERSION").exists()


async def test_a_server_left_running_by_a_killed_hub_is_reused(
    data_dir: Path, servers: list[EmbeddedPostgres]
) -> None:
    first = await asyncio.to_thread(start_embedded, data_dir)
    servers.append(first)
    # the hub dies without stopping PostgreSQL: the next start adopts the server
    second = await asyncio.to_thread(start_embedded, data_dir)
    servers.append(second)
    assert second.reused
    assert second.pid == first.pid
    assert second.dsn == first.dsn
    assert await fetch(second.dsn, "SELECT 1") == 1
    second.stop()
    assert postgres_processes(data_dir) == []


async def test_restart_after_postgres_was_killed(data_dir: Path, servers: list[EmbeddedPostgres]) -> None:
    first = await asyncio.to_thread(start_embedded, data_dir)
    servers.append(first)
    await fetch(first.dsn, "CREATE TABLE t AS SELECT 42 AS v")
    os.kill(first.pid, signal.SIGKILL)
    second = await asyncio.to_thread(start_embedded, data_dir)
    servers.append(second)
    assert not second.reused and second.pid != first.pid
    assert await fetch(second.dsn, "SELECT v FROM t") == 42  # crash recovery kept the committed table
    second.stop()
    assert postgres_processes(data_dir) == []


async def test_concurrent_starts_on_one_directory_share_one_server(
    data_dir: Path, servers: list[EmbeddedPostgres]
) -> None:
    a, b = await asyncio.gather(
        asyncio.to_thread(start_embedded, data_dir), asyncio.to_thread(start_embedded, data_dir)
    )
    servers.extend([a, b])
    assert a.pid == b.pid
    assert sorted([a.reused, b.reused]) == [False, True]


def test_a_data_dir_another_start_makes_at_the_same_moment_is_taken(
    data_dir: Path, servers: list[EmbeddedPostgres], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two hubs start at once on one new directory (the test above, which CI caught on this
    now and then): the other makes the directory just before this one's ``mkdir``, and this one
    goes on with it rather than failing."""
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: object, **kwargs: object) -> None:
        if self == data_dir and not self.exists():
            real_mkdir(self, 0o700)  # (the other start's)
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    server = start_embedded(data_dir)
    servers.append(server)
    assert not server.reused and (data_dir / "PG_VERSION").exists()


def test_a_non_empty_directory_without_a_cluster_is_left_alone(pg_tmp: Path) -> None:
    (pg_tmp / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError, match="not empty"):
        start_embedded(pg_tmp)
    assert (pg_tmp / "notes.txt").read_text() == "mine"


async def test_long_data_dir_paths_get_a_short_socket_dir(
    pg_tmp: Path, servers: list[EmbeddedPostgres]
) -> None:
    deep = pg_tmp / ("d" * 60) / ("e" * 60)
    t0 = time.monotonic()
    server = await asyncio.to_thread(start_embedded, deep)
    servers.append(server)
    assert time.monotonic() - t0 < 60
    assert len(str(server.socket_dir)) < 80
    assert await fetch(server.dsn, "SELECT 1") == 1


# -- who runs the server, and whether it can get there (pure parts) ------------


def _chain(*modes: tuple[str, int, int, int]) -> list[DirMode]:
    return [DirMode(Path(p), stat.S_IFDIR | m, uid, gid) for p, m, uid, gid in modes]


def test_a_directory_blocks_unless_the_bit_for_who_we_are_to_it_is_set() -> None:
    pg, pg_group, other = 995, 994, 1000
    groups = frozenset({pg_group})
    open_chain = _chain(("/", 0o755, 0, 0), ("/var", 0o755, 0, 0), ("/var/lib", 0o755, 0, 0))
    assert blocking_dir(open_chain, pg, groups) is None
    # root's home, 0700: the account is "other" to it
    home = _chain(("/", 0o755, 0, 0), ("/root", 0o700, 0, 0), ("/root/hub", 0o755, 0, 0))
    assert blocking_dir(home, pg, groups) == home[1]
    # o+x alone is enough to walk through (the mode the old code left /root in)
    assert blocking_dir(_chain(("/root", 0o701, 0, 0)), pg, groups) is None
    # the owner's bit counts for the owner, even if "other" may pass...
    assert blocking_dir(_chain(("/d", 0o601, pg, 0)), pg, groups) is not None
    # ...and the group's for a member, and only for a member
    assert blocking_dir(_chain(("/d", 0o710, other, pg_group)), pg, groups) is None
    assert blocking_dir(_chain(("/d", 0o710, other, 12345)), pg, groups) is not None
    # the first one that blocks is named, outermost first
    two = _chain(("/a", 0o700, 0, 0), ("/a/b", 0o700, 0, 0))
    assert blocking_dir(two, pg, groups) == two[0]


def test_the_refusal_names_the_account_the_directory_its_mode_and_the_ways_out() -> None:
    account = Account("pairls", 995, 994, frozenset({994}))
    blocker = DirMode(Path("/root"), stat.S_IFDIR | 0o700, 0, 0)
    data = unreachable_message(account, Path("/root/hub"), blocker, binaries=False)
    assert "runs as the user 'pairls'" in data
    assert "/root is mode 0700" in data
    assert "changes nothing outside its data directory" in data
    assert "--data-dir /var/lib/pairls-hub" in data and "--database-url" in data
    bins = unreachable_message(account, Path("/root/.venv/pginstall"), blocker, binaries=True)
    assert "the PostgreSQL programs" in bins and "/opt" in bins and "--database-url" in bins


def test_make_dirs_sets_the_mode_of_what_it_creates_only(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    old = os.umask(0o077)  # a umask that would hide the mode asked for
    try:
        make_dirs(tmp_path / "a" / "b", 0o711)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o711
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o711
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700  # it existed: left as it was
    make_dirs(tmp_path / "a", 0o755)  # exists: left as it is
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o711
