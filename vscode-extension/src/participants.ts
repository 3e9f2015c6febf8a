/** The participants quick pick's items, from `pairls.participants`, and what can be done to one. Pure. */
import type { Participant } from "./protocol";

export interface ParticipantItem {
  label: string;
  description: string;
  detail?: string;
  /** the participant to follow when picked; undefined for yourself */
  followId?: string;
  /** the "stop following" entry */
  unfollow?: boolean;
}

/**
 * Items for *participants*: others first (by name), then you; *followable* leaves you out.
 * With *following* set, the followed one is marked and a "Stop following" entry comes first.
 */
export function participantItems(
  participants: readonly Participant[],
  following: string | undefined,
  followable = false,
): ParticipantItem[] {
  const others = participants.filter((p) => !p.self).sort((a, b) => a.name.localeCompare(b.name));
  const me = followable ? [] : participants.filter((p) => p.self);
  const items: ParticipantItem[] = [];
  const followed = following !== undefined ? participants.find((p) => p.id === following) : undefined;
  if (followed !== undefined) {
    items.push({ label: "$(eye-closed) Stop following", description: followed.name, unfollow: true });
  }
  for (const p of others) {
    const isFollowed = p.id === following;
    items.push({
      label: `${isFollowed ? "$(eye)" : "$(person)"} ${p.name}`,
      description: [p.role, isFollowed ? "following" : ""].filter(Boolean).join(" · "),
      detail: typeof p.path === "string" && p.path !== "" ? `in ${p.path}` : undefined,
      followId: p.id,
    });
  }
  for (const p of me) {
    items.push({
      label: `$(account) ${p.name} (you)`,
      description: p.role,
      detail: typeof p.path === "string" && p.path !== "" ? `in ${p.path}` : undefined,
    });
  }
  return items;
}

/** What picking a participant can lead to. */
export type ParticipantAction = "follow" | "unfollow" | "viewer" | "editor" | "remove";

export interface ParticipantActionItem {
  label: string;
  description?: string;
  action: ParticipantAction;
}

/**
 * The actions on *target* offered to *me*: following it (or stopping), and, when I am the room's
 * owner and it is not an owner, making it a viewer or an editor and removing it from the room.
 */
export function participantActions(
  target: Participant,
  me: Participant | undefined,
  following: string | undefined,
): ParticipantActionItem[] {
  if (target.self) {
    return [];
  }
  const items: ParticipantActionItem[] = [
    target.id === following
      ? { label: "$(eye-closed) Stop following", action: "unfollow" }
      : { label: "$(eye) Follow", description: `go where ${target.name} is`, action: "follow" },
  ];
  if (me?.role === "owner" && target.role !== "owner") {
    if (target.role === "viewer") {
      items.push({ label: "$(edit) Make editor", description: "their edits are shared", action: "editor" });
    } else {
      items.push({ label: "$(lock) Make viewer", description: "they can watch, not edit", action: "viewer" });
    }
    items.push({ label: "$(person-remove) Remove", description: "disconnect them from the room", action: "remove" });
  }
  return items;
}
