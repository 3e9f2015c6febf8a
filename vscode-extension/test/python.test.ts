import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";

import {
  defaultPython,
  describeFailure,
  expandPath,
  findInterpreter,
  notFoundMessage,
  type Probe,
  type Probes,
  probeImport,
} from "../src/python";

function probes(over: Partial<Probes> & { good?: string[] }): Probes & { probed: string[] } {
  const probed: string[] = [];
  const good = new Set(over.good ?? []);
  return {
    probed,
    setting: over.setting ?? (() => undefined),
    environment: over.environment ?? (() => undefined),
    pythonExtension: over.pythonExtension ?? (async () => undefined),
    onPath: over.onPath ?? (() => "python3"),
    hasPairls:
      over.hasPairls ??
      (async (python: string): Promise<Probe> => {
        probed.push(python);
        return good.has(python) ? { ok: true } : { ok: false, reason: "pairls is not installed" };
      }),
  };
}

describe("findInterpreter", () => {
  it("uses the pairls.pythonPath setting first and probes nothing else", async () => {
    const p = probes({
      setting: () => "/venv/bin/python",
      environment: () => "/env/python",
      pythonExtension: async () => "/ext/python",
      good: ["/venv/bin/python", "/env/python", "/ext/python", "python3"],
    });
    const found = await findInterpreter(p);
    assert.deepEqual(found, { ok: true, python: "/venv/bin/python", source: "pairls.pythonPath", tried: [] });
    assert.deepEqual(p.probed, ["/venv/bin/python"]);
  });

  it("uses $PAIRLS_PYTHON when the setting is empty", async () => {
    const p = probes({ setting: () => "  ", environment: () => "/env/python", good: ["/env/python"] });
    const found = await findInterpreter(p);
    assert.equal(found.ok && found.source, "PAIRLS_PYTHON");
  });

  it("does not pass over an explicit python without pairls: it says how to fix it", async () => {
    const p = probes({ setting: () => "/venv/bin/python", good: ["python3"] });
    const found = await findInterpreter(p);
    assert.equal(found.ok, false);
    assert.deepEqual(p.probed, ["/venv/bin/python"]);
    assert.ok(!found.ok);
    assert.match(found.message, /\/venv\/bin\/python -m pip install pairls/);
    assert.match(found.message, /set pairls\.pythonPath/);
  });

  it("takes the Python extension's interpreter before python3 on PATH", async () => {
    const p = probes({ pythonExtension: async () => "/ext/python", good: ["/ext/python", "python3"] });
    const found = await findInterpreter(p);
    assert.deepEqual(found, { ok: true, python: "/ext/python", source: "Python extension", tried: [] });
  });

  it("falls back to python3 on PATH when the extension's interpreter lacks pairls", async () => {
    const p = probes({ pythonExtension: async () => "/ext/python", good: ["python3"] });
    const found = await findInterpreter(p);
    assert.equal(found.ok && found.python, "python3");
    assert.equal(found.tried.length, 1);
    assert.equal(found.tried[0].source, "Python extension");
  });

  it("survives a failing Python extension", async () => {
    const p = probes({
      pythonExtension: async () => {
        throw new Error("not activated");
      },
      good: ["python3"],
    });
    const found = await findInterpreter(p);
    assert.equal(found.ok && found.source, "PATH");
  });

  it("probes the same interpreter once", async () => {
    const p = probes({ pythonExtension: async () => "python3" });
    await findInterpreter(p);
    assert.deepEqual(p.probed, ["python3"]);
  });

  it("names the first candidate in the fix when nothing has pairls", async () => {
    const p = probes({ pythonExtension: async () => "/ext/python" });
    const found = await findInterpreter(p);
    assert.ok(!found.ok);
    assert.equal(
      found.message,
      "Pairls: no Python with pairls found (tried /ext/python (Python extension: pairls is not installed); " +
        "python3 (PATH: pairls is not installed)). Install pairls into /ext/python " +
        "(/ext/python -m pip install pairls), or set pairls.pythonPath to a Python that has pairls.",
    );
  });
});

describe("notFoundMessage", () => {
  it("quotes a path with spaces in the pip command", () => {
    const msg = notFoundMessage([{ python: "/my venv/python", source: "PATH", reason: "not found" }]);
    assert.match(msg, /"\/my venv\/python" -m pip install pairls/);
  });
});

describe("expandPath", () => {
  it("expands ~, ${userHome} and ${workspaceFolder}", () => {
    assert.equal(expandPath("~/.venv/bin/python", "/ws", "/home/me"), path.join("/home/me", ".venv/bin/python"));
    assert.equal(expandPath("${userHome}/py", "/ws", "/home/me"), "/home/me/py");
    assert.equal(expandPath("${workspaceFolder}/.venv/bin/python", "/ws", "/h"), "/ws/.venv/bin/python");
    assert.equal(expandPath("  ", "/ws", "/h"), "");
    assert.equal(expandPath("python3.11", undefined, "/h"), "python3.11");
  });
});

describe("defaultPython", () => {
  it("is python3, or python on Windows", () => {
    assert.equal(defaultPython("linux"), "python3");
    assert.equal(defaultPython("win32"), "python");
  });
});

describe("describeFailure", () => {
  it("says what went wrong in a few words", () => {
    assert.equal(describeFailure({ code: "ENOENT" }, ""), "not found");
    assert.equal(describeFailure({ code: null, killed: true }, ""), "timed out");
    const tb = "Traceback (most recent call last):\n  ...\nModuleNotFoundError: No module named 'lsp_bridge'\n";
    assert.equal(describeFailure({ code: 1 }, tb), "pairls is not installed");
    assert.equal(describeFailure({ code: 1 }, "ImportError: bad\n"), "ImportError: bad");
  });
});

// The real probe, against this checkout's virtualenv (made by `make venv`) when there is one.
const VENV_PYTHON = path.resolve(__dirname, "../../../.venv/bin/python");

describe("probeImport", () => {
  it("reports a missing interpreter", async () => {
    assert.deepEqual(await probeImport("/nonexistent/python3"), { ok: false, reason: "not found" });
  });

  it("reports an interpreter without pairls", async () => {
    const probe = await probeImport(process.execPath); // node: `-c` is not a Python flag
    assert.equal(probe.ok, false);
  });

  it("accepts the virtualenv that has pairls", { skip: !fs.existsSync(VENV_PYTHON) && "no .venv" }, async () => {
    assert.deepEqual(await probeImport(VENV_PYTHON), { ok: true });
  });
});
