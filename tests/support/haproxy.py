"""Run HAProxy with the project's example configuration (docs/deploy/haproxy.cfg), on this machine.

The example names a frontend on 127.0.0.1:8765 and hubs on 127.0.0.1:8771-8773; the test's
hubs listen on free ports, so those addresses (and nothing else) are replaced.  HAProxy runs
in the foreground (``-db``); its log (stderr) is kept.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "deploy" / "haproxy.cfg"
FRONTEND = "127.0.0.1:8765"
HUBS = ("127.0.0.1:8771", "127.0.0.1:8772", "127.0.0.1:8773")
MISSING = (
    "haproxy is not installed: the project installs it from Debian with `make sysdeps` "
    "(as root; `make test` does it), see the Makefile's SYSDEPS_PKGS"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HAProxy:
    """``haproxy -db -f <the example, with these addresses>``; ``url`` is its WebSocket address."""

    def __init__(self, hub_ports: list[int], workdir: Path) -> None:
        binary = shutil.which("haproxy") or (
            "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
        )
        if binary is None:
            raise RuntimeError(MISSING)
        assert len(hub_ports) == len(HUBS)
        self.port = free_port()
        text = EXAMPLE.read_text(encoding="utf-8")
        assert text.count(FRONTEND) == 1 and all(text.count(h) == 1 for h in HUBS), "the example changed"
        text = text.replace(FRONTEND, f"127.0.0.1:{self.port}")
        for old, port in zip(HUBS, hub_ports, strict=True):
            text = text.replace(old, f"127.0.0.1:{port}")
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(text, encoding="utf-8")
        check = subprocess.run([binary, "-c", "-q", "-f", str(self.config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy refused the example configuration:\n{check.stdout}{check.stderr}")
        self.proc = subprocess.Popen(
            [binary, "-db", "-f", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()
        self.url = f"ws://127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip("\n"))

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited ({self.proc.returncode}):\n" + "\n".join(self.log))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("haproxy did not listen:\n" + "\n".join(self.log))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._pump.join(5)
