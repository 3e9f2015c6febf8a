import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import { hasWorkspaceSettings, initializationOptions, readSettings, SERVER_SETTINGS } from "../src/settings";

describe("settings", () => {
  it("defaults: autoShare on, completions auto, the rest left to the server", () => {
    const s = readSettings(() => undefined);
    assert.deepEqual(s, { hubUrl: "", displayName: "", autoShare: true, pythonPath: "", completions: "auto" });
    assert.deepEqual(initializationOptions(s), {
      autoShare: true,
      completions: { "*": "all" },
      virtualRevisions: true,
      cursorNotifications: true,
      cursorHints: false,
      runOutput: true,
    });
  });

  it("pass hubUrl, displayName, autoShare and completions as initializationOptions", () => {
    const values: Record<string, unknown> = {
      hubUrl: " ws://hub:9000 ",
      displayName: "ada".repeat(30),
      autoShare: false,
      pythonPath: "/venv/bin/python",
      completions: "room",
    };
    const s = readSettings((k) => values[k]);
    assert.deepEqual(initializationOptions(s, { rememberedHubUrl: "ws://other:1", servedLanguages: ["python"] }), {
      hubUrl: "ws://hub:9000",
      displayName: "ada".repeat(30).slice(0, 64),
      autoShare: false,
      completions: "room",
      virtualRevisions: true,
      cursorNotifications: true,
      cursorHints: false,
      runOutput: true,
    });
  });

  it("without pairls.hubUrl, the hub the user named last (Create Room asks for it)", () => {
    const s = readSettings(() => undefined);
    const opts = initializationOptions(s, { rememberedHubUrl: "ws://10.0.0.5:8765", servedLanguages: ["python"] });
    assert.deepEqual(opts, {
      autoShare: true,
      hubUrl: "ws://10.0.0.5:8765",
      completions: { "*": "all", python: "room" },
      virtualRevisions: true,
      cursorNotifications: true,
      cursorHints: false,
      runOutput: true,
    });
  });
});

describe("hasWorkspaceSettings", () => {
  it("counts the workspace's and its folders' settings, not the user's", () => {
    const values: Record<string, object> = {
      "pairls.hubUrl": { globalValue: "ws://h:1" },
      "pairls.displayName": {},
    };
    const inspect = (key: string) => values[key];
    assert.equal(hasWorkspaceSettings(SERVER_SETTINGS, inspect), false);
    values["pairls.autoShare"] = { workspaceFolderValue: false };
    assert.equal(hasWorkspaceSettings(SERVER_SETTINGS, inspect), true);
    assert.equal(hasWorkspaceSettings(SERVER_SETTINGS, (k) => (k === "pairls.hubUrl" ? { workspaceValue: "ws://h:1" } : undefined)), true);
  });
});
