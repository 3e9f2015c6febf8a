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

__all__ = ["decode", "encode"]


def decode(frame: str | bytes, *, max_op_components: int | None = None) -> dict[str, Any]:
    """:func:`collab_core.wire.decode`, parsed by orjson when it can."""
    try:
        msg = orjson.loads(frame)
    except orjson.JSONDecodeError:
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
