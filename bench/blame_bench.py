"""The language server's side of blame: what a hover costs, and what keeping a blame costs
per op, on a large document (no hub: the room is fed the hub's messages by hand).

    .venv/bin/python bench/blame_bench.py                 # 10,000 lines, 2,000 ops
    .venv/bin/python bench/blame_bench.py --lines 50000

A shared document of ``--lines`` lines whose blame the hub answered once; then, per
measurement, wall clock per call, p50 and p99:

* ``hover``: ``Room.blame_lines`` for the buffer (what a hover reads, no hub involved),
  quiet (nothing unacknowledged, nothing the editor has not shown);
* ``hover while typing``: the same with an op of the user's in flight and a peer's op the
  editor has not shown yet (both carried through);
* ``hover after 30 ops``: the first hover after 30 peer ops since the hub's last answer
  (the lines are carried through them when read);
* ``peer op``: a peer's one-character insert arriving and shown in the editor, with the blame
  kept against the same without a blame (the baseline: what the room did before, in the same
  run).

:func:`run` returns the figures as a dict.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lsp_bridge.editor_sync import ContentChange  # noqa: E402
from lsp_bridge.room import ApplyEdit, Room  # noqa: E402

URI = "file:///bench/big.py"
PATH = "big.py"


def _text(lines: int, rng: random.Random) -> str:
    words = ["value", "count", "total", "node", "item", "result", "cache", "index"]
    return "".join(f"{rng.choice(words)}_{i} = {rng.randint(0, 999)}  # line {i}\n" for i in range(lines))


class _Hub:
    """Just enough of a hub for one document: replies by request id, peer ops by revision."""

    def __init__(self, room: Room, text: str) -> None:
        self.room = room
        self.now = 0.0
        self.rev = 0
        self.text = text

    def sent(self, kind: str) -> dict[str, Any]:
        for msg in self.room.messages_to_send(self.now):
            if msg["type"] == kind:
                return msg
        raise AssertionError(f"no {kind}")

    def reply(self, request: dict[str, Any], **fields: Any) -> None:
        self.room.receive({**fields, "id": request["id"]}, self.now)

    def enter(self) -> None:
        room = self.room
        room.create("ws://bench", "bench", "bench-client-1", self.now)
        room.connection_opened(self.now)
        self.reply(
            self.sent("hello"),
            type="welcome",
            protocol=1,
            participant="me",
            limits={"rate": 10**9, "burst": 10**9, "maxMessageBytes": 1 << 30},
        )
        self.reply(
            self.sent("create_room"),
            type="room_created",
            room="R",
            role="owner",
            participant="me",
            participants=[
                {"id": "me", "name": "Ada", "role": "owner"},
                {"id": "bob", "name": "Bob", "role": "editor"},
            ],
            documents=[],
            presence=[],
            ownerSecret="O" * 43,
            editorSecret="E" * 43,
            viewerSecret="V" * 43,
        )
        room.share(URI, PATH, self.text, 1, self.now)
        self.reply(self.sent("create_document"), type="document_created", path=PATH, rev=0)
        self.reply(self.sent("open"), type="opened", path=PATH, rev=0, ops=[])
        room.events()

    def blame(self) -> None:
        room = self.room
        assert room.blame_lines(URI, self.now) is None
        lines = [{"author": "a1", "name": "Ada", "time": "2026-01-01T00:00:00.000Z", "rev": 0}] * (
            self.text.count("\n") + 1
        )
        self.reply(self.sent("blame"), type="blame", path=PATH, rev=0, lines=lines)
        assert room.blame_lines(URI, self.now) is not None

    def show(self) -> None:
        """The editor applies every edit the room sends it, and reports it back."""
        room = self.room
        while True:
            edits = [e for e in room.events() if isinstance(e, ApplyEdit)]
            if not edits:
                return
            for ev in edits:
                version = room.by_uri[URI].views[URI].sync.version + 1
                room.edit_answered(URI, True, self.now)
                changes = [ContentChange((*e.start, *e.end), e.new_text) for e in reversed(ev.edit.edits)]
                room.editor_changed(URI, version, changes, self.now)

    def peer_insert(self, pos: int, ch: str) -> None:
        self.rev += 1
        op = [pos, ch] if pos else [ch]
        self.room.receive({"type": "op", "path": PATH, "rev": self.rev, "op": op, "author": "bob"}, self.now)
        self.text = self.text[:pos] + ch + self.text[pos:]


def _pct(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 3),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000, 3),
    }


def run(lines: int = 10_000, ops_count: int = 2_000, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    text = _text(lines, rng)
    out: dict[str, Any] = {"lines": lines, "code_points": len(text)}

    hub = _Hub(Room(name="Ada", encoding="utf-16"), text)
    hub.enter()
    hub.blame()
    hovers = []
    for _ in range(200):
        t0 = time.perf_counter()
        hub.room.blame_lines(URI, hub.now)
        hovers.append(time.perf_counter() - t0)
    out["hover"] = _pct(hovers)

    # the user types (in flight), a peer's op arrives the editor has not shown yet
    hub.room.editor_changed(URI, 2, [ContentChange((5, 0, 5, 0), "typed ")], hub.now)
    hub.room.messages_to_send(hub.now)
    hub.peer_insert(len(text) // 2, "x")
    hovers = []
    for _ in range(200):
        t0 = time.perf_counter()
        got = hub.room.blame_lines(URI, hub.now)
        hovers.append(time.perf_counter() - t0)
        assert got is not None
    out["hover while typing"] = _pct(hovers)

    # the first hover after 30 peer ops since the hub's last answer (3 s of a fast typist):
    # the lines are carried through them then
    samples = []
    for _ in range(50):
        for _ in range(30):
            hub.peer_insert(rng.randint(0, len(hub.text)), rng.choice("ab\n"))
            hub.show()
        t0 = time.perf_counter()
        hub.room.blame_lines(URI, hub.now)
        samples.append(time.perf_counter() - t0)
    out["hover after 30 ops"] = _pct(samples)

    # peer ops with the blame kept, against a room that keeps none (same document, same ops)
    for label, keep in (("peer op, blame kept", True), ("peer op, no blame (baseline)", False)):
        hub = _Hub(Room(name="Ada", encoding="utf-16"), text)
        hub.enter()
        if keep:
            hub.blame()
        samples = []
        for _ in range(ops_count):
            pos = rng.randint(0, len(hub.text))
            t0 = time.perf_counter()
            hub.peer_insert(pos, rng.choice("ab\n"))
            hub.show()
            samples.append(time.perf_counter() - t0)
        out[label] = _pct(samples)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=10_000)
    ap.add_argument("--ops", type=int, default=2_000)
    args = ap.parse_args()
    res = run(args.lines, args.ops)
    print(f"blame in the language server: {res['lines']} lines, {res['code_points']} code points")
    for key, value in res.items():
        if isinstance(value, dict):
            print(f"  {key:30s} p50 {value['p50_ms']:8.3f} ms   p99 {value['p99_ms']:8.3f} ms")


if __name__ == "__main__":
    main()
