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

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pygls.uris import from_fs_path, to_fs_path

__all__ = ["PathMapper"]


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

    def uri(self, path: Path) -> str:
        return from_fs_path(str(path)) or path.as_uri()
