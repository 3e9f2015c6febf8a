"""TLS for ``pairls-hub --tls-cert/--tls-key``: the hub serves ``wss://`` itself.

The context accepts TLS 1.2 and newer with Python's default ciphers; the
certificate chain and key are PEM files.  :func:`server_context` raises
:class:`TLSConfigError` with a message for the person starting the hub (not
a stack trace) when the files cannot be used.  The same context can load a
renewed certificate later (:func:`reload`): handshakes after that use it,
connections already open keep theirs.
"""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["ServerTLS", "TLSConfigError", "reload", "server_context"]


class TLSConfigError(ValueError):
    """The certificate or key cannot be used; the message says which and why."""


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context serving the chain in *cert* with the private key in *key*."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    reload(ctx, cert, key)
    return ctx


def reload(ctx: ssl.SSLContext, cert: Path, key: Path) -> None:
    """Load *cert* and *key* into *ctx* (new handshakes use them); raises :class:`TLSConfigError`."""
    for what, path in (("certificate", cert), ("key", key)):
        if not path.is_file():
            raise TLSConfigError(f"the TLS {what} file {path} does not exist or is not a file")
    try:
        # A password callback, so that an encrypted key fails here instead of
        # OpenSSL prompting on a terminal a service does not have.
        ctx.load_cert_chain(cert, key, password=lambda: b"")
    except PermissionError as exc:
        raise TLSConfigError(f"cannot read {exc.filename or cert}: permission denied") from None
    except ssl.SSLError as exc:
        reason = exc.reason or "not PEM"
        raise TLSConfigError(
            f"cannot use {cert} with {key} ({reason}): expected a PEM certificate chain "
            "and the PEM private key that matches it (unencrypted)"
        ) from None
    except OSError as exc:
        raise TLSConfigError(f"cannot read {exc.filename or cert}: {exc.strerror}") from None


class ServerTLS:
    """The hub's context with the paths it came from, and counters of reloads (SIGHUP)."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert = cert
        self.key = key
        self.context = server_context(cert, key)
        #: reloads that took effect
        self.reloads = 0
        #: reloads that failed (the previous certificate is still served)
        self.reload_failures = 0

    def reload(self) -> str | None:
        """Load the files again; returns None, or why not (the previous ones stay in use)."""
        try:
            reload(self.context, self.cert, self.key)
        except TLSConfigError as exc:
            self.reload_failures += 1
            return str(exc)
        self.reloads += 1
        return None
