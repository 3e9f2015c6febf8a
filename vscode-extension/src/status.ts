/**
 * What the status bar item says: connection state, room and number of participants, from
 * `pairls/status` and `pairls/participants`. Pure: statusBar.ts puts it on screen.
 */
import type { Participant, Status } from "./protocol";

/** Where the language server process is (the client's state, not the hub connection). */
export type ServerState = "starting" | "running" | "stopped" | "failed";

export interface StatusModel {
  server: ServerState;
  status?: Status;
  /** the last `pairls/participants` list; its length wins over `status.participants` */
  participants?: Participant[];
}

export interface StatusView {
  text: string;
  tooltip: string;
  /** a warning background (disconnected while in a room, server failed) */
  warning: boolean;
}

/** Room ids are long url-safe tokens; the status bar shows a prefix. */
export function shortRoomId(roomId: string, length = 8): string {
  return roomId.length <= length ? roomId : `${roomId.slice(0, length)}…`;
}

export function participantCount(model: StatusModel): number {
  if (model.participants !== undefined) {
    return model.participants.length;
  }
  return model.status?.participants ?? 0;
}

export function formatStatus(model: StatusModel): StatusView {
  if (model.server === "starting") {
    return { text: "$(sync~spin) Pairls", tooltip: "Pairls: starting the language server…", warning: false };
  }
  if (model.server === "failed") {
    return {
      text: "$(error) Pairls",
      tooltip: "Pairls: the language server is not running (see the Pairls output). Click for actions.",
      warning: true,
    };
  }
  if (model.server === "stopped") {
    return { text: "$(circle-slash) Pairls", tooltip: "Pairls: the language server is stopped", warning: false };
  }
  const st = model.status;
  if (!st || !st.roomId) {
    return {
      text: "$(broadcast) Pairls",
      tooltip: "Pairls: not in a room. Click to create or join one.",
      warning: false,
    };
  }
  const count = participantCount(model);
  const room = shortRoomId(st.roomId);
  const people = `$(person) ${count}`;
  const lines = [
    `Pairls room ${st.roomId}`,
    `Hub: ${st.hubUrl ?? "?"} (${st.state})`,
    `Your role: ${st.role ?? "?"}`,
    `${count} participant${count === 1 ? "" : "s"}${namesSuffix(model.participants)}`,
  ];
  const docs = Object.keys(st.documents ?? {}).length;
  const pending = Object.values(st.documents ?? {}).filter((d) => d.pending).length;
  lines.push(`${docs} shared document${docs === 1 ? "" : "s"}${pending ? `, ${pending} sending` : ""}`);
  lines.push("Click to show participants.");
  const tooltip = lines.join("\n");
  if (st.state === "connected") {
    return { text: `$(broadcast) ${room} ${people}`, tooltip, warning: false };
  }
  if (st.state === "connecting") {
    return { text: `$(sync~spin) ${room} ${people}`, tooltip: `Reconnecting…\n${tooltip}`, warning: true };
  }
  return { text: `$(debug-disconnect) ${room} ${people}`, tooltip: `Disconnected\n${tooltip}`, warning: true };
}

function namesSuffix(participants: Participant[] | undefined): string {
  if (!participants || participants.length === 0) {
    return "";
  }
  return ": " + participants.map((p) => (p.self ? `${p.name} (you)` : p.name)).join(", ");
}
