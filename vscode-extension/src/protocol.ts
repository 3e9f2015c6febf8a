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
} as const;

/** Notifications: server -> client, and the one client -> server. */
export const Notification = {
  participants: "pairls/participants",
  cursors: "pairls/cursors",
  status: "pairls/status",
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

/** initializationOptions the server reads at `initialize`. */
export interface InitializationOptions {
  hubUrl?: string;
  displayName?: string;
  autoShare: boolean;
  /** `"all"`, `"room"`, `"off"`, or per language id with `"*"` for the rest */
  completions?: CompletionsOption;
}
