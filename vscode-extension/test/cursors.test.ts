import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  CursorStore,
  groupCursors,
  labelForeground,
  localRanges,
  normalizeColor,
  translucent,
} from "../src/cursors";
import type { PeerCursor } from "../src/protocol";

const r = (sl: number, sc: number, el: number, ec: number) => ({
  start: { line: sl, character: sc },
  end: { line: el, character: ec },
});

const bob: PeerCursor = { participantId: "b", name: "bob", color: "#3cb44b", ranges: [r(1, 2, 1, 2)] };
const cy: PeerCursor = {
  participantId: "c",
  name: "cy",
  color: "#4363D8",
  ranges: [r(3, 0, 5, 4), r(7, 1, 7, 1)],
};

describe("groupCursors", () => {
  it("makes one group per participant: selections to tint, carets at the heads, the label at the first head", () => {
    const groups = groupCursors([bob, cy]);
    assert.deepEqual(groups, [
      { participantId: "b", name: "bob", color: "#3cb44b", selections: [], carets: [{ line: 1, character: 2 }], label: { line: 1, character: 2 } },
      {
        participantId: "c",
        name: "cy",
        color: "#4363d8",
        selections: [r(3, 0, 5, 4)],
        carets: [
          { line: 5, character: 4 },
          { line: 7, character: 1 },
        ],
        label: { line: 5, character: 4 },
      },
    ]);
  });

  it("keeps a backwards selection's head as the caret", () => {
    const [g] = groupCursors([{ ...bob, ranges: [r(9, 9, 2, 0)] }]);
    assert.deepEqual(g.label, { line: 2, character: 0 });
    assert.deepEqual(g.selections, [r(9, 9, 2, 0)]);
  });

  it("merges entries of the same participant", () => {
    const groups = groupCursors([bob, { ...bob, ranges: [r(4, 0, 4, 3)] }]);
    assert.equal(groups.length, 1);
    assert.equal(groups[0].carets.length, 2);
    assert.deepEqual(groups[0].label, { line: 1, character: 2 });
  });

  it("drops malformed ranges and participants with none", () => {
    const bad = {
      participantId: "x",
      name: "",
      color: "red",
      ranges: [{ start: { line: -1, character: 0 }, end: { line: 0, character: 0 } }, { start: { line: 0 } }, null, r(0, 1.5, 0, 2)],
    } as unknown as PeerCursor;
    assert.deepEqual(groupCursors([bad, { ...bob, ranges: [] }]), []);
    const [g] = groupCursors([{ ...(bad as PeerCursor), ranges: [r(0, 0, 0, 1)] }]);
    assert.equal(g.name, "?");
    assert.equal(g.color, "#4363d8"); // fallback colour
  });

  it("draws at most 64 ranges of one participant", () => {
    const many = Array.from({ length: 100 }, (_, i) => r(i, 0, i, 0));
    assert.equal(groupCursors([{ ...bob, ranges: many }])[0].carets.length, 64);
  });
});

describe("CursorStore", () => {
  it("replaces a document's cursors and forgets an empty one", () => {
    const s = new CursorStore();
    s.update("file:///a", { cursors: [bob, cy] });
    s.update("file:///b", { cursors: [cy] });
    assert.deepEqual([...s.participantIds()].sort(), ["b", "c"]);
    s.update("file:///a", { cursors: [] });
    assert.deepEqual(s.uris(), ["file:///b"]);
    assert.deepEqual(s.get("file:///a"), []);
  });

  it("drops participants who left and names the documents that changed", () => {
    const s = new CursorStore();
    s.update("file:///a", { cursors: [bob, cy] });
    s.update("file:///b", { cursors: [cy] });
    assert.deepEqual(s.retain(new Set(["b"])), ["file:///a", "file:///b"]);
    assert.deepEqual(s.uris(), ["file:///a"]);
    assert.deepEqual(s.get("file:///a").map((g) => g.participantId), ["b"]);
    assert.deepEqual(s.clear(), ["file:///a"]);
    assert.equal(s.participantIds().size, 0);
  });
});

describe("colours", () => {
  it("normalizes and derives tint and label colours", () => {
    assert.equal(normalizeColor("#ABC"), "#aabbcc");
    assert.equal(normalizeColor("#E6194B"), "#e6194b");
    assert.equal(normalizeColor("url(x)"), "#4363d8");
    assert.equal(translucent("#e6194b", 0.25), "rgba(230, 25, 75, 0.25)");
    assert.equal(labelForeground("#bcf60c"), "#000000"); // lime: dark text
    assert.equal(labelForeground("#911eb4"), "#ffffff"); // purple: light text
  });
});

describe("localRanges", () => {
  it("sends anchor as start and the caret as end", () => {
    const sel = [{ anchor: { line: 5, character: 1 }, active: { line: 2, character: 0 } }];
    assert.deepEqual(localRanges(sel), [r(5, 1, 2, 0)]);
    assert.equal(localRanges(Array(70).fill(sel[0])).length, 64);
  });
});
