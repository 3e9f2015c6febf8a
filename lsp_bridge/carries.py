"""Changes the hub had not acknowledged when the editor went, kept for the next entry into
their room (the room's :class:`~lsp_bridge.room.KeepCarry` and ``restore_carry``).

A server whose editor goes (``shutdown``, ``exit``, the end of stdin, SIGTERM, SIGHUP) leaves
the room first and waits a little (``exit_timeout``, 2 s) for the hub's acknowledgements.  If
the hub cannot be reached (the user typed offline, saved and closed the editor), what it did not
acknowledge is kept here, as the client the hub knows it from and the seq numbers to go on
from, so that the next server of this user entering that room sends it as that client: the hub
commits what it never had, recognises what it committed unheard, and applies nothing twice.
Without it, the room's text would win over the saved file at the next join, and the typing
would be lost.  A server killed without a word (kill -9, the OOM killer) has no exit to keep
anything at: so what the hub has not acknowledged for a second is *held* here while the server
runs (:meth:`CarryStore.hold`, the room's :class:`~lsp_bridge.room.HoldCarry`), written as a
file this process has claimed, which the next server takes over once this one is gone.

One file per room entry, ``carries/<room>-<client>.json`` (hashes of the room id and the client
id) in the user's state folder (``$XDG_STATE_HOME/pairls``, else ``~/.local/state/pairls``),
mode 0600 (it holds the documents' text), written whole under a temporary name and renamed into
place.  Two editors of the same user that went offline from the same room keep two files.

An entry waits a little (the room's ``exit_timeout`` and a second) while another process
that runs holds a file of its room: a server of the same user in its exit's wait holds its carry
there from the start of the wait (an editor reloaded offline starts the next server at once),
and keeps it for the next entry as it ends.

An entry *claims* one of its room's files before it joins: renamed to ``...json.taking-<pid>``,
which only one process can do, so two editors joining at once never enter as the same client
(``-<start>`` after the pid where ``/proc`` says when the process started: a pid that another
process has since, after a reboot say, is not taken for the claimer's).
Once the entry has taken it, the claimed file is removed; an entry that cannot use it now gives
it back (renamed again), and a claim whose process is gone (killed; ended but not yet reaped
counts as gone) is taken over by the next.
A file that holds no carry this version can read is set aside (``...json.unreadable``, logged
once, left for the user) and the next file is offered: the entry goes on without it, and it
never hides a good carry of the same room.  Nothing here is logged with the text.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collab_core import jsonio

from .room import Restore

__all__ = ["CarryStore"]

logger = logging.getLogger(__name__)

#: a carry larger than this is not read (the hub's documents are smaller; a file this large
#: is not one this server wrote)
MAX_BYTES = 256 << 20


class CarryStore:
    """Carries on disk in *folder* (None: nowhere to keep them, as without a home folder)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        #: the file this process holds (hold), until dropped or kept
        self.held: Path | None = None
        #: the last hold could not be written (said once until one is)
        self._hold_failed = False

    def save(self, room_id: str, client_id: str, saved: dict[str, Any]) -> Path | None:
        """Keep *saved*, the carry of *client_id* in room *room_id*; the file, or None if it
        could not be written (logged)."""
        if self.folder is None:
            logger.warning(
                "no state folder to keep the unsent changes in: they are in the editor's buffers only"
            )
            return None
        path = self.folder / _name(room_id, client_id)
        if not self._write(path, saved):
            return None
        logger.info("kept the unsent changes in %s for the next entry into the room", path)
        return path

    def hold(self, room_id: str, client_id: str, saved: dict[str, Any]) -> Path | None:
        """Keep *saved* as :meth:`save` does, while the server runs: claimed by this process (no
        entry of another takes it while this one runs; the next after it does, as it takes over
        any claim of a process that is gone), in place of what it held before; the file
        (:attr:`held`), or None if it could not be written (logged once; the one held before
        stays)."""
        if self.folder is None:
            return None  # (said at exit, if there is still something to keep then)
        path = self.folder / f"{_name(room_id, client_id)}.taking-{taker(os.getpid())}"
        if not self._write(path, saved, quiet=self._hold_failed):
            self._hold_failed = True
            return None
        self._hold_failed = False
        before, self.held = self.held, path
        if before is not None and before != path:
            self.remove(before)  # (another room's or another entry's)
        return path

    def drop_held(self) -> None:
        """What this process held is done with (the hub has it, or the room was left)."""
        held, self.held = self.held, None
        if held is not None:
            self.remove(held)

    def _write(self, path: Path, saved: dict[str, Any], *, quiet: bool = False) -> bool:
        """*saved* written whole to *path* (0600), or False (logged unless *quiet*)."""
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
            if not quiet:
                logger.warning(
                    "could not keep the unsent changes in %s (%s): they are in the editor's buffers only",
                    path.parent,
                    type(exc).__name__,
                )
            return False
        return True

    def claim(self, room_id: str, take: Callable[[Any], Restore]) -> Path | None:
        """Offer *take* the carries kept for *room_id*, oldest first, each claimed for this
        process while it is offered; the file of the one it took (to :meth:`remove` once the
        entry has it, or to :meth:`keep` anew), or None.  A carry it cannot take now is given
        back, and one that cannot be read (by this process or by *take*) set aside: the next
        is offered."""
        if self.folder is None:
            return None
        candidates = []
        for name in self._names(room_id):
            kept, _, claimer = name.partition(".json.taking-")
            if not name.endswith(".json") and not _claimer_gone(claimer):
                continue  # (a temporary file, one set aside, or claimed by a process that runs)
            with contextlib.suppress(OSError):
                candidates.append((os.stat(self.folder / name).st_mtime, name, kept.removesuffix(".json")))
        for _, name, base in sorted(candidates):
            claimed = self.folder / f"{base}.json.taking-{taker(os.getpid())}"
            try:
                os.rename(self.folder / name, claimed)
            except OSError:  # (another process claimed it first)
                continue
            data = self._read(claimed)
            outcome = Restore.UNREADABLE if data is None else take(data)
            if outcome is Restore.TAKEN:
                return claimed
            if outcome is Restore.NOT_NOW:
                self.give_back(claimed)
                return None
            self._set_aside(claimed)
        return None

    def held_elsewhere(self, room_id: str) -> bool:
        """Whether another process that runs holds a carry of room *room_id*: most likely a
        server of this user in its exit's wait, which keeps it as it ends (the next entry waits
        for it: an editor reloaded offline); else another editor's server, offline in the room."""
        mine = taker(os.getpid())
        for name in self._names(room_id):
            _, sep, claimer = name.partition(".json.taking-")
            if sep and claimer != mine and not _claimer_gone(claimer):
                return True
        return False

    def _names(self, room_id: str) -> list[str]:
        """The names of the files of room *room_id* in the folder (none without one)."""
        if self.folder is None:
            return []
        prefix = f"{_hash(room_id)}-"
        try:
            return [n for n in os.listdir(self.folder) if n.startswith(prefix)]
        except OSError:  # (no folder: nothing kept)
            return []

    def keep(self, room_id: str, client_id: str, saved: dict[str, Any], replacing: Path | None) -> None:
        """:meth:`save`, in place of the claimed file *replacing* (the carry the entry took back
        from it and kept again at exit): removed once the new one is on disk, else given back;
        and in place of what this process held of the same entry (left for the next server if
        the new one could not be written)."""
        path = self.save(room_id, client_id, saved)
        held = self.held
        if held is not None and held.name.startswith(f"{_name(room_id, client_id)}."):
            self.held = None
            if path is not None:
                self.remove(held)
        if replacing is None:
            return
        if path is not None:
            self.remove(replacing)
        else:
            self.give_back(replacing)

    def give_back(self, claimed: Path) -> None:
        """A claimed carry this entry could not use: kept for another."""
        kept = claimed.with_name(claimed.name.rpartition(".taking-")[0])
        try:
            os.rename(claimed, kept)
        except OSError as exc:
            logger.warning("could not give back the kept changes in %s (%s)", claimed, type(exc).__name__)

    def remove(self, claimed: Path) -> None:
        """A claimed carry the entry has taken: done with."""
        try:
            claimed.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:  # (taken all the same: the hub recognises what it has by seq)
            logger.warning("could not remove the kept changes in %s (%s)", claimed, type(exc).__name__)

    def _set_aside(self, claimed: Path) -> None:
        """A claimed file that holds no carry this version can read: renamed so that no entry is
        offered it again, and left for the user (it may hold their typing)."""
        aside = claimed.with_name(f"{claimed.name.rpartition('.taking-')[0]}.unreadable")
        try:
            os.replace(claimed, aside)
        except OSError as exc:
            logger.warning("could not set aside the kept changes in %s (%s)", claimed, type(exc).__name__)
            return
        logger.warning("set aside %s: not changes this version can take back (left there for you)", aside)

    @staticmethod
    def _read(path: Path) -> Any | None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as f:
                data = f.read(MAX_BYTES + 1)
            if len(data) > MAX_BYTES:
                raise ValueError("too large")
            return jsonio.loads(data)
        except (OSError, ValueError) as exc:
            logger.warning("could not read the kept changes in %s (%s)", path, type(exc).__name__)
            return None


def _name(room_id: str, client_id: str) -> str:
    """The file of the carry of *client_id* in room *room_id* (hashes: a room id from a hub is
    no path)."""
    return f"{_hash(room_id)}-{_hash(client_id)[:32]}.json"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def taker(pid: int) -> str:
    """How a claim names process *pid*: ``<pid>-<start>`` (when it started, in clock ticks since
    boot, from ``/proc``), or ``<pid>`` where there is no ``/proc``."""
    stat = _proc_stat(pid)
    return f"{pid}-{stat[1]}" if stat is not None else str(pid)


def _claimer_gone(claimer: str) -> bool:
    """Is the process a claim names (:func:`taker`) gone?  False for what is no claim."""
    pid, _, start = claimer.partition("-")
    if not pid.isdigit() or not (start.isdigit() or not start):
        return False
    return not _running(int(pid), start or None)


def _running(pid: int, start: str | None = None) -> bool:
    """Is process *pid* running (and, with *start*, the one that started then)?  A zombie is
    not: it ended, and its parent has not reaped it.  A server killed outright (kill -9, the OOM
    killer) whose editor quit before reaping it goes to PID 1, which may reap it seconds later
    (an editor started again at once would find its claims still held), or never (a
    container's PID 1 that reaps nobody).  A process that started at another time has the pid
    of one that ended (a claim from before a reboot, or pids gone round)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # (another user's: it runs, and /proc tells whether it is the claimer)
        pass
    stat = _proc_stat(pid)
    if stat is None:
        return True  # (no /proc: the pid is all there is to go by)
    state, started = stat
    return state not in ("Z", "X") and (start is None or started == start)


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """The state and the start time (clock ticks after boot) of *pid*, read from ``/proc``;
    None where there is none (or the process is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # "pid (command) state ppid ...": the command may hold ") " itself, so the last ")" ends it;
    # the start time is the stat's 22nd field, the 20th after the command
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) < 20:
        return None
    return fields[0].decode("ascii", "replace"), fields[19].decode("ascii", "replace")
