/**
 * The extension's settings and the `initializationOptions` they become (STYLE.md: settings
 * travel as initializationOptions). Pure: extension.ts reads them from the configuration.
 */
import type { InitializationOptions } from "./protocol";

export interface Settings {
  hubUrl: string;
  displayName: string;
  autoShare: boolean;
  pythonPath: string;
}

/** Settings the running server has read at `initialize`: a change needs a restart. */
export const SERVER_SETTINGS = ["pairls.hubUrl", "pairls.displayName", "pairls.autoShare", "pairls.pythonPath"];

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
  };
}

/** Empty strings are left out, so the server keeps its own default ($PAIRLS_HUB_URL, $USER). */
export function initializationOptions(s: Settings): InitializationOptions {
  const opts: InitializationOptions = { autoShare: s.autoShare };
  if (s.hubUrl !== "") {
    opts.hubUrl = s.hubUrl;
  }
  if (s.displayName !== "") {
    opts.displayName = s.displayName.slice(0, 64);
  }
  return opts;
}
