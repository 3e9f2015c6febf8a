/**
 * The status bar item: formatStatus() on screen; a click runs Pairls: Show Participants.
 * It appears when the server first starts (a window where Pairls was never used shows none).
 */
import * as vscode from "vscode";

import type { Participant, Status } from "./protocol";
import { formatStatus, type ServerState, type StatusModel } from "./status";

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private model: StatusModel = { server: "stopped" };

  constructor(command: string) {
    this.item = vscode.window.createStatusBarItem("pairls.status", vscode.StatusBarAlignment.Left, 100);
    this.item.name = "Pairls";
    this.item.command = command;
    this.render();
  }

  get status(): Status | undefined {
    return this.model.status;
  }

  get participants(): Participant[] | undefined {
    return this.model.participants;
  }

  setServer(server: ServerState): void {
    this.model = server === "running" ? { ...this.model, server } : { server };
    if (server !== "stopped") {
      this.item.show();
    }
    this.render();
  }

  setStatus(status: Status): void {
    const participants = status.roomId ? this.model.participants : undefined;
    this.model = { ...this.model, status, participants };
    this.render();
  }

  setParticipants(participants: Participant[]): void {
    this.model = { ...this.model, participants };
    this.render();
  }

  private render(): void {
    const view = formatStatus(this.model);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.warning
      ? new vscode.ThemeColor("statusBarItem.warningBackground")
      : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
