/**
 * The Python extension's interpreter (ms-python.python), when that extension is installed.
 * Optional: pairls does not depend on it, so its API is reached through `vscode.extensions`
 * with the few members used here typed locally (its `environments` API).
 */
import * as vscode from "vscode";

const PYTHON_EXTENSION_ID = "ms-python.python";
const ACTIVATION_TIMEOUT_MS = 15000;

interface EnvironmentPath {
  id: string;
  path: string;
}

interface ResolvedEnvironment {
  executable: { uri?: vscode.Uri };
}

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): EnvironmentPath;
    resolveEnvironment(env: EnvironmentPath | string): Promise<ResolvedEnvironment | undefined>;
  };
}

/** The interpreter the Python extension has selected for *resource*, or undefined. */
export async function pythonExtensionInterpreter(resource?: vscode.Uri): Promise<string | undefined> {
  const ext = vscode.extensions.getExtension<PythonExtensionApi>(PYTHON_EXTENSION_ID);
  if (ext === undefined) {
    return undefined;
  }
  const api = ext.isActive ? ext.exports : await withTimeout(ext.activate(), ACTIVATION_TIMEOUT_MS);
  const envs = api?.environments;
  if (envs === undefined) {
    return undefined;
  }
  const active = envs.getActiveEnvironmentPath(resource);
  const resolved = await withTimeout(envs.resolveEnvironment(active), ACTIVATION_TIMEOUT_MS);
  return resolved?.executable.uri?.fsPath ?? undefined;
}

function withTimeout<T>(p: Thenable<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
