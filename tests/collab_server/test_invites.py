"""Invite secrets (collab_server.invites): hashed, compared with every invite in constant time."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from collab_server.invites import new_secret, role_for, secret_hash


def test_a_secret_is_kept_as_its_sha256_only() -> None:
    secret = new_secret()
    assert len(secret) == 43
    assert secret_hash(secret) == hashlib.sha256(secret.encode()).digest()
    assert secret not in secret_hash(secret).hex()


def test_role_for_finds_the_role_of_the_matching_digest() -> None:
    owner, editor, viewer = new_secret(), new_secret(), new_secret()
    invites = [
        ("owner", secret_hash(owner)),
        ("editor", secret_hash(editor)),
        ("viewer", secret_hash(viewer)),
    ]
    assert role_for(owner, invites) == "owner"
    assert role_for(editor, invites) == "editor"
    assert role_for(viewer, invites) == "viewer"
    assert role_for(new_secret(), invites) is None
    assert role_for(owner, []) is None


def test_role_for_compares_with_every_invite_even_after_a_match() -> None:
    owner = new_secret()
    seen: list[str] = []

    def invites() -> Iterator[tuple[str, bytes]]:
        for role in ("owner", "editor", "viewer"):
            seen.append(role)
            yield role, secret_hash(owner if role == "owner" else new_secret())

    assert role_for(owner, invites()) == "owner"
    assert seen == ["owner", "editor", "viewer"], "no early exit: a match takes as long as a miss"
