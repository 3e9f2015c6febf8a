// The manifest: the command names and titles the project uses, and the commands the extension registers.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";

const root = path.resolve(__dirname, "../..");
const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
const commandsSource = fs.readFileSync(path.join(root, "src/commands.ts"), "utf8");

describe("package.json", () => {
  it("contributes the commands with their exact titles", () => {
    const titles = manifest.contributes.commands.map((c: { title: string }) => c.title).sort();
    assert.deepEqual(titles, [
      "Pairls: Ask to Run",
      "Pairls: Copy Invite",
      "Pairls: Create Room",
      "Pairls: Delete Room",
      "Pairls: Follow Participant",
      "Pairls: Join Room",
      "Pairls: Leave Room",
      "Pairls: Redo My Change",
      "Pairls: Restart Server",
      "Pairls: Rotate Invites",
      "Pairls: Run for the Room",
      "Pairls: Show History",
      "Pairls: Show Participants",
      "Pairls: Stop Run",
      "Pairls: Undo My Last Change",
    ]);
  });

  it("registers every contributed command and none of the server's own ids", () => {
    const server = [
      "createRoom", "joinRoom", "leaveRoom", "shareDocument", "openDocument", "participants", "follow", "status",
      "kick", "setRole", "rotateInvites", "deleteRoom", "undoMine", "redoMine", "history", "blame", "openRevision",
      "revisionText", "run", "stopRun", "requestRun", "runs",
    ];
    for (const c of manifest.contributes.commands as { command: string }[]) {
      assert.ok(commandsSource.includes(`"${c.command}"`), `${c.command} is not in src/commands.ts`);
      assert.ok(!server.map((s) => `pairls.${s}`).includes(c.command), `${c.command} is the server's`);
    }
  });

  it("suggests keys for undoing and redoing your own changes, in a room only", () => {
    const keys = manifest.contributes.keybindings.map((k: { command: string; key: string; when: string }) => [
      k.command,
      k.key,
      k.when,
    ]);
    assert.deepEqual(keys, [
      ["pairls.edit.undoMine", "ctrl+alt+z", "editorTextFocus && !editorReadonly && pairls.inRoom"],
      ["pairls.edit.redoMine", "ctrl+alt+shift+z", "editorTextFocus && !editorReadonly && pairls.inRoom"],
    ]);
  });

  it("declares the settings, the bundle and where it runs", () => {
    const props = manifest.contributes.configuration.properties;
    assert.deepEqual(Object.keys(props).sort(), [
      "pairls.autoShare",
      "pairls.completions",
      "pairls.displayName",
      "pairls.hubUrl",
      "pairls.pythonPath",
      "pairls.trace.server",
    ]);
    assert.deepEqual(props["pairls.completions"].enum, ["auto", "room", "all", "off"]);
    assert.equal(props["pairls.completions"].default, "auto");
    assert.equal(manifest.main, "./dist/extension.js");
    assert.deepEqual(manifest.extensionKind, ["workspace"]);
  });

  it("activates on its commands (implicit) or a workspace's settings file, not at every startup", () => {
    assert.deepEqual(manifest.activationEvents, ["workspaceContains:.vscode/settings.json"]);
  });

  it("ships the bundled language server and only that beside the extension", () => {
    const ignore = fs.readFileSync(path.join(root, ".vscodeignore"), "utf8").split("\n");
    for (const line of ["**", "!dist/extension.js", "!bundled/tool/server.py", "!bundled/libs/**", "bundled/libs/**/__pycache__/**"]) {
      assert.ok(ignore.includes(line), `.vscodeignore: no ${line}`);
    }
    assert.ok(fs.existsSync(path.join(root, "bundled/tool/server.py")));
    assert.match(fs.readFileSync(path.join(root, "src/extension.ts"), "utf8"), /asAbsolutePath\("bundled\/tool\/server\.py"\)/);
  });
});
