"""The room actions, as ``workspace/executeCommand`` commands with one JSON object argument.

Any LSP editor can run them with no plugin (README, "Pair programming from
your editor").  A failure the user can act on is a JSON-RPC error
(``RequestFailed``) whose message says what to do.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path, PurePosixPath
from typing import Any

from pygls.uris import to_fs_path

from ..paths import shareable_files
from ..rpc import UserError
from ..server import PairlsServer
from ..session import SessionError

Handler = Callable[..., Any]


def _arg(args: tuple[Any, ...]) -> dict[str, Any]:
    """Commands take one JSON object argument."""
    if args and isinstance(args[0], dict):
        return args[0]
    return {}


def user_error(message: str) -> UserError:
    return UserError(message=message)


# Creating and joining read the open buffers as the request arrives: what the user types
# after it (while the hub answers) is typing during the share, kept on top of the room's text.
# So these two are generators, which pygls runs up to their ``yield`` at once (an ``async``
# handler would start only after the changes that came in the same read from the editor);
# the rest of the work is the coroutine they yield.
Entering = Generator[
    tuple[Callable[..., Awaitable[dict[str, Any]]], tuple[Any, ...], dict[str, Any]], Any, Any
]


def create_room(ls: PairlsServer, *args: Any) -> Entering:
    return (yield _create_room, (ls, ls.begin_entering(), *args), {})


def join_room(ls: PairlsServer, *args: Any) -> Entering:
    return (yield _join_room, (ls, ls.begin_entering(), *args), {})


async def _create_room(ls: PairlsServer, before: dict[str, tuple[int, str]], *args: Any) -> dict[str, Any]:
    try:
        return await _create(ls, before, *args)
    finally:
        ls.entering_buffers = None  # (before holds the buffers opened meanwhile)


async def _join_room(ls: PairlsServer, before: dict[str, tuple[int, str]], *args: Any) -> dict[str, Any]:
    try:
        return await _join(ls, before, *args)
    finally:
        ls.entering_buffers = None


async def _create(ls: PairlsServer, before: dict[str, tuple[int, str]], *args: Any) -> dict[str, Any]:
    arg = _arg(args)
    name = str(arg.get("name") or "")
    token = arg.get("token") if isinstance(arg.get("token"), str) and arg.get("token") else ls.create_token
    ls.require_user()
    result = await _enter(ls, ls.require_session().create_room(ls.hub_url, name, token))
    if ls.auto_share:
        # The invite goes out once the open documents are the room's: someone who joins at
        # once and opens an empty copy of one must find it there (else theirs would be created
        # first and win).  Bounded like entering: a share that takes longer goes on after.
        shares = ls.share_open_documents(before)
        if shares:
            await asyncio.wait(shares, timeout=ls.require_session().room.config.enter_timeout)
    return result


async def _join(ls: PairlsServer, before: dict[str, tuple[int, str]], *args: Any) -> dict[str, Any]:
    invite = _arg(args).get("invite")
    if not isinstance(invite, str) or not invite:
        raise user_error("joinRoom needs {invite}")
    ls.require_user()
    result = await _enter(ls, ls.require_session().join_room(invite))
    if ls.auto_share:
        ls.share_open_documents(before)
    return result


async def _enter(ls: PairlsServer, entering: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """Create or join: on failure tell the user and fail the command."""
    try:
        return await entering
    except SessionError as exc:
        ls.editor.show_message(f"pairls: {exc}", error=True)
        raise user_error(str(exc)) from None


async def leave_room(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """Leave once the hub has what the user typed (a few seconds at most); ``{unsent: [paths]}``
    if it could not have it: kept for the next entry into the room (the user is told)."""
    if ls.session is None:
        return {}
    return await ls.session.leave()


async def share_document(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """Share one open document.  One autoShare leaves out (outside the workspace, in
    ``.git``, ignored, named like a secret) goes only once the user says yes to
    ``window/showMessageRequest`` (or passes ``confirmed: true``)."""
    arg = _arg(args)
    uri = arg.get("uri")
    session = ls.require_session()
    doc = ls.text_document(uri) if isinstance(uri, str) else None
    if doc is None:
        raise user_error("open the document in the editor first")
    path = ls.paths.room_path(doc.uri)
    why = ls.paths.share_block(doc.uri) if doc.uri not in session.room.by_uri else None
    if why is not None and arg.get("confirmed") is not True:
        name = path or Path(to_fs_path(doc.uri) or "untitled").name
        question = (
            f"pairls: {name}: {why}. Share it with everyone in the room? "
            "The room keeps every version it is sent."
        )
        if not await ls.editor.confirm(question, "Share"):
            raise user_error(f"{name} was not shared: {why}")
    if path is None:
        path = _outside_path(ls, doc.uri)
    try:
        return await session.share(doc.uri, path, doc.source, doc.version or 0)
    except SessionError as exc:
        raise user_error(str(exc)) from None


def _outside_path(ls: PairlsServer, uri: str) -> str:
    """A file outside the workspace is shared by its name; a name the room has goes numbered."""
    room = ls.require_session().room
    doc = room.by_uri.get(uri)
    if doc is not None:
        return doc.path
    name = PurePosixPath(Path(to_fs_path(uri) or "untitled").name or "untitled")
    taken = set(room.room_documents) | set(room.docs)
    candidate, n = str(name), 2
    while candidate in taken:
        candidate = f"{name.stem}-{n}{name.suffix}"
        n += 1
    return candidate


async def share_folder(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """Share every text file under a folder (the first workspace folder by default), with
    progress; files that may hold secrets, binary files and tool folders are left out."""
    session = ls.require_session()
    room = session.room
    if not room.in_room:
        raise user_error("join or create a room first")
    uri = _arg(args).get("uri")
    folder = Path(to_fs_path(uri) or "") if isinstance(uri, str) else ls.paths.root()
    if folder is None or not folder.is_dir():
        raise user_error("no folder to share: open a workspace folder, or pass {uri} of one")
    limit = int(room.limits.get("maxDocumentBytes") or 16 << 20)
    files, skipped = await asyncio.to_thread(shareable_files, folder, max_bytes=limit)
    jobs = []
    for path in files:
        fs_uri = ls.paths.uri(path)
        room_path = ls.paths.room_path(fs_uri)
        if room_path is None:
            continue
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            skipped.append(f"{room_path}: not UTF-8 text")
            continue
        jobs.append(session.publish(room_path, text))
    results = await asyncio.gather(*jobs, return_exceptions=True)
    shared = [r["path"] for r in results if isinstance(r, dict)]
    failed = [str(r) for r in results if isinstance(r, BaseException)]
    if skipped:
        ls.editor.log("pairls: not shared: " + "; ".join(skipped))
    return {"shared": len(shared), "skipped": skipped, "failed": failed}


async def open_document(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    path = _arg(args).get("path")
    session = ls.require_session()
    room = session.room
    if not room.in_room:
        raise user_error("join or create a room first")
    if not isinstance(path, str) or (path not in room.room_documents and path not in room.docs):
        raise user_error("no such document in the room")
    local = await ls.ensure_local(path)
    if local is None:
        raise user_error(f"could not open {path}")
    return await show_file(ls, local, path)


async def show_file(ls: PairlsServer, local: Path, what: str) -> dict[str, Any]:
    """Show *local* with ``window/showDocument``; ``{uri}`` for the reply.

    An editor that cannot show a document opens the reply's uri itself; one that can but
    fails is told where the file is."""
    uri = ls.paths.uri(local)
    fallback = f"pairls: {what} is at {local}" if ls.can_show_document else None
    await ls.editor.show_document(uri, None, fallback)
    return {"uri": uri}


async def participants(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    return {"participants": ls.require_session().room.participants_list()}


async def follow(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    session = ls.require_session()
    error = session.call(lambda pid, now: session.room.set_follow(pid), _arg(args).get("participantId"))
    if error is not None:
        raise user_error(error)
    return {}


# -- the owner's controls (the hub refuses them to anyone else) -------------------------------


async def kick(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """Remove a participant: their connection is closed and their client kept out."""
    session = ls.require_session()
    pid = _arg(args).get("participantId")
    name = session.room.participants.get(pid) if isinstance(pid, str) else None
    await _owner(session.kick(pid))
    who = name.name if name is not None else "the participant"
    ls.editor.show_message(
        f"pairls: {who} was removed. The invite they used lets nobody new in until you rotate the "
        "invites (pairls.rotateInvites); rotating is what keeps a determined person out."
    )
    return {}


async def set_role(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    arg = _arg(args)
    await _owner(ls.require_session().set_role(arg.get("participantId"), arg.get("role")))
    return {}


async def rotate_invites(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """New editor and viewer invites; whoever joined with the old ones is disconnected."""
    return await _owner(ls.require_session().rotate_invites())


async def delete_room(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    """Delete the room and its documents on the hub; everyone is disconnected (files stay on disk)."""
    await _owner(ls.require_session().delete_room())
    return {}


async def _owner(request: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    try:
        return await request
    except SessionError as exc:
        raise user_error(str(exc)) from None


async def status(ls: PairlsServer, *args: Any) -> dict[str, Any]:
    session = ls.require_session()
    st = session.room.status()
    st["stats"]["failedTasks"] = (
        session.failed_tasks + ls.editor.failed_tasks + ls.completions.jedi.failed_tasks
    )
    st["stats"]["pathsRefused"] = ls.paths.refusals
    st["stats"]["serverErrors"] = ls.server_errors
    st["jedi"] = ls.completions.jedi.client.status()
    st["jediPid"] = st["jedi"]["pid"]  # (the bench's hook reads it here)
    # the keystroke path's messages that took the short way (lsp_bridge/rpc.py), and writes to
    # the editor that failed (the editor is gone)
    st["stats"]["shortIn"] = ls.rpc.short_in
    st["stats"]["shortOut"] = ls.rpc.short_out
    st["stats"]["editorWritesFailed"] = getattr(ls.rpc.writer, "failed", 0)
    st["eventLoop"] = type(asyncio.get_running_loop()).__module__.partition(".")[0]  # uvloop, asyncio
    st["stdioReader"] = ls.stdio_reader
    # what the server froze at start (serve.py) and the collections per generation since
    st["gc"] = {"frozen": ls.gc_frozen, "collections": [g["collections"] for g in gc.get_stats()]}
    if st["hubUrl"] is None:
        st["hubUrl"] = ls.hub_url
    return st


COMMANDS: dict[str, Handler] = {
    "pairls.createRoom": create_room,
    "pairls.joinRoom": join_room,
    "pairls.leaveRoom": leave_room,
    "pairls.shareDocument": share_document,
    "pairls.shareFolder": share_folder,
    "pairls.openDocument": open_document,
    "pairls.participants": participants,
    "pairls.follow": follow,
    "pairls.status": status,
    "pairls.kick": kick,
    "pairls.setRole": set_role,
    "pairls.rotateInvites": rotate_invites,
    "pairls.deleteRoom": delete_room,
}
