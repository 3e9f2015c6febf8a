/**
 * The code editor: CodeMirror 6 around one room document at a time.
 *
 * The editor's text is the hub's, character for character: its line separator is "\n" alone, so
 * a "\r" stays a character (hidden) and CRLF files keep their CRLF. For such lines the editor
 * behaves as one would expect: the caret never lands between "\r" and "\n", Enter inserts "\r\n",
 * Backspace and Delete take "\r\n" as one, pasted text gets "\r\n". Changes from the room are
 * dispatched with the `remote` annotation and stay out of the user's undo history; everything
 * else the user did goes to the session (UTF-16 offsets; the session converts).
 */

import { Annotation, ChangeSet, Compartment, EditorSelection, EditorState, StateEffect, StateField, Transaction } from "@codemirror/state";
import type { ChangeSpec, Extension, TransactionSpec } from "@codemirror/state";
import {
  Decoration,
  EditorView,
  WidgetType,
  crosshairCursor,
  drawSelection,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
  rectangularSelection,
} from "@codemirror/view";
import type { DecorationSet } from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { bracketMatching, defaultHighlightStyle, foldGutter, foldKeymap, indentOnInput, syntaxHighlighting } from "@codemirror/language";
import { highlightSelectionMatches, searchKeymap } from "@codemirror/search";

import type { Change } from "../core/positions.js";
import { languageFor } from "./languages.js";

/** Marks a transaction that carries the room's changes (not the user's). */
export const remote = Annotation.define<boolean>();

/** A peer's cursor as the editor draws it: UTF-16 offsets of the shown text. */
export interface DrawnCursor {
  id: string;
  name: string;
  color: number;
  ranges: [number, number][];
}

export interface EditorHooks {
  /** the user changed the text (offsets of the text before the change); called before the
   * view shows the change, so it must not change the view itself (it sends the op) */
  edit(changes: Change[]): void;
  /** the user's selections: [anchor, head] */
  select(ranges: [number, number][]): void;
}

const setCursors = StateEffect.define<DrawnCursor[]>();

class Caret extends WidgetType {
  constructor(
    readonly id: string,
    readonly name: string,
    readonly color: number,
  ) {
    super();
  }

  override eq(other: Caret): boolean {
    return other.id === this.id && other.name === this.name && other.color === this.color;
  }

  toDOM(): HTMLElement {
    const caret = document.createElement("span");
    caret.className = `pairls-caret pairls-c${this.color}`;
    caret.setAttribute("data-participant", this.id);
    caret.setAttribute("aria-label", `${this.name}'s cursor`);
    const label = document.createElement("span");
    label.className = "pairls-caret-name";
    label.textContent = this.name; // text, never markup: names come from other people
    caret.appendChild(label);
    return caret;
  }

  override ignoreEvent(): boolean {
    return true;
  }
}

function buildCursors(cursors: DrawnCursor[], length: number): DecorationSet {
  const ranges = [];
  for (const c of cursors) {
    for (const [a, h] of c.ranges) {
      const anchor = Math.min(Math.max(0, a), length);
      const head = Math.min(Math.max(0, h), length);
      if (anchor !== head) {
        const mark = Decoration.mark({ class: `pairls-sel pairls-c${c.color}`, attributes: { "data-participant": c.id } });
        ranges.push(mark.range(Math.min(anchor, head), Math.max(anchor, head)));
      }
      ranges.push(Decoration.widget({ widget: new Caret(c.id, c.name, c.color), side: 1 }).range(head));
    }
  }
  return Decoration.set(ranges, true);
}

const cursorField = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(deco, tr) {
    deco = deco.map(tr.changes);
    for (const e of tr.effects) {
      if (e.is(setCursors)) {
        deco = buildCursors(e.value, tr.state.doc.length);
      }
    }
    return deco;
  },
  provide: (f) => EditorView.decorations.from(f),
});

// -- CRLF ------------------------------------------------------------------------------------

/** True if offset *pos* of *state* is between a "\r" and a "\n". */
function insideCrlf(state: EditorState, pos: number): boolean {
  return pos > 0 && pos < state.doc.length && state.doc.sliceString(pos - 1, pos + 1) === "\r\n";
}

/** The line break the line at *pos* uses: its own, else the one before it. */
function lineBreakAt(state: EditorState, pos: number): string {
  const line = state.doc.lineAt(pos);
  if (line.number < state.doc.lines) {
    return line.text.endsWith("\r") ? "\r\n" : "\n";
  }
  if (line.number > 1) {
    return state.doc.line(line.number - 1).text.endsWith("\r") ? "\r\n" : "\n";
  }
  return "\n";
}

const crlfFilter = EditorState.transactionFilter.of((tr): Transaction | readonly TransactionSpec[] => {
  if (tr.annotation(remote)) {
    return tr;
  }
  // Backspace or Delete next to a CRLF takes both characters
  if (tr.docChanged && tr.isUserEvent("delete")) {
    const doc = tr.startState.doc;
    const specs: ChangeSpec[] = [];
    let grown = false;
    tr.changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
      let from = fromA;
      let to = toA;
      if (inserted.length === 0) {
        if (from > 0 && doc.sliceString(from - 1, from + 1) === "\r\n") {
          from--;
        }
        if (to < doc.length && doc.sliceString(to - 1, to + 1) === "\r\n") {
          to++;
        }
      }
      grown ||= from !== fromA || to !== toA;
      specs.push({ from, to, insert: inserted });
    });
    if (grown) {
      const changes = ChangeSet.of(specs, doc.length);
      return [{ changes, selection: tr.startState.selection.map(changes), userEvent: tr.annotation(Transaction.userEvent), scrollIntoView: true }];
    }
  }
  // the caret never rests between "\r" and "\n" (typing there would split the line break)
  const state = tr.state;
  const sel = tr.newSelection;
  if (sel.ranges.some((r) => insideCrlf(state, r.anchor) || insideCrlf(state, r.head))) {
    const fix = (p: number): number => (insideCrlf(state, p) ? p - 1 : p);
    const clamped = EditorSelection.create(
      sel.ranges.map((r) => EditorSelection.range(fix(r.anchor), fix(r.head))),
      sel.mainIndex,
    );
    return [tr, { selection: clamped, sequential: true }];
  }
  return tr;
});

/** Enter on a CRLF line inserts "\r\n" and the line's indentation. */
function crlfNewline(view: EditorView): boolean {
  const state = view.state;
  if (state.readOnly || lineBreakAt(state, state.selection.main.head) !== "\r\n") {
    return false;
  }
  view.dispatch(
    state.changeByRange((range) => {
      const line = state.doc.lineAt(range.from);
      const indent = /^[ \t]*/.exec(line.text)?.[0] ?? "";
      const insert = "\r\n" + indent;
      return { changes: { from: range.from, to: range.to, insert }, range: EditorSelection.cursor(range.from + insert.length) };
    }),
    { scrollIntoView: true, userEvent: "input" },
  );
  return true;
}

const pasteLineBreaks = EditorView.clipboardInputFilter.of((text, state) =>
  lineBreakAt(state, state.selection.main.head) === "\r\n" ? text.replace(/\r?\n/g, "\r\n") : text,
);

function hiddenCr(code: number, description: string | null, placeholder: string): HTMLElement {
  const span = document.createElement("span");
  if (code === 13) {
    span.className = "cm-cr"; // a line's "\r": shown as nothing, like every editor does
    return span;
  }
  span.className = "cm-specialChar";
  span.textContent = placeholder;
  if (description) {
    span.title = description;
  }
  return span;
}

// Typed text goes straight into the state: a plain `insertText` (a key, not an input method's
// composition) is turned into the transaction CodeMirror would make from the DOM, and the
// browser's own editing of the DOM is prevented.  The op leaves the page in the keystroke's own
// event instead of after Chromium edited the DOM and CodeMirror read it back (about 1.5 ms of a
// keystroke's way to a peer, measured in `make bench-web`).
const typedText = EditorView.domEventHandlers({
  beforeinput(event, view) {
    if (event.inputType !== "insertText" || event.isComposing || view.composing || !event.data) {
      return false;
    }
    if (view.state.readOnly) {
      return false;
    }
    const text = event.data;
    const { from, to } = view.state.selection.main;
    const insert = () => view.state.update(view.state.replaceSelection(text), { userEvent: "input.type", scrollIntoView: true });
    if (!view.state.facet(EditorView.inputHandler).some((h) => h(view, from, to, text, insert))) {
      view.dispatch(insert());
    }
    return true; // (CodeMirror prevents the browser's own insertion)
  },
});

/** A transaction's changes, in offsets of the text before it. */
function changesOf(tr: Transaction): Change[] {
  const changes: Change[] = [];
  tr.changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    changes.push({ from: fromA, to: toA, insert: inserted.toString() });
  });
  return changes;
}

// -- the editor --------------------------------------------------------------------------------

export class Editor {
  readonly view: EditorView;
  path: string | null = null;
  private readonly readOnly = new Compartment();
  private readonly language = new Compartment();
  private ro = false;
  /** while the user's transactions go to the session: what it asks to change in return (see
   * dispatchTransactions), and the index of the transaction being handed over */
  private later: { after: number; changes: Change[] }[] | null = null;
  private after = 0;

  constructor(
    parent: HTMLElement,
    private readonly hooks: EditorHooks,
    private readonly nonce: string,
  ) {
    this.view = new EditorView({
      parent,
      state: this.state("", null),
      // The user's changes go to the room before the view redraws: CodeMirror's update of the
      // DOM (setting the browser's selection lays the page out) is most of a keystroke's time
      // in the page, and the op does not depend on it (the session keeps its own text).
      dispatchTransactions: (trs, view) => {
        const later: { after: number; changes: Change[] }[] = [];
        this.later = later;
        try {
          trs.forEach((tr, i) => {
            if (tr.docChanged && !tr.annotation(remote)) {
              this.after = i;
              this.hooks.edit(changesOf(tr));
            }
          });
        } finally {
          this.later = null;
          view.update(trs); // (the view shows the user's change whatever the session made of it)
        }
        // changes the session made of the user's own (text the hub refuses, replaced): they are
        // offsets of the text after that transaction, so they go now, past any that followed it
        for (const { after, changes } of later) {
          let set = ChangeSet.of(changes, trs[after].newDoc.length);
          for (const tr of trs.slice(after + 1)) {
            set = set.map(tr.changes);
          }
          this.applyRemote(set);
        }
      },
    });
  }

  private extensions(): Extension[] {
    return [
      EditorState.lineSeparator.of("\n"),
      EditorView.cspNonce.of(this.nonce),
      lineNumbers(),
      highlightActiveLineGutter(),
      highlightSpecialChars({ render: hiddenCr }),
      history(),
      foldGutter(),
      drawSelection(),
      EditorState.allowMultipleSelections.of(true),
      indentOnInput(),
      syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
      bracketMatching(),
      rectangularSelection(),
      crosshairCursor(),
      highlightActiveLine(),
      highlightSelectionMatches(),
      keymap.of([{ key: "Enter", run: crlfNewline }, ...defaultKeymap, ...searchKeymap, ...historyKeymap, ...foldKeymap, indentWithTab]),
      typedText,
      crlfFilter,
      pasteLineBreaks,
      cursorField,
      this.readOnly.of(EditorState.readOnly.of(this.ro)),
      this.language.of([]),
      EditorView.contentAttributes.of({ "aria-label": "Document text" }),
      EditorView.updateListener.of((update) => {
        let moved = false;
        for (const tr of update.transactions) {
          if (!tr.annotation(remote)) {
            moved ||= tr.docChanged || tr.selection !== undefined;
          }
        }
        if (moved) {
          this.reportSelection();
        }
      }),
    ];
  }

  private state(text: string, path: string | null): EditorState {
    void path;
    return EditorState.create({ doc: text, extensions: this.extensions() });
  }

  /** Show document *path* with *text* (a fresh state: its own undo history). */
  load(path: string, text: string): void {
    const switched = this.path !== path;
    const selection = switched ? undefined : this.view.state.selection;
    this.path = path;
    const state = this.state(text, path);
    this.view.setState(
      selection && selection.ranges.every((r) => r.to <= text.length) ? state.update({ selection }).state : state,
    );
    const loader = languageFor(path);
    if (loader) {
      loader()
        .then((ext) => {
          if (this.path === path) {
            this.view.dispatch({ effects: this.language.reconfigure(ext) });
          }
        })
        .catch(() => undefined); // plain text, then
    }
    this.reportSelection();
  }

  /** The room changed the shown text. */
  applyRemote(changes: Change[] | ChangeSet): void {
    if (changes instanceof ChangeSet ? changes.empty : !changes.length) {
      return;
    }
    if (this.later !== null && !(changes instanceof ChangeSet)) {
      this.later.push({ after: this.after, changes }); // (the user's transaction is not shown yet)
      return;
    }
    this.view.dispatch({
      changes,
      annotations: [remote.of(true), Transaction.addToHistory.of(false)],
    });
  }

  setReadOnly(readOnly: boolean): void {
    if (readOnly !== this.ro) {
      this.ro = readOnly;
      this.view.dispatch({ effects: this.readOnly.reconfigure(EditorState.readOnly.of(readOnly)) });
    }
  }

  setCursors(cursors: DrawnCursor[]): void {
    this.view.dispatch({ effects: setCursors.of(cursors) });
  }

  text(): string {
    return this.view.state.doc.toString();
  }

  focus(): void {
    this.view.focus();
  }

  private reportSelection(): void {
    this.hooks.select(this.view.state.selection.ranges.map((r) => [r.anchor, r.head]));
  }
}
