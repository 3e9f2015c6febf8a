/**
 * The web client's edge: JavaScript (and CodeMirror) count UTF-16 code units, the protocol counts
 * code points (docs/protocol.md, "Conventions"). Every offset and every change crosses here, and
 * nowhere else. CRLF needs nothing: the editor keeps "\r" as a character (its line separator is
 * "\n" alone), so the text is the hub's, byte for byte.
 *
 * Pure: no DOM.
 */

import { advance } from "./ops.js";
import type { Op } from "./ops.js";

/** A change in UTF-16 offsets of the text before it (CodeMirror's ChangeSpec). */
export interface Change {
  from: number;
  to: number;
  insert: string;
}

function isHigh(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLow(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** The UTF-16 offset in *text* of code point offset *cp* (clamped to the end). */
export function toUtf16(text: string, cp: number): number {
  return advance(text, 0, cp);
}

/** The code point offset in *text* of UTF-16 offset *u16* (inside a surrogate pair: its start). */
export function toCodePoint(text: string, u16: number): number {
  return countCodePoints(text, 0, Math.min(u16, text.length));
}

function countCodePoints(text: string, from: number, to: number): number {
  let n = 0;
  let i = from;
  while (i < to) {
    if (isHigh(text.charCodeAt(i)) && i + 1 < text.length && isLow(text.charCodeAt(i + 1))) {
      if (i + 1 >= to) {
        break; // `to` splits the pair: the position is the pair's start
      }
      i += 2;
    } else {
      i += 1;
    }
    n++;
  }
  return n;
}

/** True if UTF-16 offset *u16* of *text* falls between the halves of a surrogate pair. */
export function splitsPair(text: string, u16: number): boolean {
  return u16 > 0 && u16 < text.length && isHigh(text.charCodeAt(u16 - 1)) && isLow(text.charCodeAt(u16));
}

/** The op (code points) of *changes* (UTF-16 offsets of *text*, in order, not overlapping). */
export function changesToOp(text: string, changes: readonly Change[]): Op {
  const op: Op = [];
  let at16 = 0; // UTF-16 offset in text reached so far
  for (const { from, to, insert } of changes) {
    const keep = countCodePoints(text, at16, from);
    if (keep) {
      op.push(keep);
    }
    if (insert) {
      op.push(insert);
    }
    const gone = countCodePoints(text, from, to);
    if (gone) {
      op.push(-gone);
    }
    at16 = to;
  }
  return op;
}

/** The changes (UTF-16 offsets of *text*) that *op* (code points) makes to *text*. */
export function opToChanges(text: string, op: Op): Change[] {
  const out: Change[] = [];
  let at16 = 0;
  for (const c of op) {
    if (typeof c === "string") {
      out.push({ from: at16, to: at16, insert: c });
    } else if (c > 0) {
      at16 = advance(text, at16, c);
    } else {
      const end = advance(text, at16, -c);
      const last = out[out.length - 1];
      if (last && last.to === at16) {
        last.to = end; // an insert, then the delete right after it: one replacement
      } else {
        out.push({ from: at16, to: end, insert: "" });
      }
      at16 = end;
    }
  }
  return out;
}
