"""Room paths <-> the editor's files: the one module that maps them (sans-I/O bar ``Path.resolve``).

A room path is ``/``-separated and relative (the hub checks its shape).
Locally it lives under a workspace folder: the first folder holds the room's
paths as they are, any other folder ``name`` holds them under ``name/`` (a
multi-root workspace whose folders both have ``README.md`` shares two
documents, not one).  Without a workspace folder, room files go under the
user's cache folder, per room.  A path that would leave its folder (``..``,
an absolute path, a symlink pointing out) maps to nothing.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

from pygls.uris import from_fs_path, to_fs_path

from collab_core.wire import ROOM_ID_RE, valid_path

from .ignore import IgnoreFile, ignored

__all__ = ["PathMapper", "ShareFilter", "is_private", "shareable_files"]

#: folders never shared by a folder share (tools' caches, dependencies, build output, VCS)
SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".ruff_cache",
     ".pytest_cache", ".tox", "dist", "build", "target", ".idea", ".vs"}
)  # fmt: skip

#: files that hold secrets: never shared unless the user shares that very file
PRIVATE = (
    ".env", ".env.*", "*.env", ".envrc", "*.pem", "*.key", "*.p12", "*.pfx", "*.keystore", "*.jks",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", ".npmrc", ".pypirc", "*.kdbx",
    "credentials*", "*secret*", ".git-credentials", "*.gpg", "*.asc",
)  # fmt: skip


def is_private(name: str) -> bool:
    """Is a file of this name likely to hold a secret (keys, tokens, .env)?"""
    base = name.rsplit("/", 1)[-1].lower()
    return any(fnmatch.fnmatchcase(base, pattern) for pattern in PRIVATE)


class ShareFilter:
    """Why a file under one workspace folder is not shared without asking: inside ``.git``,
    ignored by git (``.gitignore`` files from the repository's top down, ``.git/info/exclude``),
    listed in a ``.pairlsignore`` (same syntax), or named like a file that holds secrets.

    The ignore files are read when asked and cached by modification time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # the repository's top when the folder is inside one: its .gitignore files count too
        self.top = next((p for p in (root, *root.parents) if (p / ".git").exists()), root)
        self._cache: dict[Path, tuple[float, IgnoreFile | None]] = {}

    def reason(self, path: Path, is_dir: bool = False) -> str | None:
        """Why *path* (under the folder) should not be shared unasked, or None."""
        try:
            rel = path.relative_to(self.top).as_posix()
        except ValueError:
            return "it is outside the workspace"
        parts = rel.split("/")
        if ".git" in parts:
            return "it is inside .git"
        if not is_dir and is_private(rel):
            return "its name says it may hold a secret"
        folders = [self.top.joinpath(*parts[:i]) for i in range(len(parts))]
        git = [self._load(self.top / ".git" / "info" / "exclude", self.top)]
        git += [self._load(d / ".gitignore", d) for d in folders]
        if ignored([f for f in git if f is not None], rel, is_dir):
            return "git ignores it"
        mine = [f for f in (self._load(d / ".pairlsignore", d) for d in folders) if f is not None]
        if ignored(mine, rel, is_dir):
            return ".pairlsignore lists it"
        return None

    def _load(self, file: Path, folder: Path) -> IgnoreFile | None:
        try:
            mtime = file.stat().st_mtime
        except OSError:
            self._cache.pop(file, None)
            return None
        cached = self._cache.get(file)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        base = folder.relative_to(self.top).as_posix()
        parsed = IgnoreFile.parse(text, "" if base == "." else base)
        self._cache[file] = (mtime, parsed)
        return parsed


def shareable_files(folder: Path, *, max_bytes: int) -> tuple[list[Path], list[str]]:
    """The text files under *folder* a folder share sends: every file git would not
    ignore, outside the usual tool folders, not listed in a ``.pairlsignore``, not named like
    a secret, not binary, not over *max_bytes*, not a symbolic link.
    Returns (files, what was skipped and why)."""
    share = ShareFilter(folder)
    files: list[Path] = []
    skipped: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIPPED_DIRS and share.reason(here / d, is_dir=True) is None
        )
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(folder).as_posix()
            why = share.reason(path)
            if why is not None:
                if why != "git ignores it":
                    skipped.append(f"{rel}: {why}")
                continue
            try:
                if path.is_symlink() or not path.is_file():
                    continue
                size = path.stat().st_size
                if size > max_bytes:
                    skipped.append(f"{rel}: larger than the hub allows")
                    continue
                with path.open("rb") as f:
                    head = f.read(8192)
            except OSError:
                continue
            if b"\0" in head:
                skipped.append(f"{rel}: binary")
                continue
            files.append(path)
    return files, skipped


#: longest file name most file systems take, in bytes
NAME_MAX = 255


@dataclass
class PathMapper:
    """The only place that turns a room path into a local file.

    The hub is not trusted: a path it sends is used only if it has the protocol's shape
    (:func:`collab_core.wire.valid_path`: relative, ``/``-separated, no ``..``, no
    backslash, drive letter or control character), no part longer than a file name may be,
    no ``.git`` part, and if, with symbolic links resolved, it stays inside its folder.
    Files are created folder by folder without following a symbolic link, so a link made
    in between cannot lead a write out either.  A refusal is kept in :attr:`refused` and
    :meth:`refusal_message` says it once."""

    #: (name, root) of each workspace folder, the first one first
    folders: list[tuple[str, Path]]
    #: where rooms go without a workspace folder (``$XDG_CACHE_HOME/pairls/rooms``)
    cache: Path
    #: room paths refused, in order (the first few)
    refused: list[str] = field(default_factory=list)
    refusals: int = 0
    _told: bool = False
    _filters: dict[Path, ShareFilter] = field(default_factory=dict)

    @classmethod
    def for_workspace(cls, folders: list[tuple[str, str]]) -> PathMapper:
        """*folders*: (name, uri) of the workspace folders (or the root uri), in order."""
        roots = []
        for name, uri in folders:
            fs = to_fs_path(uri)
            if fs:
                roots.append((name, Path(fs).resolve()))
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return cls(roots, Path(base) / "pairls" / "rooms")

    def room_path(self, uri: str) -> str | None:
        """The room path of the file *uri*, or None if it is not under a workspace folder."""
        found = self._under_folder(uri)
        if found is None:
            return None
        i, rel = found
        return rel if i == 0 else f"{self.folders[i][0]}/{rel}"

    def _under_folder(self, uri: str) -> tuple[int, str] | None:
        fs = to_fs_path(uri)
        if not fs:
            return None
        target = Path(fs).resolve()
        for i, (_, root) in enumerate(self.folders):
            try:
                rel = target.relative_to(root).as_posix()
            except ValueError:
                continue
            return None if rel in (".", "") else (i, rel)
        return None

    def share_block(self, uri: str) -> str | None:
        """Why the file *uri* is not shared without the user saying so, or None.

        Outside every workspace folder; inside ``.git``; ignored by git or a
        ``.pairlsignore``; or named like a file that holds secrets."""
        found = self._under_folder(uri)
        if found is None:
            return "it is outside the workspace"
        i, rel = found
        root = self.folders[i][1]
        share = self._filters.get(root)
        if share is None:
            share = self._filters[root] = ShareFilter(root)
        return share.reason(root / rel)

    def local_path(self, path: str, room_id: str | None) -> Path | None:
        """Where the room document *path* lives on disk (symbolic links resolved), or None
        (and the refusal noted) if it cannot be placed inside its folder."""
        placed = self._place(path, room_id)
        if placed is None:
            self.refusals += 1
            if len(self.refused) < 5:
                self.refused.append(path[:120])
            return None
        return placed[0] / placed[1]

    def _place(self, path: str, room_id: str | None) -> tuple[Path, str] | None:
        """(folder, the path relative to it with links resolved) of room path *path*."""
        parts = _parts(path)
        if parts is None:
            return None
        rel = parts
        if self.folders:
            root = self.folders[0][1]
            for name, folder in self.folders[1:]:
                if len(parts) > 1 and parts[0] == name:
                    root, rel = folder, parts[1:]
                    break
        else:
            root = (self.cache / (room_id or "no-room")).resolve()
        resolved = _beneath(root, rel)
        return None if resolved is None else (root, resolved)

    def create(self, path: str, room_id: str | None, text: str) -> Path | None:
        """Create the file for room path *path* with *text*, and the folders it needs, none of
        them through a symbolic link; None if the path is refused or a link is in the way."""
        placed = self._place(path, room_id)
        if placed is None:
            self.local_path(path, room_id)  # notes the refusal
            return None
        root, rel = placed
        if not self.folders:
            root.mkdir(parents=True, exist_ok=True)  # the room's own folder in the cache
        try:
            _create_beneath(root, rel.split("/"), text)
        except FileExistsError:
            pass  # someone made it meanwhile: it is there
        except OSError:
            # a symbolic link put in the way after the check (ELOOP, ENOTDIR)
            self.refusals += 1
            if len(self.refused) < 5:
                self.refused.append(path[:120])
            return None
        return root / rel

    def revision_file(self, room_id: str, rev: int, path: str, text: str) -> Path | None:
        """A read-only file (mode 0444) holding *text*, revision *rev* of room path *path*:
        ``<cache>/pairls/revisions/<room>/<rev>/<path>``, never outside that folder and never
        inside a workspace folder.  Written whole under another name and renamed into place, no
        symbolic link followed below the cache; a file already there with that text is reused.
        None (the refusal noted) if the path or the room id cannot be placed there."""
        parts = _parts(path)
        if parts is None or type(rev) is not int or rev < 0 or not ROOM_ID_RE.fullmatch(room_id or ""):
            self._refused(path)
            return None
        revisions = (self.cache.parent / "revisions").resolve()
        if any(revisions == folder or folder in revisions.parents for _, folder in self.folders):
            return None  # (a cache folder inside the workspace: the revision would be shared)
        base = revisions / room_id / str(rev)
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        root = base.resolve()
        if not root.is_relative_to(revisions):
            self._refused(path)  # (a link put in place of the room's folder)
            return None
        rel = _beneath(root, parts)
        if rel is None:
            self._refused(path)
            return None
        target = root / rel
        try:
            if not target.is_symlink() and target.is_file() and target.read_text(encoding="utf-8") == text:
                return target
        except (OSError, UnicodeDecodeError):
            pass
        try:
            _replace_beneath(root, rel.split("/"), text, 0o444)
        except OSError:  # a symbolic link put in the way after the check
            self._refused(path)
            return None
        return target

    def _refused(self, path: str) -> None:
        self.refusals += 1
        if len(self.refused) < 5:
            self.refused.append(str(path)[:120])

    def refusal_message(self) -> str | None:
        """A message for the user the first time a path was refused; None after."""
        if not self.refused or self._told:
            return None
        self._told = True
        names = ", ".join(repr(p) for p in self.refused)
        return (
            f"pairls: the hub named a file that is not inside your workspace ({names}); "
            "nothing was written there. An honest hub never does this: if it keeps happening, "
            "leave the room."
        )

    def root(self) -> Path | None:
        """The first workspace folder, if any."""
        return self.folders[0][1] if self.folders else None

    def uri(self, path: Path) -> str:
        return from_fs_path(str(path)) or path.as_uri()


def _parts(path: object) -> list[str] | None:
    """The parts of room path *path* if it has the protocol's shape and may be a file here."""
    if not isinstance(path, str) or not valid_path(path):
        return None
    parts = path.split("/")
    if ".git" in parts or any(len(p.encode("utf-8")) > NAME_MAX for p in parts):
        return None
    return parts


def _beneath(root: Path, parts: list[str]) -> str | None:
    """*parts* under *root* with symbolic links resolved, if that stays inside *root*."""
    try:
        resolved = root.joinpath(*parts).resolve().relative_to(root)
    except (ValueError, OSError, RuntimeError):  # outside, or a loop of links
        return None
    if resolved.as_posix() in (".", "") or ".git" in resolved.parts:
        return None
    return resolved.as_posix()


def _replace_beneath(root: Path, parts: list[str], text: str, mode: int) -> None:
    """Write ``root/parts...`` whole (folders as needed, no symbolic link followed below *root*):
    a new file of *mode* under a temporary name, renamed over whatever was there."""
    fd = _open_folders(root, parts[:-1])
    try:
        tmp = f".{parts[-1][:200]}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=fd)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        file_fd = os.open(tmp, flags, mode, dir_fd=fd)
        with os.fdopen(file_fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.rename(tmp, parts[-1], src_dir_fd=fd, dst_dir_fd=fd)
    finally:
        os.close(fd)


def _open_folders(root: Path, parts: list[str]) -> int:
    """A descriptor of ``root/parts...``, each folder made if need be, no symbolic link followed."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o777, dir_fd=fd)
            next_fd = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _create_beneath(root: Path, parts: list[str], text: str) -> None:
    """Create ``root/parts...`` (new file, folders as needed) walking with directory
    descriptors and O_NOFOLLOW: no symbolic link is followed below *root*."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, 0o777, dir_fd=fd)
            except FileExistsError:
                pass
            next_fd = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        file_fd = os.open(
            parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
            0o666, dir_fd=fd,
        )  # fmt: skip
        with os.fdopen(file_fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    finally:
        os.close(fd)
