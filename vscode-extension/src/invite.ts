/**
 * Invites as the user handles them: one string `ws[s]://HOST[:PORT][/prefix]/room/<room id>#<secret>`
 * (lsp_bridge/invite.py holds the format; the server has the last word). Checking it here lets
 * the input box say what is wrong before anything is sent. Pure.
 */

const ROOM_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SECRET = /^[A-Za-z0-9_-]{1,128}$/;

export interface ParsedInvite {
  hubUrl: string;
  roomId: string;
}

/** Undefined when *text* looks like an invite, else what is wrong with it (for the input box). */
export function validateInvite(text: string): string | undefined {
  const parsed = parseInvite(text);
  return typeof parsed === "string" ? parsed : undefined;
}

/** The hub and room of an invite, or a message saying why it is not one. */
export function parseInvite(text: string): ParsedInvite | string {
  const s = text.trim();
  if (s === "") {
    return "Paste the invite you were sent (ws://HOST:PORT/room/ROOM#SECRET)";
  }
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return "Not a pairls invite (expected ws://HOST:PORT/room/ROOM#SECRET)";
  }
  if ((url.protocol !== "ws:" && url.protocol !== "wss:") || url.host === "") {
    return "Not a pairls invite (expected ws://HOST:PORT/room/ROOM#SECRET)";
  }
  const at = url.pathname.lastIndexOf("/room/");
  const roomId = at < 0 ? "" : url.pathname.slice(at + "/room/".length);
  if (!ROOM_ID.test(roomId)) {
    return "The invite has no room id (…/room/ROOM#SECRET)";
  }
  const secret = url.hash.replace(/^#/, "");
  if (!SECRET.test(secret)) {
    return "The invite has no secret (the part after #); copy it whole";
  }
  return { hubUrl: `${url.protocol}//${url.host}${url.pathname.slice(0, at)}`, roomId };
}

/** The invite in *text* (e.g. the clipboard) if it is one, to prefill the Join Room box. */
export function inviteIn(text: string | undefined): string | undefined {
  if (!text) {
    return undefined;
  }
  const s = text.trim();
  return s.length <= 512 && validateInvite(s) === undefined ? s : undefined;
}

/** Where `pairls-hub` listens unless told otherwise (`make run`); the server's default too. */
export const DEFAULT_HUB_URL = "ws://127.0.0.1:8765";

/** Undefined when *text* is a hub's address (ws[s]://HOST[:PORT][/prefix]), else what is wrong. */
export function validateHubUrl(text: string): string | undefined {
  const s = text.trim();
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return "Not a hub address (expected ws://HOST:PORT or wss://HOST)";
  }
  if ((url.protocol !== "ws:" && url.protocol !== "wss:") || url.host === "") {
    return "Not a hub address (expected ws://HOST:PORT or wss://HOST)";
  }
  if (url.hash !== "" || url.search !== "" || url.pathname.includes("/room/")) {
    return "That looks like an invite: use Join Room for it, or give the hub's address alone";
  }
  return undefined;
}
