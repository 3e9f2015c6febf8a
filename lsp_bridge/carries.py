"""Changes the hub had not acknowledged when the editor went, kept for the next entry into
their room (the room's :class:`~lsp_bridge.room.KeepCarry` and ``restore_carry``).

A server whose editor goes (``shutdown``, ``exit``, the end of stdin, SIGTERM, SIGHUP) leaves
the room first and waits ``leave_timeout`` for the hub's acknowledgements.  If the hub cannot
be reached (the user typed offline, saved and closed the editor), what it did not acknowledge
is kept here, as the client the hub knows it from and the seq numbers to go on from, so that
the next server of this user entering that room sends it as that client: the hub commits what
it never had, recognises what it committed unheard, and applies nothing twice.  Without it, the
room's text would win over the saved file at the next join, and the typing would be lost.

One file per room, ``carries/<sha256 of the room id>.json`` in the user's state folder
(``$XDG_STATE_HOME/pairls``, else ``~/.local/state/pairls``), mode 0600 (it holds the
documents' text), written whole under a temporary name and renamed into place; removed once
an entry has taken it.  A file that cannot be read is left where it is and logged: the entry
goes on without it.  Nothing here is logged with the text.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from collab_core import jsonio

__all__ = ["CarryStore"]

logger = logging.getLogger(__name__)

#: a carry larger than this is not read (the hub's documents are smaller; a file this large
#: is not one this server wrote)
MAX_BYTES = 256 << 20


class CarryStore:
    """Carries on disk in *folder* (None: nowhere to keep them, as without a home folder)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def path(self, room_id: str) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / f"{hashlib.sha256(room_id.encode()).hexdigest()}.json"

    def save(self, room_id: str, saved: dict[str, Any]) -> Path | None:
        """Keep *saved* for room *room_id*; the file, or None if it could not be written (logged)."""
        path = self.path(room_id)
        if path is None:
            logger.warning(
                "no state folder to keep the unsent changes in: they are in the editor's buffers only"
            )
            return None
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(jsonio.dumps(saved))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            logger.warning(
                "could not keep the unsent changes in %s (%s): they are in the editor's buffers only",
                path.parent,
                type(exc).__name__,
            )
            return None
        logger.info("kept the unsent changes in %s for the next entry into the room", path)
        return path

    def load(self, room_id: str) -> Any | None:
        """What :meth:`save` kept for *room_id*; None if nothing (or nothing readable: logged)."""
        path = self.path(room_id)
        if path is None:
            return None
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("could not read the kept changes in %s (%s)", path, type(exc).__name__)
            return None
        try:
            with os.fdopen(fd, "rb") as f:
                data = f.read(MAX_BYTES + 1)
            if len(data) > MAX_BYTES:
                raise ValueError("too large")
            return jsonio.loads(data)
        except (OSError, ValueError) as exc:
            logger.warning("could not read the kept changes in %s (%s)", path, type(exc).__name__)
            return None

    def remove(self, room_id: str) -> None:
        path = self.path(room_id)
        if path is None:
            return
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:  # (taken all the same: the hub recognises what it has by seq)
            logger.warning("could not remove the kept changes in %s (%s)", path, type(exc).__name__)
