"""``pairls-lsp``: run the pairls language server over stdio.

stdout is the LSP pipe; logs go to stderr (and the editor's log through
``window/logMessage``).
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pairls-lsp", description="The pairls language server (LSP over stdio).")
    p.add_argument(
        "--stdio",
        action="store_true",
        help="talk LSP over stdin/stdout (the default; accepted for editors that pass it)",
    )
    p.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument(
        "--loop",
        default="auto",
        choices=["auto", "asyncio"],
        help="event loop: uvloop when it is installed (auto, the default), or asyncio's own",
    )
    p.add_argument("--version", action="version", version=f"pairls-lsp {__version__}")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.log_level != "DEBUG":
        logging.getLogger("pygls").setLevel(logging.WARNING)
        logging.getLogger("websockets").setLevel(logging.WARNING)
    from .serve import create_server, serve_stdio

    serve_stdio(create_server(), event_loop=args.loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
