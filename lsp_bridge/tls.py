"""TLS towards the hub: which certificates the language server trusts, and which failures are final.

A ``wss://`` hub's certificate is verified, host name included, against the
system's trust store plus the PEM bundle named by ``PAIRLS_CA_FILE`` (for a
hub with a private CA or a self-signed certificate).  Nothing here turns
verification off.

:func:`final_failure` reads an exception from opening the connection and
says, in plain words, whether trying again could help: a certificate that
does not verify, a hub that does not speak TLS, or an unreadable
``PAIRLS_CA_FILE`` stay so until someone changes something, so the room
gives up with that sentence (``Room.connection_failed``) instead of backing
off forever.  Failures that can pass (refused, reset, timed out, a hub
closing mid-handshake) return None and go through the usual reconnect.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

__all__ = ["CA_FILE_ENV", "TLSSetupError", "client_context", "final_failure"]

#: the environment variable naming extra trusted CA certificates (a PEM file)
CA_FILE_ENV = "PAIRLS_CA_FILE"


class TLSSetupError(ValueError):
    """``PAIRLS_CA_FILE`` cannot be used; the message says why."""


def client_context(ca_file: str | None) -> ssl.SSLContext:
    """A context that verifies the hub against the system store and, if given, *ca_file*."""
    ctx = ssl.create_default_context()  # CERT_REQUIRED, check_hostname, the system's CAs
    if ca_file:
        try:
            ctx.load_verify_locations(cafile=ca_file)
        except FileNotFoundError:
            raise TLSSetupError(f"{CA_FILE_ENV}={ca_file}: no such file") from None
        except PermissionError:
            raise TLSSetupError(f"{CA_FILE_ENV}={ca_file}: permission denied") from None
        except (ssl.SSLError, OSError, ValueError):
            raise TLSSetupError(f"{CA_FILE_ENV}={ca_file}: not a PEM file of CA certificates") from None
    return ctx


# An SSLError of these kinds means the connection dropped during the handshake
# (a hub restarting, a flaky network): worth trying again.
_PASSING = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)
# OpenSSL's x509_vfy.h: X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_NAME_MISMATCH = (62, 64)


def final_failure(exc: BaseException, url: str) -> str | None:
    """A sentence for the user if *exc* (from opening *url*) will recur on every retry, else None."""
    host = urlsplit(url).netloc or url
    if isinstance(exc, TLSSetupError):
        return f"cannot check the hub's certificate: {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or "not trusted"
        if exc.verify_code in _NAME_MISMATCH:
            return (
                f"the certificate of the hub at {host} is for another name ({reason}), so pairls did not "
                "connect: use the hub's address under the name its certificate gives"
            )
        return (
            f"the certificate of the hub at {host} could not be verified ({reason}), so pairls did not "
            f"connect. If the hub uses its own CA or a self-signed certificate, set {CA_FILE_ENV} to that "
            "CA certificate (a PEM file) in the editor's environment, then try again."
        )
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, _PASSING):
        if exc.reason == "WRONG_VERSION_NUMBER":
            return (
                f"the hub at {host} does not speak TLS: use its ws:// address, "
                "or start it with --tls-cert and --tls-key"
            )
        return f"the TLS handshake with the hub at {host} failed ({exc.reason or 'unknown reason'})"
    return None
