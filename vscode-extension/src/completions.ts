/**
 * `pairls.completions` and the `initializationOptions.completions` it becomes. Pure.
 *
 * The server completes from the room's words (every shared document, a peer's unsaved text
 * included), the language's keywords and, for Python, jedi: "all". Where another language
 * server already completes a language, its keywords and semantic completions would come
 * twice, so there the server gives the room's words only: "room". "auto" (the default) picks
 * per language: "room" for the languages an installed and enabled extension from
 * LANGUAGE_SERVERS serves, "all" for the rest. VS Code has no API that says which
 * extensions complete a language, so the list names the usual ones.
 */

export type CompletionMode = "all" | "room" | "off";
export type CompletionSetting = CompletionMode | "auto";

/** What the server reads: one mode, or `{"*": mode, "<languageId>": mode}`. */
export type CompletionsOption = CompletionMode | Record<string, CompletionMode>;

/** Extensions that complete these VS Code language ids with their own language server. */
export const LANGUAGE_SERVERS: Readonly<Record<string, readonly string[]>> = {
  // Python: Pylance (what the Python extension installs with it) or a Pyright build
  "ms-python.vscode-pylance": ["python"],
  "ms-pyright.pyright": ["python"],
  "detachhead.basedpyright": ["python"],
  // built into VS Code (unless disabled)
  "vscode.typescript-language-features": ["typescript", "typescriptreact", "javascript", "javascriptreact"],
  "vscode.css-language-features": ["css", "scss", "less"],
  "vscode.html-language-features": ["html"],
  "vscode.json-language-features": ["json", "jsonc"],
  "vscode.php-language-features": ["php"],
  "golang.go": ["go"],
  "rust-lang.rust-analyzer": ["rust"],
  "ms-vscode.cpptools": ["c", "cpp"],
  "llvm-vs-code-extensions.vscode-clangd": ["c", "cpp"],
  "redhat.java": ["java"],
  "ms-dotnettools.csharp": ["csharp"],
};

const PYLANCE = "ms-python.vscode-pylance";
const PYTHON_EXTENSION = "ms-python.python";

export function readCompletionSetting(value: unknown): CompletionSetting {
  return value === "all" || value === "room" || value === "off" ? value : "auto";
}

/**
 * The languages another extension serves. *pythonLanguageServer* is the Python extension's
 * `python.languageServer`: "None" turns Pylance off, "Jedi" serves Python without it.
 */
export function servedLanguages(isEnabled: (extensionId: string) => boolean, pythonLanguageServer?: string): string[] {
  const served = new Set<string>();
  for (const [id, languages] of Object.entries(LANGUAGE_SERVERS)) {
    if (id === PYLANCE && pythonLanguageServer === "None") {
      continue;
    }
    if (isEnabled(id)) {
      languages.forEach((l) => served.add(l));
    }
  }
  if (pythonLanguageServer === "Jedi" && isEnabled(PYTHON_EXTENSION)) {
    served.add("python");
  }
  return [...served].sort();
}

/** The setting as `initializationOptions.completions`. */
export function completionsOption(setting: CompletionSetting, served: readonly string[]): CompletionsOption {
  if (setting !== "auto") {
    return setting;
  }
  const modes: Record<string, CompletionMode> = { "*": "all" };
  for (const languageId of served) {
    modes[languageId] = "room";
  }
  return modes;
}
