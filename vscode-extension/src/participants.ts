/** The participants quick pick's items, from `pairls.participants`. Pure. */
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
