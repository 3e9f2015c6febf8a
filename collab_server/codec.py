"""The hub's JSON: :mod:`collab_core.wire`'s decode and encode, through orjson where it agrees.

The wire schema lives in :mod:`collab_core.wire`, which needs nothing but the
standard library (the editors' side imports it too).  The hub reads and writes
every message, so it parses and writes them with orjson, several times faster.
What orjson refuses and the standard ``json`` module accepts (a lone
surrogate's escape, an integer past 64 bits, nesting past 1,024 levels, a
value JSON cannot spell such as ``NaN``) goes to ``wire`` as before, and so
does a message in which orjson found a float: orjson reads an integer outside
-2**63 .. 2**64-1 as a float, ``json`` as an integer (the protocol's only
floats, a run's ``startedAt`` and ``endedAt``, are few).  So the hub accepts, refuses and writes
exactly what it did with ``json`` alone (``tests/collab_server/test_codec.py``
holds the two side by side).  The check walks the parsed message, not the
frame's text: a 64 KiB paste is 3 containers to look through, where a regular
expression over its text took a millisecond.
"""

from __future__ import annotations

from typing import Any

import orjson

from collab_core import wire
from collab_core.jsonio import has_float

__all__ = ["NotUtf8", "decode", "encode", "encode_bytes"]


class NotUtf8(Exception):
    """A frame read as bytes is not UTF-8: a text frame's payload must be (RFC 6455), and the
    connection fails with 1007 as websockets fails it when it decodes one."""


def decode(frame: str | bytes, *, max_op_components: int | None = None) -> dict[str, Any]:
    """:func:`collab_core.wire.decode`, parsed by orjson when it can.

    The hub reads frames as bytes (websockets does not decode them): orjson parses UTF-8
    itself, where a ``str`` is decoded once and encoded again for it, two passes over a
    1 MiB paste.  Raises :class:`NotUtf8` for bytes that are not UTF-8."""
    try:
        msg = orjson.loads(frame)
    except orjson.JSONDecodeError:
        if isinstance(frame, bytes):
            try:
                frame = frame.decode("utf-8")
            except UnicodeDecodeError:
                raise NotUtf8 from None
        return wire.decode(frame, max_op_components=max_op_components)
    if has_float(msg):
        return wire.decode(frame, max_op_components=max_op_components)
    return wire.checked(msg, max_op_components=max_op_components)


def encode(msg: dict[str, Any]) -> str:
    """:func:`collab_core.wire.encode`, written by orjson when it can."""
    try:
        return orjson.dumps(msg).decode()
    except orjson.JSONEncodeError:
        return wire.encode(msg)  # a lone surrogate, an integer past 64 bits: as json writes them


def encode_bytes(msg: dict[str, Any]) -> bytes:
    """:func:`encode` in UTF-8, as a frame goes out: a broadcast op is written once, where a
    ``str`` is decoded from orjson's bytes and websockets encodes it again.  For messages of
    what the hub checked at the edge (ops, paths, ids: never a lone surrogate)."""
    try:
        return orjson.dumps(msg)
    except orjson.JSONEncodeError:
        return wire.encode(msg).encode("utf-8")  # an integer past 64 bits, as json writes it
