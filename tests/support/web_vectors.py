"""Shared test vectors: what the Python core answers, for the web client's TypeScript port.

``web/test/vectors.json`` holds, for seeded random cases over awkward Unicode (astral
characters, a ZWJ sequence, combining marks, CRLF and lone CR), what ``collab_core.ops``
(normalize, apply, transform, compose, transform_index, map_back, encoded_size, split) and
``collab_core.client.DocumentClient`` (scripted sessions against a simulated hub) return, and
code point <-> UTF-16 offsets.  ``web/test/core.test.ts`` replays them against the port
(``node --test``, in ``make test`` through ``tests/test_web.py``);
``tests/collab_core/test_web_vectors.py`` fails when the file is not what this module makes
from the current core, so a change to the core is a change to the vectors:

    .venv/bin/python -m tests.support.web_vectors > web/test/vectors.json
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

from collab_core import ops
from collab_core.client import DocumentClient, Outgoing
from collab_core.ops import Op
from tests.collab_core import ot_strategies

SEED = 20240611
#: pieces that break naive ports (the core's property tests' own), and quotes and
#: backslashes (their JSON size)
AWKWARD = [*ot_strategies.AWKWARD, '"', "\\"]
OTHER = "xyzé中ΩЖ\t"


def _text(rng: random.Random, low: int = 0, high: int = 12) -> str:
    return "".join(
        rng.choice(AWKWARD) if rng.random() < 0.7 else rng.choice(OTHER)
        for _ in range(rng.randint(low, high))
    )


def _op_on(rng: random.Random, text: str, max_components: int = 6) -> Op:
    """A valid op on *text*, possibly non-canonical (as ops_on in ot_strategies)."""
    op: Op = []
    pos, size = 0, len(text)
    for _ in range(rng.randint(0, max_components)):
        kind = rng.choice(["retain", "delete", "insert"])
        left = size - pos
        if kind == "insert" or left == 0:
            op.append(_text(rng, 1, 4))
        else:
            n = rng.randint(1, left)
            op.append(n if kind == "retain" else -n)
            pos += n
    if pos < size and rng.random() < 0.5:
        op.append(size - pos)
    return op


def _utf16(text: str, cp: int) -> int:
    return len(text[:cp].encode("utf-16-le")) // 2


def op_cases(rng: random.Random, count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        if i % 10 == 9:  # a long op against a short one (the core's windowed paths)
            text = _text(rng, 30, 60)
            a = _op_on(rng, text, 40)
            b = _op_on(rng, text, 3)
        else:
            text = _text(rng, 0, 16)
            a = _op_on(rng, text)
            b = _op_on(rng, text)
        after = ops.apply(text, a)
        c = _op_on(rng, after)
        # transform and compose take canonical ops, as everywhere they are called (the client
        # and the hub normalize first); the core's windowed paths copy what they do not touch
        an, b, c = ops.normalize(a), ops.normalize(b), ops.normalize(c)
        a2, b2 = ops.transform(an, b)
        indices = sorted({0, len(text), *(rng.randint(0, len(text)) for _ in range(3))})
        back = sorted({0, len(after), *(rng.randint(0, len(after)) for _ in range(3))})
        budget = rng.randint(64, 96)
        components = rng.choice([None, 4, 5])
        out.append(
            {
                "text": text,
                "a": a,
                "b": b,
                "c": c,
                "normalized": ops.normalize(a),
                "applied": after,
                "transformed": [a2, b2],
                "converged": ops.apply(ops.apply(text, a), b2),
                "composed": ops.compose(an, c),
                "baseLength": ops.base_length(a),
                "targetLength": ops.target_length(a, len(text)),
                "encodedSize": ops.encoded_size(a),
                "transformIndex": [
                    [k, ops.transform_index(k, a), ops.transform_index(k, a, after_insert=True)]
                    for k in indices
                ],
                "mapBack": [[k, ops.map_back(k, a)] for k in back],
                "split": {
                    "maxBytes": budget,
                    "maxComponents": components,
                    "out": list(ops.split(a, budget, max_components=components)),
                },
            }
        )
    return out


def position_cases(rng: random.Random, count: int) -> list[dict[str, Any]]:
    fixed = ["", "a😀b", "\r\n😀\r\n", "👩\u200d💻 e\u0301\r", "𝄞𝄞\n\U0010fffd"]
    texts = fixed + [_text(rng, 0, 20) for _ in range(count)]
    return [{"text": t, "utf16": [_utf16(t, i) for i in range(len(t) + 1)]} for t in texts]


def _outgoing(out: Outgoing | None) -> dict[str, Any] | None:
    return None if out is None else {"seq": out.seq, "baseRev": out.base_rev, "op": out.op}


def _snapshot(c: DocumentClient) -> dict[str, Any]:
    return {
        "text": c.text,
        "rev": c.rev,
        "state": c.state.value,
        "held": c.held,
        "outstanding": _outgoing(c.outstanding),
        "buffer": c.buffer,
        "shadow": c.shadow,
        "nextSeq": c.next_seq,
    }


def client_session(rng: random.Random, steps: int, limits: tuple[int | None, int | None]) -> dict[str, Any]:
    """One DocumentClient against a simulated hub: what each event returns, and the state after."""
    start = _text(rng, 0, 10)
    max_bytes, max_components = limits
    client = DocumentClient(start, 0, "me-client-1", max_op_bytes=max_bytes, max_op_components=max_components)
    hub_text = start
    log: list[Op] = []  # log[r - 1] is the op of revision r
    events: list[dict[str, Any]] = []
    for _ in range(steps):
        kinds = ["local", "local", "remote"]
        if client.outstanding is not None:
            kinds += ["ack", "ack", "echo", "unsend", "resend"]
        kinds += ["hold", "release"]
        kind = rng.choice(kinds)
        event: dict[str, Any] = {"kind": kind}
        if kind == "local":
            op = _op_on(rng, client.text, 4)
            event["op"] = op
            event["out"] = _outgoing(client.apply_local(op))
        elif kind == "remote":
            op = ops.normalize(_op_on(rng, hub_text, 4))
            hub_text = ops.apply(hub_text, op)
            log.append(op)
            event.update(rev=len(log), op=op)
            view, nxt = client.receive_op(len(log), op)
            event["view"], event["out"] = view, _outgoing(nxt)
        elif kind in ("ack", "echo"):
            out = client.outstanding
            assert out is not None
            # the client keeps its op in flight transformed up to the head, as the hub would
            # transform it from its base: committed as it stands
            assert client.rev == len(log)
            op = out.op
            hub_text = ops.apply(hub_text, op)
            log.append(op)
            event["rev"] = len(log)
            if kind == "ack":
                event["out"] = _outgoing(client.receive_ack(len(log)))
            else:  # our own op, seen again in a catch-up (by client id and seq)
                event.update(op=op, clientId=client.client_id, seq=out.seq)
                view, nxt = client.receive_op(len(log), op, client.client_id, out.seq)
                event["view"], event["out"] = view, _outgoing(nxt)
        elif kind == "unsend":
            client.unsend()
        elif kind == "resend":
            event["out"] = _outgoing(client.resend())
        elif kind == "hold":
            client.hold()
        else:
            event["out"] = _outgoing(client.release())
        event["after"] = _snapshot(client)
        events.append(event)
    return {
        "start": start,
        "clientId": "me-client-1",
        "maxOpBytes": max_bytes,
        "maxOpComponents": max_components,
        "events": events,
    }


def vectors() -> dict[str, Any]:
    rng = random.Random(SEED)
    return {
        "about": "generated by tests/support/web_vectors.py from collab_core; do not edit",
        "ops": op_cases(rng, 300),
        "positions": position_cases(rng, 40),
        "clients": [
            client_session(rng, 40, limits) for limits in [(None, None)] * 12 + [(64, None), (80, 4)] * 3
        ],
    }


def dumps() -> str:
    return json.dumps(vectors(), ensure_ascii=False, indent=None, separators=(",", ":")) + "\n"


if __name__ == "__main__":
    sys.stdout.write(dumps())
