import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import { completionsOption, LANGUAGE_SERVERS, readCompletionSetting, servedLanguages } from "../src/completions";

const BUILT_IN = [
  "vscode.typescript-language-features",
  "vscode.css-language-features",
  "vscode.html-language-features",
  "vscode.json-language-features",
  "vscode.php-language-features",
];
const has = (...ids: string[]) => (id: string) => ids.includes(id);

describe("servedLanguages", () => {
  it("Python is served when Pylance is installed, not by the Python extension alone", () => {
    assert.ok(servedLanguages(has("ms-python.python", "ms-python.vscode-pylance")).includes("python"));
    assert.ok(!servedLanguages(has("ms-python.python")).includes("python"));
    assert.ok(servedLanguages(has("detachhead.basedpyright")).includes("python"));
  });

  it("follows python.languageServer: None turns Pylance off, Jedi serves Python without it", () => {
    const both = has("ms-python.python", "ms-python.vscode-pylance");
    assert.ok(!servedLanguages(both, "None").includes("python"));
    assert.ok(servedLanguages(both, "Default").includes("python"));
    assert.ok(servedLanguages(has("ms-python.python"), "Jedi").includes("python"));
  });

  it("plain VS Code serves TypeScript, JavaScript, CSS, HTML, JSON and PHP, not Python", () => {
    assert.deepEqual(servedLanguages(has(...BUILT_IN)), [
      "css",
      "html",
      "javascript",
      "javascriptreact",
      "json",
      "jsonc",
      "less",
      "php",
      "scss",
      "typescript",
      "typescriptreact",
    ]);
    assert.deepEqual(servedLanguages(() => false), []);
  });

  it("names extension ids in lower case, as VS Code compares them", () => {
    for (const id of Object.keys(LANGUAGE_SERVERS)) {
      assert.equal(id, id.toLowerCase());
    }
  });
});

describe("completionsOption", () => {
  it("auto (the default): room where another language server serves, all elsewhere", () => {
    assert.equal(readCompletionSetting(undefined), "auto");
    assert.equal(readCompletionSetting("nonsense"), "auto");
    const served = servedLanguages(has("ms-python.vscode-pylance", "rust-lang.rust-analyzer"));
    assert.deepEqual(completionsOption("auto", served), { "*": "all", python: "room", rust: "room" });
    assert.deepEqual(completionsOption("auto", []), { "*": "all" });
  });

  it("an explicit mode holds for every language", () => {
    for (const mode of ["all", "room", "off"] as const) {
      assert.equal(readCompletionSetting(mode), mode);
      assert.equal(completionsOption(mode, ["python"]), mode);
    }
  });
});
