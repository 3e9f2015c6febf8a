import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ago, diffTitle, historyItems } from "../src/history";
import type { HistoryChange } from "../src/protocol";

const NOW = Date.parse("2026-11-30T10:10:00.000Z");

const change = (over: Partial<HistoryChange>): HistoryChange => ({
  rev: 41,
  firstRev: 38,
  author: "a1",
  name: "Ada",
  time: "2026-11-30T10:08:00.000Z",
  inserted: 12,
  deleted: 3,
  line: 4,
  ...over,
});

describe("ago", () => {
  it("reads like a person says it", () => {
    assert.equal(ago("2026-11-30T10:09:50.000Z", NOW), "just now");
    assert.equal(ago("2026-11-30T10:09:00.000Z", NOW), "1 minute ago");
    assert.equal(ago("2026-11-30T10:08:00.000Z", NOW), "2 minutes ago");
    assert.equal(ago("2026-11-30T07:10:00.000Z", NOW), "3 hours ago");
    assert.equal(ago("2026-11-28T10:10:00.000Z", NOW), "2 days ago");
    assert.equal(ago(null, NOW), "just now");
    assert.equal(ago("not a time", NOW), "just now");
  });
});

describe("historyItems", () => {
  it("says who, when, how much and where; picking one opens the text after it", () => {
    const items = historyItems([change({}), change({ rev: 37, firstRev: 37, name: "Bob", line: 0 })], NOW, false);
    assert.deepEqual(
      items.map((i) => [i.label, i.description, i.rev, i.older ?? false]),
      [
        ["$(edit) Ada", "2 minutes ago · +12 −3 · line 5", 41, false],
        ["$(edit) Bob", "2 minutes ago · +12 −3 · line 1", 37, false],
      ],
    );
    assert.match(items[0].detail, /^revs 38–41: /);
    assert.match(items[1].detail, /^rev 37: /);
  });

  it("names an undo or a redo by the change it took back or brought back", () => {
    const [undo, redo] = historyItems(
      [change({ rev: 50, firstRev: 50, kind: "undo", toggles: 38 }), change({ rev: 51, firstRev: 51, kind: "redo", toggles: 38 })],
      NOW,
      false,
    );
    assert.equal(undo.label, "$(discard) Ada undid the change of rev 38");
    assert.equal(redo.label, "$(redo) Ada redid the change of rev 38");
  });

  it("offers older changes when there are more", () => {
    const items = historyItems([change({})], NOW, true);
    assert.deepEqual(items[1], { label: "$(ellipsis) Older changes…", description: "", detail: "before rev 41", rev: 41, older: true });
    assert.equal(historyItems([], NOW, true).length, 0);
  });

  it("calls the text a document was created with what it is", () => {
    assert.equal(historyItems([change({ name: "", author: "" })], NOW, false)[0].label, "$(edit) the document's first text");
  });
});

describe("diffTitle", () => {
  it("says which revision is compared with now", () => {
    assert.equal(diffTitle("src/a.py", 41), "src/a.py (rev 41) ↔ now");
  });
});
