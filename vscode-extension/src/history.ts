/**
 * "Pairls: Show History": the quick pick of a document's changes, from `pairls.history`. Pure
 * (commands.ts shows it, and opens the revision picked as a diff against the current text).
 */
import type { HistoryChange } from "./protocol";

export interface HistoryItem {
  label: string;
  description: string;
  detail: string;
  /** the revision to open when picked (the text right after this change) */
  rev: number;
  /** the "older changes" entry: ask for the page before `rev` */
  older?: boolean;
}

/** "just now", "2 minutes ago", "3 days ago" for an ISO 8601 time, *now* in ms since the epoch. */
export function ago(time: string | null | undefined, now: number): string {
  const when = time ? Date.parse(time) : NaN;
  if (Number.isNaN(when)) {
    return "just now";
  }
  const seconds = Math.max(0, (now - when) / 1000);
  if (seconds < 45) {
    return "just now";
  }
  const units: [string, number][] = [
    ["year", 365 * 86400],
    ["month", 30 * 86400],
    ["day", 86400],
    ["hour", 3600],
  ];
  for (const [unit, size] of units) {
    if (seconds >= size * 0.95) {
      const n = Math.max(1, Math.round(seconds / size));
      return `${n} ${unit}${n > 1 ? "s" : ""} ago`;
    }
  }
  const n = Math.max(1, Math.round(seconds / 60));
  return `${n} minute${n > 1 ? "s" : ""} ago`;
}

/**
 * One item per change, newest first: who and when, how much (+inserted −deleted) and where
 * (1-based line); an undo or redo says which change it took back or brought back. With *more*,
 * a last item asks for older changes.
 */
export function historyItems(changes: readonly HistoryChange[], now: number, more: boolean): HistoryItem[] {
  const items: HistoryItem[] = changes.map((c) => {
    const who = c.name || "the document's first text";
    const when = ago(c.time, now);
    const size = `+${c.inserted} −${c.deleted}`;
    const where = `line ${c.line + 1}`;
    const revs = c.firstRev !== c.rev ? `revs ${c.firstRev}–${c.rev}` : `rev ${c.rev}`;
    if (c.kind === "undo" || c.kind === "redo") {
      const did = c.kind === "undo" ? "undid" : "redid";
      return {
        label: `$(${c.kind === "undo" ? "discard" : "redo"}) ${who} ${did} the change of rev ${c.toggles ?? "?"}`,
        description: `${when} · ${size} · ${where}`,
        detail: `${revs}: open the text as it was then, beside the current one`,
        rev: c.rev,
      };
    }
    return {
      label: `$(edit) ${who}`,
      description: `${when} · ${size} · ${where}`,
      detail: `${revs}: open the text as it was then, beside the current one`,
      rev: c.rev,
    };
  });
  if (more && changes.length > 0) {
    const last = changes[changes.length - 1].rev;
    items.push({ label: "$(ellipsis) Older changes…", description: "", detail: `before rev ${last}`, rev: last, older: true });
  }
  return items;
}

/** The title of the diff of revision *rev* of *name* against the current text. */
export function diffTitle(name: string, rev: number): string {
  return `${name} (rev ${rev}) ↔ now`;
}
