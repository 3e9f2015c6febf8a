"""One connection's worst within the hub's limits, and typists that time their acks.

Used by ``tests/collab_server/test_hub_stall.py`` and by the bench's scenario 11
(``bench/pairls_bench/attack.py``).  The attacker is three connections of one client, each
sending as fast as the hub reads, the most expensive messages the limits
allow (docs/protocol.md, *Limits*):

* **old ops**: ops of ``maxOpComponents`` components against the oldest
  base the transform budget takes (its own document, whose history it knows:
  three keystrokes, then a big op three revisions back);
* **digests**: a keystroke into a document as large as ``maxDocumentBytes``
  allows, then a ``digest`` of it (so the cache never helps);
* **one-char frames**: frames of one-character inserts at the frame limit,
  on a connection in no room (refused ``too_large`` as they are decoded;
  a ``ping`` now and then keeps the connection from being closed for them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from collab_core import ops
from collab_server.config import HubConfig
from collab_server.document import TRANSFORM_STEP

from .hubclient import Peer, SharedDoc


@dataclass
class Limits:
    max_message_bytes: int
    max_document_bytes: int
    max_op_components: int
    transform_budget: int

    @classmethod
    def of(cls, config: HubConfig) -> Limits:
        return cls(
            config.max_message_bytes,
            config.max_document_bytes,
            config.max_op_components,
            config.transform_budget,
        )


@dataclass
class Typist:
    """Types one character every *period* seconds, waiting for each ack; records
    (send time, seconds to its ack)."""

    doc: SharedDoc
    char: str
    period: float = 0.05
    samples: list[tuple[float, float]] = field(default_factory=list)
    typed: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            await self.doc.splice(len(self.doc.text) // 2, 0, self.char)
            self.typed += 1
            await self.doc.wait_synced()
            took = time.perf_counter() - t0
            self.samples.append((t0, took))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, self.period - took))

    def window(self, start: float, end: float) -> list[float]:
        return [took for t0, took in self.samples if start <= t0 < end]


def percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


class Attacker:
    """See the module docstring; :attr:`counts` says how many of each were sent."""

    def __init__(self, url: str, limits: Limits, *, big_document: bool = True) -> None:
        self.url = url
        self.limits = limits
        self.big_document = big_document
        self.counts: Counter[str] = Counter()
        self.peers: list[Peer] = []
        self._seq = 0

    async def setup(self) -> None:
        lim = self.limits
        self.ops_peer = await self._peer("Attacker ops")
        room = await self.ops_peer.create_room("attack")
        # a document the big ops fit: each keeps its length (insert one, delete one)
        self.triples = lim.max_op_components // 3
        await self.ops_peer.create_document("h.txt", "h" * (2 * self.triples + 10))
        self.h_rev = (await self.ops_peer.request({"type": "open", "path": "h.txt"}))["rev"]
        #: component counts of h.txt's ops, newest last (the attacker is its only writer)
        self.h_components: list[int] = []
        self.big_op: ops.Op = [1, "a", -1] * self.triples

        self.digest_peer = await self._peer("Attacker digests")
        await self.digest_peer.join(room["room"], room["editorSecret"])
        await self.digest_peer.create_document("big.txt", "")
        self.big_rev = (await self.digest_peer.request({"type": "open", "path": "big.txt"}))["rev"]
        #: characters in big.txt
        self.big_size = 0
        if self.big_document:
            # as large as the document limit allows, in ops that each fit a frame
            chunk = min(lim.max_message_bytes - 200, lim.max_document_bytes)
            while self.big_size + chunk <= lim.max_document_bytes - 16:
                op: ops.Op = [self.big_size, "b" * chunk] if self.big_size else ["b" * chunk]
                reply = await self._op(self.digest_peer, "big.txt", self.big_rev, op)
                assert reply["type"] == "ack", reply
                self.big_rev = reply["rev"]
                self.big_size += chunk

        self.frame_peer = await self._peer("Attacker frames")
        n = (lim.max_message_bytes - 80) // 4  # each '"a",' is 4 bytes
        self.one_char_frame = json.dumps(
            {"type": "op", "path": "a.txt", "rev": 0, "seq": 1, "op": ["a"] * n}, separators=(",", ":")
        )
        assert len(self.one_char_frame) <= lim.max_message_bytes

    async def _peer(self, name: str) -> Peer:
        p = await Peer(self.url, name).connect()
        self.peers.append(p)
        return p

    async def _op(self, peer: Peer, path: str, rev: int, op: ops.Op) -> dict[str, Any]:
        """Send an op and wait for its ack or refusal."""
        self._seq += 1
        await peer.send({"type": "op", "path": path, "rev": rev, "seq": self._seq, "op": op})
        reply = await peer.next_event_of(("ack", "error"), timeout=60)
        return reply

    KINDS = ("old ops", "digests", "one-char frames")

    async def run(self, stop: asyncio.Event, kinds: tuple[str, ...] = KINDS) -> None:
        attacks = {
            "old ops": self._old_ops,
            "digests": self._digests,
            "one-char frames": self._one_char_frames,
        }
        await asyncio.gather(*(attacks[k](stop) for k in kinds))

    async def close(self) -> None:
        for p in self.peers:
            await p.close()

    def oldest_base(self, components: int) -> int:
        """The oldest revision of h.txt an op of *components* may have within the budget."""
        k, past = 0, 0
        for c in reversed(self.h_components):
            if (k + 1) * (components + TRANSFORM_STEP) + past + c > self.limits.transform_budget:
                break
            k += 1
            past += c
        return self.h_rev - k

    async def _old_ops(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for _ in range(3):  # short ops first: the big one can reach further back past them
                reply = await self._op(self.ops_peer, "h.txt", self.h_rev, ["k", -1])
                assert reply["type"] == "ack", reply
                self.h_rev = reply["rev"]
                self.h_components.append(2)
                self.counts["keystroke"] += 1
            base = self.oldest_base(len(self.big_op))
            reply = await self._op(self.ops_peer, "h.txt", base, self.big_op)
            self.counts[f"old op ({reply.get('code', 'taken')})"] += 1
            if reply["type"] == "ack":
                self.h_rev = reply["rev"]
                self.h_components.append(len(self.big_op))

    async def _digests(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            reply = await self._op(self.digest_peer, "big.txt", self.big_rev, ["d", -1])
            assert reply["type"] == "ack", reply
            self.big_rev = reply["rev"]
            await self.digest_peer.request({"type": "digest", "path": "big.txt"}, timeout=60)
            self.counts["digest"] += 1

    async def _one_char_frames(self, stop: asyncio.Event) -> None:
        p = self.frame_peer
        while not stop.is_set():
            for _ in range(10):
                await p.send_raw(self.one_char_frame)
                self.counts["one-char frame"] += 1
            await p.request({"type": "ping"}, timeout=60)  # answered after the frames before it
            refused = p.events["error"]
            assert {e["code"] for e in refused} <= {"too_large"}, refused
            refused.clear()
