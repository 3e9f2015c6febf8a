"""lsp_bridge.ignore against git itself: random trees, random .gitignore files, and
``git ls-files --others --exclude-standard`` saying which files are not ignored."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from lsp_bridge.ignore import IgnoreFile, ignored

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

NAMES = ["a", "b", "ab", "a.txt", "b.py", ".env", "x.log", "build", "dir"]
PIECES = ["a", "b", "*", "?", "**", "/", "[ab]", "[!a]", ".txt", ".py", "x", "dir", "build", ".env", "\\*"]


def _pattern(rng: random.Random) -> str:
    p = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 4)))
    if rng.random() < 0.2:
        p = "!" + p
    if rng.random() < 0.15:
        p += "/"
    if rng.random() < 0.1:
        p = "/" + p
    # "//" is no pattern anyone writes, and git's reading of it is its implementation's
    return p.replace("//", "/")


def _tree(rng: random.Random, root: Path) -> list[str]:
    files = []
    for _ in range(rng.randint(5, 25)):
        depth = rng.randint(1, 3)
        parts = [rng.choice(NAMES) for _ in range(depth)]
        path = root.joinpath(*parts)
        if any(p.is_file() for p in [root.joinpath(*parts[:i]) for i in range(1, depth + 1)]):
            continue
        if path.is_dir():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        files.append("/".join(parts))
    return files


def _git_not_ignored(root: Path) -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "-z"], cwd=root, capture_output=True, check=True
    ).stdout.decode()
    return {p for p in out.split("\0") if p}


@pytest.mark.parametrize("seed", range(40))
def test_ignored_agrees_with_git(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    files = _tree(rng, root)
    dirs = sorted({f.rsplit("/", 1)[0] for f in files if "/" in f} | {""})
    ignore_files = []
    for d in dirs:
        if d and rng.random() < 0.6:
            continue
        text = "\n".join(_pattern(rng) for _ in range(rng.randint(1, 5))) + "\n"
        (root / d / ".gitignore").write_text(text)
        ignore_files.append(IgnoreFile.parse(text, d))
    ignore_files.sort(key=lambda f: f.base.count("/") + (1 if f.base else 0))
    visible = _git_not_ignored(root)
    for f in files:
        applicable = [i for i in ignore_files if not i.base or f.startswith(i.base + "/")]
        assert ignored(applicable, f) == (f not in visible), (f, [(i.base, i.rules) for i in ignore_files])


@pytest.mark.parametrize(
    ("patterns", "path", "is_dir", "expected"),
    [
        ("*.log", "deep/down/x.log", False, True),
        ("/x.log", "deep/x.log", False, False),
        ("build/", "build", False, False),
        ("build/", "src/build/out.o", False, True),
        ("*.env\n!keep.env", "keep.env", False, False),
        ("secret/\n!secret/ok", "secret/ok", False, True),  # nothing inside an ignored folder comes back
        ("a/**/b", "a/x/y/b", False, True),
        ("a/**/b", "a/b", False, True),
        ("**/c", "x/c", False, True),
        ("# comment\n\n\\#hash", "#hash", False, True),
        ("trailing   ", "trailing", False, True),
        ("\\!bang", "!bang", False, True),
        ("[!a]x", "bx", False, True),
        ("[!a]x", "ax", False, False),
    ],
)
def test_rules(patterns: str, path: str, is_dir: bool, expected: bool) -> None:
    assert ignored([IgnoreFile.parse(patterns)], path, is_dir) is expected
