"""``pairls-hub --tls-cert/--tls-key``: the hub serves wss:// (collab_server/tls.py and cli.py).

A real hub process with a certificate made in the test (tests/support/certs.py),
real clients verifying it against that test's CA.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from collab_server.cli import connect_hints
from collab_server.tls import ServerTLS, TLSConfigError, server_context
from tests.support.certs import Certs, make_certs
from tests.support.hubclient import Peer
from tests.support.hubproc import HubProcess

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path)


def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def test_files_that_cannot_be_used_are_said_in_words(tmp_path: Path, certs: Certs) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    (tmp_path / "other").mkdir()
    other = make_certs(tmp_path / "other")
    cases = [
        (tmp_path / "missing.pem", certs.key, "does not exist"),
        (certs.cert, tmp_path / "missing-key.pem", "does not exist"),
        (garbage, certs.key, "expected a PEM certificate chain"),
        (certs.cert, other.key, "the PEM private key that matches it"),  # a key of another certificate
    ]
    for cert, key, words in cases:
        with pytest.raises(TLSConfigError, match=words):
            server_context(cert, key)


def test_a_reload_that_fails_keeps_the_previous_certificate_and_is_counted(
    tmp_path: Path, certs: Certs
) -> None:
    tls = ServerTLS(certs.cert, certs.key)
    assert tls.reload() is None and tls.reloads == 1
    certs.key.write_text("truncated\n")
    error = tls.reload()
    assert error is not None and "private key" in error
    assert (tls.reloads, tls.reload_failures) == (1, 1)


async def test_the_hub_serves_wss_and_says_so(database_url: str, certs: Certs) -> None:
    hub = HubProcess("--tls-cert", str(certs.cert), "--tls-key", str(certs.key), database_url=database_url)
    try:
        url = await asyncio.to_thread(hub.wait_ready, 120)
        assert url.startswith("wss://127.0.0.1:")
        assert [line for line in hub.stdout if line.startswith("listening on")] == [f"listening on {url}"]
        p = await Peer(url, "Ada").connect(ssl=trusting(certs.ca))
        created = await p.create_room("r")
        assert len(created["room"]) == 22
        await p.close()
        # a client that does not trust the CA is refused by its own TLS; plain ws:// gets nowhere
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(url, open_timeout=10)
        with pytest.raises(Exception):  # noqa: B017 - any failure: reset, or no HTTP answer
            await connect(url.replace("wss://", "ws://"), open_timeout=10)
        # still serving
        p = await Peer(url, "Bob").connect(ssl=trusting(certs.ca))
        assert (await p.request({"type": "ping"}))["type"] == "pong"
        await p.close()
    finally:
        code = await asyncio.to_thread(hub.terminate, 60)
    assert code == 0, hub.log
    assert "Traceback" not in hub.log
    assert hub.stdout[1].startswith(f"editors connect to {url}, under a name its certificate is for: ")


def test_the_hints_name_a_wss_url() -> None:
    (line,) = connect_hints("10.1.2.3", 443, scheme="wss")
    assert line.startswith(
        "editors connect to wss://10.1.2.3:443, under a name its certificate is for: set pairls.hubUrl"
    )


async def test_sighup_loads_a_renewed_certificate(database_url: str, tmp_path: Path) -> None:
    first = make_certs(tmp_path)
    hub = HubProcess(
        database_url=database_url, env={"PAIRLS_TLS_CERT": str(first.cert), "PAIRLS_TLS_KEY": str(first.key)}
    )
    try:
        url = await asyncio.to_thread(hub.wait_ready, 120)
        assert url.startswith("wss://")  # from the environment
        renewed_dir = tmp_path / "renewed"
        renewed_dir.mkdir()
        renewed = make_certs(renewed_dir)  # another CA: only the new chain verifies with it
        first.cert.write_bytes(renewed.cert.read_bytes())
        first.key.write_bytes(renewed.key.read_bytes())
        hub.proc.send_signal(signal.SIGHUP)
        for _ in range(600):
            if any("TLS certificate reloaded" in line for line in hub.stderr):
                break
            await asyncio.sleep(0.1)
        p = await Peer(url, "Ada").connect(ssl=trusting(renewed.ca))
        await p.close()
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(url, ssl=trusting(first.ca), open_timeout=10)
    finally:
        code = await asyncio.to_thread(hub.terminate, 60)
    assert code == 0, hub.log


def test_a_bad_certificate_stops_the_hub_before_it_starts_in_plain_words(tmp_path: Path) -> None:
    garbage = tmp_path / "cert.pem"
    garbage.write_text("nonsense\n")
    run = subprocess.run(
        [sys.executable, "-m", "collab_server", "--tls-cert", str(garbage), "--tls-key", str(garbage)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.startswith(f"pairls-hub: cannot use {garbage} with {garbage}"), run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
    half = subprocess.run(
        [sys.executable, "-m", "collab_server", "--tls-cert", str(garbage)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert half.returncode == 2 and "--tls-cert and --tls-key go together" in half.stderr
