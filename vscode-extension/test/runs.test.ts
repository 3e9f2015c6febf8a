// Runs for the room, the pure part: what a run's terminal writes as the output document grows.
import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { RunInfo } from "../src/protocol";
import { forTerminal, isRunOutput, OutputFeed, startedRun, stoppableRuns, terminalName } from "../src/runs";

describe("OutputFeed", () => {
  const path = ".pairls/runs/r1.log";

  it("writes the text read, line breaks as CR LF", () => {
    const feed = new OutputFeed();
    assert.equal(feed.started, false);
    assert.equal(feed.opened("$ python3 a.py    (run by Ada)\nhi\n"), "$ python3 a.py    (run by Ada)\r\nhi\r\n");
    assert.equal(feed.started, true);
  });

  it("writes each append once, whether it came before, with or after the text read", () => {
    const feed = new OutputFeed();
    // before the text was read: the text holds it
    assert.equal(feed.received({ path, at: 0, text: "$ x\n" }), "");
    feed.opened("$ x\nline 1\n");
    assert.equal(feed.received({ path, at: 4, text: "line 1\n" }), ""); // in the text read
    assert.equal(feed.received({ path, at: 11, text: "line 2\n" }), "line 2\r\n");
    assert.equal(feed.received({ path, at: 18, text: "\n[pairls: x: exit status 3]\n" }), "\r\n[pairls: x: exit status 3]\r\n");
  });

  it("counts code points, as the room does", () => {
    const feed = new OutputFeed();
    feed.opened("🙂\n"); // two code points, three UTF-16 units
    assert.equal(feed.received({ path, at: 2, text: "é\n" }), "é\r\n");
    // an append partly shown: only its new part
    assert.equal(feed.received({ path, at: 3, text: "\nmore" }), "more");
  });

  it("asks for the text again after a gap, and redraws a change that is not an append", () => {
    const feed = new OutputFeed();
    feed.opened("abc");
    assert.equal(feed.received({ path, at: 5, text: "x" }), undefined);
    assert.equal(feed.received({ path, at: null, text: "bc\n" }), "\x1bcbc\r\n");
    assert.equal(feed.received({ path, at: 3, text: "d" }), "d");
  });

  it("leaves a CR alone and a CR LF whole", () => {
    assert.equal(forTerminal("a\r\nb\rc\n"), "a\r\nb\rc\r\n");
  });
});

describe("runs", () => {
  it("knows a run's output document by its path", () => {
    assert.ok(isRunOutput(".pairls/runs/r1.log"));
    assert.ok(isRunOutput("/home/ada/ws/.pairls/runs/r1.log"));
    assert.ok(!isRunOutput("src/runs/r1.log"));
  });

  it("opens a terminal for a run that started or goes on, not for one that ended", () => {
    assert.equal(startedRun({ event: "started", path: ".pairls/runs/r1.log", by: "Ada" }), ".pairls/runs/r1.log");
    assert.equal(startedRun({ event: "starting", path: ".pairls/runs/r1.log", runId: "r1" }), ".pairls/runs/r1.log");
    assert.equal(startedRun({ event: "ended", path: ".pairls/runs/r1.log" }), undefined);
    assert.equal(startedRun({ event: "started", path: "notes.txt" }), undefined);
  });

  it("names the terminal after what runs and whose run it is", () => {
    assert.equal(
      terminalName({ path: ".pairls/runs/r1.log", by: "Ada", command: "python3 slow.py" }),
      "Pairls run: python3 slow.py (Ada)",
    );
    assert.equal(terminalName({ path: ".pairls/runs/r1.log" }), "Pairls run: r1 (someone)");
    assert.equal(terminalName({ path: "p", by: "Ada", command: "x".repeat(100) }), `Pairls run: ${"x".repeat(59)}… (Ada)`);
  });

  it("offers to stop only the user's own runs that have not ended", () => {
    const runs: RunInfo[] = [
      { runId: "a", path: "p/a", state: "running", mine: true },
      { runId: "b", path: "p/b", state: "ended", mine: true },
      { runId: "c", path: "p/c", state: "running", mine: false },
      { runId: "d", path: "p/d", state: "starting", mine: true },
    ];
    assert.deepEqual(
      stoppableRuns(runs).map((r) => r.runId),
      ["a", "d"],
    );
  });
});
