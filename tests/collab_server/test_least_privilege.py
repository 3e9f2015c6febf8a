"""``pairls-hub`` run as root changes nothing outside its data dir (collab_server/database.py).

PostgreSQL refuses to run as root, so the hub runs its embedded server as an
unprivileged account (the system user ``pairls``).  These tests run the real
``pairls-hub`` process with an embedded PostgreSQL under a temporary
directory and compare, before and after, the mode and owner of every
ancestor of the data dir and the system's users and groups.  They need root
(CI and this machine run the suite as root); otherwise they are skipped.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import stat
from collections.abc import Callable
from pathlib import Path

import psutil  # type: ignore[import-untyped,unused-ignore]
import pytest

from collab_server.cli import default_data_dir
from tests.support.hubclient import Peer
from tests.support.hubproc import HubProcess

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(os.geteuid() != 0, reason="what the hub does as root"),
]

ACCOUNT_FILES = ("/etc/passwd", "/etc/group")


def modes(paths: list[Path]) -> dict[str, tuple[int, int, int]]:
    out = {}
    for p in paths:
        st = p.lstat()
        out[str(p)] = (st.st_mode, st.st_uid, st.st_gid)
    return out


def around(data: Path) -> list[Path]:
    """Every ancestor of *data*, and the places the old code touched or a hub might."""
    return sorted({*data.parents, Path.home(), Path("/var/lib"), Path("/tmp")})


def accounts() -> dict[str, list[str]]:
    return {f: Path(f).read_text().splitlines() for f in ACCOUNT_FILES}


def assert_accounts_unchanged_but_for_pairls(before: dict[str, list[str]]) -> None:
    """Unchanged, except that the first start may add the system user ``pairls`` (and its group)."""
    after = accounts()
    for f in ACCOUNT_FILES:
        added = [line for line in after[f] if line not in before[f]]
        removed = [line for line in before[f] if line not in after[f]]
        assert removed == [], (f, removed)
        assert all(line.startswith("pairls:") for line in added), (f, added)
        if f == "/etc/passwd" and added:
            assert added[0].endswith(":/usr/sbin/nologin"), added


def postmasters(data: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.info["name"] == "postgres" and str(data) in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_as_root_the_default_data_dir_is_one_the_postgresql_account_can_reach() -> None:
    assert default_data_dir() == Path("/var/lib/pairls-hub")


async def test_run_as_root_the_hub_changes_nothing_outside_its_data_dir(
    pg_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    data = pg_tmp / "hub"
    before_modes = modes(around(data))
    before_accounts = accounts()
    hub = HubProcess("--data-dir", str(data))
    try:
        url = await asyncio.to_thread(hub.wait_ready, 120)
        p = await Peer(url, "Ada").connect()
        await p.create_room("r")
        await p.create_document("a.txt", "kept\n")
        await p.close()
        user = pwd.getpwnam("pairls")
        # one line says who runs PostgreSQL and where its data is
        said = [line for line in hub.stderr if "embedded PostgreSQL runs as user" in line]
        assert len(said) == 1 and said[0].endswith(f"runs as user pairls, its data in {data / 'postgres'}")
        # it does run as that user, in a directory of its own inside the data dir
        servers = postmasters(data / "postgres")
        assert servers and {s.uids().real for s in servers} == {user.pw_uid}
        cluster = (data / "postgres").stat()
        assert (cluster.st_uid, stat.S_IMODE(cluster.st_mode)) == (user.pw_uid, 0o700)
        top = data.stat()
        assert (top.st_uid, stat.S_IMODE(top.st_mode)) == (0, 0o711)
        assert await asyncio.to_thread(hub.terminate, 60) == 0, hub.log
    finally:
        hub.kill()
    assert postmasters(data / "postgres") == []
    assert modes(around(data)) == before_modes
    assert_accounts_unchanged_but_for_pairls(before_accounts)
    assert "Traceback" not in hub.log


async def test_a_data_dir_the_account_cannot_reach_is_refused_with_the_fix(
    reachable_tmp: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    private = reachable_tmp("private")
    private.chmod(0o700)  # like /root: only root may walk through
    data = private / "hub"
    before_modes = modes(around(data))
    before_accounts = accounts()
    hub = HubProcess("--data-dir", str(data))
    code = await asyncio.to_thread(hub.proc.wait, 120)
    await asyncio.to_thread(hub.kill)  # (reaps the pipes' threads)
    assert code == 2
    (message,) = [line for line in hub.stderr if line.startswith("pairls-hub: ")]
    assert message.startswith("pairls-hub: PostgreSQL refuses to run as root"), hub.log
    assert f"cannot reach the database directory ({private})" in message
    assert f"{private} is mode 0700" in message
    assert "--data-dir /var/lib/pairls-hub" in message and "--database-url" in message
    assert "Traceback" not in hub.log
    assert hub.stdout == []
    assert list(private.iterdir()) == []  # nothing was created
    assert modes(around(data)) == before_modes
    assert_accounts_unchanged_but_for_pairls(before_accounts)
