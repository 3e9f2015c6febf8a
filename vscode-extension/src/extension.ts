/**
 * Pairls for VS Code: starts the pairls language server bundled in the .vsix and gives it a UI
 * (commands, status bar item, peers' cursors). The server holds the room and every bit of sync
 * logic; see client.ts for the process, commands.ts for what the user runs.
 *
 * The extension activates when a Pairls command runs or a workspace folder has a
 * .vscode/settings.json; the server starts with the first Pairls command, or at once in a
 * workspace with Pairls settings of its own (settings.ts, hasWorkspaceSettings).
 */
import * as vscode from "vscode";

import { ServerConnection } from "./client";
import { Command, Commands } from "./commands";
import { servedLanguages } from "./completions";
import { PeerDecorations } from "./decorations";
import { REVISION_SCHEME, type Status, ServerCommand } from "./protocol";
import { startedRun } from "./runs";
import { RunTerminals } from "./runTerminal";
import { defaultPython, expandPath, findInterpreter, MIN_PYTHON_TEXT, probeInterpreter } from "./python";
import { onDidChangePythonInterpreter, pythonExtensionInterpreter } from "./pythonExtension";
import { SelectionSender } from "./selection";
import { hasWorkspaceSettings, initializationOptions, readSettings, SERVER_SETTINGS } from "./settings";
import { StatusBar } from "./statusBar";

const REMEMBERED_HUB = "pairls.lastHubUrl";
const PYTHON_DOWNLOADS = "https://www.python.org/downloads/";

let connection: ServerConnection | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("Pairls", { log: true });
  const config = () => vscode.workspace.getConfiguration("pairls");
  const settings = () => readSettings((key) => config().get(key));
  const workspaceFolder = () => vscode.workspace.workspaceFolders?.[0];
  const served = () =>
    servedLanguages(
      (id) => vscode.extensions.getExtension(id) !== undefined,
      vscode.workspace.getConfiguration("python").get<string>("languageServer"),
    );

  connection = new ServerConnection(
    output,
    context.asAbsolutePath("bundled/tool/server.py"),
    () =>
      findInterpreter({
        setting: () => expandPath(settings().pythonPath, workspaceFolder()?.uri.fsPath),
        environment: () => process.env.PAIRLS_PYTHON,
        pythonExtension: () => pythonExtensionInterpreter(workspaceFolder()?.uri),
        onPath: () => defaultPython(),
        probe: (python) => probeInterpreter(python),
      }),
    () =>
      initializationOptions(settings(), {
        rememberedHubUrl: context.globalState.get<string>(REMEMBERED_HUB),
        servedLanguages: served(),
      }),
    (message) => {
      const actions = ["Install Python", "Open Settings", "Show Log"];
      void vscode.window.showErrorMessage(message, ...actions).then((pick) => {
        if (pick === "Install Python") {
          void vscode.env.openExternal(vscode.Uri.parse(PYTHON_DOWNLOADS));
        } else if (pick === "Open Settings") {
          void vscode.commands.executeCommand("workbench.action.openSettings", "pairls.pythonPath");
        } else if (pick === "Show Log") {
          output.show();
        }
      });
    },
  );
  const conn = connection;
  const statusBar = new StatusBar(Command.showParticipants);
  const decorations = new PeerDecorations();
  const selections = new SelectionSender(conn);
  const runTerminals = new RunTerminals(conn, output);
  conn.showRunOutput = (uri) => runTerminals.showUri(uri);
  const commands = new Commands(
    conn,
    output,
    {
      configured: () => settings().hubUrl,
      remembered: () => context.globalState.get<string>(REMEMBERED_HUB),
      remember: (hubUrl) => context.globalState.update(REMEMBERED_HUB, hubUrl),
    },
    () => statusBar.participants,
    () => decorations.clear(),
    (run) => runTerminals.show(run, true),
  );
  commands.register(context);

  const roomGone = () => {
    decorations.clear();
    commands.roomLeft();
  };

  // A setting, the Python interpreter or the installed language extensions changed: a server
  // started with other ones restarts, at once when not in a room, else when the user agrees.
  let reconsidering = Promise.resolve();
  const reconsider = (why: string) => {
    reconsidering = reconsidering.then(async () => {
      if (!(await conn.isStale())) {
        return;
      }
      if (!statusBar.status?.roomId) {
        output.info(`restarting the language server: ${why}`);
        await conn.restart();
        return;
      }
      const pick = await vscode.window.showInformationMessage(
        `Pairls: ${why}; the language server restarts to use it, and you leave the room.`,
        "Restart Now",
      );
      if (pick !== undefined) {
        await commands.restartServer();
      }
    });
  };
  let followingPython: vscode.Disposable | undefined;

  context.subscriptions.push(
    output,
    conn,
    statusBar,
    decorations,
    selections,
    runTerminals,
    // a run for the room, anyone's: its terminal opens on every participant's side
    conn.onRuns((params) => {
      const path = startedRun(params);
      if (path !== undefined) {
        const own = typeof params.runId === "string";
        runTerminals.show({ path, by: own ? "you" : params.by, command: params.command }, false);
      } else if (params?.event === "ended" && typeof params.path === "string") {
        runTerminals.ended(params.path);
      }
    }),
    conn.onServerState((state) => {
      statusBar.setServer(state);
      if (state !== "running") {
        roomGone();
        return;
      }
      if (followingPython === undefined) {
        followingPython = onDidChangePythonInterpreter(() => reconsider("the Python interpreter changed"));
        context.subscriptions.push(followingPython);
      }
      void conn.execute<Status>(ServerCommand.status, {}, false).then(
        (status) => statusBar.setStatus(status),
        (e: unknown) => output.warn(`pairls.status: ${String(e)}`),
      );
    }),
    conn.onStatus((status) => {
      const wasIn = statusBar.status?.roomId;
      const shared = Object.keys(statusBar.status?.documents ?? {}).length;
      statusBar.setStatus(status);
      if (!status.roomId) {
        if (wasIn) {
          roomGone();
        }
      } else if (Object.keys(status.documents ?? {}).length !== shared) {
        selections.resendActive(); // a newly shared document: peers see our cursor at once
      }
    }),
    conn.onParticipants(({ participants }) => {
      const list = Array.isArray(participants) ? participants : [];
      statusBar.setParticipants(list);
      decorations.participantsChanged(new Set(list.map((p) => p.id)));
      commands.participantsChanged(list);
    }),
    conn.onCursors(({ uri, params }) => decorations.cursorsReceived(uri, params)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (SERVER_SETTINGS.some((s) => e.affectsConfiguration(s))) {
        reconsider("the Pairls settings changed");
      } else if (e.affectsConfiguration("python.languageServer")) {
        reconsider("the Python language server changed");
      }
    }),
    vscode.extensions.onDidChange(() => reconsider("the installed extensions changed")),
    // earlier revisions (Show History): read-only documents whose text the server gives
    vscode.workspace.registerTextDocumentContentProvider(REVISION_SCHEME, {
      provideTextDocumentContent: async (uri) => {
        const result = await conn.execute<{ text: string }>(ServerCommand.revisionText, { uri: uri.toString() }, false);
        return result.text;
      },
    }),
  );

  // the workspace's settings, and each folder's (in a multi-root workspace they differ)
  const scopes = [undefined, ...(vscode.workspace.workspaceFolders ?? []).map((f) => f.uri)];
  const ownSettings = scopes.some((scope) =>
    hasWorkspaceSettings(SERVER_SETTINGS, (key) =>
      vscode.workspace.getConfiguration("pairls", scope).inspect(key.replace(/^pairls\./, "")),
    ),
  );
  if (ownSettings) {
    output.info(`this workspace has Pairls settings: starting the language server (Python ${MIN_PYTHON_TEXT}+)`);
    void conn.start(); // not awaited: activation must not wait for Python
  }
}

export async function deactivate(): Promise<void> {
  await connection?.stop();
  connection = undefined;
}
