import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import { participantActions, participantItems } from "../src/participants";
import type { Participant } from "../src/protocol";

const people: Participant[] = [
  { id: "1", name: "ada", color: "#e6194b", role: "owner", self: true, path: "a.py" },
  { id: "3", name: "cy", color: "#4363d8", role: "viewer" },
  { id: "2", name: "bob", color: "#3cb44b", role: "editor", path: "src/b.py" },
];

describe("participantItems", () => {
  it("lists others by name, then you; picking another follows them", () => {
    const items = participantItems(people, undefined);
    assert.deepEqual(
      items.map((i) => [i.label, i.description, i.detail, i.followId]),
      [
        ["$(person) bob", "editor", "in src/b.py", "2"],
        ["$(person) cy", "viewer", undefined, "3"],
        ["$(account) ada (you)", "owner", "in a.py", undefined],
      ],
    );
  });

  it("for following: leaves you out and offers to stop following", () => {
    const items = participantItems(people, "2", true);
    assert.deepEqual(
      items.map((i) => [i.label, i.description, i.unfollow ?? false]),
      [
        ["$(eye-closed) Stop following", "bob", true],
        ["$(eye) bob", "editor · following", false],
        ["$(person) cy", "viewer", false],
      ],
    );
  });

  it("is empty when you are alone and following", () => {
    assert.deepEqual(participantItems([people[0]], undefined, true), []);
  });
});

describe("participantActions", () => {
  const [ada, cy, bob] = people;
  const actions = (target: Participant, me: Participant | undefined, following?: string) =>
    participantActions(target, me, following).map((a) => a.action);

  it("offers the owner Follow, a role change and Remove on an editor or a viewer", () => {
    assert.deepEqual(actions(bob, ada), ["follow", "viewer", "remove"]);
    assert.deepEqual(actions(cy, ada), ["follow", "editor", "remove"]);
    assert.deepEqual(actions(bob, ada, "2"), ["unfollow", "viewer", "remove"]);
  });

  it("offers anyone else only following, and nobody anything on themselves or on an owner", () => {
    const bobMe = { ...bob, self: true };
    assert.deepEqual(actions(cy, bobMe), ["follow"]);
    assert.deepEqual(actions({ ...ada, self: false }, bobMe), ["follow"]);
    assert.deepEqual(actions({ ...cy, role: "owner" }, ada), ["follow"]);
    assert.deepEqual(actions(ada, ada), []);
    assert.deepEqual(actions(bob, undefined), ["follow"]);
  });
});
