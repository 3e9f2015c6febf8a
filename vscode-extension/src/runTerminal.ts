/**
 * A room run in a terminal, on every participant's side: a Pseudoterminal fed by the run's
 * output document (`.pairls/runs/<runId>.log`), which the language server keeps in step with
 * the room like any room document. The terminal reads its text once (`pairls.runOutput`) and
 * writes each append the server reports (`pairls/runOutput`; runs.ts, OutputFeed); no editor
 * document is opened for it (VS Code would show one as a modified file). Typing in the
 * terminal does nothing: the program runs on its runner's machine.
 */
import * as vscode from "vscode";

import type { ServerConnection } from "./client";
import { type RunOutputParams, ServerCommand } from "./protocol";
import { isRunOutput, OutputFeed, RUNS_DIR, terminalName } from "./runs";

/** How long a terminal waits for the command line of a run someone else started. */
const NAME_WAIT_MS = 1000;

interface RunDescription {
  path: string;
  by?: string;
  command?: string;
}

class RunView implements vscode.Disposable {
  readonly terminal: vscode.Terminal;
  private readonly writer = new vscode.EventEmitter<string>();
  private readonly naming = new vscode.EventEmitter<string>();
  private readonly feed = new OutputFeed();
  /** the terminal is open: what is written now is shown */
  private opened = false;
  /** written before it opened (a pseudoterminal drops it otherwise) */
  private early = "";
  /** the name changed since the terminal was made */
  private renamed = false;
  /** a read of the whole text is under way */
  reading = false;

  constructor(
    private name: string,
    /** the name says what runs (not just the run's id) */
    public named: boolean,
  ) {
    const pty: vscode.Pseudoterminal = {
      onDidWrite: this.writer.event,
      onDidChangeName: this.naming.event,
      open: () => {
        this.opened = true;
        if (this.renamed) {
          this.naming.fire(this.name); // (VS Code ignores a name given before the terminal opened)
        }
        if (this.early) {
          this.writer.fire(this.early);
          this.early = "";
        }
      },
      close: () => undefined,
    };
    this.terminal = vscode.window.createTerminal({ name, pty, iconPath: new vscode.ThemeIcon("run") });
  }

  get started(): boolean {
    return this.feed.started;
  }

  rename(name: string): void {
    if (name !== this.name) {
      this.name = name;
      this.renamed = true;
      if (this.opened) {
        this.naming.fire(name);
      }
    }
    this.named = true;
  }

  read(text: string): void {
    this.write(this.feed.opened(text, this.feed.started));
  }

  /** An append the server reported; false if the text must be read again. */
  received(params: RunOutputParams): boolean {
    const out = this.feed.received(params);
    if (out === undefined) {
      return false;
    }
    this.write(out);
    return true;
  }

  private write(text: string): void {
    if (!text) {
      return;
    }
    if (this.opened) {
      this.writer.fire(text);
    } else {
      this.early += text;
    }
  }

  dispose(): void {
    this.writer.dispose();
    this.naming.dispose();
  }
}

export class RunTerminals implements vscode.Disposable {
  private readonly byPath = new Map<string, RunView>();
  /** runs started elsewhere whose command line has not come yet: their terminal's timer */
  private readonly unnamed = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly subscriptions: vscode.Disposable[];

  constructor(
    private readonly connection: ServerConnection,
    private readonly output: vscode.LogOutputChannel,
  ) {
    this.subscriptions = [
      connection.onRunOutput((params) => this.received(params)),
      vscode.window.onDidCloseTerminal((t) => {
        for (const [path, view] of this.byPath) {
          if (view.terminal === t) {
            this.byPath.delete(path);
            view.dispose();
          }
        }
      }),
    ];
  }

  /**
   * Show the run whose output is at room path *run.path* in its terminal (made once). A run
   * someone else started comes without its command line, which follows at once: its terminal
   * waits for it (a second at most) to be named after it.
   */
  show(run: RunDescription, reveal: boolean): void {
    const waiting = this.unnamed.get(run.path);
    if (!this.byPath.has(run.path) && run.command === undefined && !reveal) {
      if (waiting === undefined) {
        this.unnamed.set(run.path, setTimeout(() => this.show({ ...run, command: undefined }, true), NAME_WAIT_MS));
      }
      return;
    }
    if (waiting !== undefined) {
      clearTimeout(waiting);
      this.unnamed.delete(run.path);
    }
    let view = this.byPath.get(run.path);
    if (view !== undefined && !view.named && run.command !== undefined) {
      view.rename(terminalName(run)); // what it runs is known now
    }
    if (view === undefined) {
      view = new RunView(terminalName(run), run.command !== undefined);
      this.byPath.set(run.path, view);
      void this.read(run.path, view);
      reveal = true;
    }
    if (reveal) {
      view.terminal.show(true); // the panel shows it; the keyboard stays where it was
    }
  }

  /** The run ended: a terminal that could not read its output yet reads it now. */
  ended(path: string): void {
    const view = this.byPath.get(path);
    if (view !== undefined && !view.started) {
      void this.read(path, view);
    }
  }

  /** `window/showDocument` of a file ("Open output"): a run's output shows in its terminal. */
  showUri(uri: vscode.Uri): boolean {
    if (uri.scheme !== "file" || !isRunOutput(uri.path)) {
      return false;
    }
    const at = uri.path.lastIndexOf(`/${RUNS_DIR}`);
    this.show({ path: uri.path.slice(at + 1) }, true);
    return true;
  }

  private received(params: RunOutputParams): void {
    const view = typeof params?.path === "string" ? this.byPath.get(params.path) : undefined;
    if (view === undefined) {
      return;
    }
    if (!view.received(params) || !view.started) {
      // an append was missed, or the text could not be read yet (the room's copy was not
      // here yet): read it now
      void this.read(params.path, view);
    }
  }

  private async read(path: string, view: RunView): Promise<void> {
    if (view.reading) {
      return;
    }
    view.reading = true;
    try {
      const result = await this.connection.execute<{ text: string }>(ServerCommand.runOutput, { path }, false);
      view.read(result.text);
    } catch (e) {
      // (the next append reads it again)
      this.output.info(`${path}: not readable yet: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      view.reading = false;
    }
  }

  dispose(): void {
    for (const t of this.unnamed.values()) {
      clearTimeout(t);
    }
    this.unnamed.clear();
    for (const s of this.subscriptions) {
      s.dispose();
    }
    for (const view of this.byPath.values()) {
      view.dispose();
    }
    this.byPath.clear();
  }
}
