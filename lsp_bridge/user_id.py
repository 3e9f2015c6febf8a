"""Who "mine" is: the user id this language server says in ``hello.user``.

Per-person undo and redo ("undo *my* last change") need the hub to know the
same person across reconnects, room entries and editor restarts, which the
client id (new for every room entry) cannot tell.  So the language server
keeps a random id in the user's state folder and sends it with every
``hello`` (docs/protocol.md, "History"):

* ``$PAIRLS_USER_ID`` if set (8 to 64 of ``[A-Za-z0-9_-]``; tests give each
  editor its own);
* else the file ``$XDG_STATE_HOME/pairls/user-id`` (``~/.local/state/...``
  without it), created on first use, mode 0600, shared by every editor the
  user runs (two editors starting at once agree: the file appears whole or not
  at all, and the loser reads the winner's);
* else (no home, a read-only folder, a file that is not ours) an id for this
  process only, said once in the log: undoing works until the editor closes.

The id never leaves the hub: other participants see an opaque author id the
hub derives from it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["USER_ID_ENV", "UserId", "load_user_id", "state_folder", "user_id_file", "valid_user_id"]

logger = logging.getLogger(__name__)

USER_ID_ENV = "PAIRLS_USER_ID"
_USER_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")


def valid_user_id(value: object) -> bool:
    """8 to 64 of ``[A-Za-z0-9_-]`` (the protocol's shape of ``hello.user``)."""
    return isinstance(value, str) and _USER_ID_RE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class UserId:
    """The id and where it came from: ``env``, ``file`` or ``process`` (not kept)."""

    value: str
    source: str
    #: the file it is kept in (or would have been)
    path: Path | None = None
    #: why it could not be kept, in words (source ``process`` only)
    problem: str | None = None


def state_folder(env: Mapping[str, str] | None = None) -> Path | None:
    """``$XDG_STATE_HOME/pairls``, else ``~/.local/state/pairls``; None without a home."""
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME") or ""
    if not os.path.isabs(base):  # (the XDG spec: a relative value is to be ignored)
        home = env.get("HOME") or ""
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".local", "state")
    return Path(base) / "pairls"


def user_id_file(env: Mapping[str, str] | None = None) -> Path | None:
    """``user-id`` in :func:`state_folder`; None without a home."""
    folder = state_folder(env)
    return None if folder is None else folder / "user-id"


def load_user_id(env: Mapping[str, str] | None = None) -> UserId:
    """The user id to say in ``hello`` (see the module docstring); never raises."""
    env = os.environ if env is None else env
    given = env.get(USER_ID_ENV)
    if given:
        if valid_user_id(given):
            return UserId(given, "env")
        logger.warning("%s is not 8 to 64 of [A-Za-z0-9_-]; ignored", USER_ID_ENV)
    path = user_id_file(env)
    if path is None:
        return _for_this_process(None, "no home folder to keep it in")
    try:
        return UserId(_read_or_create(path), "file", path)
    except OSError as exc:
        return _for_this_process(path, f"{type(exc).__name__}: {exc.strerror or exc}")
    except ValueError as exc:
        return _for_this_process(path, str(exc))


def _for_this_process(path: Path | None, problem: str) -> UserId:
    where = f" in {path}" if path is not None else ""
    logger.warning(
        "cannot keep your pairls user id%s (%s); using one for this editor session: "
        "undoing your own changes works until the editor closes",
        where,
        problem,
    )
    return UserId(secrets.token_urlsafe(16), "process", path, problem)


def _read_or_create(path: Path) -> str:
    existing = _read(path)
    if existing is not None:
        return existing
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    new = secrets.token_urlsafe(16)
    # Written whole under a temporary name, then linked into place: an editor starting at the
    # same moment sees no file or a whole one, and link() fails if it made one first.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(new + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            winner = _read(path)
            if winner is None:
                raise ValueError(f"{path} does not hold a user id") from None
            return winner
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return new


def _read(path: Path) -> str | None:
    """The id in *path*; None if there is no file; ValueError if it holds something else."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "r", encoding="ascii", errors="replace") as f:
        text = f.read(200).strip()
    if not valid_user_id(text):
        raise ValueError(f"{path} does not hold a user id")
    return text
