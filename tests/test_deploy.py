"""docs/deploy/pairls-hub.service: it runs what the README installs, the way an operator wants,
and systemd's own analyzer accepts it (where ``systemd-analyze`` is installed)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from collab_server.cli import parse_args

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "docs" / "deploy" / "pairls-hub.service"


def unit_entries(text: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values (a key may repeat), comments left out."""
    out: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return out


def service() -> dict[str, list[str]]:
    return unit_entries(UNIT.read_text())["Service"]


def running_a_hub() -> str:
    """The README's "Running a hub" section."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Running a hub")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else None]


def test_the_unit_runs_the_pairls_hub_the_readme_installs() -> None:
    argv = shlex.split(service()["ExecStart"][0])
    venv = Path(argv[0]).parent.parent
    assert argv[0] == f"{venv}/bin/pairls-hub"
    section = running_a_hub()
    assert "docs/deploy/pairls-hub.service" in section
    # the same virtualenv in the README and in the unit's own install notes
    for text in (section, UNIT.read_text()):
        assert f"python3 -m venv {venv}" in text
        assert f'{venv}/bin/pip install "/path/to/pairls[hub]"' in text
    # and the options are the CLI's
    args = parse_args(argv[1:])
    assert (args.host, args.log_format) == ("0.0.0.0", "json")
    assert args.data_dir == Path("/var/lib") / service()["StateDirectory"][0]


def test_the_unit_runs_as_a_dedicated_user_restarts_on_failure_and_is_hardened() -> None:
    s = service()
    assert s["User"] == ["pairls"] and s["Group"] == ["pairls"]
    assert s["Restart"] == ["on-failure"]
    # SIGTERM to the hub alone: it stops its PostgreSQL itself, after the queued ops
    assert s["KillMode"] == ["mixed"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter": "@system-service",
    }.items():
        assert s[key] == [value], key


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian: apt-get install systemd)"
)
def test_systemd_analyze_accepts_the_unit(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    # verify also checks that ExecStart's program exists: point it at the pairls-hub of this
    # checkout (the path in the unit is checked against the README above)
    installed = Path(sys.executable).parent / "pairls-hub"
    assert installed.exists()
    text = UNIT.read_text()
    program = shlex.split(service()["ExecStart"][0])[0]
    unit = tmp_path / "pairls-hub.service"
    unit.write_text(text.replace(f"ExecStart={program} ", f"ExecStart={installed} "))
    verify = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    # an unknown key or a bad value is only a warning (exit status 0): none may mention the unit
    complaints = [line for line in (verify.stdout + verify.stderr).splitlines() if unit.name in line]
    assert verify.returncode == 0 and complaints == [], verify.stdout + verify.stderr

    security = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=yes", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    if security.returncode != 0 and "offline" in security.stderr:
        return  # a systemd older than 250 cannot score a unit file
    exposure = re.search(r"Overall exposure level for pairls-hub\.service: (\d+(?:\.\d+)?)", security.stdout)
    assert exposure is not None, security.stdout + security.stderr
    # 0 is a sealed box, 10 no protection at all; systemd calls up to 2 "OK"
    assert float(exposure.group(1)) <= 2.0, security.stdout
