// Drives real VS Code windows (code-server) in Debian's chromium through playwright-core,
// for tests/e2e/test_vscode.py, which starts the hub and the code-servers and reads what this
// prints.
//
//   node run.mjs CONFIG.json
//
// stdout: one JSON object a line, {"event": ...}; logs go to stderr. When the config has
// "pauseAt", the driver stops at those events until a line arrives on stdin (so the test can
// compare with the hub while both editors are still live).
//
// Modes:
//   "workbench": each window loads the workbench, the command palette opens and lists a
//            built-in command, the file opens in an editor; screenshots.
//   "pair":  user A runs "Pairls: Create Room" and reads the invite (clipboard or notification),
//            user B runs "Pairls: Join Room" and types it into the input box; both open the same
//            file and type into it at once at different lines; B asks for completions of a
//            word that only A's other file holds; both editors converge; B shows A's cursor with
//            A's name; screenshots.
//   "fresh": the extension as installed from the .vsix with no Pairls setting: no Pairls status
//            bar item until a command runs ("ready", a pause for the test to look for server
//            processes); A runs "Pairls: Create Room", answers the hub question (its default is
//            reported) and reads the invite; B runs "Pairls: Join Room", types the invite and
//            opens the room's file through the notification's "Open a Document"; each types a
//            line the other sees; B gets completions from the room (a word of A's other file)
//            and from jedi (os.getcwd); both editors converge; screenshots.
//   "owner": A creates the room and B joins; from the participants picker A makes B a viewer;
//            "Pairls: Rotate Invites" (confirmed in its modal dialog) puts B out and B joins with
//            the new invite; A removes B from the picker (confirmed); "Pairls: Delete Room"
//            (confirmed) ends the room; each step waits for what B's window tells B.
//   "history": A makes two changes, B types inside the first and after the second; A runs
//            "Pairls: Undo My Last Change" from the palette, then presses the suggested key
//            (Ctrl+Alt+Z): each time both editors lose A's text and keep B's; "Pairls: Redo My
//            Change" brings the first back; B's hover on that line names A; A's "Pairls: Show
//            History" lists the changes and opens the one picked as a diff (its left side: the
//            text at that revision).
//   "run":   A creates the room and B joins; A runs "Pairls: Run for the Room" from the palette
//            and picks "Run <file>"; B's window opens a terminal for it on its own, which shows
//            the program's lines and the end line with its exit status (read from the
//            terminal's rendered rows), with no editor tab for it; B's "Pairls: Stop Run" finds
//            no run of B's.
//   "carry": A creates the room and B joins through the test's proxy (the invite's address
//            swapped for "bobHubAddress"); the test cuts B's route ("joined"); B types a line, saves
//            it and runs "Developer: Reload Window", which ends VS Code's extension host and so
//            B's language server; A types meanwhile ("reloaded": the test looks at B's state
//            folder, then restores the route); B's new window joins again with the same invite
//            and both editors show A's line and B's offline line.

import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const INVITE = /(?:https?|wss?):\/\/[^\s"'<>]+\/room\/[A-Za-z0-9_-]{1,64}#[A-Za-z0-9_-]{1,128}/;
const T0 = Date.now();

function emit(event, data = {}) {
  process.stdout.write(JSON.stringify({ event, t: (Date.now() - T0) / 1000, ...data }) + "\n");
}
function log(...args) {
  process.stderr.write(`[run.mjs ${((Date.now() - T0) / 1000).toFixed(1)}s] ${args.join(" ")}\n`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function pause(event, data) {
  emit(event, data);
  if ((config.pauseAt ?? []).includes(event)) {
    log(`waiting on stdin after ${event}`);
    const next = await stdinLines.next();
    if (next.done || next.value.trim() !== "continue") {
      throw new Error(`told to stop after ${event}: ${next.value ?? "EOF"}`);
    }
  }
}

/** Polls fn until it returns a truthy value; the last error or value goes into the timeout message. */
async function until(what, fn, timeoutMs = 30000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last?.stack ?? JSON.stringify(last)})`);
    }
    await sleep(everyMs);
  }
}

class Window {
  constructor(user, context, page) {
    this.user = user;
    this.name = user.name;
    this.context = context;
    this.page = page;
  }

  static async open(browser, user) {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 860 },
      permissions: ["clipboard-read", "clipboard-write"],
    });
    const page = await context.newPage();
    page.on("pageerror", (e) => log(`${user.name} pageerror: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error" && config.verbose) log(`${user.name} console: ${m.text()}`);
    });
    const url = `${user.url.replace(/\/$/, "")}/?folder=${encodeURIComponent(user.workspace)}`;
    log(`${user.name}: ${url}`);
    await page.goto(url, { waitUntil: "domcontentloaded" });
    const w = new Window(user, context, page);
    await page.waitForSelector(".monaco-workbench .part.statusbar", { timeout: 90000 });
    // the explorer has the workspace's files once the remote file system answers
    await page.waitForSelector(".explorer-folders-view .monaco-list-row", { timeout: 90000 });
    return w;
  }

  get kb() {
    return this.page.keyboard;
  }

  /** F1, the command's title, a click on the palette row with exactly that title. */
  async command(title, timeoutMs = 60000) {
    const { page } = this;
    const row = `.quick-input-widget .quick-input-list .monaco-list-row[aria-label^="${title}"]`;
    await until(
      `${this.name}: "${title}" in the command palette`,
      async () => {
        try {
          await this.closeQuickInput();
          await this.kb.press("F1");
          await page.waitForSelector(".quick-input-widget .quick-input-box input", { state: "visible", timeout: 5000 });
          await this.kb.type(title);
          // (not Enter: it would take whichever row is focused)
          await page.click(row, { timeout: 5000 });
          return true;
        } catch (e) {
          log(`${this.name}: palette: ${String(e.message ?? e).split("\n")[0]}; again`);
          return false;
        }
      },
      timeoutMs,
      1000,
    );
    log(`${this.name}: ran "${title}"`);
  }

  /** The Pairls status bar item: {id, label, icons} or null. */
  pairlsStatus() {
    return this.page.evaluate(() => {
      const el = [...document.querySelectorAll(".part.statusbar .statusbar-item")].find((e) => /pairls/i.test(e.id));
      if (!el) return null;
      const icons = [...el.querySelectorAll(".codicon")].map((i) => [...i.classList].find((c) => c.startsWith("codicon-") && c !== "codicon-modifier-spin")).filter(Boolean);
      return { id: el.id, label: el.getAttribute("aria-label") ?? "", text: el.textContent ?? "", icons };
    });
  }

  /** Waits, as a user would, for the status bar to say the language server runs (the broadcast icon). */
  async waitServerReady(timeoutMs = 60000) {
    const st = await until(`${this.name}: the Pairls status bar item to show the running server`, async () => {
      const s = await this.pairlsStatus();
      return s && s.icons.includes("codicon-broadcast") ? s : null;
    }, timeoutMs, 250);
    log(`${this.name}: status bar ${JSON.stringify(st)}`);
  }

  async closeQuickInput() {
    if (await this.page.isVisible(".quick-input-widget")) await this.kb.press("Escape");
  }

  /** Ctrl+P, the file's name, Enter; waits for its tab to be the active one. */
  async openFile(relPath) {
    const base = relPath.split("/").pop();
    await until(`${this.name}: quick open ${relPath}`, async () => {
      await this.closeQuickInput();
      await this.kb.press("Control+P");
      await this.page.waitForSelector(".quick-input-widget .quick-input-box input", { state: "visible", timeout: 5000 });
      await this.kb.type(relPath);
      const ok = await until(
        "quick open rows",
        () => this.page.evaluate((b) => [...document.querySelectorAll(".quick-input-widget .quick-input-list .monaco-list-row")]
          .some((r) => (r.getAttribute("aria-label") ?? "").includes(b)), base),
        5000,
        100,
      ).catch(() => false);
      if (!ok) {
        await this.kb.press("Escape");
        return false;
      }
      await this.kb.press("Enter");
      return until("active tab", () => this.activeTab().then((t) => t.startsWith(base)), 10000, 100).catch(() => false);
    }, 60000, 500);
    await this.focusEditor();
    log(`${this.name}: opened ${relPath}`);
  }

  activeTab() {
    return this.page.evaluate(() => {
      const t = document.querySelector(".part.editor .editor-group-container.active .tab.active");
      return t?.getAttribute("aria-label") ?? t?.textContent ?? "";
    });
  }

  async focusEditor() {
    await until(`${this.name}: a click into the editor`, () =>
      this.page
        .click(".part.editor .editor-group-container.active .monaco-editor .view-lines", { position: { x: 400, y: 5 }, timeout: 5000 })
        .then(() => true),
    20000, 500);
  }

  /** The active editor's text as it is shown: its rendered lines, top to bottom, joined by \n. */
  editorText() {
    return this.page.evaluate(() => {
      const editor = document.querySelector(".part.editor .editor-group-container.active .monaco-editor .view-lines");
      if (!editor) return null;
      const lines = [...editor.querySelectorAll(":scope > .view-line")]
        .map((el) => [parseFloat(el.style.top), el.textContent.replace(/\u00a0/g, " ")])
        .sort((a, b) => a[0] - b[0]);
      return lines.map((l) => l[1]).join("\n");
    });
  }

  /** Ctrl+G LINE Enter, then End: the caret at the end of that (1-based) line. */
  async gotoLineEnd(line) {
    await this.focusEditor();
    await this.kb.press("Control+G");
    await this.page.waitForSelector(".quick-input-widget .quick-input-box input", { state: "visible", timeout: 5000 });
    await this.kb.type(String(line));
    await sleep(150);
    await this.kb.press("Enter");
    await sleep(100);
    await this.kb.press("End");
  }

  async screenshot(tag) {
    mkdirSync(config.artifacts, { recursive: true });
    const path = join(config.artifacts, `${tag}-${this.user.id ?? this.name}.png`);
    await this.page.screenshot({ path });
    log(`screenshot ${path}`);
    return path;
  }

  /** The active terminal's rendered rows (the DOM renderer: gpuAcceleration off), or null. */
  terminalText() {
    return this.page.evaluate(() => {
      const rows = document.querySelector(".terminal-wrapper.active .xterm-rows") ?? document.querySelector(".xterm-rows");
      if (!rows) return null;
      return [...rows.children].map((r) => (r.textContent ?? "").replace(/\u00a0/g, " ").trimEnd()).join("\n").trim();
    });
  }

  /** What the panel says of its terminals: labels and titles naming a Pairls run, tab texts. */
  terminalNames() {
    return this.page.evaluate(() => {
      const out = new Set();
      for (const e of document.querySelectorAll(".part.panel *")) {
        for (const v of [e.getAttribute("aria-label"), e.getAttribute("title")]) {
          if (v && v.includes("Pairls run")) out.add(v.trim());
        }
      }
      for (const e of document.querySelectorAll(".part.panel .single-terminal-tab, .part.panel .terminal-tabs-entry")) {
        out.add((e.textContent || "").trim());
      }
      return [...out];
    });
  }

  /** The labels of the editor tabs. */
  tabs() {
    return this.page.evaluate(() =>
      [...document.querySelectorAll(".part.editor .tab")].map((t) => t.getAttribute("aria-label") || t.textContent || ""),
    );
  }

  /** Text of the notifications (toasts and the notification center). */
  notifications() {
    return this.page.evaluate(() =>
      [...document.querySelectorAll(".notification-list-item")].map((n) => n.getAttribute("aria-label") || n.textContent || ""),
    );
  }

  async clipboard() {
    try {
      return await this.page.evaluate(() => navigator.clipboard.readText());
    } catch (e) {
      return "";
    }
  }

  /** Texts shown through CSS content (decorations' before/after labels) in the active editor. */
  decorationLabels() {
    return this.page.evaluate(() => {
      const root = document.querySelector(".part.editor .editor-group-container.active .monaco-editor");
      if (!root) return [];
      const out = [];
      // rendered lines top to bottom: a label inside one gets its 1-based line number
      const lines = [...root.querySelectorAll(".view-lines > .view-line")].sort(
        (a, b) => parseFloat(a.style.top) - parseFloat(b.style.top),
      );
      for (const el of root.querySelectorAll(".view-lines span, .view-overlays div, .view-zones div, .contentWidgets div")) {
        for (const pseudo of ["::before", "::after"]) {
          const c = getComputedStyle(el, pseudo).content;
          if (c && c !== "none" && c !== "normal" && c !== '""') {
            const line = lines.indexOf(el.closest(".view-line")) + 1;
            out.push({ cls: String(el.className), content: c, line: line || null });
          }
        }
      }
      return out;
    });
  }

  /** Labels of the rows the suggest widget shows ([] when it is hidden). */
  suggestions() {
    return this.page.evaluate(() => {
      const w = document.querySelector(".part.editor .editor-group-container.active .suggest-widget.visible");
      if (!w) return [];
      return [...w.querySelectorAll(".monaco-list-row")].map((r) => r.getAttribute("aria-label") || r.textContent || "");
    });
  }
}

/** A command's input box once it shows (not the palette it was run from): {value, title, message}. */
async function quickInput(w) {
  return until(`${w.name}: the command's input box`, () =>
    w.page.evaluate(() => {
      const widget = document.querySelector(".quick-input-widget");
      const input = widget?.querySelector(".quick-input-box input");
      if (!widget || !input || widget.style.display === "none") return null;
      const box = {
        value: input.value,
        title: widget.querySelector(".quick-input-title")?.textContent?.trim() ?? "",
        message: widget.querySelector(".quick-input-message")?.textContent?.trim() ?? "",
      };
      // the palette shows ">title" and no message; an input box has its prompt as message
      return box.message && !box.value.startsWith(">") ? box : null;
    }), 60000, 200);
}

/** Clicks *label* on the notification whose text matches *pattern*. */
async function notificationButton(w, pattern, label, timeoutMs = 60000) {
  await until(`${w.name}: a notification with ${pattern} and a "${label}" button`, async () => {
    // toasts hide after a while: the notification center keeps them
    if (!(await w.page.isVisible(".notifications-toasts .notification-list-item"))) {
      if (!(await w.page.isVisible(".notifications-center .notification-list-item"))) {
        await w.closeQuickInput();
        await w.command("Notifications: Show Notifications", 10000).catch(() => {});
      }
    }
    return w.page.evaluate(([source, text]) => {
      const re = new RegExp(source);
      for (const item of document.querySelectorAll(".notification-list-item")) {
        if (!re.test(item.getAttribute("aria-label") || item.textContent || "")) continue;
        const button = [...item.querySelectorAll(".monaco-button")].find((b) => b.textContent.trim() === text);
        if (button) {
          button.click();
          return true;
        }
      }
      return false;
    }, [pattern.source, label]);
  }, timeoutMs, 500);
}

/** Escape, Ctrl+Space: the suggest widget's rows once they hold *word* (else a timeout). */
async function suggestionsWith(w, word, timeoutMs = 45000) {
  let rows = [];
  await until(`${w.name}'s suggest widget to offer ${word}`, async () => {
    await w.kb.press("Escape");
    await w.kb.press("Control+Space");
    rows = await until("suggest widget", async () => {
      const s = await w.suggestions();
      return s.length && !s.every((x) => /loading/i.test(x)) ? s : null;
    }, 5000, 200).catch(() => []);
    return rows.some((s) => s.includes(word));
  }, timeoutMs, 1000);
  return rows;
}

/** Escape until the suggest widget is gone (a key typed while it shows may go to it). */
async function closeSuggest(w) {
  await until(`${w.name}: the suggest widget closed`, async () => {
    await w.kb.press("Escape");
    await sleep(200);
    return !(await w.page.isVisible(".part.editor .editor-group-container.active .suggest-widget.visible"));
  }, 10000, 300);
}

async function workbench(windows) {
  for (const w of windows) {
    // the palette lists a built-in command: the workbench takes commands
    await w.command("View: Toggle Primary Side Bar Visibility");
    await until(`${w.name}: the side bar hidden`, async () => !(await w.page.isVisible(".part.sidebar")), 10000);
    await w.command("View: Toggle Primary Side Bar Visibility");
    await until(`${w.name}: the side bar shown`, () => w.page.isVisible(".part.sidebar"), 10000);
    await w.openFile(config.file);
    const text = await until(`${w.name}: ${config.file} rendered`, () => w.editorText(), 30000);
    emit("editor", { user: w.name, text });
  }
}

async function pair([a, b]) {
  const file = config.file;
  // --- A creates the room ------------------------------------------------------------------
  await a.openFile(config.helperFile);
  await a.openFile(file);
  const before = await a.clipboard();
  // (a command run while the server still starts fails with "not running")
  await a.waitServerReady();
  await a.command("Pairls: Create Room");
  const invite = await until(
    "the invite (A's clipboard or a notification)",
    async () => {
      const clip = await a.clipboard();
      if (clip !== before && INVITE.test(clip)) return clip.match(INVITE)[0];
      for (const n of await a.notifications()) {
        const m = n.match(INVITE);
        if (m) return m[0];
      }
      return null;
    },
    60000,
    500,
  );
  await pause("invite", { invite });

  // --- B joins with the invite --------------------------------------------------------------
  await b.waitServerReady();
  await b.command("Pairls: Join Room");
  await b.page.waitForSelector(".quick-input-widget .quick-input-box input", { state: "visible" });
  await b.page.fill(".quick-input-widget .quick-input-box input", invite);
  await sleep(300);
  await b.kb.press("Enter");
  await until("B's input box to close", async () => !(await b.page.isVisible(".quick-input-widget")), 10000);
  // B had a stale copy of the file: the room's text replaces it
  await b.openFile(file);
  const start = await until(
    "B's editor to show the room's text (A's)",
    async () => {
      const [ta, tb] = await Promise.all([a.editorText(), b.editorText()]);
      return ta !== null && ta === tb ? ta : null;
    },
    60000,
  );
  emit("joined", { text: start });

  // --- both type at once, at different lines -------------------------------------------------
  await Promise.all([a.gotoLineEnd(config.lineA), b.gotoLineEnd(config.lineB)]);
  const typing = async (w, text) => {
    const start = Date.now() - T0;
    await w.kb.type(text, { delay: config.typeDelayMs });
    return [start / 1000, (Date.now() - T0) / 1000];
  };
  const [spanA, spanB] = await Promise.all([typing(a, config.typeA), typing(b, config.typeB)]);
  emit("typed", { a: spanA, b: spanB });

  // --- B asks for completions of a word only A's other file has -----------------------------
  await b.kb.press("Control+End");
  await b.kb.type(config.suggestLine, { delay: config.typeDelayMs });
  let suggestions = [];
  await until(
    `B's suggest widget to offer ${config.identifier}`,
    async () => {
      await b.kb.press("Escape");
      await b.kb.press("Control+Space");
      suggestions = await until("suggest widget", async () => {
        const s = await b.suggestions();
        return s.length && !s.every((x) => /loading/i.test(x)) ? s : null;
      }, 5000, 200).catch(() => []);
      return suggestions.some((s) => s.includes(config.identifier));
    },
    45000,
    1000,
  );
  const suggestShot = await b.screenshot("suggest");
  await b.kb.press("Escape");
  emit("suggest", { suggestions, screenshot: suggestShot });

  // --- convergence: both editors the same and still for a while --------------------------------
  let stableSince = 0;
  let last = null;
  const final = await until(
    "both editors to show the same text",
    async () => {
      const [ta, tb] = await Promise.all([a.editorText(), b.editorText()]);
      if (ta === null || ta !== tb || ta !== last) {
        last = ta === tb ? ta : null;
        stableSince = Date.now();
        return null;
      }
      return Date.now() - stableSince >= 2000 ? ta : null;
    },
    90000,
    250,
  ).catch(async (e) => {
    emit("diverged", { a: await a.editorText(), b: await b.editorText() });
    throw e;
  });
  await pause("converged", { a: await a.editorText(), b: await b.editorText(), text: final });

  // --- each shows the other's cursor with the other's name, where the other's caret is ----------
  await a.gotoLineEnd(config.lineA);
  const cursors = {};
  for (const [viewer, peer, line] of [[b, a, config.lineA], [a, b, null]]) {
    let labels = [];
    await until(
      `${viewer.name} to show ${peer.name}'s name at a cursor decoration${line ? ` on line ${line}` : ""}`,
      async () => {
        labels = await viewer.decorationLabels();
        return labels.some((l) => l.content.includes(peer.name) && (line === null || l.line === line));
      },
      30000,
      500,
    ).catch((e) => {
      emit("labels", { viewer: viewer.name, labels });
      throw e;
    });
    cursors[viewer.user.id] = labels.filter((l) => l.content.includes(peer.name));
  }
  emit("cursor", { labels: cursors.B, labelsInA: cursors.A, line: config.lineA });
}

async function fresh([a, b]) {
  const file = config.file;
  // --- nothing runs until a Pairls command does -------------------------------------------------
  await sleep(config.settleMs ?? 5000);
  await pause("ready", { statusA: await a.pairlsStatus(), statusB: await b.pairlsStatus() });

  // --- A creates the room: the command asks for the hub --------------------------------------
  await a.openFile(config.helperFile);
  await a.openFile(file);
  const before = await a.clipboard();
  await a.command("Pairls: Create Room");
  const hubPrompt = await quickInput(a);
  emit("hubPrompt", hubPrompt);
  await a.page.fill(".quick-input-widget .quick-input-box input", config.hubUrl);
  await sleep(300);
  await a.kb.press("Enter");
  const invite = await until(
    "the invite (A's clipboard or a notification)",
    async () => {
      const clip = await a.clipboard();
      if (clip !== before && INVITE.test(clip)) return clip.match(INVITE)[0];
      for (const n of await a.notifications()) {
        const m = n.match(INVITE);
        if (m) return m[0];
      }
      return null;
    },
    120000,
    500,
  );
  await pause("invite", { invite, statusA: await a.pairlsStatus() });

  // --- B joins, then opens the room's file from the notification -----------------------------
  await b.command("Pairls: Join Room");
  await quickInput(b);
  await b.page.fill(".quick-input-widget .quick-input-box input", invite);
  await sleep(300);
  await b.kb.press("Enter");
  await until("B's input box to close", async () => !(await b.page.isVisible(".quick-input-widget")), 10000);
  await notificationButton(b, /joined the room/, "Open a Document", 120000);
  // the quick pick of the room's documents
  await b.page.click(`.quick-input-widget .quick-input-list .monaco-list-row[aria-label^="${file}"]`, { timeout: 30000 });
  await until(`B: ${file} in the active tab`, () => b.activeTab().then((t) => t.startsWith(file)), 30000);
  await b.focusEditor();
  const start = await until(
    "B's editor to show the room's text (A's)",
    async () => {
      const [ta, tb] = await Promise.all([a.editorText(), b.editorText()]);
      return ta !== null && ta === tb ? ta : null;
    },
    60000,
  );
  emit("joined", { text: start });

  // --- each types a line the other sees ----------------------------------------------------------
  const seen = async (w, text) => until(`${w.name} to show ${JSON.stringify(text)}`, async () => (await w.editorText())?.includes(text), 30000);
  await a.gotoLineEnd(config.lineA);
  await a.kb.type(config.typeA, { delay: config.typeDelayMs });
  await seen(b, config.typeA.trim());
  await b.gotoLineEnd(config.lineB);
  await b.kb.type(config.typeB, { delay: config.typeDelayMs });
  await seen(a, config.typeB.trim());
  emit("typed", {});

  // --- completions: the room's words and jedi's, from the bundled server --------------------------
  // (each line as typed, in both editors, before asking: a completion of other text is no answer)
  await b.kb.press("Control+End");
  await b.kb.type(config.suggestLine, { delay: config.typeDelayMs });
  await Promise.all([seen(b, config.suggestLine.trim()), seen(a, config.suggestLine.trim())]);
  const roomWords = await suggestionsWith(b, config.identifier);
  await closeSuggest(b);
  await b.kb.press("Control+End");
  await b.kb.type(config.jediLine, { delay: config.typeDelayMs });
  await Promise.all([seen(b, config.jediLine.trim()), seen(a, config.jediLine.trim())]);
  const jedi = await suggestionsWith(b, config.jediWord);
  await b.screenshot("suggest");
  await closeSuggest(b);
  emit("suggest", { roomWords, jedi });

  // --- convergence ---------------------------------------------------------------------------
  let stableSince = 0;
  let last = null;
  const final = await until(
    "both editors to show the same text",
    async () => {
      const [ta, tb] = await Promise.all([a.editorText(), b.editorText()]);
      if (ta === null || ta !== tb || ta !== last) {
        last = ta === tb ? ta : null;
        stableSince = Date.now();
        return null;
      }
      return Date.now() - stableSince >= 2000 ? ta : null;
    },
    90000,
    250,
  ).catch(async (e) => {
    emit("diverged", { a: await a.editorText(), b: await b.editorText() });
    throw e;
  });
  await pause("converged", { text: final });
}

/** A's invite: a new one on A's clipboard or in a notification (not *old*). */
async function inviteOf(a, old, before) {
  return until(
    "an invite (A's clipboard or a notification)",
    async () => {
      const clip = await a.clipboard();
      if (clip !== before && INVITE.test(clip) && clip.match(INVITE)[0] !== old) return clip.match(INVITE)[0];
      for (const n of await a.notifications()) {
        const m = n.match(INVITE);
        if (m && m[0] !== old) return m[0];
      }
      return null;
    },
    60000,
    500,
  );
}

/** B runs "Pairls: Join Room" with *invite* and waits for its status bar to show the room. */
async function joinWith(b, invite) {
  await b.command("Pairls: Join Room");
  await b.page.waitForSelector(".quick-input-widget .quick-input-box input", { state: "visible" });
  await b.page.fill(".quick-input-widget .quick-input-box input", invite);
  await sleep(300);
  await b.kb.press("Enter");
  await until("B's input box to close", async () => !(await b.page.isVisible(".quick-input-widget")), 10000);
  await until("B's status bar to show the room", async () => {
    const s = await b.pairlsStatus();
    return s && s.icons.includes("codicon-person") ? s : null;
  }, 30000).catch(async () => log(`B's status bar: ${JSON.stringify(await b.pairlsStatus())}`));
}

/** Waits for a notification in *w*'s window that contains *text*. */
function told(w, text) {
  return until(`${w.name} to be told "${text}"`, async () => (await w.notifications()).find((n) => n.includes(text)), 30000, 300);
}

/** A picks *who* in "Pairls: Show Participants", then the action *action*. */
async function manage(a, who, action) {
  await until(`A: ${action} on ${who}`, async () => {
    await a.command("Pairls: Show Participants");
    const row = `.quick-input-widget .quick-input-list .monaco-list-row:has-text("${who}")`;
    try {
      await a.page.click(row, { timeout: 5000 });
      await a.page.click(`.quick-input-widget .quick-input-list .monaco-list-row:has-text("${action}")`, { timeout: 5000 });
      return true;
    } catch (e) {
      log(`A: picker: ${String(e.message ?? e).split("\n")[0]}; again`);
      await a.closeQuickInput();
      return false;
    }
  }, 60000, 1000);
}

/** Clicks *button* of the modal dialog in *w*'s window. */
async function confirmModal(w, button) {
  const sel = `.monaco-dialog-box .dialog-buttons .monaco-button:has-text("${button}")`;
  await w.page.waitForSelector(sel, { state: "visible", timeout: 20000 });
  const message = await w.page.textContent(".monaco-dialog-box");
  await w.page.click(sel);
  return message;
}

/** A opens *file* and creates a room; B joins it with the invite A got ("joined" said if *tell*). */
async function roomOfTwo(a, b, file, tell = true) {
  await a.openFile(file);
  const before = await a.clipboard();
  await a.waitServerReady();
  await a.command("Pairls: Create Room");
  const invite = await inviteOf(a, null, before);
  await b.waitServerReady();
  await joinWith(b, invite);
  if (tell) emit("joined", { invite });
  return invite;
}

async function owner([a, b]) {
  const invite = await roomOfTwo(a, b, config.file);

  await manage(a, b.name, "Make viewer");
  emit("viewer", { told: await told(b, "made you a viewer") });

  const clip = await a.clipboard();
  await a.command("Pairls: Rotate Invites");
  const rotateDialog = await confirmModal(a, "Rotate Invites");
  const rotated = await inviteOf(a, invite, clip);
  emit("rotated", { invite: rotated, dialog: rotateDialog, told: await told(b, "changed the invites") });
  await joinWith(b, rotated);
  emit("rejoined", {});

  await manage(a, b.name, "Remove");
  const removeDialog = await confirmModal(a, "Remove");
  emit("removed", { dialog: removeDialog, told: await told(b, "removed from the room by the owner") });

  await a.command("Pairls: Delete Room");
  const deleteDialog = await confirmModal(a, "Delete Room");
  await until("A's status bar to show no room", async () => {
    const s = await a.pairlsStatus();
    return s && !s.icons.includes("codicon-person") ? s : null;
  }, 30000);
  emit("deleted", { dialog: deleteDialog });
}

/** Waits until both editors show *text* (after edits one of them made arrived at the other). */
async function bothShow(a, b, text, what) {
  await until(`both editors to show ${what}`, async () => {
    const [ta, tb] = await Promise.all([a.editorText(), b.editorText()]);
    return ta === text && tb === text;
  }, 60000, 250).catch(async (e) => {
    emit("diverged", { a: await a.editorText(), b: await b.editorText(), want: text });
    throw e;
  });
}

async function history([a, b]) {
  const file = config.file;
  const invite = await roomOfTwo(a, b, file, false);
  await b.openFile(file);
  await bothShow(a, b, config.initial, "the room's text");
  emit("joined", { invite });

  // --- A's two changes, a pause between them -------------------------------------------------
  await a.gotoLineEnd(2);
  await a.kb.type(config.first, { delay: config.typeDelayMs });
  await bothShow(a, b, config.afterFirst, "A's first change");
  await sleep(1500);
  await a.gotoLineEnd(4);
  await a.kb.type(config.second, { delay: config.typeDelayMs });
  await bothShow(a, b, config.afterSecond, "A's second change");
  // --- B types inside A's first change and after the second -----------------------------------
  await b.gotoLineEnd(2);
  for (let i = 0; i < config.insideFromEnd; i++) await b.kb.press("ArrowLeft");
  await b.kb.type(config.inside, { delay: config.typeDelayMs });
  await b.gotoLineEnd(4);
  await b.kb.type(config.after, { delay: config.typeDelayMs });
  await bothShow(a, b, config.withBob, "B's typing");
  await pause("typed", { text: config.withBob });

  // --- A undoes twice: the palette, then the suggested key --------------------------------------
  await a.focusEditor();
  await a.command("Pairls: Undo My Last Change");
  await bothShow(a, b, config.undoneOnce, "the first undo");
  await a.focusEditor();
  await a.kb.press("Control+Alt+z");
  await bothShow(a, b, config.undoneTwice, "the second undo (Ctrl+Alt+Z)");
  await pause("undone", { text: config.undoneTwice });
  await a.command("Pairls: Redo My Change");
  await bothShow(a, b, config.undoneOnce, "the redo");
  await pause("redone", { text: config.undoneOnce });

  // --- B's hover on the line A's redo brought back ------------------------------------------------
  const hoverText = await until("B's hover on line 2 to say who changed it", async () => {
    await b.focusEditor();
    await b.page.keyboard.press("Escape");
    const line = b.page.locator(".part.editor .editor-group-container.active .monaco-editor .view-lines > .view-line").nth(1);
    await line.hover({ position: { x: 20, y: 5 } });
    await sleep(800);
    const texts = await b.page.evaluate(() => [...document.querySelectorAll(".monaco-hover .hover-contents, .monaco-hover .rendered-markdown")].map((e) => e.textContent ?? ""));
    return texts.find((t) => t.includes(config.nameA)) ?? null;
  }, 60000, 1000);
  emit("hover", { text: hoverText });

  // --- A's history: the change picked opens as a diff ---------------------------------------------
  await a.page.keyboard.press("Escape");
  await a.command("Pairls: Show History");
  // (an edit's row, not the undo's or redo's of it)
  const row = a.page
    .locator(".quick-input-widget .quick-input-list .monaco-list-row")
    .filter({ hasText: config.pick })
    .filter({ hasNotText: /undid|redid/ })
    .first();
  await row.waitFor({ state: "visible", timeout: 60000 });
  const rows = await a.page.evaluate(() => [...document.querySelectorAll(".quick-input-widget .quick-input-list .monaco-list-row")].map((r) => r.textContent ?? ""));
  await row.click();
  const diff = await until("A's diff editor", async () => {
    const d = await a.page.evaluate(() => {
      const editor = document.querySelector(".part.editor .editor-group-container.active .monaco-diff-editor");
      if (!editor) return null;
      const original = editor.querySelector(".editor.original .view-lines");
      if (!original) return null;
      const lines = [...original.querySelectorAll(":scope > .view-line")]
        .map((el) => [parseFloat(el.style.top), el.textContent.replace(/\u00a0/g, " ")])
        .sort((x, y) => x[0] - y[0]);
      const tab = document.querySelector(".part.editor .editor-group-container.active .tab.active");
      return { left: lines.map((l) => l[1]).join("\n"), title: tab?.getAttribute("aria-label") ?? tab?.textContent ?? "" };
    });
    return d && d.left ? d : null;
  }, 60000, 500);
  await a.screenshot("history-diff");
  emit("diff", { ...diff, rows });
}

// the active editor's tab while its file has changes not saved
const DIRTY_TAB = ".part.editor .editor-group-container.active .tab.active.dirty";

async function carry([a, b]) {
  const file = config.file;
  await a.openFile(file);
  const before = await a.clipboard();
  await a.waitServerReady();
  await a.command("Pairls: Create Room");
  const invite = await inviteOf(a, null, before);
  const bobInvite = invite.replace(`//${config.hubAddress}/`, `//${config.bobHubAddress}/`);
  if (bobInvite === invite) throw new Error(`no ${config.hubAddress} in the invite ${invite}`);
  await b.waitServerReady();
  await joinWith(b, bobInvite);
  await b.openFile(file);
  await bothShow(a, b, config.initial, "the room's text");
  await pause("joined", { invite });

  // --- B, cut off: types, saves, reloads the window -------------------------------------------------
  await b.gotoLineEnd(config.lineB);
  await b.kb.type(config.typeB, { delay: config.typeDelayMs });
  // (the tab shows the unsaved change first: a selector that never matched would let the wait
  // for the save pass at once)
  await until("B's tab to show the unsaved change", () => b.page.isVisible(DIRTY_TAB), 20000, 100);
  await b.kb.press("Control+S");
  await until("B's file to be saved", async () => !(await b.page.isVisible(DIRTY_TAB)), 20000, 200);
  const typed = await b.editorText();
  await b.page.evaluate(() => { window.pairlsBeforeReload = true; });
  await b.command("Developer: Reload Window");
  await until("B's window to reload", async () => {
    try {
      return (await b.page.evaluate(() => window.pairlsBeforeReload !== true && !!document.querySelector(".monaco-workbench .part.statusbar")));
    } catch (e) {
      return false; // (the page is navigating)
    }
  }, 90000, 250);
  await b.page.waitForSelector(".explorer-folders-view .monaco-list-row", { timeout: 90000 });
  await b.waitServerReady();
  log("B: window reloaded, its new server runs");

  // --- A types meanwhile ------------------------------------------------------------------------------
  await a.gotoLineEnd(config.lineA);
  await a.kb.type(config.typeA, { delay: config.typeDelayMs });
  await until("A's line in A's editor", async () => (await a.editorText()) === config.withA, 20000, 200);
  await pause("reloaded", { typed });

  // --- B joins again --------------------------------------------------------------------------------
  await joinWith(b, bobInvite);
  await b.openFile(file);
  await bothShow(a, b, config.want, "A's line and B's offline line");
  emit("converged", { text: await a.editorText() });
}

async function runTogether([a, b]) {
  await roomOfTwo(a, b, config.file);

  // --- A runs the file for the room, from the palette ---------------------------------------------
  await a.focusEditor();
  await a.command("Pairls: Run for the Room");
  const row = `.quick-input-widget .quick-input-list .monaco-list-row:has-text("Run ${config.file}")`;
  await a.page.click(row, { timeout: 30000 });
  log("A: picked the file to run");
  emit("started", {});

  // --- B's window shows it in a terminal, to the end line -------------------------------------------
  const shown = await until("B's terminal to show the run to its end line", async () => {
    const t = await b.terminalText();
    return t && t.includes(config.endText) ? t : null;
  }, 120000, 500).catch(async (e) => {
    emit("terminal-missing", { b: await b.terminalText(), names: await b.terminalNames(), told: await b.notifications() });
    throw e;
  });
  await b.screenshot("run-terminal");
  const mine = await until("A's terminal to show the run to its end line", async () => {
    const t = await a.terminalText();
    return t && t.includes(config.endText) ? t : null;
  }, 60000, 500);
  emit("terminal", { b: shown, a: mine, names: await b.terminalNames(), told: await b.notifications(), tabs: await b.tabs() });

  // --- B has no run of B's own to stop ----------------------------------------------------------------
  await b.command("Pairls: Stop Run");
  emit("stop", { told: await told(b, "no run of yours is running") });
}

let browser;
const windows = [];
let failed = false;
try {
  browser = await chromium.launch({
    executablePath: config.chromium ?? "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
  });
  emit("browser", { version: browser.version() });
  for (const user of config.users) windows.push(await Window.open(browser, user));
  emit("workbench", { users: windows.map((w) => w.name) });
  if (config.mode === "workbench") await workbench(windows);
  else if (config.mode === "fresh") await fresh(windows);
  else if (config.mode === "owner") await owner(windows);
  else if (config.mode === "history") await history(windows);
  else if (config.mode === "run") await runTogether(windows);
  else if (config.mode === "carry") await carry(windows);
  else await pair(windows);
} catch (e) {
  failed = true;
  log(e.stack ?? String(e));
  emit("error", { message: String(e.message ?? e), stack: e.stack ?? "" });
} finally {
  const shots = {};
  for (const w of windows) {
    try {
      shots[w.name] = await w.screenshot(failed ? "failed" : "final");
    } catch (e) {
      log(`screenshot of ${w.name} failed: ${e}`);
    }
  }
  emit("screenshots", { paths: shots });
  await browser?.close().catch(() => {});
  emit("done", { ok: !failed });
  process.exit(failed ? 1 : 0);
}
