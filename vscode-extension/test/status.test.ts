import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { Participant, Status } from "../src/protocol";
import { formatStatus, participantCount, shortRoomId } from "../src/status";

const inRoom: Status = {
  connected: true,
  state: "connected",
  roomId: "q3LmZx9aKt0Pw",
  role: "owner",
  hubUrl: "ws://127.0.0.1:8765",
  participants: 2,
  documents: { "a.py": { rev: 3, pending: false, open: true, sha256: "x" } },
};

const people: Participant[] = [
  { id: "1", name: "ada", color: "#e6194b", role: "owner", self: true },
  { id: "2", name: "bob", color: "#3cb44b", role: "editor" },
  { id: "3", name: "cy", color: "#4363d8", role: "viewer" },
];

describe("formatStatus", () => {
  it("shows room and participant count when connected", () => {
    const v = formatStatus({ server: "running", status: inRoom });
    assert.equal(v.text, "$(broadcast) q3LmZx9a… $(person) 2");
    assert.equal(v.warning, false);
    assert.match(v.tooltip, /Pairls room q3LmZx9aKt0Pw/);
    assert.match(v.tooltip, /Hub: ws:\/\/127\.0\.0\.1:8765 \(connected\)/);
    assert.match(v.tooltip, /1 shared document\b/);
  });

  it("counts the participants list over the status count and names them", () => {
    const v = formatStatus({ server: "running", status: inRoom, participants: people });
    assert.equal(v.text, "$(broadcast) q3LmZx9a… $(person) 3");
    assert.match(v.tooltip, /3 participants: ada \(you\), bob, cy/);
  });

  it("warns while reconnecting or disconnected in a room", () => {
    const reconnecting = formatStatus({ server: "running", status: { ...inRoom, state: "connecting" } });
    assert.equal(reconnecting.text, "$(sync~spin) q3LmZx9a… $(person) 2");
    assert.equal(reconnecting.warning, true);
    const lost = formatStatus({ server: "running", status: { ...inRoom, state: "disconnected", connected: false } });
    assert.equal(lost.text, "$(debug-disconnect) q3LmZx9a… $(person) 2");
    assert.match(lost.tooltip, /^Disconnected/);
  });

  it("says when not in a room", () => {
    const v = formatStatus({ server: "running", status: { ...inRoom, roomId: null, participants: 0 } });
    assert.equal(v.text, "$(broadcast) Pairls");
    assert.match(v.tooltip, /not in a room/);
    assert.equal(formatStatus({ server: "running" }).text, "$(broadcast) Pairls");
  });

  it("shows the server's own state before any status", () => {
    assert.equal(formatStatus({ server: "starting" }).text, "$(sync~spin) Pairls");
    const failed = formatStatus({ server: "failed", status: inRoom });
    assert.equal(failed.text, "$(error) Pairls");
    assert.equal(failed.warning, true);
    assert.equal(formatStatus({ server: "stopped" }).text, "$(circle-slash) Pairls");
  });

  it("counts pending documents", () => {
    const docs = { ...inRoom.documents, "b.py": { rev: 1, pending: true, open: true, sha256: null } };
    const v = formatStatus({ server: "running", status: { ...inRoom, documents: docs } });
    assert.match(v.tooltip, /2 shared documents, 1 sending/);
  });
});

describe("shortRoomId / participantCount", () => {
  it("keeps short ids whole", () => {
    assert.equal(shortRoomId("abc"), "abc");
    assert.equal(shortRoomId("abcdefghij"), "abcdefgh…");
  });

  it("is 0 with nothing known", () => {
    assert.equal(participantCount({ server: "running" }), 0);
  });
});
