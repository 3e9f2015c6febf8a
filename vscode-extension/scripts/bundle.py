"""Bundle the pairls language server and its pure-Python dependencies into ``bundled/libs``.

The .vsix ships them, and the extension runs ``<python> bundled/tool/server.py`` with any
Python 3.11+, whatever that interpreter has installed (the layout of Microsoft's
vscode-python-tools-extension-template):

    bundled/tool/server.py   puts bundled/libs first on sys.path, runs lsp_bridge
    bundled/libs/            collab_core and lsp_bridge (from this checkout, the packages the
                             pairls wheel has) and the wheels pinned in bundled/requirements.txt

    python3 scripts/bundle.py          rebuild bundled/libs when an input changed
    python3 scripts/bundle.py --lock   resolve pyproject.toml's [project].dependencies anew
                                       into bundled/requirements.txt (pins and sha256 hashes)

Only ``py3-none-any`` wheels are installed (pip's ``--platform any --abi none``), so no
compiled extension can get in (websockets' optional C speedup is left out; websockets
falls back to pure Python); the result is checked file by file, and imported from
bundled/libs alone (``python -I -S``). Left out: jedi's typeshed stubs for third-party
packages and its Django stubs (4,800 files, 10 MB); jedi keeps the standard library's
stubs and reads installed packages themselves.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

EXT = Path(__file__).resolve().parents[1]
ROOT = EXT.parent
PYPROJECT = ROOT / "pyproject.toml"
BUNDLED = EXT / "bundled"
LIBS = BUNDLED / "libs"
LOCK = BUNDLED / "requirements.txt"
STAMP = BUNDLED / ".libs-inputs"
SERVER = BUNDLED / "tool" / "server.py"

# the oldest Python the bundle runs on: wheels must support it (pip checks Requires-Python)
PYTHON_VERSION = "3.11"
# the pairls packages the language server needs; the hub (collab_server) stays out
OWN_PACKAGES = ("collab_core", "lsp_bridge")
# (relative to bundled/libs) what the language server never uses
LEFT_OUT = (
    "bin",  # console scripts, with the build interpreter's path in their shebang
    "jedi/third_party/typeshed/stubs",
    "jedi/third_party/django-stubs",
    "websockets/speedups.c",
)
PURE_WHEEL = ["--only-binary=:all:", "--platform", "any", "--implementation", "py", "--abi", "none"]
PURE_WHEEL += ["--python-version", PYTHON_VERSION]
NATIVE_SUFFIXES = {*importlib.machinery.EXTENSION_SUFFIXES, ".so", ".pyd", ".dylib", ".dll", ".exe"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lock", action="store_true", help="re-resolve bundled/requirements.txt first")
    p.add_argument("--force", action="store_true", help="rebuild even if no input changed")
    args = p.parse_args(argv)
    if args.lock:
        lock()
    digest = inputs_digest()
    if not args.force and LIBS.is_dir() and STAMP.is_file() and STAMP.read_text().strip() == digest:
        print(f"bundle: {rel(LIBS)} is up to date")
        return 0
    build()
    STAMP.write_text(digest + "\n")
    return 0


def rel(path: Path) -> str:
    return str(path.relative_to(EXT))


def pip_install(*args: str) -> None:
    # --root-user-action: a target directory is no environment for root to break
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "--root-user-action=ignore"]
    subprocess.run([*cmd, *args], check=True)


def lock() -> None:
    """Resolve [project].dependencies to pure wheels; write their pins and hashes."""
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        pip_install(
            "--quiet",
            "--dry-run",
            "--target",
            str(Path(tmp) / "target"),
            "--report",
            str(report),
            *PURE_WHEEL,
            *deps,
        )
        installs = json.loads(report.read_text())["install"]
    lines = [
        "# The language server's run-time dependencies, bundled into the .vsix by",
        "# scripts/bundle.py: pure-Python wheels for Python 3.11+, pinned with their hashes.",
        "# Made by `python3 scripts/bundle.py --lock` from pyproject.toml's [project].dependencies",
        "# (markers evaluated for Python 3.11); run it again after changing them.",
    ]
    for item in sorted(installs, key=lambda i: i["metadata"]["name"].lower()):
        meta, info = item["metadata"], item["download_info"]
        sha256 = (
            info["archive_info"].get("hashes", {}).get("sha256") or info["archive_info"]["hash"].split("=")[1]
        )
        url = info["url"]
        assert url.endswith("-none-any.whl"), f"not a pure-Python wheel: {url}"
        lines.append(f"{meta['name'].lower()}=={meta['version']} \\\n    --hash=sha256:{sha256}")
    LOCK.write_text("\n".join(lines) + "\n")
    print(f"bundle: wrote {rel(LOCK)} ({len(installs)} packages)")


def own_files() -> list[tuple[Path, str]]:
    """(source file, path in bundled/libs) for collab_core and lsp_bridge, as the wheel has them:
    the packages pyproject.toml lists, their modules and their package data."""
    tool = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]
    package_data = tool.get("package-data", {})
    out = []
    for package in tool["packages"]:
        if package.split(".")[0] not in OWN_PACKAGES:
            continue
        src = ROOT / package.replace(".", "/")
        patterns = ["*.py", *package_data.get(package, [])]
        for f in sorted({f for pattern in patterns for f in src.glob(pattern) if f.is_file()}):
            out.append((f, f.relative_to(ROOT).as_posix()))
    missing = set(OWN_PACKAGES) - {dest.split("/")[0] for _, dest in out}
    assert not missing, f"pyproject.toml lists no {missing}"
    return out


def inputs_digest() -> str:
    h = hashlib.sha256()
    for f in [Path(__file__), LOCK, PYPROJECT, SERVER, *(f for f, _ in own_files())]:
        h.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def build() -> None:
    partial = BUNDLED / "libs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    print(f"bundle: pip install --target {rel(LIBS)} -r {rel(LOCK)}")
    pip_install(
        "--quiet",
        "--target",
        str(partial),
        "--no-deps",
        "--require-hashes",
        "--no-compile",
        *PURE_WHEEL,
        "-r",
        str(LOCK),
    )
    for left_out in LEFT_OUT:
        path = partial / left_out
        assert path.exists(), f"{left_out} is not in the wheels any more: update LEFT_OUT"
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    prune_records(partial)
    for src, dest in own_files():
        (partial / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, partial / dest)
    check(partial)
    shutil.rmtree(LIBS, ignore_errors=True)
    partial.rename(LIBS)
    files = [f for f in LIBS.rglob("*") if f.is_file()]
    size = sum(f.stat().st_size for f in files)
    print(f"bundle: {rel(LIBS)}: {len(files)} files, {size / 1e6:.1f} MB")


def prune_records(libs: Path) -> None:
    """Drop what LEFT_OUT removed from the wheels' RECORDs: they list what the bundle has (and
    no console script, whose hash depends on the interpreter that ran pip)."""
    root = libs.resolve()
    for record in libs.glob("*.dist-info/RECORD"):
        kept = []
        for line in record.read_text().splitlines():
            path = (libs / line.rsplit(",", 2)[0]).resolve()
            if path.is_relative_to(root) and path.exists():
                kept.append(line)
        record.write_text("".join(f"{line}\n" for line in kept))


def check(libs: Path) -> None:
    """Pure Python only, and the language server imports from *libs* alone."""
    for wheel in libs.glob("*.dist-info/WHEEL"):
        tags = [
            line.split(":", 1)[1].strip()
            for line in wheel.read_text().splitlines()
            if line.startswith("Tag:")
        ]
        assert tags and all(t.endswith("-none-any") for t in tags), f"{wheel.parent.name}: {tags}"
    native = [f for f in libs.rglob("*") if f.is_file() and (f.suffix in NATIVE_SUFFIXES or ".so." in f.name)]
    assert not native, f"compiled files in the bundle: {native}"
    # -I: no PYTHONPATH, no user site; -S: no site-packages; -B: no __pycache__ in the bundle
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import lsp_bridge.serve, lsp_bridge.completion, jedi, websockets.asyncio.client;"
        "import importlib.util as u; assert u.find_spec('websockets.speedups') is None;"
        "assert u.find_spec('collab_server') is None; print(lsp_bridge.__version__)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", probe, str(libs)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    sys.exit(main())
