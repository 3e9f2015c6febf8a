"""JSON read as the standard ``json`` module reads it, and written compactly, through orjson.

The language server reads and writes JSON at every keystroke (the editor's
``didChange``, the hub's frames, the ``workspace/applyEdit`` it writes) and
the hub at every message; orjson does each several times faster than
``json``.  What orjson refuses and ``json`` accepts (a lone surrogate's
escape, an integer past 64 bits, nesting past 1,024 levels, ``NaN``, bytes
in UTF-16) is read by ``json``, and so is a value in which orjson found a
float: orjson reads an integer outside -2**63 .. 2**64-1 as a float, ``json``
as an integer.  So :func:`loads` returns exactly what ``json.loads`` returns
and raises what it raises (``tests/collab_core/test_jsonio.py`` holds the two
side by side).

:func:`dumps` writes what ``json.dumps(value, ensure_ascii=False,
separators=(",", ":"))`` writes, in UTF-8, except in three ways: orjson
spells some floats differently (``0.00001`` for ``1e-05``: the same
number); it writes ``null`` for NaN and the infinities, which JSON cannot
spell (``json`` writes ``NaN``, which no strict reader takes); and a value
holding a lone surrogate, which UTF-8 cannot hold, is written with every
character past ASCII as its ``\\u`` escape (``json.dumps``'s default), the
same value to any reader.

Without orjson (collab_core itself needs nothing but the standard library)
both go to ``json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover (pairls installs it; collab_core alone need not)
    orjson = None  # type: ignore[assignment]

__all__ = ["dumps", "has_float", "loads"]


def has_float(value: Any) -> bool:
    """Whether a float is anywhere in *value* (parsed JSON: dicts, lists, scalars)."""
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is float:
            return True
        if t is dict:
            stack.extend(v.values())
        elif t is list:
            stack.extend(v)
    return False


def loads(data: str | bytes) -> Any:
    """``json.loads(data)``, parsed by orjson when it parses alike."""
    if orjson is not None:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        else:
            if not has_float(value):
                return value
    return json.loads(data)


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """*value* as compact JSON in UTF-8, non-ASCII kept as is; *default* as ``json``'s."""
    if orjson is not None:
        try:
            return orjson.dumps(value, default=default)
        except orjson.JSONEncodeError:
            pass  # (a lone surrogate, an integer past 64 bits, a key that is not a string)
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate, which UTF-8 cannot hold: as its escape
        return json.dumps(value, separators=(",", ":"), default=default).encode()
