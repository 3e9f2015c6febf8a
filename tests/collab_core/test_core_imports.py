"""The OT core is sans-I/O: no event loop, network, database, clock or randomness."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "collab_server"
FORBIDDEN = {"asyncio", "websockets", "asyncpg", "pygls", "lsprotocol", "time", "random", "socket"}


def imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            names.update(
                a.value for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)
            )
    return names


SANS_IO = [
    "collab_core/ops.py",
    "collab_server/document.py",
    "collab_core/client.py",
    "collab_core/view.py",
    "collab_core/errors.py",
    "collab_core/history.py",
    "collab_core/wire.py",
    "collab_core/jsonio.py",
    "collab_server/retry.py",
    "collab_server/quotas.py",
    "collab_server/authority.py",
    "collab_server/attribution.py",
    "collab_server/roster.py",
    # the language server's policy: its room and the editor boundary
    "lsp_bridge/room.py",
    "lsp_bridge/editor_sync.py",
    "lsp_bridge/positions.py",
    "lsp_bridge/invite.py",
    "lsp_bridge/blame.py",
    "lsp_bridge/runs.py",
    "lsp_bridge/jedi_client.py",
]
#: more that a module must not import: jedi's policy starts no process and never runs jedi itself
EXTRA_FORBIDDEN = {"lsp_bridge/jedi_client.py": {"subprocess", "os", "signal", "jedi"}}


@pytest.mark.parametrize("name", SANS_IO)
def test_core_module_imports_nothing_with_io_clock_or_randomness(name: str) -> None:
    tree = ast.parse((ROOT / name).read_text(encoding="utf-8"), filename=name)
    forbidden = FORBIDDEN | EXTRA_FORBIDDEN.get(name, set())
    bad = {m for m in imported_modules(tree) if m.split(".")[0] in forbidden}
    assert not bad, f"{name} imports {sorted(bad)}"


def test_the_check_sees_imports() -> None:
    tree = ast.parse("import asyncio.events\nfrom time import monotonic\nimport os, random as r\n")
    assert {m.split(".")[0] for m in imported_modules(tree)} >= {"asyncio", "time", "random"}


def _imports_of(package: str) -> dict[str, set[str]]:
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        out[str(path.relative_to(ROOT))] = {m.split(".")[0] for m in imported_modules(tree)}
    return out


#: what a core module uses when it is installed, and does without (tested below)
OPTIONAL = {"collab_core/jsonio.py": {"orjson"}}


def test_the_core_needs_nothing_but_the_standard_library() -> None:
    import sys

    for name, mods in _imports_of("collab_core").items():
        outside = {m for m in mods if m not in sys.stdlib_module_names and m != "collab_core"}
        assert outside == OPTIONAL.get(name, set()), f"{name} imports {sorted(outside)}"


def test_the_core_works_without_what_it_uses_when_installed() -> None:
    """Every core module imports with orjson absent, and jsonio reads and writes with ``json``."""
    import subprocess
    import sys

    names = sorted(p.stem for p in (ROOT / "collab_core").glob("*.py") if p.stem != "__init__")
    code = (
        "import sys; sys.modules['orjson'] = None\n"
        f"for n in {names!r}: __import__('collab_core.' + n)\n"
        "from collab_core import jsonio\n"
        "assert jsonio.orjson is None\n"
        "assert jsonio.loads(b'{\"a\":[1,2.5,\"\\\\ud800\"]}') == {'a': [1, 2.5, '\\ud800']}\n"
        "assert jsonio.dumps({'a': ['é', 2**70, None]}) == '{\"a\":[\"é\",%d,null]}'.encode() % 2**70\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_the_language_server_never_imports_the_hub() -> None:
    """A person who only edits installs no database: lsp_bridge must not need collab_server."""
    for name, mods in _imports_of("lsp_bridge").items():
        assert "collab_server" not in mods, name
