// The TypeScript port against the Python core: every answer in vectors.json (made by
// tests/support/web_vectors.py from collab_core) must come out the same here.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import * as ops from "../src/core/ops.js";
import type { Op } from "../src/core/ops.js";
import { DocumentClient, SHADOW_INSERT_LIMIT } from "../src/core/client.js";
import type { Outgoing } from "../src/core/client.js";
import { changesToOp, opToChanges, toCodePoint, toUtf16 } from "../src/core/positions.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const V: Any = JSON.parse(readFileSync(new URL("../../test/vectors.json", import.meta.url), "utf8"));

test("there are vectors of every kind", () => {
  assert.ok(V.ops.length >= 100 && V.positions.length >= 10 && V.clients.length >= 10);
});

test("normalize, apply, lengths and wire size agree with the Python core", () => {
  for (const c of V.ops) {
    const where = JSON.stringify({ text: c.text, a: c.a });
    assert.deepEqual(ops.normalize(c.a), c.normalized, where);
    assert.equal(ops.apply(c.text, c.a), c.applied, where);
    assert.equal(ops.baseLength(c.a), c.baseLength, where);
    assert.equal(ops.targetLength(c.a, ops.cpLength(c.text)), c.targetLength, where);
    assert.equal(ops.encodedSize(c.a), c.encodedSize, where);
    assert.deepEqual(ops.check(c.a), c.normalized, where);
  }
});

test("transform gives the Python core's ops, and they converge (TP1)", () => {
  for (const c of V.ops) {
    const where = JSON.stringify({ text: c.text, a: c.a, b: c.b });
    const [a2, b2] = ops.transform(c.normalized, c.b);
    assert.deepEqual([a2, b2], c.transformed, where);
    assert.equal(ops.apply(ops.apply(c.text, c.normalized), b2), c.converged, where);
    assert.equal(ops.apply(ops.apply(c.text, c.b), a2), c.converged, where);
  }
});

test("compose gives the Python core's op", () => {
  for (const c of V.ops) {
    const where = JSON.stringify({ text: c.text, a: c.a, c: c.c });
    const composed = ops.compose(c.normalized, c.c);
    assert.deepEqual(composed, c.composed, where);
    assert.equal(ops.apply(c.text, composed), ops.apply(c.applied, c.c), where);
  }
});

test("cursor positions move and map back as in the Python core", () => {
  for (const c of V.ops) {
    for (const [k, plain, after] of c.transformIndex) {
      assert.equal(ops.transformIndex(k, c.a), plain, JSON.stringify({ a: c.a, k }));
      assert.equal(ops.transformIndex(k, c.a, true), after, JSON.stringify({ a: c.a, k, after: true }));
    }
    for (const [k, want] of c.mapBack) {
      assert.equal(ops.mapBack(k, c.a), want, JSON.stringify({ a: c.a, k }));
    }
  }
});

test("split cuts where the Python core cuts", () => {
  for (const c of V.ops) {
    const { maxBytes, maxComponents, out } = c.split;
    const got = ops.split(c.a, maxBytes, maxComponents);
    assert.deepEqual(got, out, JSON.stringify({ a: c.a, maxBytes, maxComponents }));
  }
});

test("apply refuses an op that reaches past the end", () => {
  assert.throws(() => ops.apply("ab", [3]), ops.InvalidOp);
  assert.throws(() => ops.apply("😀", [-2]), ops.InvalidOp);
  assert.equal(ops.apply("😀😀", [1, -1]), "😀");
  assert.throws(() => ops.check([0]), ops.InvalidOp);
  assert.throws(() => ops.check([""]), ops.InvalidOp);
  assert.throws(() => ops.check([true]), ops.InvalidOp);
  assert.throws(() => ops.check("x"), ops.InvalidOp);
});

test("code point <-> UTF-16 offsets agree with Python's, emoji and CRLF included", () => {
  for (const { text, utf16 } of V.positions) {
    for (let cp = 0; cp < utf16.length; cp++) {
      assert.equal(toUtf16(text, cp), utf16[cp], JSON.stringify({ text, cp }));
      assert.equal(toCodePoint(text, utf16[cp]), cp, JSON.stringify({ text, u16: utf16[cp] }));
    }
  }
  // inside a surrogate pair: the pair's start
  assert.equal(toCodePoint("a😀b", 2), 1);
});

test("changes in UTF-16 and ops in code points convert both ways", () => {
  for (const c of V.ops) {
    const changes = opToChanges(c.text, c.normalized);
    let u16 = c.text;
    for (let i = changes.length - 1; i >= 0; i--) {
      const ch = changes[i];
      u16 = u16.slice(0, ch.from) + ch.insert + u16.slice(ch.to);
    }
    assert.equal(u16, c.applied, JSON.stringify({ text: c.text, a: c.a }));
    assert.deepEqual(ops.normalize(changesToOp(c.text, changes)), c.normalized);
  }
});

function outgoing(o: Outgoing | null): Any {
  return o === null ? null : { seq: o.seq, baseRev: o.baseRev, op: o.op };
}

test("the client state machine answers every scripted event as the Python one does", () => {
  for (const [n, s] of V.clients.entries()) {
    const client = new DocumentClient(s.start, 0, s.clientId, { maxOpBytes: s.maxOpBytes, maxOpComponents: s.maxOpComponents });
    for (const [i, e] of s.events.entries()) {
      const where = `session ${n} event ${i} (${e.kind})`;
      switch (e.kind) {
        case "local":
          assert.deepEqual(outgoing(client.applyLocal(e.op as Op)), e.out, where);
          break;
        case "remote": {
          const [view, next] = client.receiveOp(e.rev, e.op);
          assert.deepEqual(view, e.view, where);
          assert.deepEqual(outgoing(next), e.out, where);
          break;
        }
        case "ack":
          assert.deepEqual(outgoing(client.receiveAck(e.rev)), e.out, where);
          break;
        case "echo": {
          const [view, next] = client.receiveOp(e.rev, e.op, e.clientId, e.seq);
          assert.deepEqual(view, e.view, where);
          assert.deepEqual(outgoing(next), e.out, where);
          break;
        }
        case "unsend":
          client.unsend();
          break;
        case "resend":
          assert.deepEqual(outgoing(client.resend()), e.out, where);
          break;
        case "hold":
          client.hold();
          break;
        case "release":
          assert.deepEqual(outgoing(client.release()), e.out, where);
          break;
        default:
          assert.fail(`unknown event ${e.kind}`);
      }
      const a = e.after;
      assert.deepEqual(
        {
          text: client.text,
          rev: client.rev,
          state: client.state,
          held: client.held,
          outstanding: outgoing(client.outstanding),
          buffer: client.buffer,
          shadow: client.shadow,
          nextSeq: client.nextSeq,
        },
        a,
        where,
      );
    }
  }
});

test("a document sent as pieces leaves each ack no large insert to compose (issue 14)", () => {
  const client = new DocumentClient("", 0, "me", { maxOpBytes: 4096 });
  let hub = "";
  let rev = 0;
  const ack = (out: Outgoing | null): Outgoing | null => {
    assert.ok(out !== null);
    hub = ops.apply(hub, out.op); // (nothing else reaches this hub: no transform)
    rev += 1;
    return client.receiveAck(rev);
  };
  const pending = (): number => {
    let n = 0;
    for (const c of (client as unknown as { sinceShadow: Op }).sinceShadow) if (typeof c === "string") n += c.length;
    return n;
  };
  let out = client.applyLocal(["x".repeat(10 * SHADOW_INSERT_LIMIT)]);
  while (out !== null) {
    out = ack(out);
    assert.ok(pending() <= SHADOW_INSERT_LIMIT);
  }
  for (let i = 0; i < 20; i++) {
    ack(client.applyLocal([5 * SHADOW_INSERT_LIMIT + i, "y"]));
    assert.ok(pending() <= SHADOW_INSERT_LIMIT);
  }
  assert.equal(client.shadow, hub);
  assert.equal(client.text, hub);
});
