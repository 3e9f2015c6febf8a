/**
 * The commands a user runs ("Pairls: Create Room", ...). Each runs a server command through
 * ServerConnection.execute (which starts the server if it is not running yet) and shows the
 * outcome; the room lives in the server.
 */
import * as vscode from "vscode";

import { NotRunning, type ServerConnection } from "./client";
import { diffTitle, historyItems } from "./history";
import { DEFAULT_HUB_URL, inviteIn, validateHubUrl, validateInvite } from "./invite";
import { participantActions, participantItems } from "./participants";
import {
  type CreateRoomResult,
  type HistoryChange,
  type HistoryResult,
  type JoinRoomResult,
  type OpenRevisionResult,
  type Participant,
  type RequestRunResult,
  type RotateInvitesResult,
  type RunInfo,
  type RunResult,
  ServerCommand,
  type UndoResult,
} from "./protocol";
import { stoppableRuns } from "./runs";

/** The extension's command ids (the server's own `pairls.*` ids are taken by the client). */
export const Command = {
  createRoom: "pairls.room.create",
  joinRoom: "pairls.room.join",
  leaveRoom: "pairls.room.leave",
  copyInvite: "pairls.room.copyInvite",
  follow: "pairls.room.follow",
  showParticipants: "pairls.room.showParticipants",
  rotateInvites: "pairls.room.rotateInvites",
  deleteRoom: "pairls.room.delete",
  restartServer: "pairls.server.restart",
  undoMine: "pairls.edit.undoMine",
  redoMine: "pairls.edit.redoMine",
  showHistory: "pairls.history.show",
  runForRoom: "pairls.run.forRoom",
  askToRun: "pairls.run.ask",
  stopRun: "pairls.run.stop",
} as const;

/** Where new rooms go: the `pairls.hubUrl` setting, else what the user answered last time. */
export interface HubChoice {
  /** `pairls.hubUrl` ("" when unset) */
  configured(): string;
  remembered(): string | undefined;
  remember(hubUrl: string): Thenable<void>;
}

/** Errors the server has already shown the user itself (window/showMessage). */
const SERVER_REPORTS = new Set<string>([ServerCommand.createRoom, ServerCommand.joinRoom]);

export class Commands {
  private invite: string | undefined;
  private viewerInvite: string | undefined;
  private following: string | undefined;

  constructor(
    private readonly connection: ServerConnection,
    private readonly output: vscode.LogOutputChannel,
    private readonly hubs: HubChoice,
    /** current participants as last notified, if any */
    private readonly currentParticipants: () => Participant[] | undefined,
    /** after a restart: the room is gone with the old server */
    private readonly serverRestarted: () => void,
    /** show a run's output in its terminal (runTerminal.ts) */
    private readonly showRun: (run: { path: string; by?: string; command?: string }) => void = () => undefined,
  ) {}

  register(context: vscode.ExtensionContext): void {
    const reg = (id: string, f: (...args: unknown[]) => Promise<unknown>) =>
      context.subscriptions.push(vscode.commands.registerCommand(id, f));
    reg(Command.createRoom, () => this.createRoom());
    reg(Command.joinRoom, (invite) => this.joinRoom(typeof invite === "string" ? invite : undefined));
    reg(Command.leaveRoom, () => this.leaveRoom());
    reg(Command.copyInvite, () => this.copyInvite());
    reg(Command.follow, (id) => this.follow(typeof id === "string" ? id : undefined));
    reg(Command.showParticipants, () => this.showParticipants());
    reg(Command.rotateInvites, () => this.rotateInvites());
    reg(Command.deleteRoom, () => this.deleteRoom());
    reg(Command.restartServer, () => this.restartServer());
    reg(Command.undoMine, () => this.undoMine(false));
    reg(Command.redoMine, () => this.undoMine(true));
    reg(Command.showHistory, () => this.showHistory());
    reg(Command.runForRoom, () => this.runForRoom());
    reg(Command.askToRun, () => this.askToRun());
    reg(Command.stopRun, () => this.stopRun());
  }

  /** The room is gone (left, or the server stopped): forget its invites. */
  roomLeft(): void {
    this.invite = this.viewerInvite = this.following = undefined;
    void vscode.commands.executeCommand("setContext", "pairls.inRoom", false);
  }

  /** Someone left: stop pointing at them. */
  participantsChanged(participants: readonly Participant[]): void {
    if (this.following !== undefined && !participants.some((p) => p.id === this.following)) {
      this.following = undefined;
    }
  }

  async createRoom(): Promise<CreateRoomResult | undefined> {
    const hub = await this.hubForNewRoom();
    if (hub === undefined) {
      return undefined;
    }
    // The server creates rooms on the hub it was started with (initializationOptions.hubUrl):
    // another hub, like any other changed setting, takes a restart.
    if (await this.connection.isStale()) {
      this.output.info(`restarting the language server to create the room on ${hub}`);
      this.roomLeft();
      this.serverRestarted();
      await this.connection.restart();
    }
    const result = await this.run(ServerCommand.createRoom, "creating a room", () =>
      this.connection.execute<CreateRoomResult>(ServerCommand.createRoom, { name: vscode.workspace.name ?? "" }),
    );
    if (result === undefined) {
      return undefined;
    }
    this.invite = result.invite;
    this.viewerInvite = result.viewerInvite;
    void vscode.commands.executeCommand("setContext", "pairls.inRoom", true);
    await vscode.env.clipboard.writeText(result.invite);
    this.output.info(`created room ${result.roomId}`);
    // not awaited: the command is done once the room exists, whether or not the toast is dismissed
    void this.offerInvites(`Pairls: room created; the invite is on the clipboard: ${result.invite}`);
    return result;
  }

  /** pairls.hubUrl if set, else the hub the user names (the last one they named is the default). */
  private async hubForNewRoom(): Promise<string | undefined> {
    const configured = this.hubs.configured();
    if (configured !== "") {
      return configured;
    }
    const answer = await vscode.window.showInputBox({
      title: "Pairls: Create Room",
      prompt: "The hub to create the room on (its address, from whoever runs it; set pairls.hubUrl to skip this question)",
      placeHolder: DEFAULT_HUB_URL,
      value: this.hubs.remembered() ?? (process.env.PAIRLS_HUB_URL || DEFAULT_HUB_URL),
      ignoreFocusOut: true,
      validateInput: (text) => validateHubUrl(text),
    });
    const hub = answer?.trim();
    if (!hub) {
      return undefined;
    }
    await this.hubs.remember(hub);
    return hub;
  }

  async joinRoom(given?: string): Promise<JoinRoomResult | undefined> {
    let invite = given?.trim();
    if (!invite) {
      const clip = await vscode.env.clipboard.readText().then(inviteIn, () => undefined);
      invite = await vscode.window.showInputBox({
        title: "Pairls: Join Room",
        prompt: "The invite you were sent",
        placeHolder: "http://HOST:PORT/room/ROOM#SECRET",
        value: clip,
        ignoreFocusOut: true,
        validateInput: (text) => validateInvite(text),
      });
      invite = invite?.trim();
      if (!invite) {
        return undefined;
      }
    } else {
      const problem = validateInvite(invite);
      if (problem !== undefined) {
        void vscode.window.showErrorMessage(`Pairls: ${problem}`);
        return undefined;
      }
    }
    const joined = invite;
    const result = await this.run(ServerCommand.joinRoom, "joining the room", () =>
      this.connection.execute<JoinRoomResult>(ServerCommand.joinRoom, { invite: joined }),
    );
    if (result === undefined) {
      return undefined;
    }
    if (result.role === "viewer") {
      this.viewerInvite = joined;
    } else {
      this.invite = joined;
    }
    void vscode.commands.executeCommand("setContext", "pairls.inRoom", true);
    this.output.info(`joined room ${result.roomId} as ${result.role}`);
    const others = result.participants.filter((p) => !p.self).map((p) => p.name);
    const who = others.length ? ` with ${others.join(", ")}` : "";
    const docs = result.documents.length;
    const msg = `Pairls: joined the room as ${result.role}${who}; ${docs} shared document${docs === 1 ? "" : "s"}.`;
    if (docs > 0) {
      void vscode.window.showInformationMessage(msg, "Open a Document").then(async (pick) => {
        if (pick !== undefined) {
          await this.openRoomDocument(result.documents.map((d) => d.path));
        }
      });
    } else {
      void vscode.window.showInformationMessage(msg);
    }
    return result;
  }

  private async openRoomDocument(paths: string[]): Promise<void> {
    const path = await vscode.window.showQuickPick(paths, { title: "Pairls: open a shared document" });
    if (path !== undefined) {
      await this.run(ServerCommand.openDocument, "opening the document", () =>
        this.connection.execute(ServerCommand.openDocument, { path }),
      );
    }
  }

  async leaveRoom(): Promise<void> {
    if (!this.connection.started) {
      void vscode.window.showInformationMessage("Pairls: not in a room.");
      return;
    }
    const done = await this.run(ServerCommand.leaveRoom, "leaving the room", () =>
      this.connection.execute(ServerCommand.leaveRoom, {}),
    );
    if (done !== undefined) {
      this.roomLeft();
      void vscode.window.showInformationMessage("Pairls: you left the room.");
    }
  }

  async copyInvite(): Promise<void> {
    const invite = this.invite ?? this.viewerInvite;
    if (invite === undefined) {
      void vscode.window.showInformationMessage("Pairls: not in a room. Create or join one first.");
      return;
    }
    await vscode.env.clipboard.writeText(invite);
    const kind = invite === this.invite ? "invite" : "viewer invite";
    if (this.invite !== undefined && this.viewerInvite !== undefined) {
      void this.offerInvites(`Pairls: ${kind} copied: ${invite}`);
    } else {
      void vscode.window.showInformationMessage(`Pairls: ${kind} copied: ${invite}`);
    }
  }

  /** A notification with Copy buttons for the editor and viewer invites. */
  private async offerInvites(message: string): Promise<void> {
    const buttons = ["Copy"];
    if (this.viewerInvite !== undefined) {
      buttons.push("Copy Viewer Invite");
    }
    const pick = await vscode.window.showInformationMessage(message, ...buttons);
    const text = pick === "Copy" ? this.invite : pick === "Copy Viewer Invite" ? this.viewerInvite : undefined;
    if (text !== undefined) {
      await vscode.env.clipboard.writeText(text);
    }
  }

  async follow(participantId?: string): Promise<void> {
    if (!this.connection.started) {
      void vscode.window.showInformationMessage("Pairls: not in a room. Create or join one first.");
      return;
    }
    if (participantId !== undefined) {
      await this.followId(participantId);
      return;
    }
    const participants = await this.participants();
    if (participants === undefined) {
      return;
    }
    const items = participantItems(participants, this.following, true);
    if (items.length === 0) {
      void vscode.window.showInformationMessage("Pairls: nobody else is in the room yet.");
      return;
    }
    const pick = await vscode.window.showQuickPick(items, { title: "Pairls: Follow Participant" });
    if (pick !== undefined) {
      await this.followId(pick.unfollow ? null : pick.followId ?? null);
    }
  }

  async showParticipants(): Promise<void> {
    if (this.connection.serverState === "failed") {
      await this.serverActions();
      return;
    }
    const participants = await this.participants();
    if (participants === undefined) {
      return;
    }
    if (participants.length === 0) {
      const pick = await vscode.window.showQuickPick(
        [
          { label: "$(add) Create Room", command: Command.createRoom },
          { label: "$(plug) Join Room", command: Command.joinRoom },
        ],
        { title: "Pairls: not in a room" },
      );
      if (pick !== undefined) {
        await vscode.commands.executeCommand(pick.command);
      }
      return;
    }
    const me = participants.find((p) => p.self);
    const owner = me?.role === "owner";
    const items = participantItems(participants, this.following);
    const pick = await vscode.window.showQuickPick(items, {
      title: `Pairls: ${participants.length} in the room (pick one to ${owner ? "follow or manage" : "follow"})`,
    });
    if (pick?.unfollow) {
      await this.followId(null);
      return;
    }
    const target = participants.find((p) => p.id === pick?.followId);
    if (target === undefined) {
      return;
    }
    const actions = participantActions(target, me, this.following);
    if (actions.length === 1) {
      // not the owner: following (or stopping) is all there is
      await this.followId(actions[0].action === "unfollow" ? null : target.id);
      return;
    }
    const action = await vscode.window.showQuickPick(actions, { title: `Pairls: ${target.name}` });
    switch (action?.action) {
      case "follow":
        await this.followId(target.id);
        break;
      case "unfollow":
        await this.followId(null);
        break;
      case "viewer":
      case "editor":
        await this.setRole(target, action.action);
        break;
      case "remove":
        await this.remove(target);
        break;
    }
  }

  /** The owner makes *target* an editor or a viewer; it takes effect at once. */
  async setRole(target: Participant, role: "editor" | "viewer"): Promise<void> {
    const what = `making ${target.name} ${role === "viewer" ? "a viewer" : "an editor"}`;
    const done = await this.run(ServerCommand.setRole, what, () =>
      this.connection.execute(ServerCommand.setRole, { participantId: target.id, role }),
    );
    if (done !== undefined) {
      this.output.info(`made ${target.id} ${role}`);
    }
  }

  /** The owner removes *target*, after a modal confirmation (the server says what follows). */
  async remove(target: Participant): Promise<void> {
    const sure = await vscode.window.showWarningMessage(
      `Remove ${target.name} from the room?`,
      {
        modal: true,
        detail:
          "They are disconnected and their editor cannot come back in on its own. The invite they used lets " +
          "nobody new in until you rotate the invites; rotating is what keeps a determined person out.",
      },
      "Remove",
    );
    if (sure !== "Remove") {
      return;
    }
    const done = await this.run(ServerCommand.kick, `removing ${target.name}`, () =>
      this.connection.execute(ServerCommand.kick, { participantId: target.id }),
    );
    if (done !== undefined) {
      this.output.info(`removed ${target.id}`);
    }
  }

  /** The owner replaces the invites (modal confirmation); the new one goes to the clipboard. */
  async rotateInvites(): Promise<RotateInvitesResult | undefined> {
    const sure = await vscode.window.showWarningMessage(
      "Rotate the room's invites?",
      {
        modal: true,
        detail:
          "New editor and viewer invites replace the old ones. Everyone who joined with an old invite is " +
          "disconnected and needs the new one to come back; you stay.",
      },
      "Rotate Invites",
    );
    if (sure !== "Rotate Invites") {
      return undefined;
    }
    const result = await this.run(ServerCommand.rotateInvites, "rotating the invites", () =>
      this.connection.execute<RotateInvitesResult>(ServerCommand.rotateInvites, {}),
    );
    if (result === undefined) {
      return undefined;
    }
    this.invite = result.invite;
    this.viewerInvite = result.viewerInvite;
    await vscode.env.clipboard.writeText(result.invite);
    this.output.info("rotated the invites");
    void this.offerInvites(
      `Pairls: new invites; the old ones no longer work. The invite is on the clipboard: ${result.invite}`,
    );
    return result;
  }

  /** The owner deletes the room (modal confirmation): everyone is disconnected, its documents deleted. */
  async deleteRoom(): Promise<boolean> {
    const sure = await vscode.window.showWarningMessage(
      "Delete the room for everyone?",
      {
        modal: true,
        detail:
          "Everyone is disconnected, and the room's documents and history are deleted from the hub. The files " +
          "in everyone's editor stay as they are. This cannot be undone.",
      },
      "Delete Room",
    );
    if (sure !== "Delete Room") {
      return false;
    }
    const done = await this.run(ServerCommand.deleteRoom, "deleting the room", () =>
      this.connection.execute(ServerCommand.deleteRoom, {}),
    );
    if (done === undefined) {
      return false;
    }
    this.roomLeft();
    this.output.info("deleted the room");
    return true;
  }

  /** The active editor's document if it is a file the server may share; else says why. */
  private sharedCandidate(): vscode.TextDocument | undefined {
    const doc = vscode.window.activeTextEditor?.document;
    if (doc === undefined || doc.uri.scheme !== "file") {
      void vscode.window.showInformationMessage("Pairls: open a shared document first.");
      return undefined;
    }
    if (!this.connection.started) {
      void vscode.window.showInformationMessage("Pairls: not in a room. Create or join one first.");
      return undefined;
    }
    return doc;
  }

  /**
   * Undo (or, with *redo*, redo) the user's own last change to the active document: the hub
   * makes the op, which arrives like a peer's; nobody else's text is touched.
   */
  async undoMine(redo: boolean): Promise<UndoResult | undefined> {
    const doc = this.sharedCandidate();
    if (doc === undefined) {
      return undefined;
    }
    const command = redo ? ServerCommand.redoMine : ServerCommand.undoMine;
    try {
      const result = await this.connection.execute<UndoResult>(command, { uri: this.connection.protocolUri(doc.uri) });
      vscode.window.setStatusBarMessage(`Pairls: ${redo ? "redid" : "undid"} your change (rev ${result.rev})`, 4000);
      return result;
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.output.info(`${command}: ${message}`);
      if (message.startsWith("Nothing of yours")) {
        void vscode.window.showInformationMessage(`Pairls: ${message}.`);
      } else {
        void vscode.window.showErrorMessage(`Pairls: ${redo ? "redo" : "undo"} failed: ${message}`);
      }
      return undefined;
    }
  }

  /**
   * The active document's changes, newest first (who, when, how much, where); the one picked
   * opens as it was then (a read-only `pairls-rev:` document) beside the current text.
   */
  async showHistory(): Promise<string | undefined> {
    const doc = this.sharedCandidate();
    if (doc === undefined) {
      return undefined;
    }
    const uri = this.connection.protocolUri(doc.uri);
    const name = vscode.workspace.asRelativePath(doc.uri);
    const changes: HistoryChange[] = [];
    let before: number | undefined;
    for (;;) {
      const page = await this.run(ServerCommand.history, "reading the history", () =>
        this.connection.execute<HistoryResult>(ServerCommand.history, before === undefined ? { uri } : { uri, before }),
      );
      if (page === undefined) {
        return undefined;
      }
      changes.push(...page.changes);
      if (changes.length === 0) {
        void vscode.window.showInformationMessage(`Pairls: ${name} has no changes yet.`);
        return undefined;
      }
      const pick = await vscode.window.showQuickPick(historyItems(changes, Date.now(), page.more), {
        title: `Pairls: history of ${name}`,
        placeHolder: "Pick a change to see the text as it was then beside the current one",
        matchOnDescription: true,
      });
      if (pick === undefined) {
        return undefined;
      }
      if (pick.older) {
        before = pick.rev;
        continue;
      }
      const opened = await this.run(ServerCommand.openRevision, "opening the revision", () =>
        this.connection.execute<OpenRevisionResult>(ServerCommand.openRevision, { uri, rev: pick.rev }),
      );
      if (opened === undefined) {
        return undefined;
      }
      const title = diffTitle(name, pick.rev);
      await vscode.commands.executeCommand("vscode.diff", vscode.Uri.parse(opened.uri), doc.uri, title);
      return opened.uri;
    }
  }

  /**
   * Run for the Room: the active file with its language's runner, a command line, or a task of
   * .pairls/run.toml, on this machine in the workspace folder; everyone follows the output.
   */
  async runForRoom(): Promise<RunResult | undefined> {
    const doc = vscode.window.activeTextEditor?.document;
    const items: (vscode.QuickPickItem & { what: "file" | "command" | "task" })[] = [];
    if (doc?.uri.scheme === "file") {
      const name = vscode.workspace.asRelativePath(doc.uri);
      items.push({ label: `$(play) Run ${name}`, description: "with its language's usual runner", what: "file" });
    }
    items.push(
      { label: "$(terminal) Type a command line…", description: "split like a shell line, never run by one", what: "command" },
      { label: "$(tasklist) Run a task of .pairls/run.toml…", what: "task" },
    );
    const pick = await vscode.window.showQuickPick(items, {
      title: "Pairls: Run for the Room",
      placeHolder: "It runs on your machine, in your workspace folder; everyone in the room sees the output",
    });
    let arg: Record<string, string>;
    if (pick === undefined) {
      return undefined;
    } else if (pick.what === "file" && doc !== undefined) {
      arg = { uri: this.connection.protocolUri(doc.uri) };
    } else {
      const typed = await vscode.window.showInputBox({
        title: "Pairls: Run for the Room",
        prompt: pick.what === "task" ? "The task's name in .pairls/run.toml" : "The command line to run",
        ignoreFocusOut: true,
      });
      if (!typed?.trim()) {
        return undefined;
      }
      arg = pick.what === "task" ? { task: typed.trim() } : { command: typed };
    }
    const result = await this.run(ServerCommand.run, "starting the run", () =>
      this.connection.execute<RunResult>(ServerCommand.run, arg),
    );
    if (result !== undefined) {
      this.output.info(`run ${result.runId}: output in ${result.path}`);
      this.showRun({ path: result.path, by: "you" });
    }
    return result;
  }

  /** Ask to Run: someone else runs a command line on their machine, if they choose Run. */
  async askToRun(): Promise<RequestRunResult | undefined> {
    const participants = (await this.participants())?.filter((p) => !p.self) ?? [];
    if (participants.length === 0) {
      void vscode.window.showInformationMessage("Pairls: nobody else is in the room.");
      return undefined;
    }
    const who = await vscode.window.showQuickPick(
      participants.map((p) => ({ label: p.name, description: p.role, id: p.id })),
      { title: "Pairls: Ask to Run", placeHolder: "Who should run it (on their machine)?" },
    );
    if (who === undefined) {
      return undefined;
    }
    const command = await vscode.window.showInputBox({
      title: `Pairls: Ask ${who.label} to Run`,
      prompt: `The command line ${who.label} is asked to run; they see it exactly and choose Run or Decline`,
      ignoreFocusOut: true,
    });
    if (!command?.trim()) {
      return undefined;
    }
    const answer = await this.run(ServerCommand.requestRun, `waiting for ${who.label}'s choice`, () =>
      this.connection.execute<RequestRunResult>(ServerCommand.requestRun, { participantId: who.id, command }),
    );
    if (answer?.accepted && answer.path !== undefined) {
      void vscode.window.showInformationMessage(`Pairls: ${who.label} runs it.`);
      this.showRun({ path: answer.path, by: who.label });
    } else if (answer !== undefined) {
      void vscode.window.showInformationMessage(`Pairls: ${who.label} declined (or did not answer).`);
    }
    return answer;
  }

  /** Stop Run: one of the user's own runs (picked, if more than one is going). */
  async stopRun(): Promise<void> {
    const listed = await this.run(ServerCommand.runs, "listing your runs", () =>
      this.connection.execute<{ runs: RunInfo[] }>(ServerCommand.runs, {}, false),
    );
    const going = stoppableRuns(listed?.runs ?? []);
    if (going.length === 0) {
      void vscode.window.showInformationMessage("Pairls: no run of yours is running.");
      return;
    }
    const pick =
      going.length === 1
        ? going[0]
        : (
            await vscode.window.showQuickPick(
              going.map((r) => ({ label: r.command ?? r.runId, description: r.runId, run: r })),
              { title: "Pairls: Stop Run" },
            )
          )?.run;
    if (pick === undefined) {
      return;
    }
    const done = await this.run(ServerCommand.stopRun, "stopping the run", () =>
      this.connection.execute(ServerCommand.stopRun, { runId: pick.runId }),
    );
    if (done !== undefined) {
      vscode.window.setStatusBarMessage(`Pairls: stopped ${pick.command ?? pick.runId}`, 4000);
    }
  }

  private async serverActions(): Promise<void> {
    const pick = await vscode.window.showQuickPick(
      [
        { label: "$(debug-restart) Restart Server", action: "restart" },
        { label: "$(gear) Set pairls.pythonPath", action: "settings" },
        { label: "$(output) Show the Pairls log", action: "log" },
      ],
      { title: "Pairls: the language server is not running" },
    );
    if (pick?.action === "restart") {
      await this.restartServer();
    } else if (pick?.action === "settings") {
      await vscode.commands.executeCommand("workbench.action.openSettings", "pairls.pythonPath");
    } else if (pick?.action === "log") {
      this.output.show();
    }
  }

  async restartServer(): Promise<void> {
    this.roomLeft();
    this.serverRestarted();
    const ok = await this.connection.restart();
    if (ok) {
      void vscode.window.showInformationMessage("Pairls: the language server restarted.");
    }
  }

  private async followId(participantId: string | null): Promise<void> {
    const done = await this.run(ServerCommand.follow, "following", () =>
      this.connection.execute(ServerCommand.follow, { participantId }),
    );
    if (done !== undefined) {
      this.following = participantId ?? undefined;
    }
  }

  private async participants(): Promise<Participant[] | undefined> {
    const result = await this.run(ServerCommand.participants, "listing participants", () =>
      this.connection.execute<{ participants: Participant[] }>(ServerCommand.participants, {}),
    );
    return result?.participants ?? this.currentParticipants();
  }

  /** Run a server command; on failure show why (unless the server did) and give undefined. */
  private async run<T>(command: string, doing: string, f: () => Promise<T>): Promise<T | undefined> {
    try {
      return await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: `Pairls: ${doing}…` },
        f,
      );
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.output.warn(`${command} failed: ${message}`);
      if (e instanceof NotRunning) {
        if (e.reported) {
          return undefined; // no Python: the user has just been told what to install
        }
        void vscode.window.showErrorMessage(`Pairls: ${message}`, "Restart Server").then((pick) => {
          if (pick !== undefined) {
            void this.restartServer();
          }
        });
      } else if (!SERVER_REPORTS.has(command)) {
        void vscode.window.showErrorMessage(`Pairls: ${doing} failed: ${message}`);
      }
      return undefined;
    }
  }
}
