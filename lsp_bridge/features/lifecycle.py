"""``initialize`` and ``shutdown``."""

from __future__ import annotations

from lsprotocol import types as lsp

from ..server import PairlsServer
from . import run


def initialize(ls: PairlsServer, params: lsp.InitializeParams) -> None:
    """Settings from ``initializationOptions``; what the client can do; the workspace folders."""
    opts = params.initialization_options if isinstance(params.initialization_options, dict) else {}
    ls.hub_url = str(opts.get("hubUrl") or ls.hub_url)
    ls.display_name = str(opts.get("displayName") or ls.display_name)[:64]
    ls.auto_share = bool(opts.get("autoShare", True))
    if isinstance(opts.get("createToken"), str) and opts["createToken"]:
        ls.create_token = opts["createToken"]
    ls.completions_by_language = completion_modes(opts.get("completions"))
    ls.virtual_revisions = opts.get("virtualRevisions") is True
    ls.cursor_notifications = opts.get("cursorNotifications") is True
    ls.cursor_hints = opts.get("cursorHints") is not False
    ls.run_output = opts.get("runOutput") is True
    # pygls picks PositionEncodingKind.Utf16 (an enum) when the client names no encoding
    # (Neovim 0.7): str() of it is "PositionEncodingKind.Utf16" on Python 3.11, not "utf-16"
    enc = ls.workspace.position_encoding or "utf-16"
    ls.encoding = str(getattr(enc, "value", enc))
    caps = params.capabilities
    ws = caps.workspace
    ls.can_refresh_inlay_hints = bool(ws and ws.inlay_hint and ws.inlay_hint.refresh_support)
    window = caps.window
    ls.can_show_progress = bool(window and window.work_done_progress)
    ls.can_show_document = bool(window and window.show_document and window.show_document.support)
    ls.client_name = params.client_info.name if params.client_info else ""
    folders = [(f.name, f.uri) for f in params.workspace_folders or []]
    if not folders and params.root_uri:
        folders = [("root", params.root_uri)]
    ls.set_folders(folders)
    ls.start_session()


async def shutdown(ls: PairlsServer, params: None) -> None:
    """Answered once the room is left: what the user typed last has reached the hub (or the
    room gave up waiting for it).  An editor that stops waiting first and sends ``exit`` or
    SIGTERM or SIGHUP, or closes stdin, finds the server still leaving (``serve_stdio``)."""
    await run.stop_all(ls)
    ls.completions.jedi.close()
    await ls.depart()


def did_change_workspace_folders(ls: PairlsServer, params: lsp.DidChangeWorkspaceFoldersParams) -> None:
    """Folders added or removed (pygls has updated its workspace): map room paths anew."""
    ls.set_folders([(f.name, f.uri) for f in ls.workspace.folders.values()])


MODES = ("all", "room", "off")


def completion_modes(setting: object) -> dict[str, str]:
    """``initializationOptions.completions``: ``"all"`` (the default), ``"room"`` or ``"off"``
    for every language, or ``{"*": mode, "<languageId>": mode, ...}``."""
    if isinstance(setting, str) and setting in MODES:
        return {"*": setting}
    out = {"*": "all"}
    if isinstance(setting, dict):
        out.update({str(k): v for k, v in setting.items() if v in MODES})
    return out
