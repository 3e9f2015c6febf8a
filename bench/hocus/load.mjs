// One load generator for the pairls hub and Hocuspocus (bench/hocus_bench.py runs it):
//
//   node load.mjs --kind pairls|hocus --url ws://127.0.0.1:PORT --rooms 100 --per-room 2
//                 --rate 1000 [--warmup 3] [--window 12] [--server-pid P] [--db-pid P]
//                 [--doc-prefix run1] [--seed 1]
//
// Each room has one typist (its first client) and per-room - 1 peers, one document, empty at
// first. The typists type --rate edits per second in all, each every rooms / rate seconds with
// the rooms' phases spread evenly (checked every 10 ms tick): an edit inserts one character at
// the end of the document, unless the typist's previous edit is still unacknowledged (one edit
// in flight per client; such an edit is counted as skipped). The cost
// per edit is the same for both servers: one WebSocket message out, the server's answer to the
// typist, one message to each peer.
//
// pairls: the wire protocol of docs/protocol.md (hello, create_room / join, create_document,
//   open; `op` [len, "x"] against the typist's last acked revision, answered by `ack` once
//   committed to PostgreSQL; peers receive `op`).
// hocus: raw Hocuspocus protocol (y-protocols sync over one WebSocket per client, a Y.Doc per
//   client, a Y.Text insert per edit); the typist's "ack" is Hocuspocus' SyncStatus answer to
//   its update (sent once the update is applied in memory); peers receive the update.
//
// Measured over --window seconds after --warmup: edit to peer (the typist's send to a peer
// having applied it: p50/p99 over every peer and edit), acknowledged edits per second, CPU
// seconds of --server-pid and of --db-pid with its children (utime + stime from /proc), the
// server's wake-ups (its main thread's voluntary context switches: each time its event loop
// slept and was woken), and this process's own CPU. Validated after: every edit acknowledged
// was seen by every peer, and every peer's text equals its typist's. Prints one JSON object on
// the last line of stdout.
import { readFileSync, readdirSync } from "node:fs";
import WebSocket from "ws";
import * as Y from "yjs";
import * as syncProtocol from "y-protocols/sync";
import * as encoding from "lib0/encoding";
import * as decoding from "lib0/decoding";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const kind = args.kind;
const url = args.url;
const nRooms = Number(args.rooms ?? 100);
const perRoom = Number(args["per-room"] ?? 2);
const rate = Number(args.rate ?? 1000);
const warmup = Number(args.warmup ?? 3);
const window_ = Number(args.window ?? 12);
const serverPid = args["server-pid"] ? Number(args["server-pid"]) : null;
const dbPid = args["db-pid"] ? Number(args["db-pid"]) : null;
const prefix = args["doc-prefix"] ?? "bench";
const clkTck = Number(args["clk-tck"] ?? 100);
let seed = Number(args.seed ?? 1);
if (kind !== "pairls" && kind !== "hocus") throw new Error("--kind pairls|hocus");

function rand() {
  // mulberry32: the same sequence of rooms for both servers
  seed |= 0;
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// -- CPU from /proc ---------------------------------------------------------------------------

function procTicks(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}

function treeTicks(root) {
  // root and its direct children (PostgreSQL's backends and workers)
  let total = procTicks(root)?.ticks ?? 0;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const p = procTicks(Number(name));
    if (p && p.ppid === root) total += p.ticks;
  }
  return total;
}

function wakeUps(pid) {
  // the main thread's (the event loop's) voluntary context switches; null: not readable
  try {
    const status = readFileSync(`/proc/${pid}/task/${pid}/status`, "utf8");
    const m = /^voluntary_ctxt_switches:\s+(\d+)/m.exec(status);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function cpuNow() {
  return {
    server: serverPid ? (procTicks(serverPid)?.ticks ?? 0) / clkTck : 0,
    serverWakeUps: serverPid ? wakeUps(serverPid) : null,
    db: dbPid ? treeTicks(dbPid) / clkTck : 0,
    me: (() => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    })(),
  };
}

// -- shared bookkeeping -----------------------------------------------------------------------

const stats = { measuring: false, windowAcks: 0, samples: [], skipped: 0, sent: 0, errors: [] };

class Room {
  constructor(i) {
    this.i = i;
    this.typist = null;
    this.peers = [];
    this.sentAt = new Map(); // edit number (1, 2, ...) -> send time, for edits sent while measuring
    this.edits = 0; // edits typed
    this.acked = 0;
    this.inFlight = false;
  }

  peerSaw(from, to) {
    // a peer now has edits from+1 .. to
    const t = now();
    for (let k = from + 1; k <= to; k++) {
      const s = this.sentAt.get(k);
      if (s !== undefined) stats.samples.push(t - s);
    }
  }

  acked_() {
    this.acked += 1;
    this.inFlight = false;
    if (stats.measuring) stats.windowAcks += 1;
  }
}

function openSocket(u) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(u, { perMessageDeflate: false });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

// -- pairls -----------------------------------------------------------------------------------

const PATH = "notes.md";

class PairlsClient {
  constructor(room) {
    this.room = room;
    this.waiters = [];
    this.text = "";
    this.rev = 0;
    this.seen = 0; // ops received (peers)
    this.seq = 0;
    this.onMessage = null;
  }

  async connect(name) {
    this.ws = await openSocket(url);
    this.ws.on("message", (data) => {
      const msg = JSON.parse(data.toString());
      for (const m of Array.isArray(msg) ? msg : [msg]) this.handle(m);
    });
    const clientId = `${name}-${Math.floor(rand() * 1e12).toString(36)}x${this.room.i}`;
    await this.request({ type: "hello", protocol: 1, name, clientId }, "welcome");
  }

  request(msg, want) {
    return new Promise((resolve, reject) => {
      this.waiters.push({ want, resolve, reject });
      this.ws.send(JSON.stringify(msg));
    });
  }

  handle(m) {
    if (m.type === "op") {
      this.apply(m.op);
      this.rev = m.rev;
      this.seen += 1;
      this.room.peerSaw(m.rev - 1, m.rev);
      return;
    }
    if (m.type === "ack") {
      this.rev = m.rev;
      this.room.acked_();
      return;
    }
    if (m.type === "error") {
      stats.errors.push(`${m.code}: ${m.message ?? ""}`);
      const w = this.waiters.shift();
      if (w) w.reject(new Error(m.code));
      return;
    }
    const w = this.waiters[0];
    if (w && w.want === m.type) {
      this.waiters.shift();
      w.resolve(m);
    }
  }

  apply(op) {
    let pos = 0;
    let text = this.text;
    for (const c of op) {
      if (typeof c === "string") {
        text = text.slice(0, pos) + c + text.slice(pos);
        pos += c.length;
      } else if (c > 0) pos += c;
      else text = text.slice(0, pos) + text.slice(pos - c);
    }
    this.text = text;
  }

  edit() {
    const op = this.text.length ? [this.text.length, "x"] : ["x"];
    this.apply(op);
    this.seq += 1;
    this.ws.send(JSON.stringify({ type: "op", path: PATH, rev: this.rev, seq: this.seq, op }));
  }

  finalText() {
    return this.text;
  }
}

async function pairlsRoom(room) {
  const owner = new PairlsClient(room);
  await owner.connect("typist");
  const created = await owner.request({ type: "create_room", name: "bench" }, "room_created");
  await owner.request({ type: "create_document", path: PATH, text: "" }, "document_created");
  const clients = [owner];
  for (let i = 1; i < perRoom; i++) {
    const c = new PairlsClient(room);
    await c.connect(`peer${i}`);
    await c.request({ type: "join", room: created.room, secret: created.editorSecret }, "joined");
    clients.push(c);
  }
  for (const c of clients) {
    const opened = await c.request({ type: "open", path: PATH }, "opened");
    c.rev = opened.rev;
    c.text = opened.text;
  }
  room.typist = owner;
  room.peers = clients.slice(1);
}

// -- Hocuspocus -------------------------------------------------------------------------------

const MSG_SYNC = 0;
const MSG_AWARENESS = 1;
const MSG_AUTH = 2;
const MSG_SYNC_REPLY = 4;
const MSG_SYNC_STATUS = 8;

class HocusClient {
  constructor(room, name) {
    this.room = room;
    this.name = name;
    this.doc = new Y.Doc();
    this.text = this.doc.getText("t");
    this.seen = 0;
    this.synced = null;
  }

  message(type, write) {
    const e = encoding.createEncoder();
    encoding.writeVarString(e, this.name);
    encoding.writeVarUint(e, type);
    write(e);
    return encoding.toUint8Array(e);
  }

  async connect() {
    this.ws = await openSocket(url);
    this.ws.binaryType = "nodebuffer";
    let synced;
    this.synced = new Promise((r) => {
      synced = r;
    });
    this.ws.on("message", (data) => this.handle(new Uint8Array(data), synced));
    this.doc.on("update", (update, origin) => {
      if (origin === this) return; // from the server
      this.ws.send(this.message(MSG_SYNC, (e) => syncProtocol.writeUpdate(e, update)));
    });
    // Auth (an empty token: no onAuthenticate hook), then sync step 1
    this.ws.send(
      this.message(MSG_AUTH, (e) => {
        encoding.writeVarUint(e, 0);
        encoding.writeVarString(e, "");
      }),
    );
    this.ws.send(this.message(MSG_SYNC, (e) => syncProtocol.writeSyncStep1(e, this.doc)));
    await this.synced;
  }

  handle(buf, synced) {
    const d = decoding.createDecoder(buf);
    decoding.readVarString(d);
    const type = decoding.readVarUint(d);
    if (type === MSG_SYNC || type === MSG_SYNC_REPLY) {
      const before = this.text.length;
      const e = encoding.createEncoder();
      encoding.writeVarString(e, this.name);
      encoding.writeVarUint(e, MSG_SYNC);
      const sub = syncProtocol.readSyncMessage(d, e, this.doc, this);
      if (sub === syncProtocol.messageYjsSyncStep1 && encoding.length(e) > 0) {
        this.ws.send(encoding.toUint8Array(e));
      } else if (sub === syncProtocol.messageYjsSyncStep2) {
        synced();
      } else if (sub === syncProtocol.messageYjsUpdate) {
        const after = this.text.length;
        this.seen += after - before;
        this.room.peerSaw(before, after);
      }
    } else if (type === MSG_SYNC_STATUS) {
      if (this === this.room.typist && this.room.inFlight) this.room.acked_();
    } else if (type === MSG_AUTH) {
      const sub = decoding.readVarUint(d);
      if (sub === 1) stats.errors.push(`permission denied: ${decoding.readVarString(d)}`);
    } else if (type !== MSG_AWARENESS) {
      // QueryAwareness, Stateless, Ping...: not used by this load
    }
  }

  edit() {
    this.text.insert(this.text.length, "x");
  }

  finalText() {
    return this.text.toString();
  }
}

async function hocusRoom(room) {
  const name = `${prefix}-${room.i}`;
  const clients = [];
  for (let i = 0; i < perRoom; i++) {
    const c = new HocusClient(room, name);
    await c.connect();
    clients.push(c);
  }
  room.typist = clients[0];
  room.peers = clients.slice(1);
}

// -- the run ----------------------------------------------------------------------------------

async function limited(items, limit, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

function pct(xs, q) {
  if (!xs.length) return null;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((q / 100) * s.length) - 1))];
}

const rooms = Array.from({ length: nRooms }, (_, i) => new Room(i));
const t0 = now();
await limited(rooms, 20, kind === "pairls" ? pairlsRoom : hocusRoom);
const setupS = (now() - t0) / 1e3;
await sleep(300); // the handshakes' last answers

let typing = true;
const tick = 10;
const typer = (async () => {
  // edit n goes to room n % rooms at n / rate seconds: each typist types every rooms / rate
  // seconds, the rooms' phases spread evenly
  const start = now();
  let n = 0;
  let next = start;
  while (typing) {
    next += tick;
    await sleep(Math.max(0, next - now()));
    const elapsed = (now() - start) / 1e3;
    while (typing && n / rate <= elapsed) {
      const room = rooms[n % rooms.length];
      n += 1;
      if (room.inFlight) {
        stats.skipped += 1;
        continue;
      }
      room.inFlight = true;
      room.edits += 1;
      stats.sent += 1;
      if (stats.measuring) room.sentAt.set(room.edits, now());
      room.typist.edit();
    }
  }
})();

await sleep(warmup * 1e3);
const c0 = cpuNow();
stats.measuring = true;
const w0 = now();
await sleep(window_ * 1e3);
stats.measuring = false;
const dt = (now() - w0) / 1e3;
const c1 = cpuNow();
typing = false;
await typer;
await sleep(1500); // what is on its way arrives

// validation
const problems = [];
let unacked = 0;
for (const room of rooms) {
  if (room.acked !== room.edits) unacked += room.edits - room.acked;
  const want = room.typist.finalText();
  if (want.length !== room.edits) problems.push(`room ${room.i}: typist text ${want.length} != ${room.edits} edits`);
  for (const p of room.peers) {
    if (p.seen !== room.edits) problems.push(`room ${room.i}: a peer saw ${p.seen} of ${room.edits} edits`);
    if (p.finalText() !== want) problems.push(`room ${room.i}: a peer's text differs`);
  }
}
if (unacked) problems.push(`${unacked} edits never acknowledged`);
if (stats.errors.length) problems.push(`${stats.errors.length} errors, first: ${stats.errors[0]}`);

const acks = stats.windowAcks;
const result = {
  kind,
  rooms: nRooms,
  clients: nRooms * perRoom,
  rate,
  setup_s: setupS,
  window_s: dt,
  acks,
  acks_per_s: acks / dt,
  edits_sent: stats.sent,
  skipped: stats.skipped,
  samples: stats.samples.length,
  p50_ms: pct(stats.samples, 50),
  p90_ms: pct(stats.samples, 90),
  p99_ms: pct(stats.samples, 99),
  max_ms: stats.samples.length ? Math.max(...stats.samples) : null,
  server_cpu_s: c1.server - c0.server,
  db_cpu_s: c1.db - c0.db,
  load_cpu_s: c1.me - c0.me,
  server_us_per_edit: ((c1.server - c0.server) / Math.max(1, acks)) * 1e6,
  // (null, shown as "-", when they could not be read: never a made-up 0)
  server_wake_ups_per_edit:
    c0.serverWakeUps === null || c1.serverWakeUps === null
      ? null
      : (c1.serverWakeUps - c0.serverWakeUps) / Math.max(1, acks),
  db_us_per_edit: ((c1.db - c0.db) / Math.max(1, acks)) * 1e6,
  valid: problems.length === 0,
  problems: problems.slice(0, 5),
  problem_count: problems.length,
};
for (const room of rooms) for (const c of [room.typist, ...room.peers]) c.ws.close();
console.log(JSON.stringify(result));
process.exit(0);
