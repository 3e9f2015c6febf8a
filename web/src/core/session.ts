/**
 * The browser's room as one state machine (sans-I/O, like lsp_bridge/room.py): the connection and
 * its backoff, the join, each open document (a DocumentClient towards the hub), requests in
 * flight, peers and their cursors, timers. The shell (main.ts) feeds it what happened (the socket
 * opened, a frame, the socket closed, the user typed or moved the cursor, the time) and carries
 * out the effects it returns (open a socket, send a frame, change the editor's text, redraw).
 *
 * The detours, as the language server takes them (docs/protocol.md):
 * - one entry into the room is one client id, kept across reconnects: an op re-sent after a
 *   reconnect is recognised by its seq and never applied twice;
 * - while the socket is down the user keeps typing: every document is held (changes compose into
 *   its buffer); after the reconnect the room is joined again, each document reopened with
 *   `since` (its own ops among those it missed count as acks), the op in flight sent again with
 *   the same seq, then the rest;
 * - `unavailable` and `rate_limited`: the same op again later; `revision_too_old`, `not_open`:
 *   catch up, then again; `forbidden` (a viewer's edit): the typing is undone; anything else: the
 *   last resort, a heal (the document read whole, the unsent typing rebased onto it; counted).
 *
 * Positions from and to the editor are UTF-16 (its strings); the hub's are code points. They are
 * converted here, through positions.ts, and nowhere else. No DOM, no socket, no clock: time is
 * passed in (milliseconds), ids too.
 */

import { DocumentClient, InvalidState } from "./client.js";
import type { Outgoing } from "./client.js";
import * as ops from "./ops.js";
import type { Op } from "./ops.js";
import { changesToOp, opToChanges, toCodePoint, toUtf16 } from "./positions.js";
import type { Change } from "./positions.js";

export const PROTOCOL_VERSION = 1;

export type ConnState = "connecting" | "joining" | "joined" | "offline" | "closed";
export type Role = "owner" | "editor" | "viewer";

export type Effect =
  | { kind: "connect"; url: string }
  | { kind: "send"; frame: string }
  | { kind: "disconnect" }
  /** the document's text, whole (first open, or repaired): the view shows it instead */
  | { kind: "load"; path: string; text: string }
  /** changes to the document's text, UTF-16 offsets of the text before them */
  | { kind: "remote"; path: string; changes: Change[] }
  /** connection, role, participants or documents changed: redraw them */
  | { kind: "changed" }
  /** peers' cursors in this document moved */
  | { kind: "cursors"; path: string }
  | { kind: "notice"; text: string; level: "info" | "warning" | "error" };

export interface Participant {
  id: string;
  name: string;
  role: Role;
  /** an index into the page's palette, from the participant id: the same on every page */
  color: number;
  path: string | null;
  /** the revision of `path` the ranges are at */
  rev: number;
  /** [anchor, head] code point ranges in the hub's text of `path` at `rev` */
  ranges: [number, number][];
}

export interface PeerCursor {
  participant: Participant;
  /** [anchor, head] as UTF-16 offsets of the document's text as this page shows it */
  ranges: [number, number][];
}

export interface SessionConfig {
  /** the WebSocket URL of the hub (the page's own address, ws:// or wss://) */
  url: string;
  roomId: string;
  secret: string;
  name: string;
  /** fresh per room entry (one page load), kept across reconnects */
  clientId: string;
  /** who the person is across page loads (docs/protocol.md, "Users"), if the page keeps one */
  user?: string;
}

export const PALETTE_SIZE = 8;
const HISTORY = 200; // hub ops kept per document to bring a peer's older cursor forward
const BACKOFF_MIN = 500;
const BACKOFF_MAX = 10_000;
const RETRY_DELAY = 1_000;
const PRESENCE_INTERVAL = 50;
// ... and a cursor the peers already have (they move our cursor past what we type as our op
// reaches them) at most this often: it only keeps the hub's copy, which newcomers are given,
// at a recent revision (the language server does the same: lsp_bridge/room.py)
const PRESENCE_IMPLIED_INTERVAL = 1000;
const PING_AFTER = 15_000; // a quiet connection is pinged...
const DEAD_AFTER = 35_000; // ...and given up on when nothing came for this long

type DocState = "opening" | "open" | "failed";

interface Doc {
  path: string;
  state: DocState;
  client: DocumentClient | null;
  /** the id of the open request in flight */
  openId: number | null;
  /** the next open reads the whole text and rebases onto it (a heal) */
  wholeText: boolean;
  /** when to send the op in flight again (after unavailable / rate_limited) */
  retryAt: number | null;
  /** the last hub ops: [rev, op, author] */
  history: [number, Op, string | null][];
}

interface DocumentInfo {
  path: string;
  rev: number;
}

/** Counters of the detours, shown in the page's status and read by the tests. */
export interface SessionStats {
  reconnects: number;
  resent: number;
  catchUps: number;
  heals: number;
  retries: number;
  refusedViewerEdits: number;
  /** cursor moves not sent at once: the peers had them already (typing at the cursor) */
  presenceImplied: number;
}

type Json = Record<string, unknown>;

export function colorOf(participantId: string): number {
  let h = 2166136261;
  for (let i = 0; i < participantId.length; i++) {
    h = Math.imul(h ^ participantId.charCodeAt(i), 16777619);
  }
  return (h >>> 0) % PALETTE_SIZE;
}

/** Close codes after which reconnecting is pointless (docs/protocol.md, "Close codes"). */
const FINAL_CLOSES: Record<number, string> = {
  4400: "The hub did not understand this page (protocol error). Reload the page.",
  4401: "The owner changed the invites: ask for the new link.",
  4403: "The owner removed you from the room.",
  4409: "This room was opened again with the same session elsewhere.",
  4410: "The room was deleted.",
};

/** Join refusals after which trying again is pointless. */
const FINAL_JOIN_ERRORS: Record<string, string> = {
  no_such_room: "There is no such room on this hub (it may have been deleted).",
  bad_invite: "This link does not open the room: ask for a new one.",
  removed: "The owner removed you from this room.",
};

export class Session {
  conn: ConnState = "connecting";
  role: Role | null = null;
  participantId: string | null = null;
  participants = new Map<string, Participant>();
  documents = new Map<string, DocumentInfo>();
  stats: SessionStats = { reconnects: 0, resent: 0, catchUps: 0, heals: 0, retries: 0, refusedViewerEdits: 0, presenceImplied: 0 };
  /** why the session ended, when conn is "closed" */
  closedReason: string | null = null;
  limits: Json = {};

  private readonly docs = new Map<string, Doc>();
  private effects: Effect[] = [];
  private nextId = 1;
  private pending = new Map<number, { kind: string; path?: string }>();
  private backoff = BACKOFF_MIN;
  private reconnectAt: number | null = null;
  private everJoined = false;
  private lastFrameAt = 0;
  private pingSentAt: number | null = null;
  private presence: { path: string; rev: number; ranges: [number, number][] } | null = null;
  private presenceAt = -Infinity;
  private presenceDue: number | null = null;
  /** the presence due is one the peers hold already (see select) */
  private presenceImplied = false;
  /** our cursor as the peers hold it: the last presence we sent, moved by every hub op since as
   * they move it (our own inserts push it past them); null when not known */
  private shown: { path: string; rev: number; ranges: [number, number][] } | null = null;
  /** documents whose user was told that text the hub refuses went as U+FFFD */
  private readonly replacedSaid = new Set<string>();

  constructor(readonly config: SessionConfig) {}

  // == inputs ====================================================================================

  /** Start: the first connection. */
  start(now: number): Effect[] {
    this.connect(now);
    return this.take();
  }

  /** The socket is open: say hello with this entry's client id. */
  connectionOpened(now: number): Effect[] {
    this.lastFrameAt = now;
    this.pingSentAt = null;
    const hello: Json = { type: "hello", protocol: PROTOCOL_VERSION, name: this.config.name, clientId: this.config.clientId };
    if (this.config.user) {
      hello.user = this.config.user;
    }
    this.send(hello);
    return this.take();
  }

  /** One frame from the hub (a JSON object, or an array of them to handle in order). */
  frameReceived(data: string, now: number): Effect[] {
    this.lastFrameAt = now;
    this.pingSentAt = null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      this.notice("The hub sent something that is not JSON; ignored.", "warning");
      return this.take();
    }
    for (const msg of Array.isArray(parsed) ? parsed : [parsed]) {
      if (msg && typeof msg === "object" && !Array.isArray(msg)) {
        this.handle(msg as Json, now);
      }
    }
    return this.take();
  }

  /** The socket closed (or could not open): reconnect later, unless the close was final. */
  connectionClosed(code: number, now: number): Effect[] {
    if (this.conn === "closed") {
      return this.take();
    }
    const final = FINAL_CLOSES[code];
    if (final !== undefined) {
      this.end(final);
      return this.take();
    }
    const wasJoined = this.conn === "joined";
    this.conn = "offline";
    this.pending.clear();
    this.shown = null; // the hub forgets our presence with the connection
    for (const doc of this.docs.values()) {
      doc.client?.hold();
      doc.openId = null;
      doc.retryAt = null;
    }
    this.reconnectAt = now + this.backoff;
    this.backoff = Math.min(BACKOFF_MAX, this.backoff * 2);
    if (wasJoined) {
      this.notice("Connection to the hub lost; your typing is kept and sent when it is back.", "warning");
    }
    this.changed();
    return this.take();
  }

  /** The time passed: reconnect, retry, ping, flush presence when due. */
  tick(now: number): Effect[] {
    if (this.conn === "offline" && this.reconnectAt !== null && now >= this.reconnectAt) {
      this.stats.reconnects++;
      this.connect(now);
    }
    if (this.conn === "joined") {
      for (const doc of this.docs.values()) {
        if (doc.retryAt === null || now < doc.retryAt) {
          continue;
        }
        doc.retryAt = null;
        if (doc.state === "opening" && doc.openId === null) {
          this.sendOpen(doc); // its open was refused for now
        } else if (doc.client) {
          const out = doc.client.resend();
          if (out) {
            this.stats.retries++;
            this.sendOp(doc, out);
          }
        }
      }
      this.flushPresence(now);
    }
    if (this.conn === "joined" || this.conn === "joining") {
      if (now - this.lastFrameAt >= DEAD_AFTER) {
        this.effects.push({ kind: "disconnect" });
      } else if (now - this.lastFrameAt >= PING_AFTER && this.pingSentAt === null) {
        this.pingSentAt = now;
        this.send({ type: "ping" });
      }
    }
    return this.take();
  }

  /** When tick() wants to run next (milliseconds, the clock of `now`), or null. */
  wakeAt(): number | null {
    const times: number[] = [];
    if (this.conn === "offline" && this.reconnectAt !== null) {
      times.push(this.reconnectAt);
    }
    if (this.conn === "joined") {
      for (const doc of this.docs.values()) {
        if (doc.retryAt !== null) {
          times.push(doc.retryAt);
        }
      }
      if (this.presenceDue !== null && !this.presenceWaits()) {
        times.push(this.presenceDue);
      }
    }
    if (this.conn === "joined" || this.conn === "joining") {
      times.push(this.lastFrameAt + (this.pingSentAt === null ? PING_AFTER : DEAD_AFTER));
    }
    return times.length ? Math.min(...times) : null;
  }

  /** The user wants to see document *path*: open it (once; it stays open for the page's life). */
  open(path: string): Effect[] {
    if (!this.docs.has(path)) {
      const doc: Doc = { path, state: "opening", client: null, openId: null, wholeText: false, retryAt: null, history: [] };
      this.docs.set(path, doc);
      if (this.conn === "joined") {
        this.sendOpen(doc);
      }
    }
    return this.take();
  }

  /** The user changed document *path* by *changes* (UTF-16 offsets of the text before them). */
  edit(path: string, changes: readonly Change[], now: number): Effect[] {
    const doc = this.docs.get(path);
    if (!doc || !doc.client) {
      return this.take();
    }
    const clean = changes.map((c) => {
      const insert = shareable(c.insert);
      return insert === c.insert ? c : { ...c, insert };
    });
    const op = changesToOp(doc.client.text, clean);
    const out = doc.client.applyLocal(op);
    if (out && this.conn === "joined" && doc.state === "open") {
      this.sendOp(doc, out);
    }
    if (clean.some((c, i) => c !== changes[i])) {
      // NUL or half of a UTF-16 pair (a paste of odd text), which the hub refuses: it went as
      // U+FFFD, one UTF-16 unit for one, and the view is brought to that at the same offsets
      const fixes: Change[] = [];
      let shift = 0; // how far the changes before this one moved the text after them
      changes.forEach((c, i) => {
        for (let k = 0; k < c.insert.length; k++) {
          if (c.insert[k] !== clean[i].insert[k]) {
            const at = c.from + shift + k;
            fixes.push({ from: at, to: at + 1, insert: "\ufffd" });
          }
        }
        shift += c.insert.length - (c.to - c.from);
      });
      this.effects.push({ kind: "remote", path, changes: fixes });
      if (!this.replacedSaid.has(path)) {
        this.replacedSaid.add(path);
        this.notice(`${path}: characters that cannot be shared (NUL, or half of a UTF-16 pair) are \ufffd for everyone.`, "warning");
      }
    }
    // (offline, the op stays in flight unsent: the reconnect sends it with its seq; our cursor
    // goes with the select() that follows every change the user makes)
    void now;
    return this.take();
  }

  /** The user's selections in document *path*: [anchor, head] UTF-16 offsets of its text. */
  select(path: string, ranges: readonly [number, number][], now: number): Effect[] {
    const doc = this.docs.get(path);
    const client = doc?.client;
    if (!doc || !client) {
      return this.take();
    }
    const pending = [client.outstanding?.op ?? null, client.buffer].filter((o): o is Op => o !== null);
    const view = ranges.slice(0, 64).map(([a, h]) => [toCodePoint(client.text, a), toCodePoint(client.text, h)]);
    const hub: [number, number][] = view.map((pair) => {
      const back = pair.map((pos) => {
        for (let i = pending.length - 1; i >= 0; i--) {
          pos = ops.mapBack(pos, pending[i]);
        }
        return pos;
      });
      return [back[0], back[1]];
    });
    this.presence = { path, rev: client.rev, ranges: hub };
    if (this.peersHold(path, client.rev, pending, view) && (this.presenceDue === null || this.presenceImplied)) {
      // typing: the peers move our cursor past what we type as our op reaches them, so this
      // presence would tell them nothing new; it goes later, keeping the hub's copy (newcomers
      // get it) recent, unless the cursor moves some other way first
      if (this.presenceDue === null) {
        this.presenceDue = Math.max(now, this.presenceAt + PRESENCE_IMPLIED_INTERVAL);
      }
      this.presenceImplied = true;
      this.stats.presenceImplied++;
      return this.take();
    }
    this.presenceImplied = false;
    this.presenceDue = Math.max(now, this.presenceAt + PRESENCE_INTERVAL);
    this.flushPresence(now);
    return this.take();
  }

  // == queries ===================================================================================

  /** The document's text as this page has it (hub text plus unsent typing), or null. */
  text(path: string): string | null {
    return this.docs.get(path)?.client?.text ?? null;
  }

  /** True once *path* is open and its text is here. */
  isOpen(path: string): boolean {
    return this.docs.get(path)?.client != null;
  }

  /** Paths with typing the hub has not acknowledged. */
  unsent(): string[] {
    return [...this.docs.values()].filter((d) => d.client?.unacknowledged).map((d) => d.path);
  }

  /** The hub revision this page has of *path*. */
  revision(path: string): number | null {
    return this.docs.get(path)?.client?.rev ?? null;
  }

  get readOnly(): boolean {
    return this.role === "viewer";
  }

  /** Peers' cursors in *path*, as UTF-16 offsets of the text this page shows. */
  cursors(path: string): PeerCursor[] {
    const doc = this.docs.get(path);
    const client = doc?.client;
    if (!doc || !client) {
      return [];
    }
    const out: PeerCursor[] = [];
    for (const p of this.participants.values()) {
      if (p.path !== path || p.id === this.participantId || !p.ranges.length) {
        continue;
      }
      const ranges = p.ranges.map(([a, h]): [number, number] => [this.toView(client, a), this.toView(client, h)]);
      out.push({ participant: p, ranges });
    }
    return out;
  }

  // == the hub's messages ========================================================================

  private handle(msg: Json, now: number): void {
    switch (msg.type) {
      case "welcome":
        this.welcome(msg);
        break;
      case "joined":
        this.joined(msg, now);
        break;
      case "error":
        this.error(msg, now);
        break;
      case "opened":
        this.opened(msg);
        break;
      case "ack":
        this.ack(msg, now);
        break;
      case "op":
        this.op(msg);
        break;
      case "presence":
        this.presenceReceived(msg);
        break;
      case "participant_joined":
      case "participant_changed":
        this.participantUpdated(msg.participant);
        break;
      case "participant_left":
        if (typeof msg.participant === "string" && this.participants.delete(msg.participant)) {
          this.changed();
        }
        break;
      case "document_added":
        if (typeof msg.path === "string" && typeof msg.rev === "number") {
          this.documents.set(msg.path, { path: msg.path, rev: msg.rev });
          this.changed();
        }
        break;
      case "documents":
        this.documentsListed(msg.documents);
        break;
      default:
        break; // pong, closed, digest...: nothing to do
    }
  }

  private welcome(msg: Json): void {
    const limits = msg.limits && typeof msg.limits === "object" ? (msg.limits as Json) : {};
    this.limits = limits;
    if (typeof msg.participant === "string") {
      this.participantId = msg.participant;
    }
    this.conn = "joining";
    this.request({ type: "join", room: this.config.roomId, secret: this.config.secret }, "join");
    this.changed();
  }

  private joined(msg: Json, now: number): void {
    this.conn = "joined";
    this.backoff = BACKOFF_MIN;
    this.reconnectAt = null;
    if (typeof msg.participant === "string") {
      this.participantId = msg.participant;
    }
    this.role = asRole(msg.role) ?? "viewer";
    this.participants.clear();
    if (Array.isArray(msg.participants)) {
      for (const p of msg.participants) {
        this.participantUpdated(p, false);
      }
    }
    this.documentsListed(msg.documents);
    if (Array.isArray(msg.presence)) {
      for (const p of msg.presence) {
        if (p && typeof p === "object") {
          this.presenceReceived(p as Json);
        }
      }
    }
    if (this.everJoined) {
      this.notice("Back in the room.", "info");
    }
    this.everJoined = true;
    const maxBytes = Number(this.limits.maxMessageBytes) || 0;
    const maxComponents = Number(this.limits.maxOpComponents) || 0;
    for (const doc of this.docs.values()) {
      if (doc.client) {
        // room for the rest of the op message (path, rev, seq) and some slack
        doc.client.maxOpBytes = maxBytes ? Math.max(64, maxBytes - 2048 - 4 * doc.path.length) : null;
        doc.client.maxOpComponents = maxComponents ? Math.max(4, maxComponents) : null;
      }
      if (doc.state !== "failed") {
        this.sendOpen(doc);
      }
    }
    if (this.presence) {
      this.presenceDue = now;
    }
    this.changed();
  }

  private error(msg: Json, now: number): void {
    const code = String(msg.code ?? "");
    const id = typeof msg.id === "number" ? msg.id : null;
    const req = id !== null ? this.pending.get(id) : undefined;
    if (id !== null) {
      this.pending.delete(id);
    }
    if (req?.kind === "join") {
      const final = FINAL_JOIN_ERRORS[code];
      if (final !== undefined) {
        this.end(final);
      } else {
        // unavailable or rate_limited: the same join again on a fresh connection, later
        this.effects.push({ kind: "disconnect" });
      }
      return;
    }
    const path = typeof msg.path === "string" ? msg.path : req?.path;
    const doc = path !== undefined ? this.docs.get(path) : undefined;
    if (!doc) {
      if (req?.kind === "hello" || code === "not_hello" || code === "unsupported_version") {
        this.end("The hub does not speak this page's protocol.");
      }
      return;
    }
    if (req?.kind === "open") {
      doc.openId = null;
      if (code === "no_such_document") {
        doc.state = "failed";
        this.documents.delete(doc.path);
        this.notice(`${doc.path} is no longer in the room.`, "warning");
        this.changed();
      } else {
        doc.retryAt = now + RETRY_DELAY; // unavailable, rate_limited: asked again later
      }
      return;
    }
    const seq = typeof msg.seq === "number" ? msg.seq : null;
    const client = doc.client;
    if (seq === null) {
      if (code === "unavailable" && typeof msg.rev === "number") {
        // the hub lost the document: open it again with since, then send what it lacks
        this.stats.catchUps++;
        client?.hold();
        this.sendOpen(doc);
      }
      return;
    }
    if (!client || client.outstanding?.seq !== seq) {
      return; // about an op no longer in flight
    }
    switch (code) {
      case "unavailable":
      case "rate_limited":
        doc.retryAt = now + RETRY_DELAY;
        break;
      case "revision_too_old":
      case "not_open":
        this.stats.catchUps++;
        client.hold();
        this.sendOpen(doc);
        break;
      case "forbidden": {
        // a viewer's typing: the hub took none of it, and will not
        this.stats.refusedViewerEdits++;
        this.role = this.role === "owner" ? this.role : "viewer";
        const before = client.text;
        client.unsend();
        client.discardLocal();
        this.effects.push({ kind: "remote", path: doc.path, changes: opToChanges(before, ops.diff(before, client.text)) });
        this.notice("You are a viewer in this room: your typing was undone.", "warning");
        this.changed();
        break;
      }
      case "too_large": {
        const before = client.text;
        client.unsend();
        client.discardLocal();
        this.effects.push({ kind: "remote", path: doc.path, changes: opToChanges(before, ops.diff(before, client.text)) });
        this.notice(`${doc.path} would pass the hub's size limit: that change was undone.`, "error");
        break;
      }
      default:
        this.heal(doc, `the hub refused an edit (${code})`);
    }
  }

  private opened(msg: Json): void {
    const path = typeof msg.path === "string" ? msg.path : null;
    const doc = path !== null ? this.docs.get(path) : undefined;
    const id = typeof msg.id === "number" ? msg.id : null;
    if (id !== null) {
      this.pending.delete(id);
    }
    if (!doc || doc.openId !== id || typeof msg.rev !== "number") {
      return;
    }
    doc.openId = null;
    doc.state = "open";
    const rev = msg.rev;
    if (typeof msg.text === "string") {
      if (doc.client === null) {
        doc.client = this.newClient(doc, msg.text, rev);
        this.effects.push({ kind: "load", path: doc.path, text: msg.text });
        this.changed();
      } else {
        // the whole text again (a heal): our unsent typing moves onto it
        const client = doc.client;
        client.unsend();
        const before = client.text;
        const theirs = client.rebase(msg.text, rev);
        doc.history = [];
        if (this.shown?.path === doc.path) {
          this.shown = null;
        }
        this.effects.push({ kind: "remote", path: doc.path, changes: opToChanges(before, theirs) });
        this.release(doc);
      }
      this.emitCursors(doc.path);
      return;
    }
    const client = doc.client;
    if (client === null || !Array.isArray(msg.ops)) {
      return;
    }
    try {
      for (const entry of msg.ops) {
        const e = entry as Json;
        const erev = Number(e.rev);
        if (erev <= client.rev) {
          continue;
        }
        const seq = typeof e.seq === "number" ? e.seq : null;
        this.applyHubOp(doc, erev, ops.check(e.op), seq === null ? null : this.config.clientId, seq, asString(e.author));
      }
    } catch (err) {
      this.heal(doc, `the catch-up did not fit (${String(err)})`);
      return;
    }
    this.release(doc);
  }

  private release(doc: Doc): void {
    const client = doc.client;
    if (!client) {
      return;
    }
    const again = client.resend();
    if (again) {
      this.stats.resent++;
      this.sendOp(doc, again);
    }
    const out = client.release();
    if (out) {
      this.sendOp(doc, out);
    }
  }

  private ack(msg: Json, now: number): void {
    const doc = typeof msg.path === "string" ? this.docs.get(msg.path) : undefined;
    const client = doc?.client;
    if (!doc || !client || doc.state !== "open" || typeof msg.rev !== "number") {
      return;
    }
    const out = client.outstanding;
    if (!out || out.seq !== msg.seq) {
      return; // an ack already counted through a catch-up
    }
    try {
      const next = client.receiveAck(msg.rev);
      this.remember(doc, msg.rev, out.op, this.participantId);
      if (this.presence?.path === doc.path) {
        this.flushPresence(now, true);
      }
      if (next) {
        this.sendOp(doc, next);
      }
    } catch (err) {
      if (!(err instanceof InvalidState)) {
        throw err;
      }
      this.heal(doc, "an acknowledgement out of order");
    }
  }

  private op(msg: Json): void {
    const doc = typeof msg.path === "string" ? this.docs.get(msg.path) : undefined;
    if (!doc || !doc.client || doc.state !== "open" || typeof msg.rev !== "number") {
      return;
    }
    if (msg.rev <= doc.client.rev) {
      return; // seen in a catch-up already
    }
    try {
      this.applyHubOp(doc, msg.rev, ops.check(msg.op), null, null, asString(msg.author));
    } catch (err) {
      this.heal(doc, `a hub op did not fit (${String(err)})`);
    }
  }

  private applyHubOp(doc: Doc, rev: number, op: Op, clientId: string | null, seq: number | null, author: string | null): void {
    const client = doc.client as DocumentClient;
    const before = client.text;
    const own = client.outstanding;
    const isOwn = own !== null && clientId === this.config.clientId && seq === own.seq;
    const [view, next] = client.receiveOp(rev, op, clientId, seq);
    this.remember(doc, rev, isOwn ? own.op : op, isOwn ? this.participantId : author);
    if (view.length) {
      this.effects.push({ kind: "remote", path: doc.path, changes: opToChanges(before, view) });
    }
    if (next) {
      this.sendOp(doc, next);
    }
  }

  /** Hub op *rev* of *doc* by *author*: kept for a while, and peers' cursors move with it. */
  private remember(doc: Doc, rev: number, op: Op, author: string | null): void {
    doc.history.push([rev, op, author]);
    if (doc.history.length > HISTORY) {
      doc.history.splice(0, doc.history.length - HISTORY);
    }
    const shown = this.shown;
    if (shown !== null && shown.path === doc.path) {
      const mine = author === this.participantId;
      this.shown =
        shown.rev !== rev - 1
          ? null // (a revision we did not see go by: no longer known)
          : { path: shown.path, rev, ranges: shown.ranges.map(([a, h]) => [ops.transformIndex(a, op, mine), ops.transformIndex(h, op, mine)]) };
    }
    let moved = false;
    for (const p of this.participants.values()) {
      if (p.path === doc.path && p.rev === rev - 1) {
        const mine = p.id === author;
        p.ranges = p.ranges.map(([a, h]) => [ops.transformIndex(a, op, mine), ops.transformIndex(h, op, mine)]);
        p.rev = rev;
        moved = true;
      }
    }
    if (moved) {
      this.emitCursors(doc.path);
    }
  }

  private presenceReceived(msg: Json): void {
    const pid = asString(msg.participant);
    const path = asString(msg.path);
    if (pid === null || path === null || typeof msg.rev !== "number" || !Array.isArray(msg.ranges)) {
      return;
    }
    if (pid === this.participantId) {
      return;
    }
    const ranges: [number, number][] = [];
    for (const r of msg.ranges.slice(0, 64)) {
      if (Array.isArray(r) && r.length === 2 && r.every((x) => Number.isInteger(x) && x >= 0)) {
        ranges.push([r[0], r[1]]);
      }
    }
    let p: Participant | null | undefined = this.participants.get(pid);
    if (!p) {
      p = this.participantUpdated({ id: pid, name: msg.name, role: "editor" }, false);
      if (!p) {
        return;
      }
    }
    const old = p.path;
    p.path = path;
    p.rev = msg.rev;
    p.ranges = ranges;
    const doc = this.docs.get(path);
    if (doc?.client && p.rev < doc.client.rev) {
      // made at an older revision: bring it forward through the ops since
      for (const [rev, op, author] of doc.history) {
        if (rev === p.rev + 1) {
          const mine = author === pid;
          p.ranges = p.ranges.map(([a, h]) => [ops.transformIndex(a, op, mine), ops.transformIndex(h, op, mine)]);
          p.rev = rev;
        }
      }
    }
    if (old !== null && old !== path) {
      this.emitCursors(old);
    }
    this.emitCursors(path);
    if (old !== path) {
      this.changed(); // the side list shows who is in which document
    }
  }

  private participantUpdated(raw: unknown, announce = true): Participant | null {
    if (!raw || typeof raw !== "object") {
      return null;
    }
    const r = raw as Json;
    const id = asString(r.id);
    if (id === null) {
      return null;
    }
    const known = this.participants.get(id);
    const role = asRole(r.role) ?? known?.role ?? "editor";
    const p: Participant = known ?? { id, name: "?", role, color: this.freeColor(id), path: null, rev: 0, ranges: [] };
    p.name = displayName(r.name ?? known?.name);
    p.role = role;
    this.participants.set(id, p);
    if (id === this.participantId && this.role !== role && this.conn === "joined") {
      this.role = role;
      const what = role === "viewer" ? "a viewer" : role === "owner" ? "the owner" : "an editor";
      this.notice(`The owner made you ${what}.`, "info");
    }
    if (announce) {
      this.changed();
    }
    return p;
  }

  /** The participant's colour: its id's, unless someone here has it already (then the next free). */
  private freeColor(id: string): number {
    const taken = new Set([...this.participants.values()].filter((p) => p.id !== id).map((p) => p.color));
    const preferred = colorOf(id);
    for (let i = 0; i < PALETTE_SIZE; i++) {
      const c = (preferred + i) % PALETTE_SIZE;
      if (!taken.has(c)) {
        return c;
      }
    }
    return preferred;
  }

  private documentsListed(raw: unknown): void {
    if (!Array.isArray(raw)) {
      return;
    }
    this.documents.clear();
    for (const d of raw) {
      const path = d && typeof d === "object" ? asString((d as Json).path) : null;
      if (path !== null) {
        this.documents.set(path, { path, rev: Number((d as Json).rev) || 0 });
      }
    }
    this.changed();
  }

  // == internals =================================================================================

  private newClient(doc: Doc, text: string, rev: number): DocumentClient {
    const maxBytes = Number(this.limits.maxMessageBytes) || 0;
    const maxComponents = Number(this.limits.maxOpComponents) || 0;
    return new DocumentClient(text, rev, this.config.clientId, {
      maxOpBytes: maxBytes ? Math.max(64, maxBytes - 2048 - 4 * doc.path.length) : null,
      maxOpComponents: maxComponents ? Math.max(4, maxComponents) : null,
    });
  }

  /** The last resort: read the hub's text whole and rebase the unsent typing onto it. */
  private heal(doc: Doc, why: string): void {
    this.stats.heals++;
    this.notice(`Repaired ${doc.path} from the hub's copy (${why}); your typing is kept.`, "warning");
    doc.client?.hold();
    doc.wholeText = true;
    this.sendOpen(doc);
  }

  private sendOpen(doc: Doc): void {
    if (this.conn !== "joined") {
      return;
    }
    const msg: Json = { type: "open", path: doc.path };
    if (doc.client && !doc.wholeText) {
      msg.since = doc.client.rev;
    }
    doc.wholeText = false;
    doc.client?.hold();
    doc.state = "opening";
    doc.openId = this.request(msg, "open", doc.path);
  }

  private sendOp(doc: Doc, out: Outgoing): void {
    if (this.conn !== "joined" || doc.state !== "open") {
      return; // sent again (same seq) once the document is open on a connection
    }
    this.send({ type: "op", path: doc.path, rev: out.baseRev, seq: out.seq, op: out.op });
  }

  /** Whether the peers hold our cursor at *view* (code points of the text with our *pending* ops,
   * on revision *rev*) once those ops reach them. */
  private peersHold(path: string, rev: number, pending: Op[], view: number[][]): boolean {
    const shown = this.shown;
    if (shown === null || shown.path !== path || shown.rev !== rev || shown.ranges.length !== view.length) {
      return false;
    }
    return shown.ranges.every((pair, i) =>
      pair.every((pos, j) => pending.reduce((x, op) => ops.transformIndex(x, op, true), pos) === view[i][j]),
    );
  }

  /** True while our cursor waits for our op in flight in its document (see flushPresence). */
  private presenceWaits(): boolean {
    return this.presence !== null && this.docs.get(this.presence.path)?.client?.outstanding != null;
  }

  private flushPresence(now: number, afterAck = false): void {
    if (this.presence === null || this.presenceDue === null || now < this.presenceDue || this.conn !== "joined") {
      return;
    }
    const { path } = this.presence;
    const doc = this.docs.get(path);
    if (!doc || doc.state !== "open" || !doc.client) {
      return;
    }
    // The cursor goes after the op in flight is acknowledged: it would reach the others first
    // (the hub relays it at once, the op once committed), and their editors would draw it before
    // the text it follows, delaying the text. ack() flushes it, before the next op goes (its
    // ranges leave out every op not yet acknowledged, so they hold at the acknowledged revision).
    if (doc.client.outstanding !== null && !afterAck) {
      return;
    }
    this.presenceDue = null;
    this.presenceAt = now;
    const shown = this.shown;
    if (this.presenceImplied && shown !== null && shown.path === path && shown.rev === doc.client.rev) {
      // what the peers hold now, at the newest revision (the hub's copy for newcomers)
      this.presenceImplied = false;
      this.presence = { path, rev: shown.rev, ranges: shown.ranges };
      this.send({ type: "presence", path, rev: shown.rev, ranges: shown.ranges });
      return;
    }
    this.presenceImplied = false;
    // the ranges are in the hub's text at the revision the client had when the cursor moved:
    // brought forward through the hub's ops since (ours included), to the client's revision
    let { rev, ranges } = this.presence;
    for (const [r, op, author] of doc.history) {
      if (r === rev + 1) {
        const mine = author === this.participantId;
        ranges = ranges.map(([a, h]) => [ops.transformIndex(a, op, mine), ops.transformIndex(h, op, mine)]);
        rev = r;
      }
    }
    if (rev !== doc.client.rev) {
      return; // (history lost since: the next move of the cursor sends it)
    }
    this.presence = { path, rev, ranges };
    this.shown = { path, rev, ranges };
    this.send({ type: "presence", path, rev, ranges });
  }

  private toView(client: DocumentClient, pos: number): number {
    // (a position past the end, from a peer ahead of us, ends up clamped by toUtf16)
    for (const o of [client.outstanding?.op ?? null, client.buffer]) {
      if (o) {
        pos = ops.transformIndex(pos, o);
      }
    }
    return toUtf16(client.text, pos);
  }

  private connect(now: number): void {
    this.conn = "connecting";
    this.reconnectAt = null;
    this.lastFrameAt = now;
    this.pingSentAt = null;
    this.effects.push({ kind: "connect", url: this.config.url });
    this.changed();
  }

  private end(reason: string): void {
    this.conn = "closed";
    this.closedReason = reason;
    this.reconnectAt = null;
    this.effects.push({ kind: "disconnect" });
    this.notice(reason, "error");
    this.changed();
  }

  private request(msg: Json, kind: string, path?: string): number {
    const id = this.nextId++;
    this.pending.set(id, path === undefined ? { kind } : { kind, path });
    this.send({ ...msg, id });
    return id;
  }

  private send(msg: Json): void {
    this.effects.push({ kind: "send", frame: JSON.stringify(msg) });
  }

  private notice(text: string, level: "info" | "warning" | "error"): void {
    this.effects.push({ kind: "notice", text, level });
  }

  private changed(): void {
    if (!this.effects.some((e) => e.kind === "changed")) {
      this.effects.push({ kind: "changed" });
    }
  }

  private emitCursors(path: string): void {
    if (!this.effects.some((e) => e.kind === "cursors" && e.path === path)) {
      this.effects.push({ kind: "cursors", path });
    }
  }

  private take(): Effect[] {
    const out = this.effects;
    this.effects = [];
    return out;
  }
}

function asString(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

function asRole(v: unknown): Role | null {
  return v === "owner" || v === "editor" || v === "viewer" ? v : null;
}

/** *text* with NUL and each half of a UTF-16 pair that is alone (what the hub refuses: PostgreSQL
 * cannot hold NUL, UTF-8 cannot encode the half) replaced by U+FFFD, one unit for one; *text*
 * itself if it holds neither, as lsp_bridge does with collab_core.wire.shareable. */
export function shareable(text: string): string {
  return text.replace(/\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}

// control characters and the bidirectional overrides and isolates, which can make a name read as
// something else (the hub removes them too; the page does not rely on it)
// eslint-disable-next-line no-control-regex
const UNSAFE_NAME = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** A peer's name as the page shows it: text without control or direction-changing characters. */
export function displayName(name: unknown): string {
  const text = (typeof name === "string" ? name : "").replace(UNSAFE_NAME, "").trim().slice(0, 64);
  return text || "?";
}
