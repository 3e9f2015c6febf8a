"""lsp_bridge.tls: which CAs the language server trusts, and which connection failures are final.

Every failure here comes from a real handshake on 127.0.0.1 (websockets, as
session.py connects) against a server with a certificate made in the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from collab_server.tls import server_context
from lsp_bridge.tls import TLSSetupError, client_context, final_failure
from tests.support.certs import Certs, make_certs


async def _echo(ws: ServerConnection) -> None:
    async for msg in ws:
        await ws.send(msg)


@contextlib.asynccontextmanager
async def server(tls: ssl.SSLContext | None) -> AsyncIterator[int]:
    async with serve(_echo, "127.0.0.1", 0, ssl=tls) as srv:
        yield int(srv.sockets[0].getsockname()[1])


async def failure_of(url: str, ca_file: str | None) -> BaseException:
    with pytest.raises(Exception) as info:  # noqa: PT011 - which one is the point of the test
        tls = client_context(ca_file) if url.startswith("wss:") else None
        async with connect(url, ssl=tls, open_timeout=10) as ws:
            await ws.send("x")
    return info.value


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path)


async def test_a_hub_certificate_from_the_ca_in_pairls_ca_file_is_trusted(certs: Certs) -> None:
    async with server(server_context(certs.cert, certs.key)) as port:
        for host in ("127.0.0.1", "localhost"):
            async with connect(f"wss://{host}:{port}", ssl=client_context(str(certs.ca))) as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"


async def test_an_unknown_ca_is_final_and_the_message_says_what_to_set(certs: Certs) -> None:
    async with server(server_context(certs.cert, certs.key)) as port:
        url = f"wss://127.0.0.1:{port}"
        exc = await failure_of(url, None)  # the system store only
    assert isinstance(exc, ssl.SSLCertVerificationError)
    message = final_failure(exc, url)
    assert message is not None
    assert f"the certificate of the hub at 127.0.0.1:{port} could not be verified" in message
    assert "PAIRLS_CA_FILE" in message and "Traceback" not in message


async def test_a_certificate_for_another_name_is_final_and_said_so(tmp_path: Path) -> None:
    other = make_certs(tmp_path, names=("hub.example",))
    async with server(server_context(other.cert, other.key)) as port:
        for host in ("127.0.0.1", "localhost"):
            url = f"wss://{host}:{port}"
            exc = await failure_of(url, str(other.ca))
            message = final_failure(exc, url)
            assert message is not None and "is for another name" in message, message


async def test_wss_to_a_plain_http_server_is_final_and_says_use_ws() -> None:
    """A port that answers in plain HTTP (a proxy's port 80, say): OpenSSL reads no TLS record."""

    async def plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(plain_http, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        url = f"wss://127.0.0.1:{port}"
        exc = await failure_of(url, None)
    finally:
        srv.close()
        await srv.wait_closed()
    message = final_failure(exc, url)
    assert message is not None and "does not speak TLS: use its ws:// address" in message, repr(exc)


async def test_a_connection_dropped_during_the_handshake_is_not_final() -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    srv = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        url = f"wss://127.0.0.1:{port}"
        exc = await failure_of(url, None)
    finally:
        srv.close()
        await srv.wait_closed()
    assert final_failure(exc, url) is None, repr(exc)
    # and neither is a refused connection
    exc = await failure_of(url, None)
    assert isinstance(exc, OSError) and final_failure(exc, url) is None


def test_an_unusable_pairls_ca_file_is_said_in_words(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    for path, words in (
        (tmp_path / "missing.pem", "no such file"),
        (garbage, "not a PEM file of CA certificates"),
    ):
        with pytest.raises(TLSSetupError) as info:
            client_context(str(path))
        assert str(info.value) == f"PAIRLS_CA_FILE={path}: {words}"
        message = final_failure(info.value, "wss://hub.test")
        assert message == f"cannot check the hub's certificate: PAIRLS_CA_FILE={path}: {words}"


def test_without_pairls_ca_file_the_system_store_is_used_and_verification_is_on() -> None:
    ctx = client_context(None)
    assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.cert_store_stats()["x509_ca"] == ssl.create_default_context().cert_store_stats()["x509_ca"]
