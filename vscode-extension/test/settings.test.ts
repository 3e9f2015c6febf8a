import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import { initializationOptions, readSettings } from "../src/settings";

describe("settings", () => {
  it("defaults: autoShare on, the rest left to the server", () => {
    const s = readSettings(() => undefined);
    assert.deepEqual(s, { hubUrl: "", displayName: "", autoShare: true, pythonPath: "" });
    assert.deepEqual(initializationOptions(s), { autoShare: true });
  });

  it("pass hubUrl, displayName and autoShare as initializationOptions", () => {
    const values: Record<string, unknown> = {
      hubUrl: " ws://hub:9000 ",
      displayName: "ada".repeat(30),
      autoShare: false,
      pythonPath: "/venv/bin/python",
    };
    const s = readSettings((k) => values[k]);
    assert.deepEqual(initializationOptions(s), {
      hubUrl: "ws://hub:9000",
      displayName: "ada".repeat(30).slice(0, 64),
      autoShare: false,
    });
  });
});
