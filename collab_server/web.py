"""The web client's page and files, answered on the hub's own port (no sockets here).

An invite is ``http(s)://HOST:PORT/room/ROOM#SECRET``: opened in a browser, it asks the hub for
``/room/ROOM`` (the fragment, the secret, never leaves the browser) and gets the page, which
loads its script and style sheet from ``/assets/`` (relative links, so a proxy may serve the
hub under a prefix) and connects back to the same address as a WebSocket.  The files are the
package data in ``collab_server/static/``, built from ``web/`` by ``make web`` (esbuild), each with
its gzip twin; nothing here needs Node.js.  ``/assets/NAME`` is ``static/NAME`` for the scripts
and style sheets there, and nothing else.

:meth:`WebClient.respond` takes the request (method, target, headers) and a fresh nonce and
returns the response, or None for a path that is not the web client's (the hub then answers
426, as before).  It reads the files once (:meth:`WebClient.load`), before the first answer.

Every answer carries ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and
``Cross-Origin-Resource-Policy: same-origin``; the page also a Content-Security-Policy that
allows scripts from this origin only (no inline script), style sheets from this origin and
the ``<style>`` elements the editor makes with the page's nonce, connections to this origin
(``ws:``/``wss:``) only, no frames around it, no form submissions, and nothing from anywhere
else.  The page is ``no-store`` (its nonce is new each time); ``app.js`` and ``app.css`` are
cached for good when asked for with their version (``?v=``, a hash of their content, which the
page names), the language chunks (their names hold a hash) too; otherwise ``no-cache`` with an
ETag.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

__all__ = ["WebClient", "WebResponse", "shown_path", "WEB_DIR"]

WEB_DIR = Path(__file__).resolve().parent / "static"

_ROOM_PAGE = re.compile(r"/room/([A-Za-z0-9_-]{1,64})/?")
_ASSET = re.compile(r"/assets/([A-Za-z0-9_.-]{1,128})")
#: the files the page names with their version (?v=); the others' names hold a hash
_ENTRIES = ("app.js", "app.css")
#: a Host header fit to be named in the policy (a host name or an IP, and a port)
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:\d{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?")
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_FOREVER = "public, max-age=31536000, immutable"
_COMMON = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
NOT_BUILT = (
    "This hub was installed without its web client (collab_server/static/ is missing or empty).\n"
    "From a checkout: `make web` (Node.js and npm), then install again. "
    "Editors join with the same link: Pairls: Join Room, :PairlsJoin, M-x pairls-join-room.\n"
)


@dataclass(frozen=True, slots=True)
class WebResponse:
    status: HTTPStatus
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str
    version: str
    #: its name holds a hash of its content: cached for good whatever the query
    hashed_name: bool


def shown_path(target: str) -> str:
    """A request target as the hub logs it: room ids cut to 8 characters (as everywhere in its
    log), the query string left out.  (A fragment never reaches the hub.)"""
    path, sep, _ = target.partition("?")
    m = _ROOM_PAGE.fullmatch(path)
    if m:
        path = f"/room/{m.group(1)[:8]}…"
    return path + ("?…" if sep else "")


class WebClient:
    """The web client's files in *directory* (default: the package's ``web/``)."""

    def __init__(self, directory: Path = WEB_DIR) -> None:
        self.directory = directory
        self._page: str | None = None
        self._assets: dict[str, _Asset] | None = None

    @property
    def loaded(self) -> bool:
        """True once the files were read (:meth:`load`; else the first request reads them)."""
        return self._assets is not None

    @property
    def available(self) -> bool:
        self.load()
        return self._page is not None

    def load(self) -> None:
        """Read the files (once); the hub does it on a worker thread before the first answer."""
        if self._assets is not None:
            return
        assets: dict[str, _Asset] = {}
        page_file = self.directory / "page.html"
        if page_file.is_file() and (self.directory / "app.js").is_file():
            for f in sorted(self.directory.iterdir()):
                if not f.is_file() or f.suffix not in (".js", ".css"):
                    continue
                name = f.name
                body = f.read_bytes()
                gz = f.with_name(f.name + ".gz")
                digest = hashlib.sha256(body).hexdigest()
                assets[name] = _Asset(
                    body=body,
                    gzipped=gz.read_bytes() if gz.is_file() else None,
                    content_type=_TYPES[f.suffix],
                    etag=f'"{digest[:20]}"',
                    version=digest[:12],
                    hashed_name=name not in _ENTRIES,
                )
            self._page = page_file.read_text(encoding="utf-8")
        self._assets = assets

    def respond(
        self, method: str, target: str, header: Callable[[str], str | None], nonce: str
    ) -> WebResponse | None:
        """The answer to ``GET``/``HEAD`` *target*, or None if it is not the web client's.

        *header* gives a request header's value (or None); *nonce* is fresh for each request
        (the page's policy names it).  HEAD gets the GET's headers; the caller drops the body.
        """
        path, _, query = target.partition("?")
        if _ROOM_PAGE.fullmatch(path):
            return self._page_response(header("Host"), nonce)
        m = _ASSET.fullmatch(path)
        if m is None:
            return None
        self.load()
        assert self._assets is not None
        asset = self._assets.get(m.group(1))
        if asset is None:
            return WebResponse(
                HTTPStatus.NOT_FOUND, [("Content-Type", _TYPES[".txt"]), *_COMMON], b"no such file\n"
            )
        if asset.hashed_name or f"v={asset.version}" in query.split("&"):
            cache = _FOREVER
        else:
            cache = "no-cache"
        headers = [
            ("Content-Type", asset.content_type),
            ("Cache-Control", cache),
            ("ETag", asset.etag),
            ("Vary", "Accept-Encoding"),
            *_COMMON,
        ]
        if asset.etag in (header("If-None-Match") or "").replace(" ", "").split(","):
            return WebResponse(HTTPStatus.NOT_MODIFIED, headers, b"")
        if asset.gzipped is not None and _accepts_gzip(header("Accept-Encoding")):
            return WebResponse(HTTPStatus.OK, [*headers, ("Content-Encoding", "gzip")], asset.gzipped)
        return WebResponse(HTTPStatus.OK, headers, asset.body)

    def _page_response(self, host: str | None, nonce: str) -> WebResponse:
        self.load()
        if self._page is None or self._assets is None:
            return WebResponse(
                HTTPStatus.SERVICE_UNAVAILABLE,
                [("Content-Type", _TYPES[".txt"]), ("Cache-Control", "no-store"), *_COMMON],
                NOT_BUILT.encode(),
            )
        page = (
            self._page.replace("{{NONCE}}", nonce)
            .replace("{{JS_VERSION}}", self._assets["app.js"].version)
            .replace("{{CSS_VERSION}}", self._assets["app.css"].version if "app.css" in self._assets else "0")
        )
        return WebResponse(
            HTTPStatus.OK,
            [
                ("Content-Type", _TYPES[".html"]),
                ("Cache-Control", "no-store"),
                ("Content-Security-Policy", content_security_policy(host, nonce)),
                ("X-Frame-Options", "DENY"),
                ("Cross-Origin-Opener-Policy", "same-origin"),
                *_COMMON,
            ],
            page.encode("utf-8"),
        )


def content_security_policy(host: str | None, nonce: str) -> str:
    """The page's policy.  ``connect-src 'self'`` covers ``ws:``/``wss:`` to the same host in
    CSP Level 3 browsers; the host is named too, for the others, when the Host header is one."""
    connect = "'self'"
    if host and _HOST.fullmatch(host):
        connect += f" ws://{host} wss://{host}"
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            f"style-src 'self' 'nonce-{nonce}'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src {connect}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _accepts_gzip(value: str | None) -> bool:
    """True if an ``Accept-Encoding`` value takes gzip (``gzip`` or ``*``, with q above 0)."""
    for part in (value or "").split(","):
        token, *params = (p.strip() for p in part.split(";"))
        if token.lower() not in ("gzip", "*"):
            continue
        q = 1.0
        for param in params:
            key, _, v = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        return q > 0
    return False
