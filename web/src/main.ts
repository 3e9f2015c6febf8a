/**
 * The page: reads the invite from its own address, asks for a name once, and runs the room.
 *
 * The address is the invite, `http(s)://HOST[:PORT][/prefix]/room/ROOM#SECRET`. The secret is the
 * fragment: browsers never send it in a request, and this page only ever puts it in the `join`
 * message inside the WebSocket, which connects to the page's own address (ws:// or wss://, no
 * fragment). This file is the shell around the session (core/session.ts): it opens and closes the
 * socket, keeps one timer, carries out the session's effects and draws the page.
 */

import { Session, displayName } from "./core/session.js";
import type { Effect } from "./core/session.js";
import type { Editor, EditorHooks } from "./app/editor.js";

// The editor (CodeMirror, most of the page's script) loads while the page connects and joins:
// the two take about as long, and neither waits for the other.
const editorModule = import("./app/editor.js");

interface Place {
  roomId: string;
  secret: string;
  wsUrl: string;
  invite: string;
}

const ROOM_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SECRET = /^[A-Za-z0-9_-]{1,128}$/;
const NAME_KEY = "pairls.name";
const USER_KEY = "pairls.user";
const USER = /^[A-Za-z0-9_-]{8,64}$/;

function place(loc: Location): Place | null {
  const at = loc.pathname.lastIndexOf("/room/");
  const roomId = at < 0 ? "" : decodeURIComponent(loc.pathname.slice(at + "/room/".length)).replace(/\/$/, "");
  const secret = loc.hash.replace(/^#/, "");
  if (!ROOM_ID.test(roomId) || !SECRET.test(secret)) {
    return null;
  }
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return {
    roomId,
    secret,
    wsUrl: `${scheme}//${loc.host}${loc.pathname}`,
    invite: `${loc.protocol}//${loc.host}${loc.pathname}#${secret}`,
  };
}

function clientId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Who this browser's person is to the hub across page loads (their history, their undo):
 * random, kept in the browser's storage. */
function userId(): string {
  let user = localStorage.getItem(USER_KEY);
  if (!user || !USER.test(user)) {
    user = clientId();
    localStorage.setItem(USER_KEY, user);
  }
  return user;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) {
    e.className = cls;
  }
  if (text !== undefined) {
    e.textContent = text;
  }
  return e;
}

function byId<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

const CONN_TEXT: Record<string, string> = {
  connecting: "connecting…",
  joining: "joining…",
  joined: "connected",
  offline: "offline, reconnecting…",
  closed: "disconnected",
};

class Page {
  private readonly session: Session;
  /** null until CodeMirror has loaded; the session keeps the text meanwhile */
  private editor: Editor | null = null;
  private socket: WebSocket | null = null;
  private timer: number | null = null;
  private current: string | null = null;
  private wanted: string | null = null;

  constructor(
    where: Place,
    name: string,
    nonce: string,
  ) {
    this.session = new Session({
      url: where.wsUrl,
      roomId: where.roomId,
      secret: where.secret,
      name,
      clientId: clientId(),
      user: userId(),
    });
    const hooks: EditorHooks = {
      edit: (changes) => {
        if (this.current !== null) {
          this.run(this.session.edit(this.current, changes, performance.now()));
        }
      },
      select: (ranges) => {
        if (this.current !== null && this.session.isOpen(this.current)) {
          this.run(this.session.select(this.current, ranges, performance.now()));
        }
      },
    };
    void editorModule.then((m) => {
      this.editor = new m.Editor(byId("editor"), hooks, nonce);
      const text = this.current !== null ? this.session.text(this.current) : null;
      if (this.current !== null && text !== null) {
        this.showText(this.current, text);
      }
      this.draw();
    });
    byId("room").textContent = `room ${where.roomId.slice(0, 8)}`;
    const me = byId<HTMLButtonElement>("me");
    me.hidden = false;
    me.textContent = name;
    me.addEventListener("click", () => askName(name, (next) => {
      localStorage.setItem(NAME_KEY, next);
      location.reload();
    }));
    byId("join-line").textContent = `:PairlsJoin ${where.invite}`;
    byId<HTMLButtonElement>("copy-line").addEventListener("click", () => {
      void navigator.clipboard.writeText(`:PairlsJoin ${where.invite}`).then(
        () => this.notice("Copied.", "info"),
        () => this.notice("Could not copy: select the line and copy it.", "warning"),
      );
    });
    window.addEventListener("beforeunload", (e) => {
      if (this.session.unsent().length && this.session.conn !== "closed") {
        e.preventDefault(); // the browser asks before the typing the hub has not got is lost
      }
    });
    this.exposeForTests();
    this.run(this.session.start(performance.now()));
  }

  /** Carry out the session's effects, then set the timer for its next wake-up. */
  private run(effects: Effect[]): void {
    for (const e of effects) {
      switch (e.kind) {
        case "connect":
          this.connect(e.url);
          break;
        case "send":
          if (this.socket?.readyState === WebSocket.OPEN) {
            this.socket.send(e.frame);
          }
          break;
        case "disconnect":
          this.drop();
          break;
        case "load":
          if (e.path === this.current) {
            markOnce("pairls:opened");
            this.showText(e.path, e.text);
          }
          break;
        case "remote":
          if (e.path === this.current) {
            this.editor?.applyRemote(e.changes); // (no editor yet: it starts from the session's text)
            remoteShown.push(performance.timeOrigin + performance.now());
            if (remoteShown.length > 1000) {
              remoteShown.shift();
            }
          }
          break;
        case "cursors":
          if (e.path === this.current) {
            this.drawCursors();
          }
          break;
        case "changed":
          this.draw();
          break;
        case "notice":
          this.notice(e.text, e.level);
          break;
      }
    }
    this.drawUnsent();
    this.schedule();
  }

  private schedule(): void {
    const due = this.session.wakeAt();
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (due !== null) {
      this.timer = window.setTimeout(() => {
        this.timer = null;
        this.run(this.session.tick(performance.now()));
      }, Math.max(0, due - performance.now()));
    }
  }

  private connect(url: string): void {
    const ws = new WebSocket(url);
    this.socket = ws;
    ws.onopen = () => {
      markOnce("pairls:socket-open");
      this.run(this.session.connectionOpened(performance.now()));
    };
    ws.onmessage = (m) => {
      if (typeof m.data === "string") {
        this.run(this.session.frameReceived(m.data, performance.now()));
      }
    };
    ws.onclose = (c) => {
      if (this.socket === ws) {
        this.socket = null;
        this.run(this.session.connectionClosed(c.code, performance.now()));
      }
    };
  }

  /** Close the socket now and tell the session (without waiting for a close handshake). */
  private drop(): void {
    const ws = this.socket;
    this.socket = null;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      ws.close();
      this.run(this.session.connectionClosed(1006, performance.now()));
    }
  }

  private show(path: string): void {
    this.wanted = path;
    this.current = path;
    byId("path").textContent = path;
    this.run(this.session.open(path));
    const text = this.session.text(path);
    if (text !== null) {
      this.showText(path, text);
    } else if (this.editor) {
      this.editor.load(path, "");
      this.editor.setReadOnly(true); // until its text is here
    }
    this.draw();
  }

  private showText(path: string, text: string): void {
    if (!this.editor) {
      return; // shown when the editor has loaded
    }
    this.editor.load(path, text);
    this.drawCursors();
    markPainted();
  }

  private draw(): void {
    const s = this.session;
    const conn = byId("conn");
    conn.dataset.state = s.conn;
    conn.textContent = s.conn === "closed" && s.closedReason ? `disconnected: ${s.closedReason}` : CONN_TEXT[s.conn];
    const role = byId("role");
    role.hidden = s.role === null;
    role.textContent = s.role === "viewer" ? "viewer: read-only" : (s.role ?? "");
    this.editor?.setReadOnly(s.readOnly || s.conn === "closed" || (this.current !== null && !s.isOpen(this.current)));

    // documents
    const docs = [...s.documents.keys()].sort();
    if (this.current === null && this.wanted === null && docs.length) {
      this.show(docs[0]);
      return;
    }
    const list = byId("documents");
    list.replaceChildren(
      ...docs.map((path) => {
        const li = el("li");
        const b = el("button");
        b.type = "button";
        b.dataset.path = path;
        b.setAttribute("aria-current", String(path === this.current));
        b.appendChild(el("span", "dpath", path));
        const who = el("span", "who");
        for (const p of s.participants.values()) {
          if (p.path === path && p.id !== s.participantId) {
            const dot = el("span", `dot pairls-c${p.color}`);
            dot.title = p.name;
            who.appendChild(dot);
          }
        }
        b.appendChild(who);
        b.addEventListener("click", () => this.show(path));
        li.appendChild(b);
        return li;
      }),
    );
    byId("no-documents").hidden = docs.length > 0 || s.conn !== "joined";

    // people
    const people = [...s.participants.values()].sort((a, b) => (a.id === s.participantId ? -1 : b.id === s.participantId ? 1 : a.name.localeCompare(b.name)));
    byId("participants").replaceChildren(
      ...people.map((p) => {
        const li = el("li");
        li.dataset.participant = p.id;
        li.appendChild(el("span", `dot pairls-c${p.color}`));
        li.appendChild(el("span", "pname", p.id === s.participantId ? `${p.name} (you)` : p.name));
        li.appendChild(el("span", "prole", p.role));
        return li;
      }),
    );
  }

  private drawUnsent(): void {
    const unsent = byId("unsent");
    const n = this.session.unsent().length;
    unsent.hidden = n === 0 || this.session.conn === "joined";
    unsent.textContent = n ? "your typing is kept and sent when the connection is back" : "";
  }

  private drawCursors(): void {
    if (this.current === null || !this.editor) {
      return;
    }
    this.editor.setCursors(
      this.session.cursors(this.current).map((c) => ({
        id: c.participant.id,
        name: c.participant.name,
        color: c.participant.color,
        ranges: c.ranges,
      })),
    );
  }

  private notice(text: string, level: "info" | "warning" | "error"): void {
    const box = byId("notices");
    const n = el("div", "notice", text);
    n.dataset.level = level;
    box.appendChild(n);
    while (box.children.length > 4) {
      box.firstElementChild?.remove();
    }
    if (level !== "error") {
      setTimeout(() => n.remove(), 6000);
    }
  }

  /**
   * What the end-to-end tests and the benchmark read (window.pairls): the editor's text, the
   * session's state and counters, peers' cursors. No secret and no way to act on the room.
   */
  private exposeForTests(): void {
    const s = this.session;
    const api = {
      text: (): string => this.editor?.text() ?? "",
      path: (): string | null => this.current,
      status: () => ({
        conn: s.conn,
        role: s.role,
        participant: s.participantId,
        current: this.current,
        open: this.current !== null && s.isOpen(this.current),
        rev: this.current !== null ? s.revision(this.current) : null,
        unsent: s.unsent(),
        stats: { ...s.stats },
        documents: [...s.documents.keys()],
        participants: [...s.participants.values()].map((p) => ({ id: p.id, name: p.name, role: p.role, color: p.color })),
      }),
      remoteShown: (): number[] => [...remoteShown],
      cursors: () =>
        this.current === null
          ? []
          : s.cursors(this.current).map((c) => ({ id: c.participant.id, name: c.participant.name, ranges: c.ranges })),
    };
    Object.defineProperty(window, "pairls", { value: Object.freeze(api) });
  }
}

const marked = new Set<string>();
/** when the last room changes were shown (epoch milliseconds): bench/web_bench.py's latencies */
const remoteShown: number[] = [];

/** Performance marks of the first load (bench/web_bench.py reads them): where the time goes. */
function markOnce(name: string): void {
  if (!marked.has(name)) {
    marked.add(name);
    performance.mark(name);
  }
}

/** The mark once the first document is on screen: after the frame that shows it. */
function markPainted(): void {
  if (!marked.has("pairls:document-shown")) {
    markOnce("pairls:document-shown");
    requestAnimationFrame(() => setTimeout(() => markOnce("pairls:document-painted"), 0));
  }
}

function askName(current: string, done: (name: string) => void): void {
  const dialog = byId<HTMLDialogElement>("name-dialog");
  const input = byId<HTMLInputElement>("name-input");
  input.value = current;
  byId<HTMLFormElement>("name-form").onsubmit = (e) => {
    e.preventDefault();
    const name = displayName(input.value);
    if (name === "?") {
      input.focus();
      return;
    }
    dialog.close();
    done(name);
  };
  dialog.showModal();
  input.focus();
}

function start(): void {
  markOnce("pairls:script");
  const nonce = (document.querySelector("link[rel=stylesheet]") as HTMLLinkElement | null)?.nonce ?? "";
  const where = place(location);
  if (where === null) {
    const conn = byId("conn");
    conn.dataset.state = "closed";
    conn.textContent = "This address is not a room link: it should end in /room/ROOM#SECRET.";
    return;
  }
  const stored = localStorage.getItem(NAME_KEY);
  if (stored && displayName(stored) !== "?") {
    new Page(where, displayName(stored), nonce);
  } else {
    askName("", (name) => {
      localStorage.setItem(NAME_KEY, name);
      new Page(where, name, nonce);
    });
  }
}

start();
