/**
 * The client's half of server-ordered OT (the ot.js client states): a port of
 * collab_core/client.py, checked against it by the shared test vectors.
 *
 * A DocumentClient tracks one document: SYNCHRONIZED (nothing unacknowledged), AWAITING_ACK (one
 * op in flight), AWAITING_WITH_BUFFER (and local changes composed into `buffer`, sent when the
 * ack arrives). Methods take what happened and return what to send and what to apply to the view.
 * Held (while a document is being opened or caught up, local changes only go to the buffer),
 * split (an op larger than the hub's frame or component limit goes in pieces) and rebase (local
 * changes moved onto a text the hub sent whole) serve the detours, as in the Python core.
 *
 * Pure: no DOM, no I/O, no clock.
 */

import * as ops from "./ops.js";
import type { Op } from "./ops.js";

export enum ClientState {
  Synchronized = "synchronized",
  AwaitingAck = "awaiting_ack",
  AwaitingWithBuffer = "awaiting_with_buffer",
}

/** An op to submit: made against `baseRev`, numbered `seq` by this client. */
export interface Outgoing {
  readonly seq: number;
  readonly baseRev: number;
  readonly op: Op;
}

/** Misuse of the state machine (an ack with nothing outstanding, a revision out of order). */
export class InvalidState extends Error {}

export interface ClientOptions {
  nextSeq?: number;
  held?: boolean;
  maxOpBytes?: number | null;
  maxOpComponents?: number | null;
}

export class DocumentClient {
  /** the text as this client sees it (hub text plus local changes), a JavaScript string */
  text: string;
  /** the last hub revision this client has seen */
  rev: number;
  outstanding: Outgoing | null = null;
  buffer: Op | null = null;
  held: boolean;
  maxOpBytes: number | null;
  maxOpComponents: number | null;
  private seqNext: number;
  // the hub's text at `rev`: a text and the hub ops since it, composed
  private shadowText: string;
  private sinceShadow: Op = [];

  constructor(
    text: string,
    rev: number,
    readonly clientId: string,
    options: ClientOptions = {},
  ) {
    this.text = text;
    this.rev = rev;
    this.held = options.held ?? false;
    this.maxOpBytes = options.maxOpBytes ?? null;
    this.maxOpComponents = options.maxOpComponents ?? null;
    this.seqNext = options.nextSeq ?? 1;
    this.shadowText = text;
  }

  get state(): ClientState {
    if (this.outstanding === null) {
      return ClientState.Synchronized;
    }
    return this.buffer === null ? ClientState.AwaitingAck : ClientState.AwaitingWithBuffer;
  }

  get nextSeq(): number {
    return this.seqNext;
  }

  /** Local changes the hub has not acknowledged (in flight or buffered). */
  get unacknowledged(): boolean {
    return this.outstanding !== null || this.buffer !== null;
  }

  /** The user changed the text by *op*; returns what to send now, if anything. */
  applyLocal(op: Op): Outgoing | null {
    this.text = ops.apply(this.text, op);
    // transform breaks ties by the shape of its first operand: the hub sees the canonical form
    op = ops.normalize(op);
    if (!op.length) {
      return null;
    }
    if (this.outstanding === null && this.buffer === null && !this.held) {
      return this.send(op);
    }
    this.buffer = this.buffer === null ? op : ops.compose(this.buffer, op);
    return null;
  }

  /** The hub committed the outstanding op as *rev*; returns the next op to send. */
  receiveAck(rev: number): Outgoing | null {
    if (this.outstanding === null) {
      throw new InvalidState("ack with nothing outstanding");
    }
    if (rev !== this.rev + 1) {
      throw new InvalidState(`ack for rev ${rev}, expected ${this.rev + 1}`);
    }
    this.rev = rev;
    this.advanceShadow(this.outstanding.op);
    this.outstanding = null;
    return this.sendBuffer();
  }

  /**
   * A hub op with revision *rev*. Returns the op to apply to the local view (already applied to
   * `text`) and, when the op is our own outstanding one seen again after a reconnect (same client
   * id and seq), the next op to send.
   */
  receiveOp(rev: number, op: Op, clientId: string | null = null, seq: number | null = null): [Op, Outgoing | null] {
    if (rev !== this.rev + 1) {
      throw new InvalidState(`op for rev ${rev}, expected ${this.rev + 1}`);
    }
    const out = this.outstanding;
    if (out !== null && clientId === this.clientId && seq === out.seq) {
      return [[], this.receiveAck(rev)];
    }
    this.rev = rev;
    this.advanceShadow(op);
    if (out !== null) {
      const [outOp, moved] = ops.transform(out.op, op);
      this.outstanding = { seq: out.seq, baseRev: out.baseRev, op: outOp };
      op = moved;
    }
    if (this.buffer !== null) {
      const [buf, moved] = ops.transform(this.buffer, op);
      this.buffer = buf;
      op = moved;
    }
    this.text = ops.apply(this.text, op);
    return [op, null];
  }

  /** After a reconnect (and catching up): the outstanding op again, same seq, at the current rev. */
  resend(): Outgoing | null {
    const out = this.outstanding;
    if (out === null) {
      return null;
    }
    this.outstanding = { seq: out.seq, baseRev: this.rev, op: out.op };
    return this.outstanding;
  }

  /** Stop sending: local changes wait in the buffer until release(). */
  hold(): void {
    this.held = true;
  }

  /** Sending may go on: returns the op to send now, if anything waits. */
  release(): Outgoing | null {
    this.held = false;
    if (this.outstanding !== null) {
      return null;
    }
    return this.sendBuffer();
  }

  /** The hub refused the outstanding op (it applied nothing): back in front of the buffer, held. */
  unsend(): void {
    const out = this.outstanding;
    this.held = true;
    if (out === null) {
      return;
    }
    this.outstanding = null;
    this.buffer = this.buffer === null ? out.op : ops.compose(out.op, this.buffer);
  }

  /** Forget the local changes the hub has not acknowledged (a viewer's); nothing may be in flight. */
  discardLocal(): void {
    if (this.outstanding !== null) {
      throw new InvalidState("discard with an op in flight");
    }
    this.buffer = null;
    this.text = this.shadow;
    this.held = false;
  }

  /**
   * The hub's text at *rev* is *text*; the buffer moves onto it (transformed past the difference
   * from the hub text we knew). Only while nothing is in flight. Returns the op that turns our old
   * `text` into the new one, for the view.
   */
  rebase(text: string, rev: number): Op {
    if (this.outstanding !== null) {
      throw new InvalidState("rebase with an op in flight");
    }
    const correction = ops.diff(this.shadow, text);
    const [mine, theirs] = ops.transform(this.buffer ?? [], correction);
    this.buffer = mine.length ? mine : null;
    this.rev = rev;
    this.shadowText = text;
    this.sinceShadow = [];
    this.text = ops.apply(text, mine);
    return theirs;
  }

  /** The hub's text at `rev` as this client knows it (without local changes). */
  get shadow(): string {
    if (this.sinceShadow.length) {
      this.shadowText = ops.apply(this.shadowText, this.sinceShadow);
      this.sinceShadow = [];
    }
    return this.shadowText;
  }

  private advanceShadow(op: Op): void {
    // Composing is cheap while the ops are a few components with little text in them; applying
    // is O(text): done when asked for, or once composing would cost as much: many components, or
    // a large insert (a document created empty and sent as pieces), as collab_core/client.py does
    const since = this.sinceShadow.length ? ops.compose(this.sinceShadow, op) : op;
    if (since.length > 256 || inserted(since) > SHADOW_INSERT_LIMIT) {
      this.shadowText = ops.apply(this.shadowText, since);
      this.sinceShadow = [];
    } else {
      this.sinceShadow = since;
    }
  }

  private sendBuffer(): Outgoing | null {
    if (this.buffer === null || this.held) {
      return null;
    }
    const buffered = this.buffer;
    this.buffer = null;
    return this.send(buffered);
  }

  private send(op: Op): Outgoing {
    if (this.maxOpBytes !== null || this.maxOpComponents !== null) {
      const [head, rest] = ops.split(op, this.maxOpBytes, this.maxOpComponents);
      op = head;
      if (rest.length) {
        this.buffer = this.buffer === null ? rest : ops.compose(rest, this.buffer);
      }
    }
    this.outstanding = { seq: this.seqNext, baseRev: this.rev, op };
    this.seqNext++;
    return this.outstanding;
  }
}

/** Inserted text the ops the shadow is behind by may hold before they are applied (UTF-16 units
 * here, code points in Python: a bound on the work, not a count anyone else sees). */
export const SHADOW_INSERT_LIMIT = 4096;

function inserted(op: Op): number {
  let n = 0;
  for (const c of op) if (typeof c === "string") n += c.length;
  return n;
}
