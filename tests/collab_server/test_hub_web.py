"""The hub serves the web client an invite link opens: the page at ``/room/ID``, its files at
``/assets/...``, with a strict Content-Security-Policy, content types, caching, gzip, and a log
line per request that holds neither a whole room id nor a query.

These read the built files in ``collab_server/static/`` (``make web``; ``make test`` builds them).
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from collab_server.hub import Hub
from collab_server.web import WEB_DIR, WebClient, content_security_policy, shown_path
from tests.support.hubclient import Peer

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ROOM = "q3LdXyZ0123456789abcde"


@pytest.fixture(autouse=True)
def _built() -> None:
    if not (WEB_DIR / "app.js").is_file():
        pytest.fail("the web client is not built: make web")


async def fetch(
    hub: Hub, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    def run() -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{hub.port}{path}", headers=headers or {}, method=method
        )
        try:
            with _OPENER.open(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    return await asyncio.to_thread(run)


def _directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


async def test_the_room_page_comes_with_a_strict_policy(hub: Hub) -> None:
    status, headers, body = await fetch(hub, f"/room/{ROOM}")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    csp = _directives(headers["Content-Security-Policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]  # no inline script, no eval, nothing from elsewhere
    assert csp["frame-ancestors"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'none'"]
    host = f"127.0.0.1:{hub.port}"
    assert csp["connect-src"] == ["'self'", f"ws://{host}", f"wss://{host}"]
    (nonce,) = [v for v in csp["style-src"] if v.startswith("'nonce-")]
    assert csp["style-src"] == ["'self'", nonce]
    page = body.decode()
    assert f'nonce="{nonce[7:-1]}"' in page
    assert "<script>" not in page and "style=" not in page  # nothing inline
    # its files, by relative links (a proxy may serve the hub under a prefix), with their versions
    js = re.search(r'src="\.\./assets/app\.js\?v=([0-9a-f]{12})"', page)
    css = re.search(r'href="\.\./assets/app\.css\?v=([0-9a-f]{12})"', page)
    assert js and css, page
    # a fresh nonce every time
    _, again, _ = await fetch(hub, f"/room/{ROOM}/")
    assert again["Content-Security-Policy"] != headers["Content-Security-Policy"]


async def test_the_files_have_their_types_caching_and_gzip(hub: Hub) -> None:
    _, _, page = await fetch(hub, f"/room/{ROOM}")
    version = re.search(rb"app\.js\?v=([0-9a-f]+)", page).group(1).decode()  # type: ignore[union-attr]
    status, headers, body = await fetch(hub, f"/assets/app.js?v={version}")
    assert status == 200 and headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert body == (WEB_DIR / "app.js").read_bytes()
    assert int(headers["Content-Length"]) == len(body)
    # without the version (or an old one) it must be checked again
    _, unversioned, _ = await fetch(hub, "/assets/app.js?v=000000000000")
    assert unversioned["Cache-Control"] == "no-cache" and unversioned["ETag"] == headers["ETag"]
    status, _, none = await fetch(hub, "/assets/app.js", {"If-None-Match": headers["ETag"]})
    assert status == 304 and none == b""
    # gzip for those who take it
    status, zipped, gz = await fetch(hub, "/assets/app.js", {"Accept-Encoding": "br, gzip;q=0.8"})
    assert status == 200 and zipped["Content-Encoding"] == "gzip" and zipped["Vary"] == "Accept-Encoding"
    assert gzip.decompress(gz) == body and len(gz) < len(body) / 2
    _, plain, _ = await fetch(hub, "/assets/app.js", {"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in plain
    status, headers, css = await fetch(hub, "/assets/app.css")
    assert status == 200 and headers["Content-Type"] == "text/css; charset=utf-8" and b".pairls-c0" in css
    # the language chunks carry a hash in their names: cached for good
    chunk = next(WEB_DIR.glob("*-*.js")).name
    status, headers, _ = await fetch(hub, f"/assets/{chunk}")
    assert status == 200 and headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # HEAD: the same headers, no body
    status, head, nothing = await fetch(hub, "/assets/app.css", method="HEAD")
    assert status == 200 and nothing == b"" and head["Content-Length"] == str(len(css))


@pytest.mark.parametrize(
    "path",
    [
        "/assets/nope.js",
        "/assets/..",
        "/assets/page.html",
        "/assets/app.js.gz",
        "/assets/README.md",
        "/assets/THIRD_PARTY_LICENSES.txt",
    ],
)
async def test_nothing_but_the_built_files_is_served(hub: Hub, path: str) -> None:
    status, _, body = await fetch(hub, path)
    assert status == 404 and body == b"no such file\n"


@pytest.mark.parametrize(
    "path",
    ["/", "/room/", "/room/a/b", "/room/../etc/passwd", "/assets/../collab_server/hub.py", "/web/page.html"],
)
async def test_other_paths_are_not_the_web_clients(hub: Hub, path: str) -> None:
    status, _, _ = await fetch(hub, path)
    assert status in (404, 426)
    if not path.startswith("/assets/"):
        assert status == 426


async def test_a_websocket_at_the_room_page_is_a_websocket(hub: Hub) -> None:
    peer = await Peer(f"ws://127.0.0.1:{hub.port}/room/{ROOM}", "Ada").connect()
    try:
        created = await peer.create_room("r")
        assert created["type"] == "room_created" and created["role"] == "owner"
    finally:
        await peer.close()


async def test_each_request_is_logged_without_the_room_id_or_query(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collab_server.hub")
    await fetch(hub, f"/room/{ROOM}?x=secret-looking")
    await fetch(hub, "/assets/app.css?v=abc")
    lines = [r.getMessage() for r in caplog.records if r.name == "collab_server.hub"]
    assert f"GET /room/{ROOM[:8]}…?… 200" in " ".join(lines), lines
    assert any(line.startswith("GET /assets/app.css?… 200") for line in lines), lines
    assert not any(ROOM in line or "secret-looking" in line for line in lines)


async def test_a_hub_without_its_web_client_says_so(hub: Hub, tmp_path: Path) -> None:
    hub.web = WebClient(tmp_path)
    status, headers, body = await fetch(hub, f"/room/{ROOM}")
    assert status == 503 and b"make web" in body and headers["Cache-Control"] == "no-store"
    status, _, _ = await fetch(hub, "/assets/app.js")
    assert status == 404
    status, _, _ = await fetch(hub, "/healthz")
    assert status == 200


def test_the_shown_path_and_the_policy() -> None:
    assert shown_path(f"/room/{ROOM}") == f"/room/{ROOM[:8]}…"
    assert shown_path("/assets/app.js?v=1") == "/assets/app.js?…"
    # a Host header that is not a host is not put in the policy
    assert "evil" not in content_security_policy("a b; script-src evil", "n")
    assert "ws://[::1]:8765" in content_security_policy("[::1]:8765", "n")
