/**
 * Syntax highlighting by file extension. Each language is its own chunk, loaded when a document
 * of that kind is first shown (so the page's first load carries none of them).
 */

import type { Extension } from "@codemirror/state";
import { StreamLanguage } from "@codemirror/language";
import type { StreamParser } from "@codemirror/language";

type Loader = () => Promise<Extension>;

const legacy = (p: Promise<StreamParser<unknown>>): Promise<Extension> => p.then((parser) => StreamLanguage.define(parser));

const js = (opts: { jsx?: boolean; typescript?: boolean }): Loader => () =>
  import("@codemirror/lang-javascript").then((m) => m.javascript(opts));

const BY_EXTENSION: Record<string, Loader> = {
  js: js({}),
  mjs: js({}),
  cjs: js({}),
  jsx: js({ jsx: true }),
  ts: js({ typescript: true }),
  mts: js({ typescript: true }),
  cts: js({ typescript: true }),
  tsx: js({ jsx: true, typescript: true }),
  py: () => import("@codemirror/lang-python").then((m) => m.python()),
  pyi: () => import("@codemirror/lang-python").then((m) => m.python()),
  html: () => import("@codemirror/lang-html").then((m) => m.html()),
  htm: () => import("@codemirror/lang-html").then((m) => m.html()),
  vue: () => import("@codemirror/lang-html").then((m) => m.html()),
  css: () => import("@codemirror/lang-css").then((m) => m.css()),
  scss: () => import("@codemirror/lang-css").then((m) => m.css()),
  json: () => import("@codemirror/lang-json").then((m) => m.json()),
  md: () => import("@codemirror/lang-markdown").then((m) => m.markdown()),
  markdown: () => import("@codemirror/lang-markdown").then((m) => m.markdown()),
  rs: () => import("@codemirror/lang-rust").then((m) => m.rust()),
  c: () => import("@codemirror/lang-cpp").then((m) => m.cpp()),
  h: () => import("@codemirror/lang-cpp").then((m) => m.cpp()),
  cc: () => import("@codemirror/lang-cpp").then((m) => m.cpp()),
  cpp: () => import("@codemirror/lang-cpp").then((m) => m.cpp()),
  cxx: () => import("@codemirror/lang-cpp").then((m) => m.cpp()),
  hpp: () => import("@codemirror/lang-cpp").then((m) => m.cpp()),
  java: () => import("@codemirror/lang-java").then((m) => m.java()),
  go: () => import("@codemirror/lang-go").then((m) => m.go()),
  php: () => import("@codemirror/lang-php").then((m) => m.php()),
  sql: () => import("@codemirror/lang-sql").then((m) => m.sql()),
  xml: () => import("@codemirror/lang-xml").then((m) => m.xml()),
  svg: () => import("@codemirror/lang-xml").then((m) => m.xml()),
  yaml: () => import("@codemirror/lang-yaml").then((m) => m.yaml()),
  yml: () => import("@codemirror/lang-yaml").then((m) => m.yaml()),
  sh: () => legacy(import("@codemirror/legacy-modes/mode/shell").then((m) => m.shell)),
  bash: () => legacy(import("@codemirror/legacy-modes/mode/shell").then((m) => m.shell)),
  zsh: () => legacy(import("@codemirror/legacy-modes/mode/shell").then((m) => m.shell)),
  toml: () => legacy(import("@codemirror/legacy-modes/mode/toml").then((m) => m.toml)),
  rb: () => legacy(import("@codemirror/legacy-modes/mode/ruby").then((m) => m.ruby)),
  lua: () => legacy(import("@codemirror/legacy-modes/mode/lua").then((m) => m.lua)),
  el: () => legacy(import("@codemirror/legacy-modes/mode/commonlisp").then((m) => m.commonLisp)),
  lisp: () => legacy(import("@codemirror/legacy-modes/mode/commonlisp").then((m) => m.commonLisp)),
  hs: () => legacy(import("@codemirror/legacy-modes/mode/haskell").then((m) => m.haskell)),
  kt: () => legacy(import("@codemirror/legacy-modes/mode/clike").then((m) => m.kotlin)),
  cs: () => legacy(import("@codemirror/legacy-modes/mode/clike").then((m) => m.csharp)),
  swift: () => legacy(import("@codemirror/legacy-modes/mode/swift").then((m) => m.swift)),
  diff: () => legacy(import("@codemirror/legacy-modes/mode/diff").then((m) => m.diff)),
  patch: () => legacy(import("@codemirror/legacy-modes/mode/diff").then((m) => m.diff)),
};

const BY_NAME: Record<string, Loader> = {
  Dockerfile: () => legacy(import("@codemirror/legacy-modes/mode/dockerfile").then((m) => m.dockerFile)),
  Makefile: () => legacy(import("@codemirror/legacy-modes/mode/shell").then((m) => m.shell)),
};

/** The language support for *path*, or null for plain text. */
export function languageFor(path: string): Loader | null {
  const name = path.split("/").pop() ?? path;
  if (BY_NAME[name]) {
    return BY_NAME[name];
  }
  const dot = name.lastIndexOf(".");
  return dot > 0 ? (BY_EXTENSION[name.slice(dot + 1).toLowerCase()] ?? null) : null;
}
