// The browser's room state machine, fed events and checked on the effects it returns (no socket,
// no DOM, no clock), as lsp_bridge/room.py is tested in tests/lsp_bridge/test_room.py.

import { test } from "node:test";
import assert from "node:assert/strict";

import { Session } from "../src/core/session.js";
import type { Effect } from "../src/core/session.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Msg = Record<string, any>;

const CONFIG = { url: "ws://hub.test/room/R", roomId: "R", secret: "S3cret", name: "Bea", clientId: "client-bea-1" };

function sent(effects: Effect[]): Msg[] {
  return effects.filter((e) => e.kind === "send").map((e) => JSON.parse((e as { frame: string }).frame));
}

function only(effects: Effect[], type: string): Msg {
  const msgs = sent(effects).filter((m) => m.type === type);
  assert.equal(msgs.length, 1, `one ${type} in ${JSON.stringify(effects)}`);
  return msgs[0];
}

/** A session joined to room R with document a.txt open at *rev* with *text*. */
function joinedWith(text: string, rev = 0): { s: Session; now: number } {
  const s = new Session(CONFIG);
  let now = 0;
  assert.deepEqual(s.start(now), [{ kind: "connect", url: CONFIG.url }, { kind: "changed" }]);
  const hello = only(s.connectionOpened(now), "hello");
  assert.deepEqual(hello, { type: "hello", protocol: 1, name: "Bea", clientId: "client-bea-1" });
  const join = only(s.frameReceived(JSON.stringify({ type: "welcome", participant: "pBea", limits: {} }), now), "join");
  assert.equal(join.room, "R");
  assert.equal(join.secret, "S3cret");
  s.frameReceived(
    JSON.stringify({
      type: "joined",
      id: join.id,
      role: "editor",
      participant: "pBea",
      participants: [
        { id: "pAda", name: "Ada", role: "owner" },
        { id: "pBea", name: "Bea", role: "editor" },
      ],
      documents: [{ path: "a.txt", rev }],
      presence: [],
    }),
    now,
  );
  assert.equal(s.conn, "joined");
  const open = only(s.open("a.txt"), "open");
  assert.equal(open.since, undefined);
  const loaded = s.frameReceived(JSON.stringify({ type: "opened", id: open.id, path: "a.txt", rev, text }), ++now);
  assert.ok(loaded.some((e) => e.kind === "load" && e.text === text));
  return { s, now };
}

test("hello carries the page's user when it has one", () => {
  const s = new Session({ ...CONFIG, user: "user-of-this-browser" });
  s.start(0);
  assert.equal(only(s.connectionOpened(0), "hello").user, "user-of-this-browser");
});

test("typing goes out one op at a time, the rest composed, in code points", () => {
  const { s } = joinedWith("a😀b");
  // after the emoji: UTF-16 offset 3 is code point 2
  const first = only(s.edit("a.txt", [{ from: 3, to: 3, insert: "x" }], 1), "op");
  assert.deepEqual([first.rev, first.seq, first.op], [0, 1, [2, "x"]]);
  assert.deepEqual(sent(s.edit("a.txt", [{ from: 4, to: 4, insert: "y" }], 2)), []);
  assert.deepEqual(sent(s.edit("a.txt", [{ from: 1, to: 3, insert: "" }], 3)), []); // the emoji goes
  const next = only(s.frameReceived(JSON.stringify({ type: "ack", path: "a.txt", seq: 1, rev: 1 }), 4), "op");
  assert.deepEqual([next.rev, next.seq, next.op], [1, 2, [1, -1, 1, "y"]]);
  assert.equal(s.text("a.txt"), "axyb");
});

test("a peer's op lands in the view in UTF-16, past our op in flight", () => {
  const { s } = joinedWith("😀😀");
  only(s.edit("a.txt", [{ from: 4, to: 4, insert: "!" }], 1), "op");
  const fx = s.frameReceived(JSON.stringify({ type: "op", path: "a.txt", rev: 1, op: [1, "é"], author: "pAda" }), 2);
  const remote = fx.find((e) => e.kind === "remote");
  assert.deepEqual(remote, { kind: "remote", path: "a.txt", changes: [{ from: 2, to: 2, insert: "é" }] });
  assert.equal(s.text("a.txt"), "😀é😀!");
});

test("offline typing is kept and sent after the reconnect; the op in flight goes again with its seq", () => {
  const { s } = joinedWith("abc");
  const first = only(s.edit("a.txt", [{ from: 3, to: 3, insert: "1" }], 1), "op");
  let fx = s.connectionClosed(1006, 2);
  assert.equal(s.conn, "offline");
  assert.ok(fx.some((e) => e.kind === "notice"));
  assert.deepEqual(sent(s.edit("a.txt", [{ from: 4, to: 4, insert: "2" }], 3)), []);
  assert.deepEqual(s.unsent(), ["a.txt"]);
  const due = s.wakeAt();
  assert.ok(due !== null && due > 2);
  assert.deepEqual(s.tick(due - 1).filter((e) => e.kind === "connect"), []);
  fx = s.tick(due);
  assert.deepEqual(fx.filter((e) => e.kind === "connect"), [{ kind: "connect", url: CONFIG.url }]);
  // the same client id: the hub recognises the op in flight by its seq
  assert.equal(only(s.connectionOpened(due), "hello").clientId, "client-bea-1");
  const join = only(s.frameReceived(JSON.stringify({ type: "welcome", participant: "pBea2" }), due), "join");
  const reopen = only(
    s.frameReceived(
      JSON.stringify({ type: "joined", id: join.id, role: "editor", participant: "pBea2", participants: [], documents: [{ path: "a.txt", rev: 0 }] }),
      due,
    ),
    "open",
  );
  assert.equal(reopen.since, 0);
  // the hub had not got it: it goes again, same seq, then the rest once it is acked
  fx = s.frameReceived(JSON.stringify({ type: "opened", id: reopen.id, path: "a.txt", rev: 0, ops: [] }), due);
  const again = only(fx, "op");
  assert.deepEqual([again.seq, again.rev, again.op], [first.seq, 0, first.op]);
  const rest = only(s.frameReceived(JSON.stringify({ type: "ack", path: "a.txt", seq: 1, rev: 1 }), due), "op");
  assert.deepEqual([rest.seq, rest.rev, rest.op], [2, 1, [4, "2"]]);
  assert.equal(s.stats.reconnects, 1);
  assert.equal(s.stats.resent, 1);
});

test("an op the hub took before the cut is recognised in the catch-up, never sent twice", () => {
  const { s, now } = joinedWith("abc");
  only(s.edit("a.txt", [{ from: 0, to: 0, insert: ">" }], now), "op");
  s.connectionClosed(1006, now);
  s.edit("a.txt", [{ from: 4, to: 4, insert: "<" }], now);
  const t = s.wakeAt() as number;
  s.tick(t);
  s.connectionOpened(t);
  const join = only(s.frameReceived(JSON.stringify({ type: "welcome", participant: "p" }), t), "join");
  const reopen = only(
    s.frameReceived(JSON.stringify({ type: "joined", id: join.id, role: "editor", participant: "p", participants: [], documents: [] }), t),
    "open",
  );
  const fx = s.frameReceived(
    JSON.stringify({
      type: "opened",
      id: reopen.id,
      path: "a.txt",
      rev: 2,
      ops: [
        { rev: 1, op: [">"], author: "pOld", seq: 1 },
        { rev: 2, op: [4, "!"], author: "pAda" },
      ],
    }),
    t,
  );
  const ops = sent(fx).filter((m) => m.type === "op");
  assert.deepEqual(ops.map((m) => [m.seq, m.rev, m.op]), [[2, 2, [4, "<"]]]);
  assert.equal(s.text("a.txt"), ">abc<!"); // both at the end: ours first, as the hub orders it
  assert.ok(fx.some((e) => e.kind === "remote"));
});

test("revision_too_old: catch up with since, then the same op again", () => {
  const { s } = joinedWith("abc", 5);
  const op = only(s.edit("a.txt", [{ from: 0, to: 0, insert: "x" }], 1), "op");
  const reopen = only(
    s.frameReceived(JSON.stringify({ type: "error", code: "revision_too_old", path: "a.txt", seq: op.seq }), 2),
    "open",
  );
  assert.equal(reopen.since, 5);
  const fx = s.frameReceived(
    JSON.stringify({ type: "opened", id: reopen.id, path: "a.txt", rev: 6, ops: [{ rev: 6, op: [3, "z"], author: "pAda" }] }),
    3,
  );
  const again = only(fx, "op");
  assert.deepEqual([again.seq, again.rev, again.op], [op.seq, 6, ["x"]]);
  assert.equal(s.text("a.txt"), "xabcz");
  assert.equal(s.stats.heals, 0);
});

test("unavailable: the same op again a little later", () => {
  const { s } = joinedWith("abc");
  const op = only(s.edit("a.txt", [{ from: 0, to: 0, insert: "x" }], 10), "op");
  assert.deepEqual(sent(s.frameReceived(JSON.stringify({ type: "error", code: "unavailable", path: "a.txt", seq: op.seq }), 11)), []);
  const due = s.wakeAt() as number;
  const again = only(s.tick(due), "op");
  assert.deepEqual([again.seq, again.op], [op.seq, op.op]);
  assert.equal(s.stats.retries, 1);
});

test("a viewer's refused typing is undone in the view", () => {
  const { s } = joinedWith("abc");
  const op = only(s.edit("a.txt", [{ from: 1, to: 2, insert: "XY" }], 1), "op");
  const fx = s.frameReceived(JSON.stringify({ type: "error", code: "forbidden", path: "a.txt", seq: op.seq }), 2);
  const undo = fx.find((e) => e.kind === "remote");
  assert.deepEqual(undo, { kind: "remote", path: "a.txt", changes: [{ from: 1, to: 3, insert: "b" }] });
  assert.equal(s.text("a.txt"), "abc");
  assert.ok(s.readOnly);
  assert.deepEqual(s.unsent(), []);
});

test("NUL and half of a UTF-16 pair go as U+FFFD, the view is brought to that, said once", () => {
  const { s } = joinedWith("a😀b");
  // two changes in one transaction: each offset of the text before them
  const fx = s.edit("a.txt", [{ from: 1, to: 1, insert: "\0x" }, { from: 3, to: 4, insert: "\ud83d\ude00\udc00" }], 1);
  const op = only(fx, "op");
  assert.deepEqual(op.op, [1, "\ufffdx", 1, "😀\ufffd", -1]);
  // the view holds "a\0x😀😀\udc00" now: its NUL and its lone half become U+FFFD where they are
  const fix = fx.find((e) => e.kind === "remote");
  assert.deepEqual(fix, { kind: "remote", path: "a.txt", changes: [{ from: 1, to: 2, insert: "\ufffd" }, { from: 7, to: 8, insert: "\ufffd" }] });
  assert.equal(s.text("a.txt"), "a\ufffdx😀😀\ufffd");
  assert.equal(fx.filter((e) => e.kind === "notice").length, 1);
  s.frameReceived(JSON.stringify({ type: "ack", path: "a.txt", seq: op.seq, rev: 1 }), 2);
  const again = s.edit("a.txt", [{ from: 0, to: 0, insert: "\0" }], 3);
  assert.deepEqual(only(again, "op").op, ["\ufffd"]); // (a trailing retain is left out)
  assert.equal(again.filter((e) => e.kind === "notice").length, 0);
  // and plain typing is left as it is, with no fix for the view
  const plain = s.edit("a.txt", [{ from: 0, to: 0, insert: "é" }], 4);
  assert.equal(plain.filter((e) => e.kind === "remote").length, 0);
});

test("the owner removing us, deleting the room or rotating the invites ends the session", () => {
  for (const code of [4401, 4403, 4410]) {
    const { s } = joinedWith("abc");
    const fx = s.connectionClosed(code, 1);
    assert.equal(s.conn, "closed");
    assert.ok(fx.some((e) => e.kind === "notice" && e.level === "error"));
    assert.equal(s.wakeAt(), null);
  }
  const s = new Session(CONFIG);
  s.start(0);
  const join = only(s.frameReceived(JSON.stringify({ type: "welcome", participant: "p" }), 0), "join");
  s.frameReceived(JSON.stringify({ type: "error", code: "bad_invite", id: join.id }), 0);
  assert.equal(s.conn, "closed");
  assert.match(String(s.closedReason), /new one/);
});

test("our cursor goes out in the hub's coordinates, after our op; a peer's comes in UTF-16 and moves with ops", () => {
  const { s } = joinedWith("😀 hello");
  // unsent typing at the start shifts our view; the hub has not seen it
  only(s.edit("a.txt", [{ from: 0, to: 0, insert: "ab" }], 1), "op");
  // the cursor waits for the op in flight (else it would reach the others before the text)
  assert.deepEqual(sent(s.select("a.txt", [[5, 7]], 100)), []);
  assert.ok((s.wakeAt() ?? Infinity) > 100 + 1000, "no busy wake-up while the cursor waits");
  s.frameReceived(JSON.stringify({ type: "presence", participant: "pAda", name: "Ada", path: "a.txt", rev: 0, ranges: [[2, 2]] }), 101);
  let [c] = s.cursors("a.txt");
  assert.equal(c.participant.name, "Ada");
  assert.deepEqual(c.ranges, [[5, 5]]); // "ab😀 |" in UTF-16
  // the ack: out goes our cursor, at the acknowledged revision ("ab😀 |he|llo" in code points)
  const presence = only(s.frameReceived(JSON.stringify({ type: "ack", path: "a.txt", seq: 1, rev: 1 }), 102), "presence");
  assert.deepEqual([presence.rev, presence.ranges], [1, [[4, 6]]]);
  // Ada types at her cursor: it moves past what she typed
  s.frameReceived(JSON.stringify({ type: "op", path: "a.txt", rev: 2, op: [4, "Z"], author: "pAda" }), 103);
  [c] = s.cursors("a.txt");
  assert.deepEqual(c.ranges, [[6, 6]]);
  assert.equal(s.text("a.txt"), "ab😀 Zhello");
});

test("with nothing in flight our cursor goes at once, at most every 50 ms", () => {
  const { s } = joinedWith("abc");
  assert.deepEqual(only(s.select("a.txt", [[1, 1]], 1000), "presence").ranges, [[1, 1]]);
  assert.deepEqual(sent(s.select("a.txt", [[2, 2]], 1010)), []);
  assert.equal(s.wakeAt(), 1050);
  assert.deepEqual(only(s.tick(1050), "presence").ranges, [[2, 2]]);
});

test("typing at our cursor sends no presence per keystroke: the peers move it; one a second keeps the hub's copy", () => {
  const { s } = joinedWith("abc");
  assert.deepEqual(only(s.select("a.txt", [[3, 3]], 1000), "presence").ranges, [[3, 3]]);
  let rev = 0;
  let now = 1100;
  for (const ch of "xyz") {
    // the shell reports the change, then the cursor it moved
    only(s.edit("a.txt", [{ from: 3 + rev, to: 3 + rev, insert: ch }], now), "op");
    assert.deepEqual(sent(s.select("a.txt", [[4 + rev, 4 + rev]], now)), [], "the peers move our cursor with the op");
    rev++;
    assert.deepEqual(sent(s.frameReceived(JSON.stringify({ type: "ack", path: "a.txt", seq: rev, rev }), now + 5)), []);
    now += 100;
  }
  assert.equal(s.stats.presenceImplied, 3);
  // a second after the last one sent, the hub's copy is brought up to date, at the newest revision
  assert.equal(s.wakeAt(), 2000);
  const kept = only(s.tick(2000), "presence");
  assert.deepEqual([kept.rev, kept.ranges], [3, [[6, 6]]]);
  // a peer's insert before our cursor moves it for everyone alike: still nothing to send
  s.frameReceived(JSON.stringify({ type: "op", path: "a.txt", rev: 4, op: ["Q", 6], author: "pAda" }), 2010);
  assert.deepEqual(sent(s.select("a.txt", [[7, 7]], 2020)), []);
  // the cursor moved some other way: it goes at once (50 ms after the last)
  const moved = only(s.select("a.txt", [[0, 0]], 2100), "presence");
  assert.deepEqual([moved.rev, moved.ranges], [4, [[0, 0]]]);
  assert.equal(s.text("a.txt"), "Qabcxyz");
});

test("participants get distinct colours, the same from their ids on every page", () => {
  const { s } = joinedWith("");
  for (const id of ["p1", "p2", "p3", "p4", "p5"]) {
    s.frameReceived(JSON.stringify({ type: "participant_joined", participant: { id, name: id, role: "editor" } }), 1);
  }
  const colors = [...s.participants.values()].map((p) => p.color);
  assert.equal(new Set(colors).size, colors.length);
});
