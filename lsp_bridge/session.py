"""The asyncio shell around :class:`~lsp_bridge.room.Room`: a websocket, timers, the editor.

It holds no policy: every decision (what to send, when to reconnect, what
to tell the editor) is the room's (``room.py``).  The shell feeds the room
what happened (a frame, a closed socket, an editor's answer, time) and
carries out what the room hands back: frames to write in order, events for
the editor (an :class:`EditorPort`), and the next time to wake it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from collab_core import jsonio

from .carries import CarryStore
from .editor_sync import ContentChange, EditToApply
from .invite import InvalidInvite, parse_invite
from .room import (
    ApplyEdit,
    CarryTaken,
    Connect,
    Disconnect,
    Done,
    DropHeld,
    Event,
    FollowTo,
    HoldCarry,
    KeepCarry,
    Log,
    Notify,
    Progress,
    RefreshInlayHints,
    Room,
    RoomConfig,
    ShowMessage,
    TextChanged,
    TextReplaced,
)
from .tls import CA_FILE_ENV, TLSSetupError, client_context, final_failure

__all__ = ["EditorPort", "Session", "SessionError"]

logger = logging.getLogger(__name__)


class SessionError(Exception):
    """A room command failed; the message is fit to show the user."""


class EditorPort(Protocol):
    """What the session needs from the language-server side."""

    def apply_edit(self, uri: str, edit: EditToApply) -> Awaitable[Any]:
        """Send ``workspace/applyEdit`` now; the awaitable is the answer as plain JSON
        (``{"applied": bool}``)."""
        ...

    def buffer(self, uri: str) -> tuple[int, str] | None:
        """The buffer's version and text as the editor's notifications left them, if open."""
        ...

    def show_message(self, text: str, *, error: bool = False) -> None: ...

    def log(self, text: str) -> None: ...

    def notify(self, method: str, params: dict[str, Any]) -> None: ...

    def refresh_inlay_hints(self) -> None: ...

    def text_changed(self, event: TextChanged) -> None: ...

    def text_replaced(self, path: str, text: str | None) -> None: ...

    def progress(self, event: Progress) -> None: ...

    async def follow_to(self, event: FollowTo) -> None: ...


class Session:
    """One :class:`Room` and the I/O it needs.  Inputs are forwarded with the loop's time."""

    def __init__(
        self,
        editor: EditorPort,
        *,
        name: str,
        encoding: str,
        config: RoomConfig | None = None,
        user: str = "",
        carries: CarryStore | None = None,
    ):
        self.editor = editor
        #: where what the hub never acknowledged is kept when the editor goes (carries.py)
        self.carries = carries or CarryStore(None)
        #: carries claimed from disk and given to the room, by room id: their files
        self._restored: dict[str, Path] = {}
        self.room = Room(
            name=name, encoding=encoding, config=config, jitter=lambda: 0.5 + random.random(), user=user
        )
        self._loop = asyncio.get_running_loop()
        self._ws: ClientConnection | None = None
        self._conn_task: asyncio.Task[None] | None = None
        self._gen = 0
        self._outbox: asyncio.Queue[str] | None = None
        self._waiters: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._timer: asyncio.Handle | None = None
        #: when the timer goes off (on uvloop a timer already due is a plain Handle, no when())
        self._timer_at = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        #: tasks that died of an exception (a bug: tests fail on any)
        self.failed_tasks = 0

    @property
    def now(self) -> float:
        return self._loop.time()

    # -- inputs ---------------------------------------------------------------------------

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a room input (``now`` appended) and carry out what it hands back."""
        try:
            return fn(*args, self.now)
        finally:
            self.flush()

    def begin(self, start: Callable[[float], int]) -> asyncio.Future[dict[str, Any]]:
        """Start a room command now (it returns a ticket); the future is its :class:`Done`."""
        ticket = start(self.now)
        fut = self._waiters[ticket] = self._loop.create_future()
        fut.add_done_callback(lambda _: self._waiters.pop(ticket, None))
        self.flush()
        return fut

    async def command(self, start: Callable[[float], int]) -> dict[str, Any]:
        """Start a room command and wait for its :class:`Done`."""
        return await self.begin(start)

    async def create_room(self, hub_url: str, name: str, token: str | None = None) -> dict[str, Any]:
        return await self.command(lambda now: self.room.create(hub_url, name, _client_id(), now, token))

    async def join_room(self, invite: str) -> dict[str, Any]:
        with contextlib.suppress(InvalidInvite):  # (the room says what is wrong with it)
            room_id = parse_invite(invite).room_id
            await self._wait_for_a_held_carry(room_id)
            claimed = self.carries.claim(room_id, self.room.restore_carry)
            if claimed is not None:
                self._restored[room_id] = claimed  # (removed once taken, or kept anew at exit)
        return await self.command(lambda now: self.room.join(invite, _client_id(), now))

    async def _wait_for_a_held_carry(self, room_id: str) -> None:
        """Before an entry: look on disk for another server's carry of the room as long as the
        room waits for it (``Room.wait_for_carry``): the other process's end shows only there,
        so there is no event to wait on."""
        held = functools.partial(self.carries.held_elsewhere, room_id)
        while (wait := self.room.wait_for_carry(held, self.now)) is not None:  # noqa: ASYNC110
            await asyncio.sleep(wait)

    def share(self, uri: str, path: str, text: str, version: int) -> Awaitable[dict[str, Any]]:
        """Share the buffer: it starts at once, so a change the editor sends right after the
        buffer's text is the room's; await the result for ``{path, rev}``."""
        started = self.begin(lambda now: self.room.share(uri, path, text, version, now))

        async def result() -> dict[str, Any]:
            done = await started
            return {"path": done["path"], "rev": done["rev"]}

        return result()

    async def publish(self, path: str, text: str) -> dict[str, Any]:
        result = await self.command(lambda now: self.room.publish(path, text, now))
        return {"path": result["path"], "rev": result["rev"]}

    async def open_text(self, path: str) -> str:
        result = await self.command(lambda now: self.room.open_text(path, now))
        return str(result["text"])

    async def leave(self, *, exiting: bool = False) -> dict[str, Any]:
        """Leave once what the user typed is the room's (bounded: the room decides); *exiting*:
        the editor is going (see ``Room.leave``)."""
        return await self.command(lambda now: self.room.leave(now, exiting=exiting))

    async def kick(self, participant: Any) -> dict[str, Any]:
        return await self.command(lambda now: self.room.kick(participant, now))

    async def set_role(self, participant: Any, role: Any) -> dict[str, Any]:
        return await self.command(lambda now: self.room.set_role(participant, role, now))

    async def rotate_invites(self) -> dict[str, Any]:
        return await self.command(self.room.rotate_invites)

    async def delete_room(self) -> dict[str, Any]:
        return await self.command(self.room.delete_room)

    # history (docs/protocol.md, "History"): the room decides when each request goes

    async def undo(self, path: str) -> dict[str, Any]:
        """Undo the user's last change to *path* once the hub has what they typed: ``{rev}``."""
        return await self.command(lambda now: self.room.undo(path, now))

    async def redo(self, path: str) -> dict[str, Any]:
        return await self.command(lambda now: self.room.redo(path, now))

    async def history(self, path: str, before: Any = None, limit: Any = None) -> dict[str, Any]:
        return await self.command(lambda now: self.room.history(path, now, before, limit))

    async def revision(self, path: str, rev: Any) -> str:
        result = await self.command(lambda now: self.room.revision(path, rev, now))
        return str(result["text"])

    async def blame(self, path: str) -> None:
        """Ask the hub for *path*'s blame and wait for the answer (``Room.blame_lines`` reads it)."""
        await self.command(lambda now: self.room.blame(path, now))

    def editor_changed(self, uri: str, version: int, changes: list[ContentChange]) -> bool:
        return bool(self.call(self.room.editor_changed, uri, version, changes))

    def cursor_moved(self, uri: str, ranges: list[tuple[int, int]]) -> None:
        self.call(self.room.cursor_moved, uri, ranges)

    async def close(self) -> None:
        """Stop everything (the server is exiting)."""
        self._gen += 1
        if self._timer is not None:
            self._timer.cancel()
        await self._close_socket()
        for task in list(self._tasks):
            task.cancel()

    # -- outputs --------------------------------------------------------------------------

    def flush(self) -> None:
        """Carry out the room's events, write its frames, and arm the timer."""
        room = self.room
        while True:
            events = room.events(self.now)
            if not events:
                break
            for ev in events:
                self._event(ev)
        self._write_messages()
        wake = room.next_wakeup()
        timer = self._timer
        if wake is None:
            if timer is not None:
                timer.cancel()
                self._timer = None
        elif timer is None or self._timer_at > max(wake, self.now):
            if timer is not None:
                timer.cancel()
            self._timer_at = at = max(wake, self.now)
            self._timer = self._loop.call_at(at, self._tick)
        # else the timer goes off first, or then: the tick finds what is due (nothing, if the
        # wakeup moved later, such as the content check each keystroke puts off) and sets it
        # again (one timer a keystroke cost more than an early tick now and then)

    def _write_messages(self) -> None:
        msgs = self.room.messages_to_send(self.now)
        outbox, ws = self._outbox, self._ws
        if msgs and outbox is not None:
            for msg in msgs:
                data = jsonio.dumps(msg)
                if not (outbox.empty() and isinstance(ws, HubConnection) and ws.send_now(data)):
                    outbox.put_nowait(data.decode())  # (websockets sends a str as a text frame)

    def _tick(self) -> None:
        self._timer = None
        self.call(self.room.tick)

    def _event(self, ev: Event) -> None:
        editor = self.editor
        if isinstance(ev, Connect):
            self._start_connection(ev.url)
        elif isinstance(ev, Disconnect):
            # what the room said last (a leave) goes out before the close
            self._write_messages()
            self._gen += 1
            task, ws, outbox = self._conn_task, self._ws, self._outbox
            self._conn_task, self._ws, self._outbox = None, None, None
            self._spawn(self._close(task, ws, outbox))
        elif isinstance(ev, ApplyEdit):
            self._send_edit(ev)
        elif isinstance(ev, ShowMessage):
            editor.show_message(ev.text, error=ev.error)
        elif isinstance(ev, Log):
            editor.log(ev.text)
        elif isinstance(ev, Notify):
            editor.notify(ev.method, ev.params)
        elif isinstance(ev, RefreshInlayHints):
            editor.refresh_inlay_hints()
        elif isinstance(ev, TextChanged):
            editor.text_changed(ev)
        elif isinstance(ev, TextReplaced):
            editor.text_replaced(ev.path, ev.text)
        elif isinstance(ev, Progress):
            editor.progress(ev)
        elif isinstance(ev, FollowTo):
            self._spawn(editor.follow_to(ev))
        elif isinstance(ev, KeepCarry):
            self.carries.keep(ev.room_id, ev.client_id, ev.saved, self._restored.pop(ev.room_id, None))
        elif isinstance(ev, HoldCarry):
            self.carries.hold(ev.room_id, ev.client_id, ev.saved)
        elif isinstance(ev, DropHeld):
            self.carries.drop_held()
        elif isinstance(ev, CarryTaken):
            restored = self._restored.pop(ev.room_id, None)
            if restored is not None:
                self.carries.remove(restored)
        elif isinstance(ev, Done):
            fut = self._waiters.get(ev.ticket)
            if fut is not None and not fut.done():
                if ev.error is not None:
                    fut.set_exception(SessionError(ev.error))
                else:
                    fut.set_result(ev.result or {})

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.failed_tasks += 1
            logger.error("session task failed", exc_info=task.exception())

    def _send_edit(self, ev: ApplyEdit) -> None:
        """Write the edit to the editor now (peers wait on it); its answer comes to
        :meth:`_answered` (a callback: no task per edit)."""
        answer: asyncio.Future[Any]
        try:
            answer = asyncio.ensure_future(self.editor.apply_edit(ev.uri, ev.edit))
        except Exception as exc:  # (the editor's side closed): not applied
            failed: asyncio.Future[Any] = self._loop.create_future()
            failed.set_exception(exc)
            answer = failed
        answer.add_done_callback(lambda done: self._answered(ev, done))

    def _answered(self, ev: ApplyEdit, answer: asyncio.Future[Any]) -> None:
        if answer.cancelled():  # (the server is stopping)
            return
        exc = answer.exception()
        if exc is not None:  # eglot answers a stale edit with an error: that is "not applied"
            logger.debug("applyEdit answered with an error: %s", type(exc).__name__)
            applied = False
        else:
            result = answer.result()
            applied = isinstance(result, dict) and result.get("applied") is True
        # a refusal is weighed against what the editor has told us of the buffer
        buffer = None if applied else self.editor.buffer(ev.uri)
        try:
            self.call(lambda now: self.room.edit_answered(ev.uri, applied, now, buffer))
        except Exception:  # a bug (in the room): counted, tests fail on it
            self.failed_tasks += 1
            logger.exception("handling an applyEdit answer failed")

    # -- the websocket ----------------------------------------------------------------------

    def _start_connection(self, url: str) -> None:
        self._gen += 1
        gen = self._gen
        old = self._conn_task
        self._conn_task = self._loop.create_task(self._connection(url, gen, old), name="pairls-hub")
        self._conn_task.add_done_callback(self._task_done)

    async def _close_socket(self) -> None:
        task, ws, outbox = self._conn_task, self._ws, self._outbox
        self._conn_task, self._ws, self._outbox = None, None, None
        await self._close(task, ws, outbox)

    async def _close(
        self, task: asyncio.Task[None] | None, ws: ClientConnection | None, outbox: asyncio.Queue[str] | None
    ) -> None:
        if ws is not None:
            for _ in range(100):  # let the writer send what is queued (bounded: 1 s)
                if outbox is None or outbox.empty():
                    break
                await asyncio.sleep(0.01)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _connection(self, url: str, gen: int, old: asyncio.Task[None] | None) -> None:
        if old is not None:
            old.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await old
        code: int | None = None
        reason: str | None = None
        failure: str | None = None
        writer: asyncio.Task[None] | None = None
        try:
            tls = client_context(os.environ.get(CA_FILE_ENV)) if url.startswith("wss:") else None
            async with connect(
                url,
                create_connection=HubConnection,
                ssl=tls,
                max_size=MAX_FRAME,
                compression=None,
                open_timeout=10,
                ping_interval=20,
                ping_timeout=20,
            ) as ws:
                if gen != self._gen:
                    return
                self._ws = ws
                if isinstance(ws, HubConnection):
                    ws.on_text = self._frame_read
                outbox: asyncio.Queue[str] = asyncio.Queue()
                self._outbox = outbox
                writer = self._loop.create_task(self._write(ws, outbox))
                self.call(self.room.connection_opened)
                async for frame in ws:
                    self._frame(frame)
                code, reason = ws.close_code, ws.close_reason
        except (OSError, InvalidHandshake, InvalidURI, ConnectionClosed, TimeoutError, TLSSetupError) as exc:
            code = getattr(exc, "code", None) if isinstance(exc, ConnectionClosed) else None
            rcvd = getattr(exc, "rcvd", None)
            if rcvd is not None:
                code, reason = rcvd.code, rcvd.reason
            failure = final_failure(exc, url)
            logger.info("hub connection: %s%s", type(exc).__name__, " (final)" if failure else "")
        except Exception:  # a bug (in the room, on what the hub sent): counted, tests fail on it
            self.failed_tasks += 1
            logger.exception("hub connection failed")
        finally:
            if writer is not None:
                writer.cancel()
            if gen == self._gen:
                self._ws = None
                self._outbox = None
        if gen == self._gen:
            if failure is not None:
                self.call(self.room.connection_failed, failure)
            else:
                self.call(lambda now: self.room.connection_closed(code, now, reason))

    async def _write(self, ws: ClientConnection, outbox: asyncio.Queue[str]) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.send(await outbox.get())

    def _frame_read(self, frame: str) -> None:
        """A frame, as the connection reads it (:class:`HubConnection`)."""
        try:
            self._frame(frame)
        except Exception:  # a bug (in the room, on what the hub sent): counted, tests fail on it
            self.failed_tasks += 1
            logger.exception("a frame from the hub failed")

    def _frame(self, frame: str | bytes) -> None:
        try:
            msg = jsonio.loads(frame)
        except ValueError:
            logger.warning("the hub sent a frame that is not JSON")
            return
        msgs = [one for one in (msg if isinstance(msg, list) else [msg]) if isinstance(one, dict)]
        self.room.receive_frame(msgs, self.now)
        self.flush()


class HubConnection(ClientConnection):
    """websockets' client connection with a short way for the hub's frames, which are one
    text frame each: one is handed to :attr:`on_text` as it is read (not queued for a task
    that receives it on a later turn of the loop), and :meth:`send_now` writes one at once.
    Anything else (fragments, pongs, close) goes websockets' own way."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: takes a frame as it is read; never raises
        self.on_text: Callable[[str], None] | None = None

    def process_event(self, event: Any) -> None:
        on_text = self.on_text
        if on_text is not None and isinstance(event, Frame) and event.opcode is Opcode.TEXT and event.fin:
            try:
                text = bytes(event.data).decode()
            except UnicodeDecodeError:
                super().process_event(event)  # (websockets closes with 1007)
                return
            on_text(text)
            return
        super().process_event(event)

    def send_now(self, data: bytes) -> bool:
        """Write a text frame of *data* (UTF-8) now if the connection is open and its buffer
        drained; False if not (the caller queues it for ``send``, which waits as websockets does)."""
        transport = self.transport
        if self.protocol.state is not State.OPEN or transport.get_write_buffer_size() > 0:
            return False
        self.protocol.send_text(data)
        self.send_data()
        return True


#: the largest frame taken from a hub: an ``opened`` of the largest document a hub allows
#: (16 MiB by default) with JSON's escapes; a bigger one closes the connection (1009)
MAX_FRAME = 128 << 20


def _client_id() -> str:
    """A fresh client id for a room entry (the hub keys seq numbers by it)."""
    return secrets.token_urlsafe(16)
