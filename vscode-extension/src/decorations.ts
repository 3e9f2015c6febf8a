/**
 * Peers' cursors and selections on screen: per participant, one TextEditorDecorationType for
 * the selection tint and one for the caret with the name as an `after` label, drawn from the
 * CursorStore (cursors.ts) into every visible editor of the document.
 */
import * as vscode from "vscode";

import { type CursorGroup, CursorStore, labelForeground, translucent } from "./cursors";
import type { CursorsParams } from "./protocol";

interface ParticipantTypes {
  color: string;
  name: string;
  selection: vscode.TextEditorDecorationType;
  caret: vscode.TextEditorDecorationType;
  label: vscode.TextEditorDecorationType;
}

export class PeerDecorations implements vscode.Disposable {
  private readonly store = new CursorStore();
  private readonly types = new Map<string, ParticipantTypes>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor() {
    this.disposables.push(
      vscode.window.onDidChangeVisibleTextEditors(() => this.drawAll()),
    );
  }

  /** A `pairls/cursors` notification for the document at *uri*. */
  cursorsReceived(uri: vscode.Uri, params: CursorsParams): void {
    const key = uri.toString();
    const before = new Set(this.store.get(key).map((g) => g.participantId));
    const groups = this.store.update(key, params);
    for (const g of groups) {
      before.delete(g.participantId);
    }
    this.draw(key);
    this.dropUnused(before);
  }

  /** The room's participants now; forget the cursors of those who left. */
  participantsChanged(ids: ReadonlySet<string>): void {
    for (const uri of this.store.retain(ids)) {
      this.draw(uri);
    }
    this.dropUnused(new Set(this.types.keys()));
  }

  clear(): void {
    const uris = this.store.clear();
    for (const uri of uris) {
      this.draw(uri);
    }
    this.dropUnused(new Set(this.types.keys()));
  }

  private drawAll(): void {
    for (const uri of this.store.uris()) {
      this.draw(uri);
    }
  }

  private draw(uri: string): void {
    const editors = vscode.window.visibleTextEditors.filter((e) => e.document.uri.toString() === uri);
    if (editors.length === 0) {
      return;
    }
    const groups = this.store.get(uri);
    const shown = new Set<string>();
    for (const g of groups) {
      const t = this.typesFor(g);
      shown.add(g.participantId);
      const selections = g.selections.map(toRange);
      const carets = g.carets.map((p) => new vscode.Range(toPosition(p), toPosition(p)));
      const label: vscode.DecorationOptions = {
        range: new vscode.Range(toPosition(g.label), toPosition(g.label)),
        hoverMessage: `${g.name} is here`,
      };
      for (const editor of editors) {
        editor.setDecorations(t.selection, selections);
        editor.setDecorations(t.caret, carets);
        editor.setDecorations(t.label, [label]);
      }
    }
    // participants no longer in this document: empty their decorations here
    for (const [id, t] of this.types) {
      if (!shown.has(id)) {
        for (const editor of editors) {
          editor.setDecorations(t.selection, []);
          editor.setDecorations(t.caret, []);
          editor.setDecorations(t.label, []);
        }
      }
    }
  }

  private typesFor(g: CursorGroup): ParticipantTypes {
    const old = this.types.get(g.participantId);
    if (old !== undefined && old.color === g.color && old.name === g.name) {
      return old;
    }
    if (old !== undefined) {
      disposeTypes(old);
    }
    const t: ParticipantTypes = {
      color: g.color,
      name: g.name,
      selection: vscode.window.createTextEditorDecorationType({
        backgroundColor: translucent(g.color, 0.25),
        borderRadius: "2px",
        rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
        overviewRulerColor: g.color,
        overviewRulerLane: vscode.OverviewRulerLane.Center,
      }),
      caret: vscode.window.createTextEditorDecorationType({
        // an empty range draws nothing itself: a zero-width character with a left border is the
        // caret, and its negative margin keeps the text from moving
        before: {
          contentText: "\u200b",
          border: `0 solid ${g.color}; border-left-width: 2px`,
          margin: "0 -2px 0 0",
        },
        rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
        overviewRulerColor: g.color,
        overviewRulerLane: vscode.OverviewRulerLane.Full,
      }),
      label: vscode.window.createTextEditorDecorationType({
        after: {
          contentText: g.name,
          color: labelForeground(g.color),
          backgroundColor: g.color,
          margin: "0 0 0 2px",
          fontWeight: "normal",
          fontStyle: "normal",
          textDecoration: "none; font-size: 0.85em; padding: 0 3px; border-radius: 2px;",
        },
        rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
      }),
    };
    this.types.set(g.participantId, t);
    return t;
  }

  /** Dispose the decoration types of *candidates* that no document shows any more. */
  private dropUnused(candidates: Set<string>): void {
    const inUse = this.store.participantIds();
    for (const id of candidates) {
      const t = this.types.get(id);
      if (t !== undefined && !inUse.has(id)) {
        disposeTypes(t); // disposing a type removes it from every editor
        this.types.delete(id);
      }
    }
  }

  dispose(): void {
    for (const t of this.types.values()) {
      disposeTypes(t);
    }
    this.types.clear();
    for (const d of this.disposables) {
      d.dispose();
    }
  }
}

function disposeTypes(t: ParticipantTypes): void {
  t.selection.dispose();
  t.caret.dispose();
  t.label.dispose();
}

function toPosition(p: { line: number; character: number }): vscode.Position {
  return new vscode.Position(p.line, p.character);
}

function toRange(r: { start: { line: number; character: number }; end: { line: number; character: number } }): vscode.Range {
  return new vscode.Range(toPosition(r.start), toPosition(r.end));
}
