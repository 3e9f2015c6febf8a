/**
 * The Python extension's interpreter (ms-python.python), when that extension is installed,
 * through its API (`@vscode/python-extension`). Optional: pairls does not depend on it, and
 * never waits for it longer than ACTIVATION_TIMEOUT_MS.
 */
import { PVSC_EXTENSION_ID, PythonExtension } from "@vscode/python-extension";
import * as vscode from "vscode";

const ACTIVATION_TIMEOUT_MS = 15000;

function installed(): boolean {
  return vscode.extensions.getExtension(PVSC_EXTENSION_ID) !== undefined;
}

async function api(): Promise<PythonExtension | undefined> {
  return installed() ? withTimeout(PythonExtension.api(), ACTIVATION_TIMEOUT_MS) : undefined;
}

/** The interpreter the Python extension has selected for *resource*, or undefined. */
export async function pythonExtensionInterpreter(resource?: vscode.Uri): Promise<string | undefined> {
  const envs = (await api())?.environments;
  if (envs === undefined) {
    return undefined;
  }
  const resolved = await withTimeout(
    envs.resolveEnvironment(envs.getActiveEnvironmentPath(resource)),
    ACTIVATION_TIMEOUT_MS,
  );
  return resolved?.executable.uri?.fsPath ?? undefined;
}

/**
 * Calls *listener* when the user selects another interpreter in the Python extension.
 * Nothing happens (and nothing is activated) unless that extension is installed.
 */
export function onDidChangePythonInterpreter(listener: () => void): vscode.Disposable {
  let disposed = false;
  let subscription: vscode.Disposable | undefined;
  void api()
    .then((a) => {
      if (a !== undefined && !disposed) {
        subscription = a.environments.onDidChangeActiveEnvironmentPath(() => listener());
      }
    })
    .catch(() => undefined); // optional: its failure is not ours
  return new vscode.Disposable(() => {
    disposed = true;
    subscription?.dispose();
  });
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
