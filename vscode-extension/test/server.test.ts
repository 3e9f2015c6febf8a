// The contract the extension drives, against the language server bundled in the .vsix
// (`<python> bundled/tool/server.py` over stdio, the way client.ts starts it), without VS Code.
// Needs the bundle (`npm run bundle`, part of `make extension`) and a Python 3.11+ (python3 on
// PATH, or $PAIRLS_PYTHON); nothing of pairls needs to be installed into it.
import * as assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import {
  createProtocolConnection,
  ExecuteCommandRequest,
  InitializedNotification,
  InitializeRequest,
  type ProtocolConnection,
  ShowMessageNotification,
  type ShowMessageParams,
  StreamMessageReader,
  StreamMessageWriter,
} from "vscode-languageserver-protocol/node";

import type { Status } from "../src/protocol";
import { initializationOptions } from "../src/settings";
import { formatStatus } from "../src/status";

const PYTHON = process.env.PAIRLS_PYTHON || "python3";
const SERVER = path.resolve(__dirname, "../../bundled/tool/server.py");
const skip = !fs.existsSync(path.resolve(SERVER, "../../libs/lsp_bridge")) && "no bundle (npm run bundle)";
// not the checkout's packages: the server must find its own, wherever it is started
const ENV = { ...process.env, PYTHONPATH: "" };
const CWD = path.parse(SERVER).root;

describe("bundled/tool/server.py", { skip }, () => {
  it("runs the bundled pairls-lsp", async () => {
    const { stdout } = await promisify(execFile)(PYTHON, [SERVER, "--version"], { env: ENV, cwd: CWD });
    assert.match(stdout, /^pairls-lsp \d+\.\d+\.\d+/);
  });
});

describe("pairls-lsp contract", { skip, timeout: 60000 }, () => {
  let proc: ChildProcess;
  let conn: ProtocolConnection;
  const messages: ShowMessageParams[] = [];
  let stderr = "";

  before(async () => {
    proc = spawn(PYTHON, [SERVER], { stdio: ["pipe", "pipe", "pipe"], env: ENV, cwd: CWD });
    proc.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString(); // pygls logs the refused commands with tracebacks: kept, not shown
    });
    conn = createProtocolConnection(
      new StreamMessageReader(proc.stdout!),
      new StreamMessageWriter(proc.stdin!),
    );
    conn.onNotification(ShowMessageNotification.type, (p: ShowMessageParams) => {
      messages.push(p);
    });
    conn.listen();
    const init = initializationOptions({
      hubUrl: "ws://127.0.0.1:9", // nothing listens there
      displayName: "ada",
      autoShare: true,
      pythonPath: "",
      completions: "auto",
    });
    const result = await conn.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri: null,
      capabilities: { general: { positionEncodings: ["utf-16"] } },
      initializationOptions: init,
      clientInfo: { name: "Visual Studio Code", version: "1.91.0" },
    });
    const commands = result.capabilities.executeCommandProvider?.commands ?? [];
    for (const command of ["pairls.createRoom", "pairls.undoMine", "pairls.redoMine", "pairls.history", "pairls.blame", "pairls.openRevision", "pairls.revisionText"]) {
      assert.ok(commands.includes(command), `server commands: ${commands.join(", ")}`);
    }
    await conn.sendNotification(InitializedNotification.type, {});
  });

  after(async () => {
    conn?.dispose();
    proc?.kill();
    if (process.env.PAIRLS_TEST_VERBOSE) {
      process.stderr.write(stderr);
    }
  });

  const execute = <T>(command: string, arg: object = {}) =>
    conn.sendRequest(ExecuteCommandRequest.type, { command, arguments: [arg] }) as Promise<T>;

  it("pairls.status has the shape the status bar reads", async () => {
    const st = await execute<Status>("pairls.status");
    assert.equal(st.connected, false);
    assert.equal(st.state, "disconnected");
    assert.equal(st.roomId, null);
    assert.equal(st.participants, 0);
    assert.equal(st.hubUrl, "ws://127.0.0.1:9"); // from initializationOptions
    assert.deepEqual(st.documents, {});
    assert.equal(formatStatus({ server: "running", status: st }).text, "$(broadcast) Pairls");
  });

  it("pairls.participants is empty outside a room", async () => {
    assert.deepEqual(await execute("pairls.participants"), { participants: [] });
  });

  it("a failed create reports the reason itself (so the extension does not repeat it)", async () => {
    await assert.rejects(execute("pairls.createRoom", { name: "x" }), /cannot reach the hub/);
    assert.ok(
      messages.some((m) => /cannot reach the hub/.test(m.message)),
      JSON.stringify(messages),
    );
  });

  it("the owner's commands are offered by the server, and need a room", async () => {
    for (const command of ["pairls.kick", "pairls.setRole", "pairls.rotateInvites", "pairls.deleteRoom"]) {
      await assert.rejects(execute(command, { participantId: "x", role: "viewer" }), /room first/, command);
    }
  });

  it("the history commands are offered by the server, and need a room", async () => {
    const uri = "file:///nowhere/a.py";
    for (const command of ["pairls.undoMine", "pairls.redoMine", "pairls.history", "pairls.blame", "pairls.openRevision"]) {
      await assert.rejects(execute(command, { uri, rev: 0 }), /room first/, command);
    }
    await assert.rejects(execute("pairls.revisionText", { uri: "pairls-rev:/a.py?room=R&rev=1" }), /no longer in/);
  });

  it("a malformed invite is an error the extension shows", async () => {
    await assert.rejects(execute("pairls.joinRoom", { invite: "nonsense" }), /not a pairls invite/);
  });
});
