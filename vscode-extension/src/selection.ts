/**
 * Sends the local selections to the server (`pairls/cursor`) when they change, debounced a
 * little so that holding an arrow key sends a few notifications, not one per keystroke.
 */
import * as vscode from "vscode";

import type { ServerConnection } from "./client";
import { localRanges } from "./cursors";

export const SELECTION_DEBOUNCE_MS = 50;

export class SelectionSender implements vscode.Disposable {
  private timer: NodeJS.Timeout | undefined;
  private pending: vscode.TextEditor | undefined;
  private readonly disposables: vscode.Disposable[];

  constructor(
    private readonly connection: ServerConnection,
    private readonly delayMs = SELECTION_DEBOUNCE_MS,
  ) {
    this.disposables = [
      vscode.window.onDidChangeTextEditorSelection((e) => this.schedule(e.textEditor)),
      vscode.window.onDidChangeActiveTextEditor((e) => e && this.schedule(e)),
    ];
  }

  /** Send the active editor's selections soon (e.g. once its document is shared). */
  resendActive(): void {
    const editor = vscode.window.activeTextEditor;
    if (editor !== undefined) {
      this.schedule(editor);
    }
  }

  private schedule(editor: vscode.TextEditor): void {
    if (editor.document.uri.scheme !== "file") {
      return;
    }
    if (this.pending !== undefined && this.pending !== editor) {
      this.flush(); // another editor: the last one's selections go first
    }
    this.pending = editor;
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), this.delayMs);
    }
  }

  private flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const editor = this.pending;
    this.pending = undefined;
    if (editor === undefined || editor.document.isClosed) {
      return;
    }
    this.connection.sendCursor(editor.document.uri, localRanges(editor.selections));
  }

  dispose(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
    }
    for (const d of this.disposables) {
      d.dispose();
    }
  }
}
