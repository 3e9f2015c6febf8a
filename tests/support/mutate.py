"""Messages with one part made wrong, for the fuzz tests of what a broken or hostile peer
(a hub, to the language server) sends: a value of another type or size, a key missing or
added, a number off by a few, text with a character no one stores."""

from __future__ import annotations

import copy
import random
from typing import Any

#: values of another type or size put in place of a message's parts
WEIRD: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**31,
    2**63,
    -(2**70),
    1.5,
    -0.0,
    float("inf"),
    float("nan"),
    "",
    "x",
    "\ud800",
    "x" * 5000,
    "../../etc/passwd",
    [],
    [1, "a"],
    [[0, 0]],
    [-5, "a"],
    [10**9, -(10**9)],
    {},
    {"a": 1},
    [[[[[]]]]],
]


def _weird(rng: random.Random) -> Any:
    return copy.deepcopy(rng.choice(WEIRD))


def mutate(msg: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """*msg* with one part made wrong (a copy)."""
    msg = copy.deepcopy(msg)
    places: list[tuple[Any, Any]] = []

    def walk(node: Any, depth: int) -> None:
        if depth > 4:
            return
        if isinstance(node, dict):
            for k in node:
                places.append((node, k))
                walk(node[k], depth + 1)
        elif isinstance(node, list):
            for i in range(len(node)):
                places.append((node, i))
                walk(node[i], depth + 1)

    walk(msg, 0)
    how = rng.random()
    if not places or how < 0.1:
        msg[rng.choice(["rev", "seq", "path", "op", "type", "id", "zz", "participant"])] = _weird(rng)
        return msg
    parent, key = rng.choice(places)
    value = parent[key]
    if how < 0.25 and isinstance(parent, dict) and key != "type":
        del parent[key]
    elif how < 0.45 and type(value) is int:
        parent[key] = value + rng.choice([-3, -2, -1, 1, 2, 3, 1000])
    elif how < 0.55 and isinstance(value, str) and value:
        i = rng.randrange(len(value) + 1)
        parent[key] = value[:i] + rng.choice(["\n", "\r", "😀", "\x00", "é", "\ud800"]) + value[i:]
    else:
        parent[key] = _weird(rng)
    return msg
