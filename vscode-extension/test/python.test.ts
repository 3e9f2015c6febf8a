import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { describe, it } from "node:test";

import {
  defaultPython,
  describeFailure,
  expandPath,
  findInterpreter,
  judgeVersion,
  notFoundMessage,
  type Probe,
  type Probes,
  probeInterpreter,
} from "../src/python";

/** Probes over a made-up machine: *versions* maps an interpreter to its version (absent: not found). */
function probes(over: Partial<Probes> & { versions?: Record<string, string> }): Probes & { probed: string[] } {
  const probed: string[] = [];
  const versions = over.versions ?? {};
  return {
    probed,
    setting: over.setting ?? (() => undefined),
    environment: over.environment ?? (() => undefined),
    pythonExtension: over.pythonExtension ?? (async () => undefined),
    onPath: over.onPath ?? (() => "python3"),
    probe:
      over.probe ??
      (async (python: string): Promise<Probe> => {
        probed.push(python);
        const v = versions[python];
        return v === undefined ? { ok: false, reason: "not found" } : judgeVersion(`${v} ${python}`);
      }),
  };
}

describe("findInterpreter", () => {
  it("uses the pairls.pythonPath setting first and probes nothing else", async () => {
    const p = probes({
      setting: () => "/venv/bin/python",
      environment: () => "/env/python",
      pythonExtension: async () => "/ext/python",
      versions: { "/venv/bin/python": "3.12.1", "/env/python": "3.12.1", "/ext/python": "3.12.1", python3: "3.11.2" },
    });
    const found = await findInterpreter(p);
    assert.deepEqual(found, {
      ok: true,
      python: "/venv/bin/python",
      source: "pairls.pythonPath",
      version: "3.12.1",
      executable: "/venv/bin/python",
      tried: [],
    });
    assert.deepEqual(p.probed, ["/venv/bin/python"]);
  });

  it("uses $PAIRLS_PYTHON when the setting is empty", async () => {
    const p = probes({ setting: () => "  ", environment: () => "/env/python", versions: { "/env/python": "3.13.0" } });
    const found = await findInterpreter(p);
    assert.equal(found.ok && found.source, "PAIRLS_PYTHON");
  });

  it("does not pass over an explicit Python that is too old: it says so and how to fix it", async () => {
    const p = probes({ setting: () => "/old/python", versions: { "/old/python": "3.9.18", python3: "3.12.0" } });
    const found = await findInterpreter(p);
    assert.ok(!found.ok);
    assert.equal(found.explicit, true);
    assert.deepEqual(p.probed, ["/old/python"]);
    assert.match(found.message, /\/old\/python \(pairls\.pythonPath\): Python 3\.9\.18 is too old/);
    assert.match(found.message, /Set pairls\.pythonPath to a Python 3\.11\+, or clear it/);
  });

  it("takes the Python extension's interpreter before python3 on PATH", async () => {
    const p = probes({ pythonExtension: async () => "/ext/python", versions: { "/ext/python": "3.11.0", python3: "3.12.0" } });
    const found = await findInterpreter(p);
    assert.equal(found.ok && found.python, "/ext/python");
    assert.equal(found.ok && found.source, "Python extension");
  });

  it("falls back to python3 on PATH when the extension's interpreter is too old", async () => {
    const p = probes({ pythonExtension: async () => "/ext/python", versions: { "/ext/python": "3.8.10", python3: "3.11.2" } });
    const found = await findInterpreter(p);
    assert.equal(found.ok && found.python, "python3");
    assert.equal(found.ok && found.source, "PATH");
    assert.deepEqual(found.tried, [{ python: "/ext/python", source: "Python extension", reason: "Python 3.8.10 is too old" }]);
  });

  it("uses python3 on PATH when the Python extension is not installed", async () => {
    const p = probes({ versions: { python3: "3.11.2" } });
    const found = await findInterpreter(p);
    assert.equal(found.ok && found.source, "PATH");
    assert.deepEqual(p.probed, ["python3"]);
  });

  it("survives a failing Python extension", async () => {
    const p = probes({
      pythonExtension: async () => {
        throw new Error("not activated");
      },
      versions: { python3: "3.11.2" },
    });
    const found = await findInterpreter(p);
    assert.equal(found.ok && found.source, "PATH");
  });

  it("probes the same interpreter once", async () => {
    const p = probes({ pythonExtension: async () => "python3" });
    await findInterpreter(p);
    assert.deepEqual(p.probed, ["python3"]);
  });

  it("says what is missing and how to fix it when no Python fits", async () => {
    const p = probes({ pythonExtension: async () => "/ext/python", versions: { "/ext/python": "3.10.4" } });
    const found = await findInterpreter(p);
    assert.ok(!found.ok);
    assert.equal(found.explicit, false);
    assert.equal(
      found.message,
      "Pairls needs Python 3.11 or newer to run its language server and found none (tried " +
        "/ext/python (Python extension): Python 3.10.4 is too old; python3 (PATH): not found). " +
        "Install Python 3.11+ (python.org, or your system's package manager), then select it with " +
        "the Python extension or set pairls.pythonPath to it.",
    );
  });
});

describe("notFoundMessage", () => {
  it("names $PAIRLS_PYTHON when that is what points at the wrong Python", () => {
    const msg = notFoundMessage([{ python: "/my venv/python", source: "PAIRLS_PYTHON", reason: "not found" }]);
    assert.match(msg, /PAIRLS_PYTHON names one that cannot: \/my venv\/python \(PAIRLS_PYTHON\): not found/);
  });
});

describe("judgeVersion", () => {
  it("accepts 3.11 and newer, and keeps the interpreter's own path", () => {
    assert.deepEqual(judgeVersion("3.11.0 /usr/bin/python3.11"), {
      ok: true,
      version: "3.11.0",
      executable: "/usr/bin/python3.11",
    });
    assert.equal(judgeVersion("3.14.2 /p/python").ok, true);
    assert.equal(judgeVersion("4.0.0 /p/python").ok, true);
    assert.equal(judgeVersion("3.12.1 C:\\Program Files\\Python312\\python.exe").executable, "C:\\Program Files\\Python312\\python.exe");
  });

  it("refuses older ones and what is not a Python", () => {
    assert.deepEqual(judgeVersion("3.10.12 /usr/bin/python3"), {
      ok: false,
      version: "3.10.12",
      executable: "/usr/bin/python3",
      reason: "Python 3.10.12 is too old",
    });
    assert.equal(judgeVersion("2.7.18 /usr/bin/python").reason, "Python 2.7.18 is too old");
    assert.match(judgeVersion("hello").reason ?? "", /not a Python/);
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
    assert.equal(describeFailure({ code: 1 }, "Traceback ...\nSyntaxError: invalid syntax\n"), "SyntaxError: invalid syntax");
    assert.equal(describeFailure({ code: 2 }, ""), "exit code 2");
  });
});

// The real probe, against the python3 on this machine's PATH.
const PYTHON3 = (() => {
  try {
    return execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
})();

describe("probeInterpreter", () => {
  it("reports a missing interpreter", async () => {
    assert.deepEqual(await probeInterpreter("/nonexistent/python3"), { ok: false, reason: "not found" });
  });

  it("reports a program that is not a Python", async () => {
    const probe = await probeInterpreter(process.execPath); // node: `-c` is not a node flag
    assert.equal(probe.ok, false);
  });

  it("reads python3's version and path", { skip: PYTHON3 === undefined && "no python3 on PATH" }, async () => {
    const probe = await probeInterpreter("python3");
    assert.match(probe.version ?? "", /^3\.\d+\.\d+$/);
    assert.equal(probe.executable, PYTHON3);
  });
});
