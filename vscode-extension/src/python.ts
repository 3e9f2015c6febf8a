/**
 * Finding the Python that runs the bundled language server (`<python> bundled/tool/server.py`).
 * The .vsix carries the server and its dependencies, so any Python 3.11+ will do: nothing
 * needs to be installed into it.
 *
 * Order: the `pairls.pythonPath` setting, then `$PAIRLS_PYTHON` (both explicit: used, or
 * reported when unfit, never silently passed over: whoever set one meant it), then the Python
 * extension's interpreter for the workspace (the one the user picked; a switch restarts the
 * server), then `python3` on PATH (`python` on Windows). An interpreter counts when it runs
 * and is 3.11 or newer. No `vscode` import here: the Python extension comes through a probe.
 */
import { execFile } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";

/** The oldest Python the bundled server runs on (websockets, jedi and cattrs set it). */
export const MIN_PYTHON: readonly [number, number] = [3, 11];
export const MIN_PYTHON_TEXT = MIN_PYTHON.join(".");

export type Source = "pairls.pythonPath" | "PAIRLS_PYTHON" | "Python extension" | "PATH";

export interface Probe {
  ok: boolean;
  /** "3.12.1" when the interpreter ran */
  version?: string;
  /** its sys.executable (a venv's python, not the interpreter it links to) */
  executable?: string;
  /** why the interpreter cannot run the server (when !ok), fit for the user */
  reason?: string;
}

export interface Probes {
  /** the `pairls.pythonPath` setting, expanded; undefined or "" when unset */
  setting(): string | undefined;
  /** `$PAIRLS_PYTHON` */
  environment(): string | undefined;
  /** the Python extension's interpreter for the workspace, if that extension is installed */
  pythonExtension(): Promise<string | undefined>;
  /** the interpreter name looked up on PATH ("python3"; "python" on Windows) */
  onPath(): string;
  /** whether *python* runs and is new enough */
  probe(python: string): Promise<Probe>;
}

export interface Tried {
  python: string;
  source: Source;
  reason: string;
}

export type Found =
  | { ok: true; python: string; source: Source; version?: string; executable?: string; tried: Tried[] }
  | { ok: false; message: string; explicit: boolean; tried: Tried[] };

/** Pick the interpreter; see the module docstring for the order. */
export async function findInterpreter(probes: Probes): Promise<Found> {
  const tried: Tried[] = [];
  const explicit = firstSet([
    [probes.setting(), "pairls.pythonPath"],
    [probes.environment(), "PAIRLS_PYTHON"],
  ]);
  let candidates: [string, Source][];
  if (explicit !== undefined) {
    candidates = [explicit];
  } else {
    let fromExtension: string | undefined;
    try {
      fromExtension = await probes.pythonExtension();
    } catch {
      fromExtension = undefined; // the Python extension is optional; its failure is not ours
    }
    candidates = fromExtension ? [[fromExtension, "Python extension"]] : [];
    const onPath = probes.onPath();
    if (onPath !== fromExtension) {
      candidates.push([onPath, "PATH"]);
    }
  }
  for (const [python, source] of candidates) {
    const probe = await probes.probe(python);
    if (probe.ok) {
      return { ok: true, python, source, version: probe.version, executable: probe.executable, tried };
    }
    tried.push({ python, source, reason: probe.reason ?? "unknown error" });
  }
  return { ok: false, message: notFoundMessage(tried), explicit: explicit !== undefined, tried };
}

function firstSet(pairs: [string | undefined, Source][]): [string, Source] | undefined {
  for (const [value, source] of pairs) {
    if (value !== undefined && value.trim() !== "") {
      return [value.trim(), source];
    }
  }
  return undefined;
}

/** What is missing and how to fix it, in one message (the notification and the log). */
export function notFoundMessage(tried: Tried[]): string {
  const need = `Pairls needs Python ${MIN_PYTHON_TEXT} or newer to run its language server`;
  const what = tried.map((t) => `${t.python} (${t.source}): ${t.reason}`).join("; ");
  const first = tried[0];
  if (first !== undefined && (first.source === "pairls.pythonPath" || first.source === "PAIRLS_PYTHON")) {
    return `${need}, and ${first.source} names one that cannot: ${what}. Set ${first.source} to a Python ${MIN_PYTHON_TEXT}+, or clear it to let Pairls find one.`;
  }
  const found = tried.length ? `found none (tried ${what})` : "found none";
  return (
    `${need} and ${found}. Install Python ${MIN_PYTHON_TEXT}+ (python.org, or your system's package manager), ` +
    `then select it with the Python extension or set pairls.pythonPath to it.`
  );
}

/** Expand `~` and `${workspaceFolder}` (and `${userHome}`) in a configured path. */
export function expandPath(value: string, workspaceFolder: string | undefined, home = os.homedir()): string {
  let out = value.trim();
  if (out === "") {
    return out;
  }
  out = out.replace(/\$\{userHome\}/g, home);
  if (workspaceFolder !== undefined) {
    out = out.replace(/\$\{workspaceFolder\}/g, workspaceFolder);
  }
  if (out === "~" || out.startsWith("~/") || out.startsWith("~\\")) {
    out = path.join(home, out.slice(1));
  }
  return out;
}

/** The interpreter name to look up on PATH on this platform. */
export function defaultPython(platform: NodeJS.Platform = process.platform): string {
  return platform === "win32" ? "python" : "python3";
}

// Valid in Python 2 as well, so an old interpreter says what it is instead of a SyntaxError.
const VERSION_SCRIPT = "import sys; sys.stdout.write('%d.%d.%d %s' % (sys.version_info[:3] + (sys.executable,)))";

/** Run *python* and read its version: the check that it can run the bundled server. */
export function probeInterpreter(python: string, timeoutMs = 20000): Promise<Probe> {
  return new Promise((resolve) => {
    execFile(
      python,
      ["-c", VERSION_SCRIPT],
      { timeout: timeoutMs, windowsHide: true },
      (error, stdout, stderr) => {
        if (error) {
          resolve({ ok: false, reason: describeFailure(error, String(stderr)) });
        } else {
          resolve(judgeVersion(String(stdout)));
        }
      },
    );
  });
}

/** The probe's output ("3.11.2 /usr/bin/python3") against MIN_PYTHON. */
export function judgeVersion(output: string): Probe {
  const m = /^(\d+)\.(\d+)\.(\d+) ?(.*)$/s.exec(output.trim());
  if (m === null) {
    return { ok: false, reason: `not a Python (it printed ${JSON.stringify(output.slice(0, 80))})` };
  }
  const [major, minor] = [Number(m[1]), Number(m[2])];
  const version = `${m[1]}.${m[2]}.${m[3]}`;
  const executable = m[4] || undefined;
  if (major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1])) {
    return { ok: false, version, executable, reason: `Python ${version} is too old` };
  }
  return { ok: true, version, executable };
}

/** What went wrong running the probe, in a few words; *error* as execFile gives it. */
export function describeFailure(
  error: { code?: string | number | null; killed?: boolean },
  stderr: string,
): string {
  if (error.code === "ENOENT") {
    return "not found";
  }
  if (error.code === "EACCES") {
    return "not executable";
  }
  if (error.killed) {
    return "timed out";
  }
  const lines = stderr.trim().split(/\r?\n/);
  return lines[lines.length - 1] || `exit code ${String(error.code)}`;
}
