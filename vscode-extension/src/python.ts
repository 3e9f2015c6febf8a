/**
 * Finding the Python that runs the pairls language server (`<python> -m lsp_bridge`).
 *
 * Order (STYLE.md, VS Code extension): the `pairls.pythonPath` setting, then `$PAIRLS_PYTHON`
 * (both explicit: used or reported, never silently passed over), then the Python extension's
 * interpreter, then `python3` on PATH. A candidate counts only if `import lsp_bridge` works in
 * it. No `vscode` import here: the Python extension is reached through an injected probe.
 */
import { execFile } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";

export type Source = "pairls.pythonPath" | "PAIRLS_PYTHON" | "Python extension" | "PATH";

export interface Probe {
  ok: boolean;
  /** why the interpreter cannot run pairls-lsp (when !ok), fit for the user */
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
  /** whether pairls is importable in *python* */
  hasPairls(python: string): Promise<Probe>;
}

export interface Tried {
  python: string;
  source: Source;
  reason: string;
}

export type Found =
  | { ok: true; python: string; source: Source; tried: Tried[] }
  | { ok: false; message: string; tried: Tried[] };

/** Pick the interpreter; see the module docstring for the order. */
export async function findInterpreter(probes: Probes): Promise<Found> {
  const tried: Tried[] = [];
  const explicit = firstSet([
    [probes.setting(), "pairls.pythonPath"],
    [probes.environment(), "PAIRLS_PYTHON"],
  ]);
  if (explicit !== undefined) {
    const [python, source] = explicit;
    const probe = await probes.hasPairls(python);
    if (probe.ok) {
      return { ok: true, python, source, tried };
    }
    tried.push({ python, source, reason: probe.reason ?? "unknown error" });
    return { ok: false, message: notFoundMessage(tried), tried };
  }
  let fromExtension: string | undefined;
  try {
    fromExtension = await probes.pythonExtension();
  } catch {
    fromExtension = undefined; // the Python extension is optional; its failure is not ours
  }
  const candidates: [string, Source][] = [];
  if (fromExtension) {
    candidates.push([fromExtension, "Python extension"]);
  }
  const onPath = probes.onPath();
  if (onPath !== fromExtension) {
    candidates.push([onPath, "PATH"]);
  }
  for (const [python, source] of candidates) {
    const probe = await probes.hasPairls(python);
    if (probe.ok) {
      return { ok: true, python, source, tried };
    }
    tried.push({ python, source, reason: probe.reason ?? "unknown error" });
  }
  return { ok: false, message: notFoundMessage(tried), tried };
}

function firstSet(pairs: [string | undefined, Source][]): [string, Source] | undefined {
  for (const [value, source] of pairs) {
    if (value !== undefined && value.trim() !== "") {
      return [value.trim(), source];
    }
  }
  return undefined;
}

/** The message that tells the user exactly how to fix it. */
export function notFoundMessage(tried: Tried[]): string {
  if (tried.length === 0) {
    return "Pairls: no Python found. Install Python 3.11+ and `pip install pairls`, or set pairls.pythonPath.";
  }
  const first = tried[0];
  const what = tried.map((t) => `${t.python} (${t.source}: ${t.reason})`).join("; ");
  const fix = `${quoteArg(first.python)} -m pip install pairls`;
  if (first.source === "pairls.pythonPath" || first.source === "PAIRLS_PYTHON") {
    return (
      `Pairls: the Python in ${first.source} cannot run the pairls language server: ${what}. ` +
      `Install pairls into it (${fix}), or set ${first.source} to a Python that has pairls.`
    );
  }
  return (
    `Pairls: no Python with pairls found (tried ${what}). ` +
    `Install pairls into ${first.python} (${fix}), or set pairls.pythonPath to a Python that has pairls.`
  );
}

function quoteArg(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `"${s.replace(/"/g, '\\"')}"`;
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

/** Run `<python> -c "import lsp_bridge"`: the check that the interpreter can run pairls-lsp. */
export function probeImport(python: string, timeoutMs = 20000): Promise<Probe> {
  return new Promise((resolve) => {
    execFile(
      python,
      ["-c", "import lsp_bridge"],
      { timeout: timeoutMs, windowsHide: true },
      (error, _stdout, stderr) => {
        if (!error) {
          resolve({ ok: true });
          return;
        }
        resolve({ ok: false, reason: describeFailure(error, String(stderr)) });
      },
    );
  });
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
  const last = lines[lines.length - 1];
  if (/No module named '?lsp_bridge'?/.test(last ?? "")) {
    return "pairls is not installed";
  }
  return last || `exit code ${String(error.code)}`;
}
