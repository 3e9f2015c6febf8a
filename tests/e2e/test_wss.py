"""Pairing over wss://: a real hub with --tls-cert/--tls-key, language servers as real processes
over stdio, a CA and certificate made in the test.

With ``PAIRLS_CA_FILE`` naming the test's CA, a room created against the
``wss://`` hub gives ``wss://`` invites, a second language server joins with
one, and edits sync both ways.  Without it the join fails at once with a
plain sentence (no stack trace) and the language server does not try again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lsp_bridge.invite import parse_invite
from tests.support.certs import make_certs
from tests.support.hubproc import HubProcess, start_hub
from tests.support.lsp_editor import TestEditor, settle, stop_checked

pytestmark = pytest.mark.timeout(240)


async def test_language_servers_pair_over_wss_and_refuse_a_hub_they_cannot_verify(
    database_url: str, tmp_path: Path
) -> None:
    certs_dir = tmp_path / "certs"
    await asyncio.to_thread(certs_dir.mkdir)
    certs = await asyncio.to_thread(make_certs, certs_dir)
    for d in ("wa", "wb", "wc"):
        await asyncio.to_thread((tmp_path / d).mkdir)
    hub: HubProcess = await start_hub(
        database_url, "--tls-cert", str(certs.cert), "--tls-key", str(certs.key)
    )
    trusted = {"PAIRLS_CA_FILE": str(certs.ca)}
    a = TestEditor("vscode", "Ada", tmp_path / "wa", hub.url, env=trusted)
    b = TestEditor("neovim", "Bob", tmp_path / "wb", None, env=trusted)  # the invite names the hub
    c = TestEditor("vscode", "Eve", tmp_path / "wc", None, env={"PAIRLS_CA_FILE": ""})
    try:
        assert hub.url.startswith("wss://127.0.0.1:")
        await asyncio.gather(a.start(), b.start(), c.start())
        ua, ub = a.uri("x.py"), b.uri("x.py")
        a.open(ua, "x = 1\n")
        room = await a.command("pairls.createRoom", {})
        for key in ("invite", "viewerInvite"):
            invite = parse_invite(room[key])
            # a link a browser opens over https, naming the hub the editors join over wss
            link = hub.url.replace("wss://", "https://", 1)
            assert room[key].startswith(f"{link}/room/") and invite.hub_url == hub.url
        joined = await b.command("pairls.joinRoom", {"invite": room["invite"]})
        assert joined["role"] == "editor"
        assert (await b.status())["hubUrl"] == hub.url
        b.open(ub, "")
        await settle([(a, ua), (b, ub)], "x.py")
        assert b.text(ub) == "x = 1\n"
        a.append(ua, "y = 2\n")
        b.insert(ub, 0, "# shared over TLS\n")
        await settle([(a, ua), (b, ub)], "x.py")
        assert a.text(ua) == b.text(ub) == "# shared over TLS\nx = 1\ny = 2\n"

        # Eve's language server trusts only the system's CAs: the join fails, in words, once
        with pytest.raises(Exception) as failed:  # noqa: B017 - the JSON-RPC error pygls raises
            await c.command("pairls.joinRoom", {"invite": room["invite"]})
        port = hub.url.rsplit(":", 1)[1]
        said = str(failed.value)
        assert f"the certificate of the hub at 127.0.0.1:{port} could not be verified" in said
        assert "PAIRLS_CA_FILE" in said and "Traceback" not in said
        errors = [m.message for m in c.client.messages if m.type.value == 1]
        assert len(errors) == 1 and "could not be verified" in errors[0], errors
        status = await c.status()
        assert status["state"] == "disconnected" and status["roomId"] is None
        assert (status["stats"]["connects"], status["stats"]["gave_up"]) == (1, 1)
        # nothing is retried behind the user's back: still the one connection a while later
        # (a backoff would have tried again within 0.2 s)
        await asyncio.sleep(2)
        assert (await c.status())["stats"]["connects"] == 1
        assert (await a.status())["heals"] == (await b.status())["heals"] == 0
    finally:
        await stop_checked([a, b, c])
        code = await asyncio.to_thread(hub.terminate, 60)
    assert code == 0, hub.log
