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

import fnmatch
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pygls.uris import from_fs_path, to_fs_path

__all__ = ["PathMapper", "is_private", "shareable_files"]

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


def shareable_files(folder: Path, *, max_bytes: int) -> tuple[list[Path], list[str]]:
    """The text files under *folder* a folder share sends: what git tracks or would track
    (``.gitignore`` respected) when it is a git work tree, else every file outside the
    usual tool folders; never a private file, a binary file or one over *max_bytes*.
    Returns (files, what was skipped and why)."""
    candidates: list[Path] = []
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=folder,
            capture_output=True,
            timeout=30,
            check=True,
        ).stdout.decode("utf-8", "replace")
        candidates = [folder / name for name in listed.split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]
            candidates += [Path(dirpath) / f for f in filenames]
    files, skipped = [], []
    for path in sorted(candidates):
        rel = path.relative_to(folder).as_posix()
        if any(part in SKIPPED_DIRS for part in PurePosixPath(rel).parts[:-1]):
            continue
        if is_private(rel):
            skipped.append(f"{rel}: may hold a secret")
            continue
        try:
            if not path.is_file() or path.is_symlink():
                continue
            size = path.stat().st_size
        except OSError:
            continue
        if size > max_bytes:
            skipped.append(f"{rel}: larger than the hub allows")
            continue
        with path.open("rb") as f:
            head = f.read(8192)
        if b"\0" in head:
            skipped.append(f"{rel}: binary")
            continue
        files.append(path)
    return files, skipped


@dataclass
class PathMapper:
    #: (name, root) of each workspace folder, the first one first
    folders: list[tuple[str, Path]]
    #: where rooms go without a workspace folder (``$XDG_CACHE_HOME/pairls/rooms``)
    cache: Path

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
        fs = to_fs_path(uri)
        if not fs:
            return None
        target = Path(fs).resolve()
        for i, (name, root) in enumerate(self.folders):
            try:
                rel = target.relative_to(root)
            except ValueError:
                continue
            posix = rel.as_posix()
            if posix in (".", ""):
                return None
            return posix if i == 0 else f"{name}/{posix}"
        return None

    def local_path(self, path: str, room_id: str | None) -> Path | None:
        """Where the room document *path* lives on disk, or None if it cannot be placed safely."""
        parts = PurePosixPath(path).parts
        if not parts or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
            return None
        root: Path | None = None
        rel = parts
        if self.folders:
            root = self.folders[0][1]
            for name, folder in self.folders[1:]:
                if len(parts) > 1 and parts[0] == name:
                    root, rel = folder, parts[1:]
                    break
        else:
            root = (self.cache / (room_id or "no-room")).resolve()
        target = root.joinpath(*rel)
        try:
            # a symlinked folder inside the workspace must not lead outside it
            target.resolve().relative_to(root)
        except ValueError:
            return None
        return target

    def root(self) -> Path | None:
        """The first workspace folder, if any."""
        return self.folders[0][1] if self.folders else None

    def uri(self, path: Path) -> str:
        return from_fs_path(str(path)) or path.as_uri()
