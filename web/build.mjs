// Builds the web client into the hub's package data, collab_server/static/ (not committed; `make web`
// runs this, and `make run` and `make test` run `make web`):
//
//   page.html                the page, with {{NONCE}}, {{JS_VERSION}}, {{CSS_VERSION}} for the hub to fill
//   app.js                   the page's script (an ES module); the hub serves it as /assets/app.js
//   app.css                  its style sheet
//   NAME-HASH.js             chunks: CodeMirror (loaded while the page connects), one per language
//                            (loaded when a document of that kind is shown) and what they share;
//                            their names carry a hash of their content
//   *.gz                     the gzip twin of each script and style sheet
//   THIRD_PARTY_LICENSES.txt the licenses of what the bundle holds
//
// (README.md, committed, stays: it keeps the directory, a package, in a fresh checkout.)
//
// Deterministic: the same sources and lock file give the same bytes.

import * as esbuild from "esbuild";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { gzipSync, constants } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "collab_server", "static");

mkdirSync(out, { recursive: true });
for (const name of readdirSync(out)) {
  if (name !== "README.md") rmSync(join(out, name), { recursive: true, force: true });
}

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: [
    { in: "src/main.ts", out: "app" },
    { in: "src/app.css", out: "app" },
  ],
  bundle: true,
  format: "esm",
  splitting: true,
  outdir: out,
  entryNames: "[name]",
  chunkNames: "[name]-[hash]",
  minify: true,
  target: ["chrome105", "firefox110", "safari16"],
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
});

// the page names the chunks its script needs at once, so they load in parallel with it: the
// static imports of app.js, and CodeMirror (which app.js imports dynamically, to connect while
// it loads) with its own static imports; not the languages
const outputs = result.metafile.outputs;
const key = (f) => Object.keys(outputs).find((k) => k.endsWith(f));
const preload = new Set();
const walk = (k, dynamicToo) => {
  for (const imp of outputs[k].imports) {
    if (imp.external || preload.has(imp.path)) continue;
    if (imp.kind === "import-statement" || (dynamicToo && imp.kind === "dynamic-import")) {
      preload.add(imp.path);
      walk(imp.path, false);
    }
  }
};
walk(key("static/app.js"), true);
const links = [...preload]
  .map((p) => p.replace(/^.*collab_server\/static\//, ""))
  .sort()
  .map((p) => `<link rel="modulepreload" href="../assets/${p}">`);
const template = readFileSync(join(here, "src", "page.html"), "utf8");
if (!template.includes("<!-- modulepreload -->")) throw new Error("page.html lost its <!-- modulepreload --> marker");
writeFileSync(join(out, "page.html"), template.replace("<!-- modulepreload -->", links.join("\n")));

// each asset's gzip twin, for browsers that take it (the hub sends it as is; Python never compresses)
let gzipped = 0;
for (const entry of readdirSync(out, { withFileTypes: true })) {
  if (entry.isFile() && /\.(js|css)$/.test(entry.name)) {
    const file = join(out, entry.name);
    const gz = gzipSync(readFileSync(file), { level: constants.Z_BEST_COMPRESSION });
    writeFileSync(file + ".gz", gz);
    gzipped += gz.length;
  }
}

// the licenses of the packages the bundle holds
const packages = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (m) packages.add(m[1]);
}
const notices = [...packages].sort().map((name) => {
  const dir = join(here, "node_modules", name);
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const file = ["LICENSE", "LICENSE.md", "LICENSE.txt", "license"].map((f) => join(dir, f)).find((f) => existsSync(f));
  const text = file ? readFileSync(file, "utf8").trim() : `License: ${pkg.license}`;
  return `${name} ${pkg.version} (${pkg.license})\n\n${text}\n`;
});
writeFileSync(
  join(out, "THIRD_PARTY_LICENSES.txt"),
  "The pairls web client bundles these packages:\n\n" + notices.join("\n" + "-".repeat(72) + "\n\n"),
);

const sizes = Object.entries(result.metafile.outputs).map(([f, o]) => [f.replace(/^.*collab_server\/static\//, ""), o.bytes]);
const total = sizes.reduce((n, [, b]) => n + b, 0);
console.log(
  `web: ${sizes.length} files, ${(total / 1024).toFixed(0)} KiB (${(gzipped / 1024).toFixed(0)} KiB gzipped) in collab_server/static, ${packages.size} packages bundled`,
);
