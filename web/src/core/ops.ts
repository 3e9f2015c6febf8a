/**
 * Text operations over Unicode code points: apply, transform, compose (a port of
 * collab_core/ops.py, checked against it by the shared test vectors in web/test/vectors.json).
 *
 * An operation is a list of components, the ot.js format: a positive number retains that many
 * code points, a non-empty string inserts it, a negative number deletes that many code points.
 * Positions and lengths count code points, as the protocol does (docs/protocol.md,
 * "Conventions"), never JavaScript's UTF-16 units: an emoji is one position, CRLF two. Inserted
 * strings are JavaScript strings; their length is measured in code points here. A trailing
 * retain is implied. Every function returns canonical operations (adjacent components merged,
 * insert before delete where they touch, no trailing retain), the same as the Python core's.
 *
 * Pure: no DOM, no I/O, no clock.
 */

export type Component = number | string;
export type Op = Component[];

/** An operation is malformed or does not fit the document it is applied to. */
export class InvalidOp extends Error {}

// -- code points in JavaScript strings ------------------------------------------------------

function isHigh(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLow(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** Code points in *s* (a surrogate pair counts once). */
export function cpLength(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    if (isHigh(s.charCodeAt(i)) && isLow(s.charCodeAt(i + 1))) {
      n--;
      i++;
    }
  }
  return n;
}

/** The UTF-16 index *count* code points after UTF-16 index *from* in *s* (clamped to its end). */
export function advance(s: string, from: number, count: number): number {
  let i = from;
  const end = s.length;
  while (count > 0 && i < end) {
    if (isHigh(s.charCodeAt(i)) && i + 1 < end && isLow(s.charCodeAt(i + 1))) {
      i += 2;
    } else {
      i += 1;
    }
    count--;
  }
  return i;
}

/** The code points of *s* from *start* to *end* (code point indices). */
function cpSlice(s: string, start: number, end?: number): string {
  const a = advance(s, 0, start);
  if (end === undefined) {
    return s.slice(a);
  }
  return s.slice(a, advance(s, a, end - start));
}

// -- canonical form -----------------------------------------------------------------------------

/** Validate an operation received from outside and return it normalized. */
export function check(raw: unknown): Op {
  if (!Array.isArray(raw)) {
    throw new InvalidOp("operation must be a list");
  }
  for (const c of raw) {
    if (typeof c === "number") {
      if (!Number.isInteger(c) || c === 0) {
        throw new InvalidOp("zero-length or fractional component");
      }
    } else if (typeof c === "string") {
      if (c === "") {
        throw new InvalidOp("empty insert");
      }
    } else {
      throw new InvalidOp("component must be a number or a string");
    }
  }
  return normalize(raw as Op);
}

/**
 * Builds a canonical op component by component: between two retains at most one insert, then one
 * delete (the run still open keeps its inserted strings in a list joined once at its end).
 */
class Builder {
  out: Op = [];
  private ins: string[] = [];
  private dels = 0;

  push(c: Component): void {
    if (typeof c === "string") {
      if (c) {
        this.ins.push(c);
      }
    } else if (c < 0) {
      this.dels += c;
    } else if (c > 0) {
      if (this.ins.length || this.dels) {
        this.close();
        this.out.push(c);
        return;
      }
      const out = this.out;
      if (out.length) {
        (out[out.length - 1] as number) += c; // no open run: the last component is a retain
      } else {
        out.push(c);
      }
    }
  }

  private close(): void {
    if (this.ins.length) {
      this.out.push(this.ins.length === 1 ? this.ins[0] : this.ins.join(""));
      this.ins = [];
    }
    if (this.dels) {
      this.out.push(this.dels);
      this.dels = 0;
    }
  }

  op(trim = true): Op {
    this.close();
    const out = this.out;
    const last = out[out.length - 1];
    if (trim && typeof last === "number" && last > 0) {
      out.pop();
    }
    return out;
  }
}

/** Canonical form: merged neighbours, inserts before deletes, no trailing retain. */
export function normalize(op: Op): Op {
  const b = new Builder();
  for (const c of op) {
    b.push(c);
  }
  return b.op();
}

// -- lengths and apply --------------------------------------------------------------------------

/** The smallest document length (code points) *op* can apply to. */
export function baseLength(op: Op): number {
  let n = 0;
  for (const c of op) {
    if (typeof c === "number") {
      n += Math.abs(c);
    }
  }
  return n;
}

/** Length of a document of *length* code points after *op*. */
export function targetLength(op: Op, length: number): number {
  for (const c of op) {
    if (typeof c === "string") {
      length += cpLength(c);
    } else if (c < 0) {
      length += c;
    }
  }
  return length;
}

/** Apply *op* to *text*. Throws InvalidOp if it reaches past the end. */
export function apply(text: string, op: Op): string {
  if (op.length === 0) {
    return text;
  }
  const parts: string[] = [];
  let i = 0; // UTF-16 index in text
  const size = text.length;
  for (const c of op) {
    if (typeof c === "string") {
      parts.push(c);
    } else if (c > 0) {
      const j = advanceExact(text, i, c, "retain past the end of the document");
      parts.push(text.slice(i, j));
      i = j;
    } else {
      i = advanceExact(text, i, -c, "delete past the end of the document");
    }
  }
  if (i > size) {
    throw new InvalidOp("operation past the end of the document");
  }
  parts.push(text.slice(i));
  return parts.join("");
}

function advanceExact(text: string, from: number, count: number, why: string): number {
  // an ASCII stretch (the usual case) is skipped without a per-character loop when it has no
  // surrogate at all; otherwise code point by code point
  let i = from;
  const end = text.length;
  while (count > 0) {
    if (i >= end) {
      throw new InvalidOp(why);
    }
    const c = text.charCodeAt(i);
    i += isHigh(c) && i + 1 < end && isLow(text.charCodeAt(i + 1)) ? 2 : 1;
    count--;
  }
  return i;
}

// -- transform and compose ------------------------------------------------------------------

/** Walks an operation component by component, splitting on demand (in code points). */
class Reader {
  private i = 0;
  head: Component | undefined;

  constructor(private readonly op: Op) {
    this.head = op.length ? op[0] : undefined;
  }

  next(): void {
    this.i++;
    this.head = this.i < this.op.length ? this.op[this.i] : undefined;
  }

  /** Consume up to *n* units of the head (a retain or a delete, or insert text). */
  take(n: number): Component {
    const h = this.head as Component;
    if (typeof h === "string") {
      const len = cpLength(h);
      if (len <= n) {
        this.next();
        return h;
      }
      const cut = advance(h, 0, n);
      this.head = h.slice(cut);
      return h.slice(0, cut);
    }
    if (h > 0) {
      if (h <= n) {
        this.next();
        return h;
      }
      this.head = h - n;
      return n;
    }
    if (-h <= n) {
      this.next();
      return h;
    }
    this.head = h + n;
    return -n;
  }
}

function span(c: Component): number {
  return typeof c === "string" ? 0 : Math.abs(c);
}

/**
 * Transform concurrent *a* and *b* (same base) into [a', b'] with
 * apply(apply(s, a), b') == apply(apply(s, b), a'). Where both insert at one place, *a*'s text
 * goes first: the client passes its own pending op as *a* and the hub's as *b*.
 */
export function transform(a: Op, b: Op): [Op, Op] {
  if (!b.length) {
    return [normalize(a), []];
  }
  if (!a.length) {
    return [[], normalize(b)];
  }
  const ab = new Builder();
  const bb = new Builder();
  const ra = new Reader(a);
  const rb = new Reader(b);
  while (ra.head !== undefined || rb.head !== undefined) {
    const ha = ra.head;
    const hb = rb.head;
    if (typeof ha === "string") {
      ab.push(ha);
      bb.push(cpLength(ha));
      ra.next();
      continue;
    }
    if (typeof hb === "string") {
      ab.push(cpLength(hb));
      bb.push(hb);
      rb.next();
      continue;
    }
    let n: number;
    let ca: Component;
    let cb: Component;
    if (ha === undefined) {
      n = span(hb as Component);
      ca = n;
      cb = rb.take(n);
    } else if (hb === undefined) {
      n = span(ha);
      ca = ra.take(n);
      cb = n;
    } else {
      n = Math.min(span(ha), span(hb));
      ca = ra.take(n);
      cb = rb.take(n);
    }
    if ((ca as number) > 0) {
      if ((cb as number) > 0) {
        ab.push(n);
        bb.push(n);
      } else {
        bb.push(-n);
      }
    } else if ((cb as number) > 0) {
      ab.push(-n);
    }
    // both delete the same text: gone for both
  }
  return [ab.op(), bb.op()];
}

/** One operation with the effect of *a* followed by *b*. */
export function compose(a: Op, b: Op): Op {
  if (!a.length) {
    return normalize(b);
  }
  if (!b.length) {
    return normalize(a);
  }
  const out = new Builder();
  const ra = new Reader(a);
  const rb = new Reader(b);
  while (ra.head !== undefined || rb.head !== undefined) {
    const ha = ra.head;
    const hb = rb.head;
    if (typeof ha === "number" && ha < 0) {
      out.push(ha); // a's deletes act on the original document: b never sees that text
      ra.next();
      continue;
    }
    if (typeof hb === "string") {
      out.push(hb);
      rb.next();
      continue;
    }
    if (hb === undefined) {
      out.push(ha as Component);
      ra.next();
      continue;
    }
    if (ha === undefined) {
      out.push(hb);
      rb.next();
      continue;
    }
    const la = typeof ha === "string" ? cpLength(ha) : ha;
    const n = Math.min(la, span(hb));
    const ca = ra.take(n);
    const cb = rb.take(n) as number;
    if (cb > 0) {
      out.push(ca);
    } else if (typeof ca !== "string") {
      out.push(cb);
    }
    // else: b deletes what a inserted; both vanish
  }
  return out.op();
}

// -- positions --------------------------------------------------------------------------------

/**
 * Where the position *index* moves to when *op* is applied. A cursor at an insert position stays
 * before the inserted text unless *afterInsert* (the author's own cursor moves past it).
 */
export function transformIndex(index: number, op: Op, afterInsert = false): number {
  let pos = 0;
  let moved = index;
  for (const c of op) {
    if (pos > index || (pos === index && !afterInsert && typeof c === "string")) {
      break;
    }
    if (typeof c === "string") {
      moved += cpLength(c);
    } else if (c > 0) {
      pos += c;
    } else {
      moved -= Math.min(-c, index - pos);
      pos -= c;
    }
  }
  return moved;
}

/** Where the position *index* of the text after *op* was before it (inside an insert: its place). */
export function mapBack(index: number, op: Op): number {
  let base = 0;
  let out = 0;
  for (const c of op) {
    if (typeof c === "string") {
      const n = cpLength(c);
      if (index <= out + n) {
        return base;
      }
      out += n;
    } else if (c > 0) {
      if (index <= out + c) {
        return base + (index - out);
      }
      out += c;
      base += c;
    } else {
      if (index <= out) {
        return base;
      }
      base -= c;
    }
  }
  return base + (index - out);
}

// -- size on the wire and splitting ------------------------------------------------------------

const encoder = new TextEncoder();

function jsonSize(s: string): number {
  // eslint-disable-next-line no-control-regex
  if (/^[\x20-\x7e]*$/.test(s) && !s.includes('"') && !s.includes("\\")) {
    return s.length + 2;
  }
  return encoder.encode(JSON.stringify(s)).length;
}

/** Bytes of *op* as compact JSON in UTF-8, as it goes on the wire. */
export function encodedSize(op: Op): number {
  let size = 2 + Math.max(op.length - 1, 0);
  for (const c of op) {
    size += typeof c === "string" ? jsonSize(c) : String(c).length;
  }
  return size;
}

/**
 * Split *op* into [head, tail] with compose(head, tail) == op, the head within *maxBytes* of JSON
 * and *maxComponents* components (tail [] when *op* fits; null is no limit).
 */
export function split(op: Op, maxBytes: number | null, maxComponents: number | null = null): [Op, Op] {
  if (maxBytes !== null && maxBytes < 64) {
    throw new RangeError("maxBytes too small to hold an op");
  }
  if (maxComponents !== null && maxComponents < 4) {
    throw new RangeError("maxComponents too small to hold an op");
  }
  const limitBytes = maxBytes ?? encodedSize(op);
  const limitComponents = maxComponents ?? op.length;
  if (op.length <= limitComponents && encodedSize(op) <= limitBytes) {
    return [normalize(op), []];
  }
  const head = new Builder();
  let used = 2;
  let out = 0;
  for (let i = 0; i < op.length; i++) {
    const c = op[i];
    const cost = (typeof c === "string" ? jsonSize(c) : String(c).length) + 1;
    if (used + cost <= limitBytes && i < limitComponents) {
      head.push(c);
      used += cost;
      if (typeof c === "string") {
        out += cpLength(c);
      } else if (c > 0) {
        out += c;
      }
      continue;
    }
    let rest: Op = op.slice(i);
    if (typeof c === "string" && i < limitComponents) {
      const piece = prefixWithin(c, limitBytes - used - 1);
      if (piece) {
        head.push(piece);
        out += cpLength(piece);
        rest = [c.slice(piece.length), ...op.slice(i + 1)];
      }
    }
    const tail = new Builder();
    tail.push(out);
    for (const r of rest) {
      tail.push(r);
    }
    return [head.op(), tail.op()];
  }
  throw new Error("unreachable: the op fitted");
}

/** The longest prefix of *s* (whole code points) whose JSON string is at most *budget* bytes. */
function prefixWithin(s: string, budget: number): string {
  if (budget <= 2) {
    return "";
  }
  const total = cpLength(s);
  let n = Math.min(total, budget - 2);
  while (n > 0) {
    const size = jsonSize(cpSlice(s, 0, n));
    if (size <= budget) {
      break;
    }
    n = Math.max(0, Math.min(n - 1, Math.floor((n * (budget - 2)) / size)));
  }
  const step = Math.max(1, Math.floor(n / 64));
  while (n < total && jsonSize(cpSlice(s, 0, n + step)) <= budget) {
    n += step;
  }
  return cpSlice(s, 0, n);
}

// -- diff ---------------------------------------------------------------------------------------

/**
 * An op turning *oldText* into *newText*: the common prefix and suffix retained, the middle
 * replaced. (The Python core also diffs the middle by lines; here it serves only the rare
 * repairs, where one replacement is enough.)
 */
export function diff(oldText: string, newText: string): Op {
  if (oldText === newText) {
    return [];
  }
  const max = Math.min(oldText.length, newText.length);
  let p = 0;
  while (p < max && oldText.charCodeAt(p) === newText.charCodeAt(p)) {
    p++;
  }
  if (p > 0 && isHigh(oldText.charCodeAt(p - 1))) {
    p--; // not inside a surrogate pair
  }
  let s = 0;
  while (s < max - p && oldText.charCodeAt(oldText.length - 1 - s) === newText.charCodeAt(newText.length - 1 - s)) {
    s++;
  }
  if (s > 0 && isLow(oldText.charCodeAt(oldText.length - s))) {
    s--;
  }
  const middleOld = oldText.slice(p, oldText.length - s);
  const middleNew = newText.slice(p, newText.length - s);
  return normalize([cpLength(oldText.slice(0, p)), middleNew, -cpLength(middleOld)]);
}
