"""The web client's test vectors are what the current core answers.

``web/test/vectors.json`` is checked against the TypeScript port by ``node --test`` (``make
web``); here it is checked against ``collab_core`` itself, so a change to the core that the
vectors do not follow fails until they are made again (the command is in
``tests/support/web_vectors.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.web_vectors import dumps

VECTORS = Path(__file__).resolve().parents[2] / "web" / "test" / "vectors.json"


def test_the_committed_vectors_are_what_the_core_answers() -> None:
    committed = VECTORS.read_text(encoding="utf-8")
    remake = ".venv/bin/python -m tests.support.web_vectors > web/test/vectors.json"
    assert committed == dumps(), f"web/test/vectors.json is stale: {remake}"


def test_the_vectors_hold_the_awkward_characters() -> None:
    v = json.loads(VECTORS.read_text(encoding="utf-8"))
    texts = [c["text"] for c in v["ops"]] + [p["text"] for p in v["positions"]]
    joined = "".join(texts)
    for piece in ("😀", "\r\n", "\u200d", "\u0301", "\U0010fffd"):
        assert piece in joined, repr(piece)
    assert any(s["maxOpComponents"] for s in v["clients"]) and any(not s["maxOpBytes"] for s in v["clients"])
