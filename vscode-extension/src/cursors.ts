/**
 * Peers' cursors and selections as a model: `pairls/cursors` notifications in, per-document and
 * per-participant groups out (selection ranges to tint, carets to mark, where the name label
 * goes). Pure: decorations.ts turns the groups into TextEditorDecorationTypes.
 */
import type { CursorsParams, PeerCursor, Position, Range } from "./protocol";

/** The server sends at most 64 ranges per participant; a bad peer cannot make us draw more. */
const MAX_RANGES = 64;

export interface CursorGroup {
  participantId: string;
  name: string;
  color: string;
  /** non-empty selections (anchor != head), to tint */
  selections: Range[];
  /** every head (the caret of each range) */
  carets: Position[];
  /** where the name label goes: the head of the primary (first) range */
  label: Position;
}

/** Group one document's cursors by participant; drops malformed ranges and empty participants. */
export function groupCursors(cursors: readonly PeerCursor[]): CursorGroup[] {
  const groups = new Map<string, CursorGroup>();
  for (const c of cursors) {
    if (!c || typeof c.participantId !== "string") {
      continue;
    }
    const ranges = (Array.isArray(c.ranges) ? c.ranges : []).filter(isRange).slice(0, MAX_RANGES);
    if (ranges.length === 0) {
      continue;
    }
    let g = groups.get(c.participantId);
    if (g === undefined) {
      g = {
        participantId: c.participantId,
        name: typeof c.name === "string" && c.name !== "" ? c.name : "?",
        color: normalizeColor(c.color),
        selections: [],
        carets: [],
        label: ranges[0].end,
      };
      groups.set(c.participantId, g);
    }
    for (const r of ranges) {
      if (!samePosition(r.start, r.end)) {
        g.selections.push(r);
      }
      g.carets.push(r.end);
    }
  }
  return [...groups.values()];
}

function isPosition(p: unknown): p is Position {
  const q = p as Position | null;
  return (
    typeof q === "object" &&
    q !== null &&
    Number.isInteger(q.line) &&
    Number.isInteger(q.character) &&
    q.line >= 0 &&
    q.character >= 0
  );
}

function isRange(r: unknown): r is Range {
  const q = r as Range | null;
  return typeof q === "object" && q !== null && isPosition(q.start) && isPosition(q.end);
}

function samePosition(a: Position, b: Position): boolean {
  return a.line === b.line && a.character === b.character;
}

/** Every document's peer cursors, keyed by the document's URI string. */
export class CursorStore {
  private readonly byUri = new Map<string, CursorGroup[]>();

  /** Replace what *params.uri* shows; returns its groups. */
  update(uri: string, params: Pick<CursorsParams, "cursors">): CursorGroup[] {
    const groups = groupCursors(Array.isArray(params.cursors) ? params.cursors : []);
    if (groups.length === 0) {
      this.byUri.delete(uri);
    } else {
      this.byUri.set(uri, groups);
    }
    return groups;
  }

  get(uri: string): CursorGroup[] {
    return this.byUri.get(uri) ?? [];
  }

  uris(): string[] {
    return [...this.byUri.keys()];
  }

  /** Participants seen in any document. */
  participantIds(): Set<string> {
    const ids = new Set<string>();
    for (const groups of this.byUri.values()) {
      for (const g of groups) {
        ids.add(g.participantId);
      }
    }
    return ids;
  }

  /** Forget participants not in *present* (they left); returns the URIs that changed. */
  retain(present: ReadonlySet<string>): string[] {
    const changed: string[] = [];
    for (const [uri, groups] of this.byUri) {
      const kept = groups.filter((g) => present.has(g.participantId));
      if (kept.length !== groups.length) {
        changed.push(uri);
        if (kept.length === 0) {
          this.byUri.delete(uri);
        } else {
          this.byUri.set(uri, kept);
        }
      }
    }
    return changed;
  }

  clear(): string[] {
    const uris = this.uris();
    this.byUri.clear();
    return uris;
  }
}

const FALLBACK_COLOR = "#4363d8";

/** A `#rrggbb` colour, or the fallback when the server sent something else. */
export function normalizeColor(color: unknown): string {
  if (typeof color !== "string") {
    return FALLBACK_COLOR;
  }
  const c = color.trim();
  if (/^#[0-9a-fA-F]{6}$/.test(c)) {
    return c.toLowerCase();
  }
  if (/^#[0-9a-fA-F]{3}$/.test(c)) {
    return ("#" + [...c.slice(1)].map((d) => d + d).join("")).toLowerCase();
  }
  return FALLBACK_COLOR;
}

function rgb(color: string): [number, number, number] {
  const c = normalizeColor(color);
  return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)) as [number, number, number];
}

/** The colour with alpha, for a selection tint that keeps the text readable. */
export function translucent(color: string, alpha: number): string {
  const [r, g, b] = rgb(color);
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/** Black or white, whichever reads better on *color* (WCAG relative luminance). */
export function labelForeground(color: string): string {
  const [r, g, b] = rgb(color).map((v) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return luminance > 0.179 ? "#000000" : "#ffffff";
}

/** Local selections (VS Code's anchor/active) as the ranges `pairls/cursor` carries: start is the anchor, end the head. */
export function localRanges(
  selections: readonly { anchor: Position; active: Position }[],
  max = MAX_RANGES,
): Range[] {
  return selections.slice(0, max).map((s) => ({
    start: { line: s.anchor.line, character: s.anchor.character },
    end: { line: s.active.line, character: s.active.character },
  }));
}
