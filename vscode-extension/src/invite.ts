/**
 * Invites as the user handles them: one link `http[s]://HOST[:PORT][/prefix]/room/<room id>#<secret>`
 * (which a browser opens too), or the older `ws[s]://...` form; the hub is reached at the same
 * address as a WebSocket (http -> ws, https -> wss). lsp_bridge/invite.py holds the format; the
 * server has the last word. Checking it here lets the input box say what is wrong before anything
 * is sent. Pure.
 */

const ROOM_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SECRET = /^[A-Za-z0-9_-]{1,128}$/;

/** The WebSocket scheme of each scheme an invite may have. */
const WS_SCHEME: Record<string, string> = { "http:": "ws:", "https:": "wss:", "ws:": "ws:", "wss:": "wss:" };

export interface ParsedInvite {
  /** the hub's WebSocket address (ws:// or wss://) */
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
    return "Paste the invite you were sent (http://HOST:PORT/room/ROOM#SECRET)";
  }
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return "Not a pairls invite (expected http://HOST:PORT/room/ROOM#SECRET)";
  }
  const scheme = WS_SCHEME[url.protocol];
  if (scheme === undefined || url.host === "") {
    return "Not a pairls invite (expected http://HOST:PORT/room/ROOM#SECRET)";
  }
  const path = url.pathname.replace(/\/$/, "");
  const at = path.lastIndexOf("/room/");
  const roomId = at < 0 ? "" : path.slice(at + "/room/".length);
  if (!ROOM_ID.test(roomId)) {
    return "The invite has no room id (…/room/ROOM#SECRET)";
  }
  const secret = url.hash.replace(/^#/, "");
  if (!SECRET.test(secret)) {
    return "The invite has no secret (the part after #); copy it whole";
  }
  return { hubUrl: `${scheme}//${url.host}${path.slice(0, at)}`, roomId };
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
  if (url.pathname.includes("/room/") && url.hash !== "") {
    return "That looks like an invite: use Join Room for it, or give the hub's address alone";
  }
  if ((url.protocol !== "ws:" && url.protocol !== "wss:") || url.host === "") {
    return "Not a hub address (expected ws://HOST:PORT or wss://HOST)";
  }
  if (url.hash !== "" || url.search !== "" || url.pathname.includes("/room/")) {
    return "That looks like an invite: use Join Room for it, or give the hub's address alone";
  }
  return undefined;
}
