/**
 * The extension's settings and the `initializationOptions` they become (settings travel as
 * initializationOptions). Pure: extension.ts reads them from the configuration.
 */
import { type CompletionSetting, completionsOption, readCompletionSetting } from "./completions";
import type { InitializationOptions } from "./protocol";

export interface Settings {
  hubUrl: string;
  displayName: string;
  autoShare: boolean;
  pythonPath: string;
  completions: CompletionSetting;
}

/** Settings the running server has read at `initialize` (or that chose it): a change restarts it. */
export const SERVER_SETTINGS = [
  "pairls.hubUrl",
  "pairls.displayName",
  "pairls.autoShare",
  "pairls.pythonPath",
  "pairls.completions",
];

/** Read through *get* (a `WorkspaceConfiguration.get` for section "pairls"), with defaults. */
export function readSettings(get: (key: string) => unknown): Settings {
  const str = (key: string): string => {
    const v = get(key);
    return typeof v === "string" ? v.trim() : "";
  };
  const autoShare = get("autoShare");
  return {
    hubUrl: str("hubUrl"),
    displayName: str("displayName"),
    autoShare: typeof autoShare === "boolean" ? autoShare : true,
    pythonPath: str("pythonPath"),
    completions: readCompletionSetting(get("completions")),
  };
}

/** What else goes into initializationOptions besides the settings. */
export interface Context {
  /** the hub the user last created a room on when pairls.hubUrl is empty (Create Room asks) */
  rememberedHubUrl?: string;
  /** languages another extension completes (completions.ts) */
  servedLanguages: readonly string[];
}

/** Empty strings are left out, so the server keeps its own default ($PAIRLS_HUB_URL, $USER). */
export function initializationOptions(s: Settings, ctx: Context = { servedLanguages: [] }): InitializationOptions {
  const opts: InitializationOptions = {
    autoShare: s.autoShare,
    completions: completionsOption(s.completions, ctx.servedLanguages),
    // what this extension does itself: show earlier revisions, say where the cursor is, draw
    // peers' cursors (client.ts), so no inlay hints of them and no refresh at their keystrokes
    virtualRevisions: true,
    cursorNotifications: true,
    cursorHints: false,
    runOutput: true,
  };
  const hubUrl = s.hubUrl || ctx.rememberedHubUrl || "";
  if (hubUrl !== "") {
    opts.hubUrl = hubUrl;
  }
  if (s.displayName !== "") {
    opts.displayName = s.displayName.slice(0, 64);
  }
  return opts;
}

/** A setting's values by scope, as `WorkspaceConfiguration.inspect` gives them. */
export interface Inspected {
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/**
 * Whether the workspace has Pairls settings of its own (in `.vscode/settings.json` or the
 * workspace file): such a workspace is meant for pairing, so the server starts with the window.
 * User settings do not count: they hold for every window.
 */
export function hasWorkspaceSettings(keys: readonly string[], inspect: (key: string) => Inspected | undefined): boolean {
  return keys.some((key) => {
    const i = inspect(key);
    return i !== undefined && (i.workspaceValue !== undefined || i.workspaceFolderValue !== undefined);
  });
}
