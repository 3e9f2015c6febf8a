/**
 * Runs for the room, the pure part: what a run's terminal writes as its output document grows,
 * and which runs the commands offer. No "vscode" import (unit-tested with node --test);
 * runTerminal.ts puts it in a terminal.
 */
import type { RunInfo, RunOutputParams, RunsParams } from "./protocol";

/** The room path under which runs keep their output (`.pairls/runs/<runId>.log`). */
export const RUNS_DIR = ".pairls/runs/";

/** Whether *path* (a room path, or a file path ending in one) is a run's output document. */
export function isRunOutput(path: string): boolean {
  return path.startsWith(RUNS_DIR) || path.includes(`/${RUNS_DIR}`);
}

/** What a terminal shows for *text*: a line break is CR LF there (a lone CR stays as it is). */
export function forTerminal(text: string): string {
  return text.replace(/\r?\n/g, "\r\n");
}

/** How many code points *text* has (the room counts in code points, JavaScript in UTF-16 units). */
function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) {
    n++;
  }
  return n;
}

/**
 * What a run's terminal writes as its output grows: the text read once (`pairls.runOutput`),
 * then each append the server reports (`pairls/runOutput {path, at, text}`, *at* in code
 * points). An append before the text was read is in it; one already shown is skipped; a gap
 * (an append missed) says to read the text again; a change that is not an append (`at: null`)
 * redraws the whole text.
 */
export class OutputFeed {
  /** how much of the output (code points) the terminal shows; -1 until the text was read */
  private shown = -1;

  get started(): boolean {
    return this.shown >= 0;
  }

  /** The whole text (read, or after a change that was not an append); *clear*: the terminal first. */
  opened(text: string, clear = false): string {
    this.shown = codePoints(text);
    return (clear ? "\x1bc" : "") + forTerminal(text);
  }

  /** An append the server reported: what to write, or undefined if the text must be read again. */
  received(params: RunOutputParams): string | undefined {
    if (typeof params.text !== "string") {
      return "";
    }
    if (params.at === null || params.at === undefined) {
      return this.opened(params.text, true);
    }
    if (this.shown < 0) {
      return ""; // the text being read holds it
    }
    const points = [...params.text];
    if (params.at + points.length <= this.shown) {
      return ""; // shown already
    }
    if (params.at > this.shown) {
      return undefined; // something in between was missed
    }
    const fresh = points.slice(this.shown - params.at).join("");
    this.shown = params.at + points.length;
    return forTerminal(fresh);
  }
}

/** A run the `pairls/runs` notification says started (or goes on): its output path, else undefined. */
export function startedRun(params: RunsParams): string | undefined {
  const event = params?.event;
  if (typeof params?.path !== "string" || !isRunOutput(params.path)) {
    return undefined;
  }
  return event === "started" || event === "starting" || event === "running" ? params.path : undefined;
}

/** The terminal's name: what runs (its command line once known), and whose run it is. */
export function terminalName(params: { by?: unknown; command?: unknown; path: string }): string {
  const by = typeof params.by === "string" && params.by ? params.by : "someone";
  const what =
    typeof params.command === "string" && params.command
      ? params.command
      : (params.path.split("/").pop() ?? params.path).replace(/\.log$/, "");
  return `Pairls run: ${what.length > 60 ? what.slice(0, 59) + "…" : what} (${by})`;
}

/** The user's own runs that have not ended (Stop Run offers these). */
export function stoppableRuns(runs: readonly RunInfo[]): RunInfo[] {
  return runs.filter((r) => r.mine === true && (r.state === "starting" || r.state === "running"));
}
