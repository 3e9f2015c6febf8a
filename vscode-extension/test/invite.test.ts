import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import { DEFAULT_HUB_URL, inviteIn, parseInvite, validateHubUrl, validateInvite } from "../src/invite";

describe("parseInvite", () => {
  it("reads hub and room from an invite link: http -> ws, https -> wss", () => {
    assert.deepEqual(parseInvite("http://127.0.0.1:8765/room/q3L_Q-w#Xy9_z"), {
      hubUrl: "ws://127.0.0.1:8765",
      roomId: "q3L_Q-w",
    });
    assert.deepEqual(parseInvite(" https://hub.example/pairls/room/r1/#s "), {
      hubUrl: "wss://hub.example/pairls",
      roomId: "r1",
    });
  });

  it("reads the older ws:// form too (the format of lsp_bridge/invite.py)", () => {
    assert.deepEqual(parseInvite("ws://127.0.0.1:8765/room/q3L_Q-w#Xy9_z"), {
      hubUrl: "ws://127.0.0.1:8765",
      roomId: "q3L_Q-w",
    });
    assert.deepEqual(parseInvite("  wss://hub.example/pairls/room/r1#s \n"), {
      hubUrl: "wss://hub.example/pairls",
      roomId: "r1",
    });
  });

  it("says what is wrong", () => {
    assert.match(String(parseInvite("")), /Paste the invite/);
    assert.match(String(parseInvite("hello")), /Not a pairls invite/);
    assert.match(String(parseInvite("ftp://x/room/r#s")), /Not a pairls invite/);
    assert.match(String(parseInvite("ws://h:1/r#s")), /no room id/);
    assert.match(String(parseInvite("ws://h:1/room/r")), /no secret/);
    assert.match(String(parseInvite("ws://h:1/room/r#")), /no secret/);
    assert.match(String(parseInvite("ws://h:1/room/r#a b")), /no secret/);
  });
});

describe("validateInvite / inviteIn", () => {
  it("accepts invites and nothing else", () => {
    assert.equal(validateInvite("ws://h:1/room/r#s"), undefined);
    assert.equal(validateInvite("https://h/room/r#s"), undefined);
    assert.equal(inviteIn("see http://h:1/room/r#s"), undefined);
    assert.equal(inviteIn(" http://h:1/room/r#s "), "http://h:1/room/r#s");
    assert.equal(inviteIn(" ws://h:1/room/r#s "), "ws://h:1/room/r#s");
    assert.equal(inviteIn("some code on the clipboard"), undefined);
    assert.equal(inviteIn(undefined), undefined);
    assert.equal(inviteIn("ws://h:1/room/r#" + "s".repeat(600)), undefined);
  });
});

describe("validateHubUrl", () => {
  it("accepts a hub's address, the default one too", () => {
    assert.equal(validateHubUrl(DEFAULT_HUB_URL), undefined);
    assert.equal(validateHubUrl(" wss://hub.example/pairls "), undefined);
    assert.equal(validateHubUrl("ws://10.0.0.5:9000/"), undefined);
  });

  it("says what is wrong, and sends an invite to Join Room", () => {
    assert.match(String(validateHubUrl("")), /Not a hub address/);
    assert.match(String(validateHubUrl("127.0.0.1:8765")), /Not a hub address/);
    assert.match(String(validateHubUrl("http://hub:8765")), /Not a hub address/);
    assert.match(String(validateHubUrl("ws://h:1/room/r#s")), /use Join Room/);
    assert.match(String(validateHubUrl("http://h:1/room/r#s")), /use Join Room/);
  });
});
