// Drives pages in Debian's chromium through playwright-core for tests/e2e/test_web.py and
// bench/web_bench.py (tests/support/browser.py is the Python side).
//
//   node driver.mjs            (playwright-core from tests/e2e/vscode/node_modules, which
//                               scripts/install-code-server.sh installs; chromium at $CHROMIUM
//                               or /usr/bin/chromium)
//
// stdin: one JSON command a line, {"id", "cmd", ...}; stdout: one JSON answer a line,
// {"id", "ok": true, "result"} or {"id", "ok": false, "error"}; logs go to stderr.
//
// Commands:
//   open {page, url, name?, viewport?, permissions?}  a new browser context (its own storage)
//        and page (permissions: e.g. ["clipboard-read", "clipboard-write"], which code-server
//        wants); with
//        `name`, the page's stored display name is set first (the web client then joins at once).
//        Every page records its Content-Security-Policy violations (window.__cspViolations),
//        its console errors, its requests (URL and headers) and its WebSocket URLs.
//   goto {page, url}
//   eval {page, fn, arg?}               page.evaluate of a function given as source text
//   wait {page, fn, arg?, timeout?}     eval until the value is truthy (then returns it)
//   call {page, method, args}           a method of the page, "keyboard.type", "mouse.click"...
//   log {page}                          {requests, websockets, consoleErrors, pageErrors}
//   screenshot {page, path}
//   close {page}
//   quit

import { createInterface } from "node:readline";

const here = new URL(".", import.meta.url);
const { chromium } = await import(new URL("../vscode/node_modules/playwright-core/index.mjs", here).href);

const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const T0 = Date.now();
const log = (...a) => process.stderr.write(`[driver ${((Date.now() - T0) / 1000).toFixed(1)}s] ${a.join(" ")}\n`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: CHROMIUM_ARGS,
  headless: true,
});
const pages = new Map();

function entry(name) {
  const p = pages.get(name);
  if (!p) throw new Error(`no page ${name}`);
  return p;
}

const fnOf = (src) => new Function(`return (${src});`)();

async function open({ page: name, url, name: displayName, viewport, permissions }) {
  const context = await browser.newContext({ viewport: viewport ?? { width: 1200, height: 760 }, permissions: permissions ?? [] });
  await context.addInitScript(
    ([who]) => {
      window.__cspViolations = [];
      document.addEventListener("securitypolicyviolation", (e) =>
        window.__cspViolations.push({ directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber }),
      );
      if (who) localStorage.setItem("pairls.name", who);
    },
    [displayName ?? null],
  );
  const page = await context.newPage();
  const rec = { requests: [], websockets: [], consoleErrors: [], pageErrors: [] };
  page.on("request", (r) => rec.requests.push({ url: r.url(), method: r.method(), headers: r.headers() }));
  page.on("websocket", (ws) => rec.websockets.push(ws.url()));
  page.on("console", (m) => {
    if (m.type() === "error") rec.consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => {
    rec.pageErrors.push(String(e.message ?? e));
    log(`${name} pageerror: ${e.message}`);
  });
  pages.set(name, { context, page, rec });
  if (url) await page.goto(url, { waitUntil: "domcontentloaded" });
  return true;
}

async function wait({ page: name, fn, arg, timeout }) {
  const { page } = entry(name);
  const f = fnOf(fn);
  const deadline = Date.now() + (timeout ?? 30000);
  let last;
  for (;;) {
    try {
      last = await page.evaluate(f, arg);
      if (last) return last;
    } catch (e) {
      last = String(e.message ?? e);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${fn} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function call({ page: name, method, args }) {
  const { page } = entry(name);
  const parts = method.split(".");
  let target = page;
  for (const p of parts.slice(0, -1)) target = target[p];
  const result = await target[parts.at(-1)](...(args ?? []));
  return result === undefined ? null : typeof result === "object" ? null : result;
}

const commands = {
  open,
  wait,
  call,
  goto: async ({ page, url }) => {
    await entry(page).page.goto(url, { waitUntil: "domcontentloaded" });
    return true;
  },
  eval: ({ page, fn, arg }) => entry(page).page.evaluate(fnOf(fn), arg),
  log: ({ page }) => entry(page).rec,
  screenshot: async ({ page, path }) => {
    await entry(page).page.screenshot({ path });
    return path;
  },
  close: async ({ page }) => {
    await entry(page).context.close();
    pages.delete(page);
    return true;
  },
  quit: async () => {
    await browser.close();
    setTimeout(() => process.exit(0), 20); // after this answer is out
    return true;
  },
};

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    continue;
  }
  const { id, cmd } = msg;
  // each command runs as it comes: the caller waits for the answers it needs (so two pages can
  // type at once)
  const run = async () => {
    try {
      const result = await commands[cmd](msg);
      process.stdout.write(JSON.stringify({ id, ok: true, result: result ?? null }) + "\n");
    } catch (e) {
      process.stdout.write(JSON.stringify({ id, ok: false, error: String(e.stack ?? e) }) + "\n");
    }
  };
  void run();
}
await browser.close();
