/**
 * The pairls language server process and its LanguageClient: start (on demand), stop,
 * restart, run a server command, pass its `pairls/*` notifications on. No sync logic:
 * documents go to the server through the client's ordinary didOpen/didChange.
 *
 * The server is the one bundled in the .vsix: `<python> bundled/tool/server.py`, which puts
 * bundled/libs first on sys.path, so any Python 3.11+ runs it (python.ts finds one).
 */
import * as vscode from "vscode";
import {
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  State,
} from "vscode-languageclient/node";

import {
  type CursorsParams,
  type InitializationOptions,
  Notification,
  type ParticipantsParams,
  type Range,
  type RunOutputParams,
  type RunsParams,
  type Status,
} from "./protocol";
import type { Found } from "./python";
import type { ServerState } from "./status";

export const CLIENT_ID = "pairls";
export const CLIENT_NAME = "Pairls";

export interface ServerConfig {
  python: string;
  /** bundled/tool/server.py in the installed extension */
  serverScript: string;
  initializationOptions: InitializationOptions;
  /** the server asks to show *uri* (`window/showDocument`): true if the extension showed it its own way */
  showDocument?: (uri: vscode.Uri) => boolean;
}

/** The LanguageClient for `<python> bundled/tool/server.py` over stdio. */
export function createLanguageClient(config: ServerConfig, output: vscode.LogOutputChannel): LanguageClient {
  const serverOptions: ServerOptions = {
    // no `transport`: stdio is the default, and TransportKind.stdio would add `--stdio`
    command: config.python,
    args: [config.serverScript],
    options: { env: { ...process.env, PYTHONUNBUFFERED: "1" } },
  };
  const clientOptions: LanguageClientOptions = {
    // every file on disk; untitled buffers have no workspace path to share under
    documentSelector: [{ scheme: "file" }],
    initializationOptions: config.initializationOptions,
    outputChannel: output,
    traceOutputChannel: output,
    middleware: {
      // The server guesses where a plugin-less editor's cursor is from highlight requests,
      // and labels peers with inlay hints. This extension sends the real selections
      // (pairls/cursor) and draws peers itself, so those would be wrong or twice over.
      // Hovers stay: in a shared document they say who last changed the line (the server
      // takes no cursor from them: initializationOptions.cursorNotifications).
      provideDocumentHighlights: () => undefined,
      provideInlayHints: () => [],
      // a run's output ("Open output") shows in its terminal (runTerminal.ts), not as a file
      window: {
        showDocument: (params, token, next) =>
          config.showDocument?.(vscode.Uri.parse(params.uri)) ? { success: true } : next(params, token),
      },
    },
  };
  return new LanguageClient(CLIENT_ID, CLIENT_NAME, serverOptions, clientOptions);
}

export class NotRunning extends Error {
  /** *reported*: the user has been told why already (no Python: a notification with a fix) */
  constructor(readonly reported = false) {
    super("the Pairls language server is not running (Pairls: Restart Server)");
  }
}

/** What a server was started with: when this changes, it needs a restart. */
interface StartedWith {
  python: string;
  options: string;
}

/** The server and its client across restarts; one per window. */
export class ServerConnection implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private clientDisposables: vscode.Disposable[] = [];
  /** start/stop run one at a time */
  private queue: Promise<unknown> = Promise.resolve();
  private state: ServerState = "stopped";
  private startedWith: StartedWith | undefined;
  /** the last start failed and the user was shown why */
  private failureReported = false;
  private disposed = false;

  private readonly statusEmitter = new vscode.EventEmitter<Status>();
  private readonly participantsEmitter = new vscode.EventEmitter<ParticipantsParams>();
  private readonly cursorsEmitter = new vscode.EventEmitter<{ uri: vscode.Uri; params: CursorsParams }>();
  private readonly stateEmitter = new vscode.EventEmitter<ServerState>();
  private readonly runsEmitter = new vscode.EventEmitter<RunsParams>();
  private readonly runOutputEmitter = new vscode.EventEmitter<RunOutputParams>();
  /** `window/showDocument` of a run's output: shown by whoever set this (extension.ts) */
  showRunOutput: ((uri: vscode.Uri) => boolean) | undefined;
  readonly onRuns = this.runsEmitter.event;
  readonly onRunOutput = this.runOutputEmitter.event;
  readonly onStatus = this.statusEmitter.event;
  readonly onParticipants = this.participantsEmitter.event;
  readonly onCursors = this.cursorsEmitter.event;
  readonly onServerState = this.stateEmitter.event;

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly serverScript: string,
    private readonly findPython: () => Promise<Found>,
    private readonly initializationOptions: () => InitializationOptions,
    /** shown when no interpreter can run the server (the message says how to fix it) */
    private readonly reportNoPython: (message: string) => void,
  ) {}

  get serverState(): ServerState {
    return this.state;
  }

  get running(): boolean {
    return this.client !== undefined && this.client.state === State.Running;
  }

  /** A server process exists (running, starting, or restarting after a crash). */
  get started(): boolean {
    return this.client !== undefined;
  }

  /** Whether the interpreter or the initializationOptions changed since the server started. */
  async isStale(): Promise<boolean> {
    const was = this.startedWith;
    if (this.client === undefined || was === undefined) {
      return false;
    }
    const found = await this.findPython();
    return !found.ok || found.python !== was.python || JSON.stringify(this.initializationOptions()) !== was.options;
  }

  start(): Promise<boolean> {
    return this.serialize(() => this.doStart());
  }

  stop(): Promise<void> {
    return this.serialize(() => this.doStop());
  }

  restart(): Promise<boolean> {
    return this.serialize(async () => {
      await this.doStop();
      return this.doStart();
    });
  }

  /**
   * Run a server command (`workspace/executeCommand`) with its one JSON object argument,
   * starting the server first if it is not running (the first Pairls command starts it)
   * unless *start* is false.
   */
  async execute<T>(command: string, arg: object = {}, start = true): Promise<T> {
    // A command run while the server is (re)starting waits for that start to finish.
    await this.queue;
    if (this.client === undefined && !(start && (await this.start()))) {
      throw new NotRunning(this.failureReported);
    }
    const client = this.client;
    if (client === undefined || client.state !== State.Running) {
      throw new NotRunning();
    }
    return (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [arg] })) as T;
  }

  /** *uri* as the server knows it (the language client's spelling of URIs). */
  protocolUri(uri: vscode.Uri): string {
    return this.client?.code2ProtocolConverter.asUri(uri) ?? uri.toString();
  }

  /** Tell the server where the local selections are (anchor -> head) in *uri*. */
  sendCursor(uri: vscode.Uri, ranges: Range[]): void {
    const client = this.client;
    if (client === undefined || client.state !== State.Running) {
      return;
    }
    const params = { uri: client.code2ProtocolConverter.asUri(uri), ranges };
    client.sendNotification(Notification.cursor, params).catch((e: unknown) => {
      this.output.debug(`pairls/cursor not sent: ${String(e)}`);
    });
  }

  dispose(): void {
    this.disposed = true;
    void this.stop();
    this.statusEmitter.dispose();
    this.participantsEmitter.dispose();
    this.cursorsEmitter.dispose();
    this.stateEmitter.dispose();
    this.runsEmitter.dispose();
    this.runOutputEmitter.dispose();
  }

  private serialize<T>(f: () => Promise<T>): Promise<T> {
    const next = this.queue.then(f, f);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private setState(state: ServerState): void {
    if (state !== this.state) {
      this.state = state;
      this.stateEmitter.fire(state);
    }
  }

  private async doStart(): Promise<boolean> {
    if (this.client !== undefined) {
      return true;
    }
    if (this.disposed) {
      return false;
    }
    this.failureReported = false;
    this.setState("starting");
    const found = await this.findPython();
    for (const t of found.tried) {
      this.output.info(`${t.python} (${t.source}) cannot run the language server: ${t.reason}`);
    }
    if (!found.ok) {
      this.output.error(found.message);
      this.setState("failed");
      this.failureReported = true;
      this.reportNoPython(found.message);
      return false;
    }
    const initializationOptions = this.initializationOptions();
    const which = [found.source, found.executable, found.version && `Python ${found.version}`].filter(Boolean);
    this.output.info(`starting the pairls language server: ${found.python} ${this.serverScript} (${which.join(", ")})`);
    this.output.info(`initializationOptions: ${JSON.stringify(initializationOptions)}`);
    const client = createLanguageClient(
      {
        python: found.python,
        serverScript: this.serverScript,
        initializationOptions,
        showDocument: (uri) => this.showRunOutput?.(uri) ?? false,
      },
      this.output,
    );
    this.client = client;
    this.startedWith = { python: found.python, options: JSON.stringify(initializationOptions) };
    this.clientDisposables = [
      client.onNotification(Notification.status, (params: Status) => this.statusEmitter.fire(params)),
      client.onNotification(Notification.runs, (params: RunsParams) => this.runsEmitter.fire(params)),
      client.onNotification(Notification.runOutput, (params: RunOutputParams) => this.runOutputEmitter.fire(params)),
      client.onNotification(Notification.participants, (params: ParticipantsParams) =>
        this.participantsEmitter.fire(params),
      ),
      client.onNotification(Notification.cursors, (params: CursorsParams) => {
        if (params && typeof params.uri === "string") {
          this.cursorsEmitter.fire({ uri: client.protocol2CodeConverter.asUri(params.uri), params });
        }
      }),
      client.onDidChangeState((e) => {
        if (this.client !== client) {
          return;
        }
        if (e.newState === State.Running) {
          this.setState("running");
        } else if (e.newState === State.Starting) {
          this.setState("starting");
        } else {
          this.setState("failed"); // stopped without our asking: crashed past the restart limit
        }
      }),
    ];
    try {
      await client.start();
    } catch (e) {
      this.output.error(`the pairls language server did not start: ${String(e)}`);
      await this.disposeClient();
      this.setState("failed");
      return false;
    }
    this.setState("running");
    return true;
  }

  private async doStop(): Promise<void> {
    if (this.client === undefined) {
      return;
    }
    await this.disposeClient();
    this.setState("stopped");
  }

  private async disposeClient(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.startedWith = undefined;
    for (const d of this.clientDisposables) {
      d.dispose();
    }
    this.clientDisposables = [];
    if (client === undefined) {
      return;
    }
    try {
      if (client.needsStop()) {
        await client.stop(3000);
      }
    } catch (e) {
      this.output.warn(`stopping the pairls language server: ${String(e)}`);
    }
    await client.dispose(3000).catch(() => undefined);
  }
}
