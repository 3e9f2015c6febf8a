"""Invite secrets: what the hub keeps of them and how it checks one (sans-I/O).

A secret is 32 random bytes, URL-safe base64 (43 characters), given to the
room's creator once.  The store keeps only its SHA-256 digest.  A join is
checked by hashing the secret it carries and comparing that digest with
every invite of the room in constant time (:func:`hmac.compare_digest`, all
of them, no early exit), so the time a refusal takes tells nothing about how
close a guess came.  Secrets are never logged and never part of an error.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

__all__ = ["new_secret", "role_for", "secret_hash"]


def new_secret() -> str:
    """A fresh invite secret."""
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> bytes:
    """What the store keeps of *secret*: its SHA-256 digest."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


def role_for(secret: str, invites: Iterable[tuple[str, bytes]]) -> str | None:
    """The role *secret* grants among *invites* (role, digest), or None."""
    digest = secret_hash(secret)
    role = None
    for invite_role, invite_digest in invites:
        if hmac.compare_digest(digest, invite_digest) and role is None:
            role = invite_role
    return role
