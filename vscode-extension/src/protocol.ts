/**
 * The contract of the pairls language server (`lsp_bridge/server.py`) as the extension sees it.
 *
 * Room actions are `workspace/executeCommand` commands taking one JSON object argument
 * (docs/architecture.md, decision 6); `pairls/*` notifications carry what LSP has no word for.
 * Types only: nothing here runs.
 */
import type { CompletionsOption } from "./completions";

/** Commands the server implements (`workspace/executeCommand`). */
export const ServerCommand = {
  createRoom: "pairls.createRoom",
  joinRoom: "pairls.joinRoom",
  leaveRoom: "pairls.leaveRoom",
  shareDocument: "pairls.shareDocument",
  openDocument: "pairls.openDocument",
  participants: "pairls.participants",
  follow: "pairls.follow",
  status: "pairls.status",
  // the room's owner only (others get an error)
  kick: "pairls.kick",
  setRole: "pairls.setRole",
  rotateInvites: "pairls.rotateInvites",
  deleteRoom: "pairls.deleteRoom",
  // history: the user's own changes undone and redone, the list of changes, earlier revisions
  undoMine: "pairls.undoMine",
  redoMine: "pairls.redoMine",
  history: "pairls.history",
  blame: "pairls.blame",
  openRevision: "pairls.openRevision",
  /** the text of a `pairls-rev:` document (openRevision gives their URIs) */
  revisionText: "pairls.revisionText",
  // runs for the room: on this machine, output in a room document everyone follows
  run: "pairls.run",
  stopRun: "pairls.stopRun",
  requestRun: "pairls.requestRun",
  runs: "pairls.runs",
  /** a run's output as the server has it now: `{path}` -> `{path, text}` */
  runOutput: "pairls.runOutput",
} as const;

/** The scheme of the read-only documents that show earlier revisions (history.ts). */
export const REVISION_SCHEME = "pairls-rev";

/** Notifications: server -> client, and the one client -> server. */
export const Notification = {
  participants: "pairls/participants",
  cursors: "pairls/cursors",
  status: "pairls/status",
  /** a run started or ended (anyone's), or one of the user's own changed state */
  runs: "pairls/runs",
  /** a run's output grew (initializationOptions.runOutput) */
  runOutput: "pairls/runOutput",
  /** client -> server: the local selections of a document */
  cursor: "pairls/cursor",
} as const;

export interface Position {
  line: number;
  character: number;
}

/** An LSP range; for cursors `start` is the anchor and `end` the head (where the caret is). */
export interface Range {
  start: Position;
  end: Position;
}

export type Role = "owner" | "editor" | "viewer";

export interface Participant {
  id: string;
  name: string;
  color: string;
  role: Role | string;
  path?: string | null;
  ranges?: unknown;
  self?: boolean;
}

export interface DocumentStatus {
  rev: number | null;
  pending: boolean;
  open: boolean;
  sha256: string | null;
}

export type ConnectionState = "disconnected" | "connecting" | "connected";

export interface Status {
  connected: boolean;
  state: ConnectionState | string;
  roomId: string | null;
  role: Role | string | null;
  hubUrl: string | null;
  /** how many participants the room has (including you) */
  participants: number;
  documents: Record<string, DocumentStatus>;
}

export interface CursorsParams {
  uri: string;
  cursors: PeerCursor[];
}

export interface PeerCursor {
  participantId: string;
  name: string;
  color: string;
  ranges: Range[];
}

export interface ParticipantsParams {
  participants: Participant[];
}

export interface CreateRoomResult {
  roomId: string;
  invite: string;
  viewerInvite: string;
}

export interface JoinRoomResult {
  roomId: string;
  role: Role | string;
  participants: Participant[];
  documents: { path: string; rev: number }[];
}

export interface RotateInvitesResult {
  invite: string;
  viewerInvite: string;
}

/** `pairls.undoMine` / `pairls.redoMine`: the revision of the op that undid or redid. */
export interface UndoResult {
  rev: number;
}

/** One entry of `pairls.history` (newest first). */
export interface HistoryChange {
  /** the revision of the change's last op */
  rev: number;
  firstRev: number;
  /** who, as an opaque id per room and person ("" for nobody); and the name they go by */
  author: string | null;
  name: string;
  /** ISO 8601 UTC */
  time: string | null;
  inserted: number;
  deleted: number;
  /** 0-based, where the change began */
  line: number;
  /** an undo or redo (of the change whose firstRev is `toggles`); else an edit */
  kind?: "undo" | "redo";
  toggles?: number;
}

export interface HistoryResult {
  changes: HistoryChange[];
  /** older changes remain: ask again with `before` the last one's rev */
  more: boolean;
}

export interface OpenRevisionResult {
  /** a `pairls-rev:` URI (this extension shows it) */
  uri: string;
}

/** initializationOptions the server reads at `initialize`. */
export interface InitializationOptions {
  hubUrl?: string;
  displayName?: string;
  autoShare: boolean;
  /** `"all"`, `"room"`, `"off"`, or per language id with `"*"` for the rest */
  completions?: CompletionsOption;
  /** earlier revisions come as `pairls-rev:` URIs this extension shows (not as files) */
  virtualRevisions?: boolean;
  /** this extension sends the cursor (`pairls/cursor`): hovers say nothing of where it is */
  cursorNotifications?: boolean;
  /** peers' cursors as inlay hints (false: this extension draws them from `pairls/cursors`) */
  cursorHints?: boolean;
  /** this extension shows runs in terminals: the server reports their output (`pairls/runOutput`) */
  runOutput?: boolean;
}

/** `pairls.run` and an accepted `pairls.requestRun`: the run and its output document. */
export interface RunResult {
  runId: string;
  path: string;
}

/** `pairls.requestRun`: the other person's choice (and their run's output, if they ran it). */
export interface RequestRunResult {
  accepted: boolean;
  path?: string;
}

/** One run of `pairls.runs` (the user's own have `mine: true`). */
export interface RunInfo {
  runId: string;
  path: string;
  by?: string;
  name?: string;
  command?: string;
  state: "starting" | "running" | "stopping" | "ended" | "elsewhere" | string;
  exitCode?: number | null;
  startedAt?: number;
  endedAt?: number;
  mine?: boolean;
}

/** `pairls/runs`: `event` "started"/"ended" for anyone's run, or the state of the user's own. */
export interface RunsParams {
  event: string;
  path: string;
  by?: string;
  name?: string;
  command?: string;
  runId?: string;
  exitCode?: number | null;
}

/** `pairls/runOutput`: text appended to a run's output at *at* (code points), or (*at* null) its whole text. */
export interface RunOutputParams {
  path: string;
  at: number | null;
  text: string;
}
