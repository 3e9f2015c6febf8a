"""The collab hub: a websockets server in front of the sequencer and the store.

One :class:`Hub` per process.  A connection says ``hello``, then creates or
joins a room; each document that anyone here has open gets a
:class:`DocumentTask` that owns its :class:`~collab_server.document.Sequencer`
and is the only code that changes it.  The task drains its inbox, sequences
what arrived, hands the batch to the store (which group-commits the batches
of all documents together) and, once PostgreSQL has committed, acks the
authors and broadcasts to the room.  Wire format: ``docs/protocol.md``.

The same port answers plain HTTP (see :meth:`Hub.process_request`): for
operators ``GET /healthz`` (200 once PostgreSQL answers, else 503) and ``GET
/metrics`` (Prometheus, see ``metrics.py``); for people, the web client an
invite link opens (``/room/ID`` and ``/assets/...``, see ``web.py``).
Anything that asks for a WebSocket upgrade is a WebSocket, whatever its path.

Fault isolation: a request whose handling fails (a hub bug) is answered
``internal`` and counted; the connection and the document task go on.  A
frame the hub cannot send closes that connection only (1011).  A document
task that dies anyway tells each member to reopen the document (``unavailable``
with the last committed revision) and is counted.

Bounded work: each frame's decoding is linear in its size (at most
``max_message_bytes``); an op has at most ``max_op_components`` components
and costs at most ``transform_budget`` to bring to the head
(:mod:`collab_server.document`); digests are cached per revision and hashed
off the event loop when the text is large.  The reader of a connection and
the document tasks let the others run between large pieces of work, so one
connection cannot hold the event loop for long, and each connection is
paced to its share of the loop (:mod:`collab_server.pacing`: charged the
time its messages cost, its next message waits).  :class:`HubStats` records
the longest any one message held the loop (``slowest_message_seconds``).

Admission and quotas (policy in :mod:`collab_server.quotas`): connections
per address are counted at the handshake (one too many gets HTTP 429); a
connection's frames are read no faster than its byte rate and its
address's allow; ``create_room`` may need a token; rooms per hub and
documents per room are counted by the store; the op history of all
documents shares one budget in bytes.  Everything the hub writes to a
client goes through :meth:`Connection.send`, which closes a client that
does not read (4408) before its send buffer passes ``max_send_buffer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from ssl import SSLContext
from typing import Any, TypeVar, cast

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import Protocol, State

from collab_core import ops, wire
from collab_core.errors import (
    CloseCode,
    DocumentGone,
    ErrorCode,
    InvalidState,
    ProtocolError,
    QuotaExceeded,
    RevisionConflict,
    StoreError,
)

from . import authority, codec
from .attribution import (
    HistoryIndex,
    IndexBudget,
    author_id,
    blame_range,
    blame_reply,
    history_page,
    history_reply,
    users_of,
)
from .authority import Admission, ChangeRole, Close, RoomState, Seat
from .config import HubConfig
from .document import (
    ClientId,
    Duplicate,
    Made,
    Refusal,
    Rev,
    Sequenced,
    Sequencer,
    Submission,
    toggle_client,
    utf8_length,
)
from .invites import new_secret, role_for, secret_hash
from .keepalive import HubSocket, Keepalive, next_wait
from .lifecycle import HEAD_GRACE, REGISTER_RESYNC_DELAY, RoomKeeper, heads_behind
from .metrics import HubMetrics
from .pacing import Pacer
from .peers import PeerLink
from .quotas import AddressBook, HistoryBudget, TokenBucket, address_key, token_matches
from .store import DocumentRecord, Revision, Store, micros
from .web import WebClient, WebResponse, shown_path

__all__ = ["Hub", "HubConfig", "HubStats"]

logger = logging.getLogger(__name__)

ROLES_THAT_EDIT = frozenset({"owner", "editor"})
_T = TypeVar("_T")
_A = TypeVar("_A")
#: keys of document tasks in the hub's index budget
_index_keys = itertools.count(1)
#: after a frame at least this large, the connection's reader lets the others run
YIELD_FRAME_BYTES = 16 << 10
#: texts longer than this (code points) are hashed on a worker thread
DIGEST_INLINE_CHARS = 1 << 18
#: and fed to the hash in pieces of this many code points, so the event loop
#: gets the interpreter back between them
DIGEST_CHUNK_CHARS = 1 << 20
#: a revision whose snapshot's code points times its ops (plus one) pass this is made
#: on a worker thread
REVISION_INLINE_WORK = 1 << 20
#: how often (seconds) the hub checks how late its event loop runs while clients send
LAG_PERIOD = 0.05
#: and once no frame has come for this long, how often: each check wakes the loop, and twenty a
#: second were most of an idle hub's CPU
IDLE_LAG_PERIOD = 1.0
#: ops read from the store, or encoded for an ``opened`` reply, at one go
OPS_PAGE = 2000
#: ops read from the log at one go while building a document's history index
INDEX_PAGE = 5000
#: seconds without a frame from any client after which a shutting-down hub closes the connections
DRAIN_QUIET = 0.1
#: Seconds a history index build spends at one go before it lets the others run
INDEX_SLICE = 0.005
#: committed ops between two reports of an index's size to the budget
INDEX_CHARGE_EVERY = 1000
#: requests a document task answers from its history index
HISTORY_KINDS = frozenset({"undo", "redo", "history", "blame"})
#: message kinds whose handling never waits: their time is all their own
_SYNC_KINDS = frozenset(
    {
        "op",
        "presence",
        "digest",
        "close",
        "leave",
        "ping",
        "hello",
        "run_request",
        "run_answer",
        "run_status",
        *HISTORY_KINDS,
    }
)


def lag_period(now: float, last_frame_at: float) -> float:
    """Seconds until the next check of how late the event loop runs: :data:`LAG_PERIOD` while
    frames come, :data:`IDLE_LAG_PERIOD` once none has for that long (``time.monotonic``)."""
    return LAG_PERIOD if now - last_frame_at < IDLE_LAG_PERIOD else IDLE_LAG_PERIOD


@dataclass(slots=True)
class HubStats:
    """Counters of traffic and of the failures the hub survived (tests and ``/metrics`` read them).

    Traffic is counted per WebSocket message, in bytes of its payload (UTF-8
    for text): an increment or two per frame, nothing per op.
    """

    #: messages received from clients (the refused and the malformed included)
    frames_received: int = 0
    bytes_received: int = 0
    #: messages queued to clients (one per recipient of a broadcast)
    frames_sent: int = 0
    bytes_sent: int = 0
    #: error messages sent to clients, by code
    refusals: dict[ErrorCode, int] = field(default_factory=lambda: dict.fromkeys(ErrorCode, 0))

    #: requests answered ``unavailable`` because a store call failed
    unavailable_requests: int = 0
    #: store calls of document tasks that failed and were tried again
    store_retries: int = 0
    #: commits of a batch that failed and were tried again
    commit_retries: int = 0
    #: batches given up after ``store_attempts`` failed commits
    refused_batches: int = 0
    #: ops refused with ``unavailable`` because the store failed (in those batches or otherwise)
    refused_ops: int = 0
    #: times a document task refused everything it held because a store call kept failing
    document_failures: int = 0
    #: document loads given up (their opens were refused)
    failed_loads: int = 0
    #: requests answered ``internal`` because handling them raised (a hub bug)
    internal_errors: int = 0
    #: document tasks that died (their members were told to reopen; a hub bug)
    document_crashes: int = 0
    #: frames the hub built but could not send (the connection was closed with 1011)
    send_failures: int = 0
    #: connections whose handling raised outside any one request (closed with 1011; a hub bug)
    connection_crashes: int = 0
    #: digests computed (the others came from the per-revision cache)
    digests_hashed: int = 0
    #: the longest (seconds) one message's handling took at one go: the
    #: decoding and dispatch of a frame, or a document task's work on one request
    slowest_message_seconds: float = 0.0
    #: the kind of message that took it
    slowest_message_kind: str = ""
    #: times a connection's next message waited for its share (collab_server.pacing)
    paced_messages: int = 0
    #: the longest the event loop was late to wake a timer (seconds): anything that held
    #: it, the hub's own work or the machine not running the process
    max_loop_lag_seconds: float = 0.0

    #: connections refused at the handshake: their address had max_connections_per_address
    refused_connections: int = 0
    #: clients closed with 4408 because they did not read what the hub sent
    slow_consumers: int = 0
    #: keepalive pings sent to quiet connections, and connections closed for not answering one
    keepalive_pings: int = 0
    keepalive_timeouts: int = 0
    #: frames read late to hold a connection (or its address) to its byte rate, and the seconds waited
    throttled_frames: int = 0
    throttled_seconds: float = 0.0
    #: create_room requests refused for a missing or wrong token (also in refusals)
    bad_tokens: int = 0
    #: requests refused with quota_exceeded: rooms per hub, documents per room (also in refusals)
    quota_refusals: int = 0
    #: op history entries evicted hub-wide to stay within max_history_bytes
    #: (mirrors Hub.history.evicted, so that every counter is read here)
    history_evictions: int = 0

    #: history indexes built (docs/protocol.md, "History"), and the seconds the builds took
    index_builds: int = 0
    index_build_seconds: float = 0.0
    #: history index builds given up (the log could not be read; their requests got unavailable)
    failed_index_builds: int = 0
    #: history indexes dropped to stay within max_index_bytes (rebuilt when next asked for)
    index_evictions: int = 0
    #: committed ops a history index refused (it was dropped; a hub bug)
    history_mismatches: int = 0
    #: undos and redos made again after their op was rolled back (another hub won the race)
    remade_toggles: int = 0
    #: undos and redos asked again with a key already committed: answered with that op's
    #: revision, nothing undone again (a client that lost the answer with its connection)
    repeated_toggles: int = 0

    #: checks of rooms against the database (after a notification, or periodic) that failed
    room_check_failures: int = 0
    #: open documents the periodic check found behind their stored head with no notification
    #: of it in the grace that followed: a pairls_ops notification was lost (caught up since)
    missed_notifications: int = 0
    #: connections closed because the room's owner (or the operator, or the idle sweep) ended them
    owner_closes: int = 0
    #: documents whose task ended because their room was deleted under them
    deleted_documents: int = 0
    #: rooms this hub deleted for being idle longer than ``room_ttl``
    idle_rooms_deleted: int = 0
    #: idle sweeps that failed (tried again at the next check)
    sweep_failures: int = 0

    #: writes for the other hubs on the database that failed (participants, presence, the
    #: heartbeat): repaired at the next heartbeat (collab_server/peers.py)
    peer_failures: int = 0
    #: pairls_peers notifications dropped because they did not parse or check (collab_server/roster.py)
    malformed_notifications: int = 0

    def handled(self, kind: str, seconds: float) -> None:
        """One message held the event loop for *seconds* (nobody else ran meanwhile)."""
        if seconds > self.slowest_message_seconds:
            self.slowest_message_seconds = seconds
            self.slowest_message_kind = kind


class _ConnLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Puts the connection's ``participant`` (and ``room``, once in one) on every record it logs.

    The formatters of ``logs.py`` show them: a ``[room/participant]`` prefix
    in text, fields of their own in JSON.
    """

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


class Connection:
    """One client connection and what it has joined and opened."""

    def __init__(self, hub: Hub, ws: HubSocket) -> None:
        self.hub = hub
        self.ws = ws
        cfg = hub.config
        now = time.monotonic()
        self.id = secrets.token_urlsafe(6)
        #: what this connection counts against in Hub.addresses
        self.address = address_key(_host_of(ws.remote_address))
        self.client_id = ClientId("")
        #: who this is across reconnects and room entries (hello's "user", else the client id);
        #: never sent to anyone
        self.user = ""
        self.name = ""
        self.room: Room | None = None
        self.role = ""
        #: SHA-256 of the secret it joined its room with
        self.secret_hash = b""
        self.docs: set[str] = set()
        #: path -> the revision its `opened` reply was at; later ops reach it in order
        self.opened_at: dict[str, int] = {}
        #: messages (refused past it) and bytes (read later past them) it may send
        self.messages = TokenBucket(cfg.rate, cfg.burst, now)
        self.bytes = TokenBucket(cfg.bytes_per_second, cfg.burst_bytes, now)
        self.address_bytes = hub.addresses.bucket(self.address)
        #: closed as too slow: nothing more is queued to it
        self.too_slow = False
        self.strikes = 0
        #: messages refused for the rate since the bucket was last full
        self.limited = 0
        #: what this connection's messages cost the hub, and how long its next one waits
        self.pacer = Pacer(hub.config.connection_share)
        self.log = _ConnLog(logger, {"participant": self.id})
        #: how long it may stay quiet before it is pinged, and when our keepalive ping went, if
        #: nothing came from it since (``keepalive.py``; ``ws.heard_at``: when bytes last came)
        self.ping_wait = next_wait(cfg.keepalive_interval, random.random())
        self.pinged_at: float | None = None

    def send(self, text: str | bytes) -> None:
        """Queue *text* (or its UTF-8) without waiting (ordering across tasks is preserved).

        Everything the hub writes to a client comes through here.  A client
        whose send buffer would pass ``max_send_buffer`` (one message into an
        empty buffer always goes) is closed with 4408 and gets nothing more.
        """
        if self.too_slow:
            return
        transport = self.ws.transport
        if transport is not None:
            buffered = transport.get_write_buffer_size()
            if buffered and buffered + len(text) > self.hub.config.max_send_buffer:
                self._too_slow()
                return
        stats = self.hub.stats
        stats.frames_sent += 1
        stats.bytes_sent += len(text) if isinstance(text, bytes) else utf8_length(text)
        try:
            broadcast([self.ws], text, text=True)
        except Exception:
            # A frame we built but cannot send (text UTF-8 cannot carry): this
            # connection's stream has a hole now, so it ends; the client
            # reconnects and catches up.  Nobody else is affected.
            stats.send_failures += 1
            self.log.exception("cannot send a frame; closing the connection")
            self.hub.background(self.ws.close(CloseCode.INTERNAL_ERROR, "internal error"))

    def _too_slow(self) -> None:
        self.too_slow = True
        self.hub.stats.slow_consumers += 1
        self.log.warning("closing a client that does not read what it is sent (4408)")
        self.hub.background(self._close_too_slow())

    async def _close_too_slow(self) -> None:
        """Close with 4408 after what is queued; cut the connection if it does not read that in time."""
        try:
            await asyncio.wait_for(
                self.ws.close(CloseCode.TOO_SLOW, "too slow: not reading"), self.hub.config.slow_close_timeout
            )
        except TimeoutError:
            self.ws.transport.abort()

    def charge(self, frame: bytes, now: float) -> float:
        """Count a received frame (bytes, as read) against the byte rates; seconds to wait to read on."""
        size = len(frame)
        delay = self.bytes.take(size, now)
        if self.address_bytes is not None:
            delay = max(delay, self.address_bytes.take(size, now))
        return delay

    def error(self, code: ErrorCode, detail: str | None = None, **extra: Any) -> None:
        """Send an ``error`` (every error a client gets goes through here, and is counted)."""
        self.hub.stats.refusals[code] += 1
        self.send(wire.error(code, detail, **extra))

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role}

    def seat(self) -> Seat:
        return Seat(self.id, self.client_id, self.role, self.secret_hash)

    def allow(self, now: float) -> bool:
        """May this connection send one more message now (the message rate)?"""
        if self.messages.full(now):
            self.limited = 0  # the peer slowed down enough to earn a whole burst back
        return self.messages.try_take(1.0, now)


@dataclass(eq=False, slots=True)
class _Toggle:
    """An undo or redo request on its way through a document task (the payload of its item)."""

    kind: str
    conn: Connection
    msg: dict[str, Any]

    def get(self, key: str) -> Any:
        return self.msg.get(key)


class Room:
    """The members of one room connected to this hub, and its open documents."""

    def __init__(self, hub: Hub, room_id: str) -> None:
        self.hub = hub
        self.id = room_id
        self.connections: dict[str, Connection] = {}
        self.by_client: dict[ClientId, Connection] = {}
        self.docs: dict[str, DocumentTask] = {}
        #: (participant id, path) -> presence message, in memory only
        self.presence: dict[tuple[str, str], dict[str, Any]] = {}
        hub.peers.roster.hold(room_id)  # (released in Hub._unload)
        #: user -> the newest name known here (history and blame show it)
        self.names: dict[str, str] = {}
        #: checks of this room against the database begun, and the newest one applied: an
        #: older read is never applied over a newer one (see Hub.check_rooms)
        self.reads = 0
        self.applied = 0

    def send_to_others(self, conn: Connection | None, text: str) -> None:
        """*text* to every member here but *conn*, each through its :meth:`Connection.send`."""
        for c in list(self.connections.values()):
            if c is not conn:
                c.send(text)


class DocumentTask:
    """Owns one document's sequencer; see the module docstring.

    Store failures: every store call is tried ``HubConfig.store_attempts``
    times with backoff.  When a commit keeps failing, its ops are refused
    with ``unavailable`` (after checking the log, so that an op whose COMMIT
    went through with its answer lost is acked, not refused); when any other
    call keeps failing, everything the task holds is refused the same way.
    Either way the task goes on: the next request reads the log first
    (``unsure``) and is served once the store is back.  A document whose
    load keeps failing refuses its opens and ends, so that the next open
    loads it afresh.  Failures are counted in :class:`HubStats` and logged
    with the :class:`StoreError` text, which names the operation and the
    database error but never a value.
    """

    def __init__(self, hub: Hub, room: Room, record: DocumentRecord) -> None:
        self.hub = hub
        self.room = room
        self.record = record
        self.path = record.path
        self.subscribers: set[Connection] = set()
        self.inbox: deque[tuple[str, Connection | None, Any]] = deque()
        self.wake = asyncio.Event()
        self.remote_rev = 0
        #: notifications may have been lost: read the log now
        self.stale = False
        #: a store call failed, so the log may hold more than we know: read
        #: it before sequencing anything new (not a reason to wake up)
        self.unsure = False
        self.seq: Sequencer | None = None
        self.last_snapshot = 0
        self.stopping = False
        #: the document was deleted (with its room): refuse what comes, and end
        self.gone = False
        #: consecutive failed commits of this document
        self.commit_backoff = hub.config.backoff()
        #: the requests of the step being served (those not yet handled)
        self._current: deque[tuple[str, Connection | None, Any]] = deque()
        #: (revision, SHA-256 hex of the committed text at it)
        self._digest_cache: tuple[int, str] | None = None
        #: (revision, the committed text at it as a JSON string in UTF-8)
        self._text_cache: tuple[int, bytes] | None = None
        #: the attribution index (history, blame, undo, redo), built on the first request
        self.index: HistoryIndex[tuple[str, Connection | None, Any]] = HistoryIndex()
        #: this task's key in the hub's index budget (a document loaded again is another task)
        self.index_key = next(_index_keys)
        #: a run's output document (``wire.is_run_path``): the user whose ops it takes
        #: ('' if unknown: nobody's)
        self.writer: str | None = None
        self._builder: asyncio.Task[None] | None = None
        #: committed ops since the index's size was last counted, and that size
        self._uncharged = 0
        self._index_bytes = 0
        self.task = asyncio.create_task(self._run(), name=f"doc-{record.id}")

    async def _load(self) -> Any:
        return await self.hub.store.load_document(self.record.id, history=self.hub.config.history)

    def put(self, kind: str, conn: Connection | None, payload: Any) -> None:
        self.inbox.append((kind, conn, payload))
        self.wake.set()

    def remote(self, rev: int) -> None:
        """Another hub committed up to *rev*."""
        if rev > self.remote_rev:
            self.remote_rev = rev
            self.wake.set()

    def resync(self) -> None:
        """Notifications may have been lost: read the log for anything new."""
        self.stale = True
        self.wake.set()

    def known_rev(self) -> int | None:
        """The newest revision this task knows was committed (None while it loads)."""
        if self.seq is None or self.gone:
            return None
        return max(self.seq.committed_rev, self.remote_rev)

    async def stop(self) -> None:
        """Finish what is queued (ack or refuse it), then end."""
        self.stopping = True
        self.wake.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    # -- the loop ---------------------------------------------------------

    async def _run(self) -> None:
        try:
            if not await self._start():
                return
            seq = self.seq
            assert seq is not None
            while True:
                if not self.inbox and not self.stale and self.remote_rev <= seq.committed_rev:
                    if self.stopping:
                        return
                    self.wake.clear()
                    # (the connections' frames read in the same loop iteration are all
                    # here when this wakes: a further sleep(0) made no bigger batches,
                    # only a loop iteration more per batch)
                    await self.wake.wait()
                items, self.inbox = self.inbox, deque()
                self._current = items
                try:
                    await self._step(items)
                except StoreError as exc:
                    self._store_failed(exc, items)
                self.hub.note_evictions()
                if self.gone:
                    self._unregister()
                    self._refuse_items([*self._current, *self.inbox])
                    self._current.clear()
                    self.inbox.clear()
                    return
        except asyncio.CancelledError:
            self._refuse_remaining()
            raise
        except Exception:
            self._crashed()
        finally:
            if self.seq is not None:
                self.seq.release_history()
            self._end_index()

    def _end_index(self) -> None:
        """The task ends: stop a build, refuse what waited for it, give the index's bytes back."""
        if self._builder is not None:
            self._builder.cancel()
        self._refuse_items(self.index.failed())
        self.index.drop()
        self._release_index()

    def _release_index(self) -> None:
        self.hub.indexes.release(self.index_key)
        self.hub.indexed.pop(self.index_key, None)

    def _crashed(self) -> None:
        """The task failed outside any one request (a hub bug): everyone it serves hears so.

        Queued requests are refused (``unavailable``, with their ``seq`` or
        ``id``); each member is closed out of the document with ``unavailable``,
        its ``path`` and the last committed ``rev``: it reopens with ``since``
        its own revision and sends again what was not acknowledged.  The next
        open loads the document afresh.
        """
        self.hub.stats.document_crashes += 1
        logger.exception("document task %s failed; its members were told to reopen it", self.record.id)
        self._unregister()
        self._refuse_remaining()
        rev = self.seq.committed_rev if self.seq is not None else None
        for conn in list(self.subscribers):
            conn.docs.discard(self.path)
            conn.opened_at.pop(self.path, None)
            conn.error(ErrorCode.UNAVAILABLE, path=self.path, rev=rev)
        self.subscribers.clear()

    async def _start(self) -> bool:
        """Load the document; False (with everything queued refused) if the store keeps failing."""
        try:
            loaded = await self._retry(self._load)
        except StoreError as exc:
            self.hub.stats.failed_loads += 1
            logger.warning("cannot load document %s (%s); refusing its opens", self.record.id, exc)
            # no await from here on: nothing may reach this inbox once it is refused
            self._unregister()
            self._refuse_items(self.inbox)
            self.inbox.clear()
            return False
        self.seq = Sequencer(
            loaded.text,
            loaded.rev,
            history=loaded.history,
            history_limit=self.hub.config.history,
            max_bytes=self.hub.config.max_document_bytes,
            transform_budget=self.hub.config.transform_budget,
            ledger=self.hub.history,
        )
        self.seq.group = self._group
        self.last_snapshot = loaded.rev
        return True

    def _group(self, user: str, op: Any, time: float) -> int | None:
        """Sequencer.group: the change an op joins, decided by the index when it is at the head."""
        assert self.seq is not None
        return self.index.group(user, op, time, self.seq.rev)

    async def _step(self, items: deque[tuple[str, Connection | None, Any]]) -> None:
        """Serve *items*; each is popped once handled, so a failure leaves the rest in it."""
        seq = self.seq
        assert seq is not None
        if self.stale or self.unsure or self.remote_rev > seq.committed_rev:
            self.stale = False
            await self._catch_up()
            self.unsure = False
        budget = self.hub.config.transform_budget
        mark = seq.work
        while items:
            kind, conn, payload = items[0]
            if kind in HISTORY_KINDS:
                if not self.index.ready:
                    # parked until the index is built; the document goes on meanwhile
                    self._park(items.popleft())
                    continue
                if kind in ("undo", "redo") and seq.rev != seq.committed_rev:
                    # built against the head: commit what is pending first, then come back
                    self.inbox.extendleft(reversed(items))
                    items.clear()
                    break
            try:
                if kind == "op":
                    await self._submit(payload, conn)
                elif kind == "open":
                    await self._open(conn, payload)  # type: ignore[arg-type]
                elif kind == "digest":
                    await self._digest(conn, payload)  # type: ignore[arg-type]
                elif kind in ("undo", "redo"):
                    await self._toggle(payload)
                elif kind in ("history", "blame"):
                    await self._answer_history(kind, conn, payload)  # type: ignore[arg-type]
            except StoreError:
                raise
            except Exception:
                self._request_failed(kind, conn, payload)
            items.popleft()
            if seq.work - mark > budget:
                # a lot done at one go: let the other connections and documents run
                await asyncio.sleep(0)
                mark = seq.work
        await self._commit()

    def _park(self, item: tuple[str, Connection | None, Any]) -> None:
        """*item* waits for the index, behind those that wait already; the first starts the build."""
        if self.index.want(item):
            self._builder = asyncio.create_task(self._build_index(), name=f"index-{self.record.id}")

    def _request_failed(self, kind: str, conn: Connection | None, payload: Any) -> None:
        """Handling one request raised (a hub bug): answer it ``internal``, count it, go on."""
        self.hub.stats.internal_errors += 1
        logger.exception("document %s failed to answer a %s request; answered internal", self.record.id, kind)
        if kind == "op":
            reply_to = conn or self.room.by_client.get(payload.client_id)
            if reply_to is not None:
                reply_to.error(ErrorCode.INTERNAL, path=self.path, seq=payload.seq)
        elif conn is not None:
            if kind == "open":
                conn.docs.discard(self.path)
                self.subscribers.discard(conn)
                conn.opened_at.pop(self.path, None)
            conn.error(ErrorCode.INTERNAL, id=payload.get("id"), path=self.path)

    def _unregister(self) -> None:
        if self.room.docs.get(self.path) is self:
            del self.room.docs[self.path]
        if self.hub.docs_by_id.get(self.record.id) is self:
            del self.hub.docs_by_id[self.record.id]

    def _store_failed(self, exc: StoreError, items: deque[tuple[str, Connection | None, Any]]) -> None:
        """A store call kept failing: refuse everything this task holds, then go on."""
        seq = self.seq
        assert seq is not None
        # Ops sequenced in this step never reached the store (a failed commit
        # is handled in _commit); the log may have moved all the same.  The
        # next request reads it first; until then nothing wakes us to try again
        # (a resync follows when the listener reconnects).
        self.unsure = True
        self.remote_rev = min(self.remote_rev, seq.committed_rev)
        subs = seq.rollback()
        queued = deque([*items, *self.inbox])
        items.clear()
        self.inbox.clear()
        refused = self._refuse_subs(subs) + self._refuse_items(queued)
        self.hub.stats.document_failures += 1
        logger.warning(
            "store unavailable for document %s (%s); refused %d requests",
            self.record.id,
            exc,
            refused,
        )

    def _refuse_items(self, items: Iterable[tuple[str, Connection | None, Any]]) -> int:
        """Answer each queued request with ``unavailable``; returns how many."""
        n = 0
        for kind, conn, payload in items:
            n += 1
            if kind == "op":
                self._refuse_subs([payload], conn)
            elif conn is not None:
                if kind == "open":
                    conn.docs.discard(self.path)
                    self.subscribers.discard(conn)
                    conn.opened_at.pop(self.path, None)
                conn.error(ErrorCode.UNAVAILABLE, id=payload.get("id"), path=self.path)
        return n

    def _refuse_subs(self, subs: Iterable[Submission | Made], conn: Connection | None = None) -> int:
        """Tell each author its op was not taken (it may send it again); returns how many."""
        n = 0
        for sub in subs:
            n += 1
            self.hub.stats.refused_ops += 1
            if isinstance(sub, Made):
                req = sub.request
                assert isinstance(req, _Toggle)
                req.conn.error(ErrorCode.UNAVAILABLE, id=req.get("id"), path=self.path)
                continue
            reply_to = conn or self.room.by_client.get(sub.client_id)
            if reply_to is not None:
                reply_to.error(ErrorCode.UNAVAILABLE, path=self.path, seq=sub.seq)
        return n

    def _refuse_remaining(self) -> None:
        """Ending with work left: tell each author its op was not taken, and answer
        each queued open and digest ``unavailable``."""
        subs = self.seq.rollback() if self.seq is not None else []
        queued = deque([*self._current, *self.inbox])
        self._current.clear()
        self.inbox.clear()
        self._refuse_subs(subs)
        self._refuse_items(queued)

    async def _submit(self, sub: Submission, conn: Connection | None) -> None:
        seq = self.seq
        assert seq is not None
        store = self.hub.store
        if not seq.knows_client(sub.client_id):
            last = await self._retry(store.last_client_seq, self.record.id, sub.client_id)
            seq.learn_client(sub.client_id, *(last or (0, None)))
        started = time.perf_counter()
        out = seq.submit(sub, self.hub.now())
        spent = time.perf_counter() - started
        self.hub.stats.handled("op", spent)
        if conn is not None:
            conn.pacer.charge(spent)
        if isinstance(out, Sequenced):
            return
        reply_to = conn or self.room.by_client.get(sub.client_id)
        if isinstance(out, Refusal):
            if reply_to is not None:
                reply_to.error(out.code, path=self.path, seq=sub.seq)
            return
        assert isinstance(out, Duplicate)
        if not out.committed:
            return  # acked when its batch commits, to the author's connection then
        if conn is None:
            # Our own submission again after a rollback: it was committed
            # meanwhile (by another hub, or by us with the answer lost), so
            # the catch-up that showed us so has published it, acking its
            # author.  One op, one ack: a second one breaks the client.
            return
        rev = out.rev
        if rev is None:
            rev = await self._retry(store.find_op, self.record.id, sub.client_id, sub.seq)
        if rev is None:
            conn.error(ErrorCode.STALE_SEQ, path=self.path, seq=sub.seq)
        elif rev > conn.opened_at.get(self.path, rev):
            # committed after this connection opened the document, so it is
            # in its stream, as an ack: the client re-sent it before that ack
            # reached it (after a reconnect, to us or to another hub)
            return
        else:
            conn.send(codec.encode({"type": "ack", "path": self.path, "seq": sub.seq, "rev": rev}))

    async def _open(self, conn: Connection, msg: dict[str, Any]) -> None:
        seq = self.seq
        assert seq is not None
        if conn.room is not self.room or self.path not in conn.docs:
            return  # left or closed before we got here
        since = msg.get("since")
        if since is not None and since > seq.committed_rev:
            # The client saw a newer revision, through another hub: read the log first.
            await self._catch_up()
        reply: dict[str, Any] = {"type": "opened", "path": self.path, "rev": seq.committed_rev}
        if msg.get("id") is not None:
            reply["id"] = msg["id"]
        if since is None:
            body = b',"text":' + await self._text_json(conn)
        else:
            if since > seq.committed_rev:
                conn.docs.discard(self.path)
                conn.error(ErrorCode.FUTURE_REVISION, path=self.path, id=msg.get("id"))
                return
            missed = seq.ops_since(since)
            if missed is None:
                missed = await self._stored_ops_since(since)
            body = b',"ops":' + await self._op_entries(missed, conn)
        if conn.room is not self.room or self.path not in conn.docs:
            return  # left or closed while we waited
        started = time.perf_counter()
        # the reply is its fields and the (large, prepared) body, spliced as bytes
        head = codec.encode(reply)
        self.subscribers.add(conn)
        conn.opened_at[self.path] = seq.committed_rev
        conn.send(head[:-1].encode() + body + b"}")
        spent = time.perf_counter() - started
        self.hub.stats.handled("open", spent)
        conn.pacer.charge(spent)

    # -- history (docs/protocol.md, "History") ----------------------------------

    async def _build_index(self) -> None:
        """Build the history index from the log, a page at a time, letting the document (and
        everyone else) run between slices; then hand back the requests that waited for it."""
        index = self.index
        store = self.hub.store
        started = time.perf_counter()
        parked: list[tuple[str, Connection | None, Any]] | None = None
        try:
            origin = await self._retry(store.document_origin, self.record.id)
            index.begin(origin.text, origin.created_by, origin.time)
            mark = time.perf_counter()
            while True:
                seq = self.seq
                assert seq is not None
                # nothing awaited between this and the document's own commits: once the
                # index has every committed op, the document applies the next ones itself
                parked = index.finish(seq.committed_rev)
                if parked is not None:
                    break
                page = await self._retry(store.ops_since, self.record.id, index.rev, INDEX_PAGE)
                page = [s for s in page if s.rev <= seq.committed_rev]
                if not page or page[0].rev != index.rev + 1:
                    raise StoreError(f"document {self.record.id}: op log has gaps")
                for i in range(0, len(page), 64):
                    index.feed(page[i : i + 64])
                    if time.perf_counter() - mark > INDEX_SLICE:
                        await asyncio.sleep(0)
                        mark = time.perf_counter()
        except StoreError as exc:
            self.hub.stats.failed_index_builds += 1
            logger.warning(
                "cannot build the history of document %s (%s); refused its requests", self.record.id, exc
            )
            self._refuse_items(index.failed())
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            # a hub bug: the requests that waited are answered internal, the document goes on
            logger.exception("building the history of document %s failed; answered internal", self.record.id)
            for _kind, conn, payload in index.failed():
                self.hub.stats.internal_errors += 1
                if conn is not None:
                    conn.error(ErrorCode.INTERNAL, id=payload.get("id"), path=self.path)
            return
        finally:
            self._builder = None
        stats = self.hub.stats
        stats.index_builds += 1
        stats.index_build_seconds += time.perf_counter() - started
        logger.info(
            "built the history of document %s: %d revisions in %.2fs",
            self.record.id,
            index.rev,
            time.perf_counter() - started,
        )
        self.inbox.extendleft(reversed(parked))
        self.wake.set()
        self._charge_index(recount=True)

    def _index_committed(self, done: list[Sequenced]) -> None:
        """Committed ops reach the index (if it is built; a build reads them from the log)."""
        if not self.index.ready:
            return
        if not self.index.committed(done):
            self.hub.stats.history_mismatches += 1
            self._release_index()
            self._index_bytes = 0
            logger.error(
                "document %s: its history refused a committed op; dropped (rebuilt when next asked for)",
                self.record.id,
            )
            return
        self._uncharged += len(done)
        if self._uncharged >= INDEX_CHARGE_EVERY:
            self._charge_index(recount=True)

    def _charge_index(self, *, recount: bool = False) -> None:
        """The index was used (or grew): tell the hub's budget, which may drop other documents'
        indexes, the least recently used first.  Its size is counted now and then (*recount*)."""
        if not self.index.ready:
            return
        if recount or not self._index_bytes:
            self._uncharged = 0
            self._index_bytes = self.index.nbytes
        hub = self.hub
        hub.indexed[self.index_key] = self
        for victim in hub.indexes.charge(self.index_key, self._index_bytes):
            doc = hub.indexed.pop(victim, None)
            if doc is not None:
                doc.index.drop()
                doc._index_bytes = 0
        hub.stats.index_evictions = hub.indexes.evicted

    async def _names(self, users: set[str]) -> dict[str, str]:
        """The room's names for *users* (those this hub has not seen are read from the members)."""
        names = self.room.names
        missing = [u for u in users if u not in names]
        if missing:
            found = await self._retry(self.hub.store.user_names, self.room.id, missing)
            for u in missing:
                names[u] = found.get(u, "")
        return names

    async def _answer_history(self, kind: str, conn: Connection, msg: dict[str, Any]) -> None:
        """``history`` and ``blame`` from the index, at the committed head (in stream order:
        every op up to it was published before)."""
        seq = self.seq
        history = self.index.history
        assert seq is not None and history is not None
        if conn.room is not self.room or self.path not in conn.docs:
            return  # closed meanwhile
        started = time.perf_counter()
        room_id = self.room.id
        if kind == "history":
            before, limit = history_page(msg.get("before"), msg.get("limit"))
            changes, more = history.changes(before, limit)
            users = users_of(changes)
        else:
            lines_total = seq.committed_text.count("\n") + 1
            lo, hi = blame_range(lines_total, msg.get("start"), msg.get("end"))
            lines = history.blame(lo, hi)
            rev = history.rev
            users = users_of(lines)
        spent = time.perf_counter() - started
        names = await self._names(users)
        if conn.room is not self.room or self.path not in conn.docs:
            return
        started = time.perf_counter()
        if kind == "history":
            reply = history_reply(self.path, room_id, changes, more, names)
        else:
            reply = blame_reply(self.path, room_id, rev, lines, names)
        reply["id"] = msg.get("id")
        conn.send(codec.encode(reply))
        spent += time.perf_counter() - started
        self.hub.stats.handled(kind, spent)
        conn.pacer.charge(spent)
        self._charge_index()

    async def _toggle(self, req: _Toggle) -> None:
        """Undo or redo: the index makes the op against the head, sequenced like any op (its
        requester is answered when it is committed, see _publish_made).

        A request whose key this client's undos and redos already committed on the document
        (sent again after a reconnect, to this hub or another, or after the hub restarted) is
        answered with the revision of that op, which reached the connection before: an undo
        is done once, however often it is asked for."""
        conn = req.conn
        if conn.room is not self.room or self.path not in conn.docs:
            return  # closed meanwhile
        seq = self.seq
        assert seq is not None
        client, key = toggle_client(conn.client_id), req.msg["key"]
        if not seq.knows_client(client):
            last = await self._retry(self.hub.store.last_client_seq, self.record.id, client)
            seq.learn_client(client, *(last or (0, None)))
        seen = seq.duplicate(client, key)
        if seen is not None:
            # (nothing is pending here: what the sequencer knows is committed)
            rev = seen.rev
            if rev is None:  # an older key than the client's last: the log knows
                rev = await self._retry(self.hub.store.find_op, self.record.id, client, key)
            if rev is not None:
                self.hub.stats.repeated_toggles += 1
                self._toggled(req, rev)
                return
        if conn.room is not self.room or self.path not in conn.docs:
            return  # closed while the store was asked
        history = self.index.history
        if not self.index.ready or history is None:
            # the index was dropped while the store was asked: again once it is built, in
            # the order the requests came
            self._park((req.kind, conn, req))
            return
        if seq.rev != seq.committed_rev:
            raise InvalidState("an undo is made with nothing pending")
        started = time.perf_counter()
        made = history.undo_op(conn.user) if req.kind == "undo" else history.redo_op(conn.user)
        if made is None:
            code = ErrorCode.NOTHING_TO_UNDO if req.kind == "undo" else ErrorCode.NOTHING_TO_REDO
            conn.error(code, id=req.get("id"), path=self.path)
        else:
            first, op = made
            out = seq.submit_made(
                op,
                Made(req),
                client_id=client,
                seq=key,
                author=conn.id,
                user=conn.user,
                time=self.hub.now(),
                toggles=first,
            )
            if not isinstance(out, Sequenced):
                conn.error(out, id=req.get("id"), path=self.path)
        spent = time.perf_counter() - started
        self.hub.stats.handled(req.kind, spent)
        conn.pacer.charge(spent)

    async def _text_json(self, conn: Connection) -> bytes:
        """The committed text as a JSON string in UTF-8, once per revision (a large one
        on a worker thread, in pieces)."""
        seq = self.seq
        assert seq is not None
        rev = seq.committed_rev
        cached = self._text_cache
        if cached is not None and cached[0] == rev:
            return cached[1]
        data, spent = await _off_loop_if(
            len(seq.committed_text) > DIGEST_INLINE_CHARS, wire.encode_string, seq.committed_text
        )
        conn.pacer.charge(spent)
        self._text_cache = (rev, data)
        return data

    async def _stored_ops_since(self, since: int) -> list[Sequenced]:
        """Committed ops after *since* from the store, read a page at a time (letting others run)."""
        seq = self.seq
        assert seq is not None
        out: list[Sequenced] = []
        rev = since
        while rev < seq.committed_rev:
            page = await self._retry(self.hub.store.ops_since, self.record.id, rev, OPS_PAGE)
            page = [s for s in page if s.rev <= seq.committed_rev]
            if not page:
                break
            out += page
            rev = page[-1].rev
        return out

    async def _op_entries(self, missed: list[Sequenced], conn: Connection) -> bytes:
        """The ``ops`` of an ``opened`` reply as a JSON array in UTF-8, encoded a page at a time."""
        parts: list[bytes] = []
        for i in range(0, len(missed), OPS_PAGE):
            if i:
                await asyncio.sleep(0)
            page = missed[i : i + OPS_PAGE]
            parts.append(",".join(codec.encode(self._op_entry(s, conn)) for s in page).encode())
        return b"[" + b",".join(parts) + b"]"

    async def _digest(self, conn: Connection, msg: dict[str, Any]) -> None:
        """The SHA-256 of the committed text, in the connection's stream order.

        Computed once per revision; a large text is hashed on a worker thread
        (the task waits, the event loop does not).
        """
        seq = self.seq
        assert seq is not None
        rev = seq.committed_rev
        cached = self._digest_cache
        if cached is not None and cached[0] == rev:
            digest = cached[1]
        else:
            text = seq.committed_text
            digest, spent = await _off_loop_if(len(text) > DIGEST_INLINE_CHARS, text_sha256, text)
            conn.pacer.charge(spent)
            self.hub.stats.digests_hashed += 1
            self._digest_cache = (rev, digest)
        if conn.room is not self.room or self.path not in conn.docs:
            return  # closed meanwhile
        reply = {
            "type": "digest",
            "id": msg.get("id"),
            "path": self.path,
            "rev": rev,
            "sha256": digest,
        }
        conn.send(codec.encode(reply))

    @staticmethod
    def _op_entry(s: Sequenced, conn: Connection) -> dict[str, Any]:
        entry: dict[str, Any] = {"rev": s.rev, "op": s.op, "author": s.author}
        if s.client_id == conn.client_id:
            # Only the author learns it is theirs: client ids never leave the hub.
            entry["seq"] = s.seq
        return entry

    async def _commit(self) -> None:
        """Commit what was sequenced; on failure hand it back to be sequenced again, or refuse it."""
        seq = self.seq
        assert seq is not None
        store = self.hub.store
        batch = seq.take_unsent()
        if not batch:
            return
        try:
            await store.append(self.record.id, seq.committed_rev, batch)
        except DocumentGone:
            # Its room was deleted (the connections are being closed): refuse, and end.
            self.hub.stats.deleted_documents += 1
            logger.info("document %s was deleted; its task ends", self.record.id)
            self._refuse_subs(seq.rollback())
            self.gone = True
            return
        except RevisionConflict:
            # Another hub won the race: catch up, then sequence ours again.
            self._requeue(seq.rollback())
            self.stale = True
            return
        except StoreError as exc:
            # The commit may or may not have happened (connection lost
            # during COMMIT): roll back, and read the log before deciding.
            subs = seq.rollback()
            delay = None if self.stopping else self.commit_backoff.failed()
            if delay is None:
                self.commit_backoff.reset()
                await self._refuse_batch(subs, exc)
                return
            self.hub.stats.commit_retries += 1
            logger.warning(
                "store failed a batch of %d ops for document %s (%s); retrying in %.2fs",
                len(subs),
                self.record.id,
                exc,
                delay,
            )
            self._requeue(subs)
            self.unsure = True
            await asyncio.sleep(delay)
            return
        self.commit_backoff.reset()
        self._publish(seq.commit(batch[-1].rev))
        if seq.committed_rev - self.last_snapshot >= self.hub.config.snapshot_every:
            self.last_snapshot = seq.committed_rev
            self.hub.background(store.save_snapshot(self.record.id, seq.committed_rev, seq.committed_text))

    def _requeue(self, subs: list[Submission | Made]) -> None:
        """Rolled-back submissions go first in the inbox, to be sequenced again after a catch-up;
        an undo or redo is made again from the new head."""
        for sub in reversed(subs):
            if isinstance(sub, Made):
                req = sub.request
                assert isinstance(req, _Toggle)
                self.hub.stats.remade_toggles += 1
                self.inbox.appendleft((req.kind, req.conn, req))
            else:
                self.inbox.appendleft(("op", None, sub))

    async def _refuse_batch(self, subs: list[Submission | Made], exc: StoreError) -> None:
        """A batch kept failing: refuse its ops, except those the log shows committed."""
        seq = self.seq
        assert seq is not None
        try:
            # one look, no retries: we have waited long enough
            await self._catch_up(retry=False)
        except StoreError:
            # Unknown: an op committed with its answer lost is acked by the
            # catch-up that runs before anything new is sequenced.
            self.unsure = True
        refused: list[Submission | Made] = []
        for s in subs:
            if isinstance(s, Made):
                req = s.request
                assert isinstance(req, _Toggle)
                seen = seq.duplicate(toggle_client(req.conn.client_id), req.msg["key"])
                if not self.unsure and seen is not None and seen.rev is not None:
                    self._toggled(req, seen.rev)  # committed after all (its op was published)
                else:
                    refused.append(s)  # asked again with its key, it is answered either way
            elif not seq.has_committed(s.client_id, s.seq):
                refused.append(s)
        self._refuse_subs(refused)
        self.hub.stats.refused_batches += 1
        logger.warning(
            "gave up on a batch of %d ops for document %s after %d attempts (%s); refused %d",
            len(subs),
            self.record.id,
            self.hub.config.store_attempts,
            exc,
            len(refused),
        )

    async def _catch_up(self, *, retry: bool = True) -> None:
        seq = self.seq
        assert seq is not None
        if seq.pending:
            self._requeue(seq.rollback())
        fetch = self.hub.store.ops_since
        args = (self.record.id, seq.committed_rev)
        missed = await (self._retry(fetch, *args) if retry else fetch(*args))
        for s in missed:
            seq.receive_committed(s)
        self._publish(missed)

    async def _retry(self, fn: Any, *args: Any) -> Any:
        """Call the store, retrying a few times with backoff while it fails (PostgreSQL restarting, say).

        Raises the last :class:`StoreError` once ``HubConfig.store_attempts`` calls failed.
        """
        backoff = self.hub.config.backoff()
        while True:
            try:
                return await fn(*args)
            except StoreError as exc:
                delay = None if self.stopping else backoff.failed()
                if delay is None:
                    raise
                self.hub.stats.store_retries += 1
                logger.warning(
                    "store call %s failed for document %s (%s); retrying in %.2fs",
                    getattr(fn, "__name__", "?"),
                    self.record.id,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)

    def _publish_made(self, s: Sequenced, out: dict[Connection, list[bytes]]) -> None:
        """An undo or redo committed: its op to everyone (the requester too), then the requester's answer."""
        msg = codec.encode_bytes(
            {"type": "op", "path": self.path, "rev": s.rev, "op": s.op, "author": s.author}
        )
        for conn in self.subscribers:
            out.setdefault(conn, []).append(msg)
        req = s.submission.request if isinstance(s.submission, Made) else None
        assert isinstance(req, _Toggle)
        if req.conn in self.subscribers:
            out[req.conn].append(self._toggled_reply(req, s.rev))

    def _toggled_reply(self, req: _Toggle, rev: int) -> bytes:
        kind = "undone" if req.kind == "undo" else "redone"
        return codec.encode_bytes({"type": kind, "id": req.get("id"), "path": self.path, "rev": rev})

    def _toggled(self, req: _Toggle, rev: int) -> None:
        """The requester's answer alone (its op reached it already)."""
        if req.conn in self.subscribers:
            req.conn.send(self._toggled_reply(req, rev))

    def _publish(self, done: list[Sequenced]) -> None:
        """Ack each op to its author and send it to the other subscribers, in revision order.

        Everything one connection gets from one batch goes in one frame (a
        JSON array when there are several messages): a batch of k ops costs
        one write per connection instead of k.
        """
        out: dict[Connection, list[bytes]] = {}
        authors: set[Connection] = set()
        for s in done:
            if isinstance(s.submission, Made):
                self._publish_made(s, out)
                continue
            author = self.room.by_client.get(s.client_id)
            if author is not None and author in self.subscribers:
                ack = codec.encode_bytes({"type": "ack", "path": self.path, "seq": s.seq, "rev": s.rev})
                out.setdefault(author, []).append(ack)
                authors.add(author)
            else:
                author = None
            msg = b""
            for conn in self.subscribers:
                if conn is not author:
                    if not msg:
                        msg = codec.encode_bytes(
                            {"type": "op", "path": self.path, "rev": s.rev, "op": s.op, "author": s.author}
                        )
                    out.setdefault(conn, []).append(msg)
        # the peers first, the authors' acks after: peers are waiting to see the text
        for conn, msgs in sorted(out.items(), key=lambda item: item[0] in authors):
            conn.send(msgs[0] if len(msgs) == 1 else b"[" + b",".join(msgs) + b"]")
        self._index_committed(done)
        seq = self.seq
        if seq is not None and self._text_cache is not None and self._text_cache[0] != seq.committed_rev:
            self._text_cache = None  # a large document's old text: not kept for nothing


class Hub:
    """The websocket server.  ``await hub.start(host, port)``, ``await hub.close()``."""

    def __init__(
        self, store: Store, config: HubConfig | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.config = config or HubConfig()
        #: the wall clock (seconds since the epoch) the hub stamps ops with when it sequences them
        self.clock = clock
        self.rooms: dict[str, Room] = {}
        self.docs_by_id: dict[int, DocumentTask] = {}
        self.connections: set[Connection] = set()
        self.server: Server | None = None
        self.closing = False
        #: set with closing: a reader paced or throttled before the shutdown reads on at once
        self._closing_now = asyncio.Event()
        #: when a frame was last read from any client (shutdown waits for the readers to go quiet)
        self.last_frame_at = 0.0
        self.stats = HubStats()
        cfg = self.config
        #: connections per address and their shared byte buckets
        self.addresses = AddressBook(
            cfg.max_connections_per_address, cfg.address_bytes_per_second, cfg.address_burst_bytes
        )
        #: the op history of every document here, in bytes
        self.history = HistoryBudget(cfg.max_history_bytes)
        #: the history indexes of the documents here, in bytes (docs/protocol.md, "History"),
        #: and the document tasks that hold them, by their key
        self.indexes = IndexBudget(cfg.max_index_bytes)
        self.indexed: dict[int, DocumentTask] = {}
        #: the other hubs on the database: their participants, presence, heartbeats
        self.peers = PeerLink(self)
        self.metrics = HubMetrics(self)  # (last: it reads the others)
        self._background: set[asyncio.Task[Any]] = set()
        self._lag_monitor: asyncio.Task[None] | None = None
        self.keeper = RoomKeeper(self)
        self.keepalive = Keepalive(self)
        #: the second reading of the open documents' logs after (re)registering (see registered)
        self._register_timer: asyncio.TimerHandle | None = None
        #: the health check in progress: concurrent probes share one query
        self._health: asyncio.Future[bool] | None = None
        #: the web client's page and files (read at the first request for them)
        self.web = WebClient()

    def now(self) -> float:
        """The wall clock to a whole microsecond: what the op log keeps, so that a history
        replayed from the log sees the very times the live one saw."""
        return micros(self.clock()) / 1_000_000

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(
        self, host: str, port: int, *, ssl: SSLContext | None = None, reuse_port: bool = False
    ) -> None:
        """Listen on *host*:*port*; with an *ssl* context, ``wss://`` (cli.py, ``--tls-cert``);
        *reuse_port*: beside other hubs on the same port (``--workers``, ``SO_REUSEPORT``)."""
        await self.peers.start()
        self.registered()
        await self.store.listen(
            self._notified,
            on_reconnect=self._resync_all,
            on_room=self._room_notified,
            on_peer=self.peers.received,
        )
        self.store.add_commit_observer(self.metrics.commit_observed)
        self.server = await serve(
            self._handle,
            host,
            port,
            process_request=self.process_request,
            ssl=ssl,
            max_size=self.config.max_message_bytes,
            max_queue=64,
            compression=None,
            ping_interval=None,  # the hub's own keepalive (keepalive.py), without a task per connection
            create_connection=HubSocket,  # (which notes when bytes last came)
            reuse_port=reuse_port or None,
        )
        self.keeper.start()
        self.keepalive.start()
        self._lag_monitor = asyncio.create_task(self._watch_loop_lag(), name="loop-lag")

    async def _watch_loop_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            period = lag_period(time.monotonic(), self.last_frame_at)
            due = loop.time() + period
            await asyncio.sleep(period)
            self.stats.max_loop_lag_seconds = max(self.stats.max_loop_lag_seconds, loop.time() - due)

    async def close(self) -> None:
        """Shut down cleanly: no new ops, queued ops acked or refused, clients closed with 1001."""
        self.closing = True
        self._closing_now.set()
        await self.keeper.stop()
        await self.keepalive.stop()
        if self._lag_monitor is not None:
            self._lag_monitor.cancel()
        if self._register_timer is not None:
            self._register_timer.cancel()
        s = self.stats
        logger.info(
            "slowest message %.1f ms (%s), event loop at most %.1f ms late, %d messages paced",
            s.slowest_message_seconds * 1e3,
            s.slowest_message_kind or "-",
            s.max_loop_lag_seconds * 1e3,
            s.paced_messages,
        )
        if self.server is not None:
            self.server.close(close_connections=False)
        tasks = [d.stop() for d in list(self.docs_by_id.values())]
        if tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*tasks, return_exceptions=True), self.config.shutdown_timeout
                )
        for task in list(self._background):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, self.config.shutdown_timeout)
        await self._drain_readers()
        closing = [c.ws.close(CloseCode.GOING_AWAY, "hub shutting down") for c in list(self.connections)]
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()
        await self.peers.stop()
        if self._health is not None:
            self._health.cancel()
        self.store.remove_commit_observer(self.metrics.commit_observed)

    async def _wait_unless_closing(self, seconds: float) -> None:
        """Sleep *seconds*, or less if the hub starts shutting down meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing_now.wait(), seconds)

    async def _drain_readers(self) -> None:
        """Before closing the connections, let every reader take what its client sent before
        the shutdown (each op is refused ``unavailable`` now): until no frame came for
        :data:`DRAIN_QUIET` seconds, at most ``shutdown_timeout``.  Closing at once dropped the
        frames still unread, and their authors never heard of those ops."""
        deadline = time.monotonic() + self.config.shutdown_timeout
        while self.connections:
            now = time.monotonic()
            quiet = now - self.last_frame_at
            if quiet >= DRAIN_QUIET or now >= deadline:
                return
            await asyncio.sleep(min(DRAIN_QUIET - quiet, deadline - now))

    # -- plain HTTP on the same port ------------------------------------------

    async def process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        """websockets' ``process_request`` hook: ``/healthz``, ``/metrics`` and the web client
        (``web.py``: ``/room/ID``, ``/assets/...``, each logged) for plain GET and HEAD.

        A request that asks for a WebSocket upgrade goes on to the handshake
        whatever its path (RFC 6455, 4.2.1: ``Upgrade: websocket``), if its
        address is under its connection quota (:meth:`admit`); so does a plain
        request of any other path or method, which websockets answers with 426
        Upgrade Required.
        """
        upgrade = ",".join(request.headers.get_all("Upgrade")).lower()
        method = getattr(request, "method", "GET")  # websockets < 17 parses GET requests only
        if "websocket" in upgrade or method not in ("GET", "HEAD"):
            return self.admit(ws)
        path = request.path.partition("?")[0]
        if path == "/healthz":
            if self.closing:
                response = ws.respond(HTTPStatus.SERVICE_UNAVAILABLE, "shutting down\n")
            elif await self.healthy():
                response = ws.respond(HTTPStatus.OK, "ok\n")
            else:
                response = ws.respond(HTTPStatus.SERVICE_UNAVAILABLE, "database unavailable\n")
        elif path == "/metrics":
            body, content_type = self.metrics.render(",".join(request.headers.get_all("Accept")))
            response = ws.respond(HTTPStatus.OK, body.decode())
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = content_type
        else:
            if not self.web.loaded:
                await asyncio.to_thread(self.web.load)  # a few MB, once: not on the event loop
            web = self.web.respond(method, request.path, request.headers.get, secrets.token_urlsafe(16))
            if web is None:
                return self.admit(ws)
            response = _http_response(ws, web)
            # an access log line (the fragment, where an invite keeps its secret, never reaches here)
            logger.info("%s %s %d (%d bytes)", method, shown_path(request.path), web.status, len(web.body))
        if method == "HEAD":
            response.body = b""  # the headers (Content-Length included) are those of a GET
        return response

    async def healthy(self) -> bool:
        """True if the database answers ``SELECT 1`` within ``HubConfig.health_timeout``.

        Probes that arrive while a check runs wait for that check instead of
        starting their own, so a busy health checker costs one query at a time.
        """
        if self._health is None or self._health.done():
            self._health = asyncio.ensure_future(self.store.ping(self.config.health_timeout))
        return await asyncio.shield(self._health)

    # -- admission ----------------------------------------------------------

    def admit(self, ws: ServerConnection) -> Response | None:
        """At the handshake: refuse (HTTP 429) a connection over its address's quota."""
        key = address_key(_host_of(ws.remote_address))
        if not self.addresses.admit(key, time.monotonic()):
            self.stats.refused_connections += 1
            if _worth_logging(self.stats.refused_connections):
                logger.warning(
                    "refused a connection: %d from one address already (--max-connections-per-address); "
                    "%d refused so far",
                    self.config.max_connections_per_address,
                    self.stats.refused_connections,
                )
            return ws.respond(HTTPStatus.TOO_MANY_REQUESTS, "too many connections from your address\n")

        def release(_: object) -> None:
            self.addresses.release(key, time.monotonic())

        # Released when the TCP connection is lost, whatever happens to the
        # handshake (a connection refused or cut after this point never reaches
        # _handle).  The future wait_closed() awaits: a callback costs no task.
        ws.connection_lost_waiter.add_done_callback(release)
        return None

    def note_evictions(self) -> None:
        """Copy the history budget's eviction count to the stats; log now and then."""
        evicted = self.history.evicted
        if evicted != self.stats.history_evictions:
            before, self.stats.history_evictions = self.stats.history_evictions, evicted
            if len(str(evicted)) > len(str(before)) or before == 0:
                logger.warning(
                    "op history over --max-history-bytes (%d): %d entries evicted so far; "
                    "older bases get revision_too_old",
                    self.config.max_history_bytes,
                    evicted,
                )

    def background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task failed", exc_info=task.exception())

    def registered(self) -> None:
        """This hub's row in ``hubs`` was written again (at start, or after it was gone): the
        other hubs' commits notify it from now on, but not those in flight, and none did while
        it had no row.  Its open documents read their logs now, and again a moment later."""
        self._resync_docs()
        if self._register_timer is not None:
            self._register_timer.cancel()
        self._register_timer = asyncio.get_running_loop().call_later(REGISTER_RESYNC_DELAY, self._resync_docs)

    def _resync_docs(self) -> None:
        for doc in self.docs_by_id.values():
            doc.resync()

    def _resync_all(self) -> None:
        self._resync_docs()
        # room notifications may have been lost too
        self.background(self.check_rooms_logged(list(self.rooms)))
        self.peers.wake()

    def _notified(self, hub_id: str, doc_id: int, rev: int) -> None:
        if hub_id == self.store.hub_id:
            return
        doc = self.docs_by_id.get(doc_id)
        if doc is not None:
            doc.remote(rev)

    # -- rooms against the database (docs/protocol.md, "Owners") ---------------

    def _room_notified(self, hub_id: str, room_id: str, event: str) -> None:
        """A room changed (on another hub): bring our connections in line with the database."""
        if hub_id == self.store.hub_id or room_id not in self.rooms:
            return  # ours are in line already (see _owner_request)
        self.background(self.check_rooms_logged([room_id]))

    async def check_rooms_logged(self, room_ids: list[str], *, touch: bool = False) -> None:
        """:meth:`check_rooms`; a store failure is counted and logged (the next check repairs it)."""
        try:
            await self.check_rooms(room_ids, touch=touch)
        except StoreError as exc:
            self.stats.room_check_failures += 1
            logger.warning("could not check %d rooms against the database (%s)", len(room_ids), exc)

    async def check_heads(self) -> None:
        """Catch up the open documents whose stored head moved without a notification reaching us.

        A document behind its head is given :data:`HEAD_GRACE` seconds for the
        notification to come (a commit of the moment); one still behind after
        it missed its notification: counted, logged, and caught up.  Raises
        :class:`StoreError`.
        """
        known = self._known_revs()
        if not known:
            return
        behind = heads_behind(await self.store.heads(list(known)), known)
        if not behind:
            return
        await asyncio.sleep(HEAD_GRACE)
        for doc_id, head in heads_behind(behind, self._known_revs()).items():
            self.stats.missed_notifications += 1
            logger.warning("document %s was behind its head with no notification of it; catching up", doc_id)
            self.docs_by_id[doc_id].remote(head)

    def _known_revs(self) -> dict[int, int]:
        known = {}
        for doc_id, doc in self.docs_by_id.items():
            rev = doc.known_rev()
            if rev is not None:
                known[doc_id] = rev
        return known

    async def check_rooms(self, room_ids: list[str], *, touch: bool = False) -> None:
        """Read *room_ids* from the database and apply :func:`authority.reconcile` to their connections here.

        Only connections that were in the room when the read began are
        judged, and a read is not applied over a newer one.  *touch* marks
        the rooms active.  Raises :class:`StoreError`.
        """
        started: dict[str, tuple[int, list[Seat]]] = {}
        for room_id in room_ids:
            room = self.rooms.get(room_id)
            if room is not None:
                room.reads += 1
                started[room_id] = (room.reads, [c.seat() for c in room.connections.values()])
        if not started:
            return
        states = await self.store.room_states(list(started), touch=touch)
        for room_id, (n, seats) in started.items():
            room = self.rooms.get(room_id)
            if room is None or room.applied > n:
                continue
            room.applied = n
            state = states.get(room_id, RoomState(exists=False))
            self._apply(room, authority.reconcile(seats, state))

    def _apply(self, room: Room, actions: list[Close | ChangeRole]) -> None:
        for action in actions:
            conn = room.connections.get(action.participant)
            if conn is None:
                continue
            if isinstance(action, Close):
                self.stats.owner_closes += 1
                conn.log.info("closing the connection: %s", action.reason)
                self._leave(conn)
                self.background(conn.ws.close(action.code, action.reason))
            else:
                conn.role = action.role
                conn.log.info("role changed to %s", action.role)
                room.send_to_others(
                    None, codec.encode({"type": "participant_changed", "participant": conn.describe()})
                )
                self.peers.changed(room.id, conn.id, conn.name, conn.role)

    def replace(self, conn: Connection) -> None:
        """*conn*'s client connected again (here or on another hub): the newer connection takes over."""
        self._leave(conn)
        self.background(conn.ws.close(CloseCode.REPLACED, "replaced by a newer connection"))

    def participant_rows(self) -> list[tuple[str, str, str, str, str]]:
        """(room, participant, client id, name, role) of every connection in a room here."""
        return [
            (room.id, c.id, c.client_id, c.name, c.role)
            for room in self.rooms.values()
            for c in room.connections.values()
        ]

    async def _touch(self, room_id: str) -> None:
        try:
            await self.store.touch_rooms([room_id])
        except StoreError as exc:
            self.stats.room_check_failures += 1
            logger.warning("could not mark room %s active (%s)", room_id[:8], exc)

    async def _seat(self, room: Room, participant: str) -> Seat | None:
        """The participant an owner names: connected here, or known to the database (any hub)."""
        conn = room.connections.get(participant)
        if conn is not None:
            return conn.seat()
        return await self.store.find_member(room.id, participant)

    async def _owner_request(self, conn: Connection, msg: dict[str, Any]) -> None:
        """kick, set_role, rotate_invites, delete_room: the owner's controls.

        The change is written to PostgreSQL (which notifies the other hubs),
        then this hub's connections are brought in line, then the owner gets
        the reply (delete_room: the reply first, since the owner is closed too).
        """
        room = self._room_of(conn)
        authority.check_owner(conn.role)
        kind = msg["type"]
        reply: dict[str, Any] = {"id": msg.get("id")}
        if kind == "delete_room":
            if not await self.store.delete_room(room.id, by="owner"):
                raise ProtocolError(ErrorCode.NO_SUCH_ROOM)
            conn.log.info("deleted the room")
            conn.send(codec.encode({"type": "room_deleted", **reply}))
            await self.check_rooms([room.id])
            return
        if kind == "rotate_invites":
            secrets_ = {role: new_secret() for role in ("editor", "viewer")}
            if not await self.store.rotate_invites(room.id, {r: secret_hash(s) for r, s in secrets_.items()}):
                raise ProtocolError(ErrorCode.NO_SUCH_ROOM)
            reply.update(
                type="invites_rotated", editorSecret=secrets_["editor"], viewerSecret=secrets_["viewer"]
            )
            conn.log.info("rotated the invites")
        else:
            target = authority.check_target(await self._seat(room, msg["participant"]))
            if kind == "kick":
                await self.store.remove_member(room.id, target.client_id, target.secret_hash or None)
                reply.update(type="kicked", participant=target.participant)
                conn.log.info("removed participant %s", target.participant)
            else:
                await self.store.set_member_role(room.id, target.client_id, msg["role"])
                reply.update(type="role_set", participant=target.participant, role=msg["role"])
                conn.log.info("made participant %s a %s", target.participant, msg["role"])
        await self.check_rooms([room.id])
        conn.send(codec.encode(reply))

    # -- connections --------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        _forget_handshake(ws)
        conn = Connection(self, cast(HubSocket, ws))  # (``serve``'s ``create_connection``)
        self.connections.add(conn)
        self.keepalive.watch(conn)
        try:
            if await self._greet(conn):
                await self._serve(conn)
        except ConnectionClosed:
            pass
        except Exception:
            # a hub bug outside any one request (those are answered internal): this
            # connection ends, the client reconnects and resumes; counted, tests fail on it
            self.stats.connection_crashes += 1
            conn.log.exception("connection handler failed")
            with contextlib.suppress(Exception):
                await ws.close(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            self.connections.discard(conn)
            self.keepalive.forget(conn)
            self._leave(conn)

    async def _greet(self, conn: Connection) -> bool:
        """The ``hello`` and our ``welcome``; False if the connection ended instead.

        A function of its own so that what it read is freed when it returns:
        :meth:`_serve`'s frame lives as long as the connection.
        """
        ws = conn.ws
        stats = self.stats
        try:
            first = await asyncio.wait_for(ws.recv(), self.config.hello_timeout)
        except TimeoutError:
            await ws.close(CloseCode.PROTOCOL_VIOLATION, "hello expected")
            return False
        stats.frames_received += 1
        stats.bytes_received += len(first) if isinstance(first, bytes) else utf8_length(first)
        started = time.perf_counter()
        try:
            hello = codec.decode(first, max_op_components=self.config.max_op_components)
        except ProtocolError as exc:
            conn.error(exc.code, exc.detail, **exc.echo)
            await _close_and_drain(ws, CloseCode.PROTOCOL_VIOLATION, "hello expected")
            return False
        finally:
            self.stats.handled("hello", time.perf_counter() - started)
        if hello["type"] != "hello":
            conn.error(ErrorCode.NOT_HELLO, **wire.refers_to(hello))
            await _close_and_drain(ws, CloseCode.PROTOCOL_VIOLATION, "hello expected")
            return False
        if hello["protocol"] != wire.PROTOCOL_VERSION:
            conn.error(ErrorCode.UNSUPPORTED_VERSION, id=hello.get("id"))
            await _close_and_drain(ws, CloseCode.PROTOCOL_VIOLATION, "unsupported protocol version")
            return False
        conn.client_id = ClientId(hello["clientId"])
        conn.user = hello.get("user") or conn.client_id
        conn.name = hello["name"]
        conn.send(
            codec.encode(
                {
                    "type": "welcome",
                    "id": hello.get("id"),
                    "protocol": wire.PROTOCOL_VERSION,
                    "participant": conn.id,
                    "limits": {
                        "maxMessageBytes": self.config.max_message_bytes,
                        "maxDocumentBytes": self.config.max_document_bytes,
                        "maxOpComponents": self.config.max_op_components,
                        "rate": self.config.rate,
                        "burst": self.config.burst,
                        "maxDocumentsPerRoom": self.config.max_documents_per_room,
                        "bytesPerSecond": self.config.bytes_per_second,
                        "burstBytes": self.config.burst_bytes,
                    },
                }
            )
        )
        conn.log.info("connected")
        return True

    async def _serve(self, conn: Connection) -> None:
        ws = conn.ws
        stats = self.stats
        max_components = self.config.max_op_components
        while True:
            # as bytes: orjson reads UTF-8 (codec.decode); a str would be decoded here and
            # encoded again for it. Ends with ConnectionClosed, as the connection does.
            frame = await ws.recv(decode=False)
            self.last_frame_at = now = time.monotonic()
            stats.frames_received += 1
            stats.bytes_received += len(frame)
            delay = conn.charge(frame, now)
            if delay > 0 and not self.closing:
                # over its byte rate: read on later; meanwhile TCP slows the sender
                # (not while shutting down: every op read now is only refused, and the
                # readers must take all their clients sent before the connections close)
                stats.throttled_frames += 1
                stats.throttled_seconds += delay
                await self._wait_unless_closing(delay)
                now = time.monotonic()
            if not conn.allow(now):
                conn.limited += 1
                if conn.limited > self.config.burst:
                    await _close_and_drain(ws, CloseCode.RATE_LIMIT, "rate limit exceeded")
                    return
                conn.error(ErrorCode.RATE_LIMITED, **wire.refers_to_frame(frame))
                del frame  # (as below)
                continue
            msg: dict[str, Any] = {}
            started = time.perf_counter()
            kind = "frame"
            try:
                msg = codec.decode(frame, max_op_components=max_components)
                kind = msg["type"]
                await self._dispatch(conn, msg)
            except codec.NotUtf8:
                await _close_and_drain(ws, CloseCode.INVALID_DATA, "invalid UTF-8")
                return
            except ProtocolError as exc:
                conn.strikes += 1
                if conn.strikes > self.config.max_strikes:
                    await _close_and_drain(ws, CloseCode.PROTOCOL_VIOLATION, "too many bad messages")
                    return
                conn.error(exc.code, exc.detail, **(exc.echo or wire.refers_to(msg)))
            except StoreError as exc:
                # The one place a request meets a store failure: not the
                # client's fault (no strike), and it may retry on this connection.
                self.stats.unavailable_requests += 1
                conn.log.warning("store failed a %s request (%s); answered unavailable", msg["type"], exc)
                conn.error(ErrorCode.UNAVAILABLE, id=msg.get("id"), path=msg.get("path"))
            except ConnectionClosed:
                raise
            except Exception:
                # A hub bug: this request is answered, the connection goes on.
                self.stats.internal_errors += 1
                conn.log.exception("failed to answer a %s request; answered internal", kind)
                conn.error(ErrorCode.INTERNAL, **wire.refers_to(msg))
            else:
                conn.strikes = 0
            if kind in _SYNC_KINDS or kind == "frame":
                # (the others wait for the store: their time is not all theirs)
                spent = time.perf_counter() - started
                self.stats.handled(kind, spent)
                conn.pacer.charge(spent)
            large = len(frame) >= YIELD_FRAME_BYTES
            # Neither the frame nor what it said is kept while this waits: for a
            # pause here, or for the client's next frame, which may come much
            # later (and the last one may have been a 1 MiB paste).
            del frame, msg
            if large:
                _release_parsed_frame(ws.protocol)
            pause = 0.0 if self.closing else conn.pacer.pause(time.monotonic())
            if pause:
                self.stats.paced_messages += 1
                await self._wait_unless_closing(pause)
            elif large:
                # frames already received come back without a pause: a client
                # with many large ones queued must not hold the loop for all of them
                await asyncio.sleep(0)

    async def _dispatch(self, conn: Connection, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if kind == "op":
            self._op(conn, msg)
        elif kind == "presence":
            self._presence(conn, msg)
        elif kind == "open":
            await self._open(conn, msg)
        elif kind == "digest":
            room = self._room_of(conn)
            doc = room.docs.get(msg["path"])
            if doc is None or msg["path"] not in conn.docs:
                raise ProtocolError(ErrorCode.NOT_OPEN)
            doc.put("digest", conn, msg)
        elif kind == "close":
            self._close_doc(conn, msg["path"])
            conn.send(codec.encode({"type": "closed", "id": msg.get("id"), "path": msg["path"]}))
        elif kind == "create_room":
            await self._create_room(conn, msg)
        elif kind == "join":
            await self._join(conn, msg)
        elif kind == "leave":
            self._leave(conn)
            conn.send(codec.encode({"type": "left", "id": msg.get("id")}))
        elif kind == "list_documents":
            room = self._room_of(conn)
            docs = await self.store.list_documents(room.id)
            conn.send(codec.encode({"type": "documents", "id": msg.get("id"), "documents": _doc_list(docs)}))
        elif kind == "create_document":
            await self._create_document(conn, msg)
        elif kind == "ping":
            conn.send(codec.encode({"type": "pong", "id": msg.get("id")}))
        elif kind == "revision":
            await self._revision(conn, msg)
        elif kind in HISTORY_KINDS:
            self._history_request(conn, msg)
        elif kind in ("kick", "set_role", "rotate_invites", "delete_room"):
            await self._owner_request(conn, msg)
        elif kind in ("run_request", "run_answer"):
            self._relay_run(conn, msg)
        elif kind == "run_status":
            self._run_status(conn, msg)
        elif kind == "hello":
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "hello was already received")

    @staticmethod
    def _room_of(conn: Connection) -> Room:
        if conn.room is None:
            raise ProtocolError(ErrorCode.NOT_IN_ROOM)
        return conn.room

    def _op(self, conn: Connection, msg: dict[str, Any]) -> None:
        room = self._room_of(conn)
        path = msg["path"]
        if conn.role not in ROLES_THAT_EDIT:
            raise ProtocolError(ErrorCode.FORBIDDEN)
        doc = room.docs.get(path)
        if doc is None or path not in conn.docs:
            raise ProtocolError(ErrorCode.NOT_OPEN)
        if not _may_write(doc, conn):
            raise ProtocolError(ErrorCode.FORBIDDEN, "a run's output is written only by its runner")
        if self.closing:
            # Refused, but not the client's fault: raising would count a
            # strike, and a burst in flight at shutdown would end in 4400.
            conn.error(ErrorCode.UNAVAILABLE, id=msg.get("id"), path=path, seq=msg["seq"])
            return
        doc.put(
            "op", conn, Submission(conn.client_id, msg["seq"], Rev(msg["rev"]), msg["op"], conn.id, conn.user)
        )

    def _history_request(self, conn: Connection, msg: dict[str, Any]) -> None:
        """undo, redo, history, blame: served by the document's task, from its index."""
        room = self._room_of(conn)
        kind, path = msg["type"], msg["path"]
        toggle = kind in ("undo", "redo")
        if toggle and conn.role not in ROLES_THAT_EDIT:
            raise ProtocolError(ErrorCode.FORBIDDEN)
        doc = room.docs.get(path)
        if doc is None or path not in conn.docs:
            raise ProtocolError(ErrorCode.NOT_OPEN)
        if toggle and not _may_write(doc, conn):
            raise ProtocolError(ErrorCode.FORBIDDEN, "a run's output is written only by its runner")
        if toggle and self.closing:
            conn.error(ErrorCode.UNAVAILABLE, id=msg.get("id"), path=path)
            return
        doc.put(kind, conn, _Toggle(kind, conn, msg) if toggle else msg)

    def _relay_run(self, conn: Connection, msg: dict[str, Any]) -> None:
        """A request to run, or its answer, to the one participant it names (with who sent
        it).  The hub runs nothing and decides nothing: the receiver's user does."""
        room = self._room_of(conn)
        if msg["type"] == "run_request" and conn.role not in ROLES_THAT_EDIT:
            raise ProtocolError(ErrorCode.FORBIDDEN)
        target = room.connections.get(msg["participant"])
        if target is None or target is conn:
            raise ProtocolError(ErrorCode.NO_SUCH_PARTICIPANT)
        out: dict[str, Any] = {k: msg[k] for k in ("requestId", "command", "accepted", "path") if k in msg}
        target.send(codec.encode({"type": msg["type"], "participant": conn.id, "name": conn.name, **out}))

    def _run_status(self, conn: Connection, msg: dict[str, Any]) -> None:
        """The runner says how its run goes (running, ended): to the rest of the room, with
        who sent it.  Only the user whose ops the output document takes may say it."""
        room = self._room_of(conn)
        path = msg["path"]
        doc = room.docs.get(path)
        if doc is None or path not in conn.docs:
            raise ProtocolError(ErrorCode.NOT_OPEN)
        if not doc.writer or doc.writer != conn.user:
            raise ProtocolError(ErrorCode.FORBIDDEN, "only a run's runner says how it goes")
        keys = ("path", "state", "command", "exitCode", "stopped", "startedAt", "endedAt")
        out: dict[str, Any] = {"type": "run_status", "participant": conn.id, "name": conn.name}
        out.update({k: msg[k] for k in keys if k in msg})
        room.send_to_others(conn, codec.encode(out))

    def _presence(self, conn: Connection, msg: dict[str, Any]) -> None:
        room = self._room_of(conn)
        if msg["path"] not in conn.docs:
            raise ProtocolError(ErrorCode.NOT_OPEN)
        out = {
            "type": "presence",
            "participant": conn.id,
            "name": conn.name,
            "path": msg["path"],
            "rev": msg["rev"],
            "ranges": msg["ranges"],
        }
        # one cursor place per participant: the newest
        for key in [k for k in room.presence if k[0] == conn.id]:
            del room.presence[key]
        room.presence[(conn.id, msg["path"])] = out
        room.send_to_others(conn, codec.encode(out))
        self.peers.presence(room.id, conn.id, out)

    async def _open(self, conn: Connection, msg: dict[str, Any]) -> None:
        room = self._room_of(conn)
        path = msg["path"]
        doc = room.docs.get(path)
        if doc is None:
            record = await self.store.get_document(room.id, path)
            if record is None:
                raise ProtocolError(ErrorCode.NO_SUCH_DOCUMENT)
            writer = None
            if wire.is_run_path(path):
                writer = (await self.store.document_origin(record.id)).created_by
            if conn.room is not room:
                return
            doc = room.docs.get(path)
            if doc is None:
                doc = room.docs[path] = DocumentTask(self, room, record)
                doc.writer = writer
                self.docs_by_id[record.id] = doc
        conn.docs.add(path)
        doc.put("open", conn, msg)

    def _close_doc(self, conn: Connection, path: str) -> None:
        conn.docs.discard(path)
        room = conn.room
        if room is None:
            return
        doc = room.docs.get(path)
        if doc is not None:
            doc.subscribers.discard(conn)

    async def _revision(self, conn: Connection, msg: dict[str, Any]) -> None:
        """The text at an earlier revision: the nearest snapshot and the ops after it, off the
        document's task (a large one applied and encoded on a worker thread)."""
        room = self._room_of(conn)
        path = msg["path"]
        doc = room.docs.get(path)
        if doc is None or path not in conn.docs:
            raise ProtocolError(ErrorCode.NOT_OPEN)
        parts = await self.store.revision(doc.record.id, msg["rev"])
        if parts is None:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "'rev' is newer than the document")
        work = len(parts.snapshot) * (1 + len(parts.ops))
        data, spent = await _off_loop_if(work > REVISION_INLINE_WORK, _revision_json, parts)
        conn.pacer.charge(spent)
        head = codec.encode({"type": "revision", "id": msg.get("id"), "path": path, "rev": msg["rev"]})
        conn.send(head[:-1].encode() + b',"text":' + data + b"}")

    async def _create_room(self, conn: Connection, msg: dict[str, Any]) -> None:
        if conn.room is not None:
            raise ProtocolError(ErrorCode.ALREADY_IN_ROOM)
        token = self.config.create_token
        if token is not None and not token_matches(msg.get("token"), token):
            self.stats.bad_tokens += 1
            conn.log.warning("refused create_room: missing or wrong create-room token")
            raise ProtocolError(ErrorCode.BAD_TOKEN)
        room_id = secrets.token_urlsafe(16)
        name = msg.get("name") or ""
        invites = {role: new_secret() for role in ("owner", "editor", "viewer")}
        digests = {role: secret_hash(s) for role, s in invites.items()}
        if not await self.store.create_room(room_id, name, digests, max_rooms=self.config.max_rooms):
            self.stats.quota_refusals += 1
            conn.log.warning("refused create_room: the hub has --max-rooms rooms")
            raise QuotaExceeded("this hub has as many rooms as it allows")
        reply = await self._enter(conn, room_id, "owner", digests["owner"])
        reply.update(
            type="room_created",
            name=name,
            ownerSecret=invites["owner"],
            editorSecret=invites["editor"],
            viewerSecret=invites["viewer"],
        )
        reply["id"] = msg.get("id")
        conn.send(codec.encode(reply))
        conn.log.info("created a room")

    async def _join(self, conn: Connection, msg: dict[str, Any]) -> None:
        if conn.room is not None:
            raise ProtocolError(ErrorCode.ALREADY_IN_ROOM)
        room_id = msg["room"]
        secret = msg["secret"]
        digest = secret_hash(secret)
        facts = await self.store.admission(room_id, digest, conn.client_id)
        invite_role = role_for(secret, facts.invites)  # compared in constant time
        if invite_role is None:
            raise ProtocolError(ErrorCode.BAD_INVITE if facts.invites else ErrorCode.NO_SUCH_ROOM)
        role = authority.admit(
            Admission(invite_role, facts.assigned_role, facts.member, facts.removed, facts.withdrawn)
        )
        if conn.room is not None:
            raise ProtocolError(ErrorCode.ALREADY_IN_ROOM)
        reply = await self._enter(conn, room_id, role, digest)
        reply["id"] = msg.get("id")
        conn.send(codec.encode(reply))
        conn.log.info("joined as %s", role)

    async def _enter(self, conn: Connection, room_id: str, role: str, secret_hash: bytes) -> dict[str, Any]:
        if not await self.store.add_member(
            room_id,
            conn.client_id,
            conn.name,
            role,
            participant=conn.id,
            secret_hash=secret_hash,
            user=conn.user,
        ):
            raise ProtocolError(ErrorCode.NO_SUCH_ROOM)  # deleted meanwhile
        docs = await self.store.list_documents(room_id)
        roster = self.peers.roster
        roster.hold(room_id)  # notifications from now on count (until the Room holds it)
        try:
            # written (the other hubs are told), and who is on the other hubs read, before we answer
            new_room = room_id not in self.rooms
            await self.peers.entered(room_id, conn.id, conn.client_id, conn.name, role, new_room=new_room)
            room = self.rooms.get(room_id)
            if room is None:
                room = self.rooms[room_id] = Room(self, room_id)
        finally:
            roster.release(room_id)
        old = room.by_client.get(conn.client_id)
        if old is not None and old is not conn:
            # The same client reconnected: the newer connection takes over.
            self.replace(old)
        conn.room = room
        conn.role = role
        conn.secret_hash = secret_hash
        room.names[conn.user] = conn.name
        conn.log.extra = {"participant": conn.id, "room": room_id[:8]}
        room.connections[conn.id] = conn
        room.by_client[conn.client_id] = conn
        room.send_to_others(
            conn, codec.encode({"type": "participant_joined", "participant": conn.describe()})
        )
        return {
            "type": "joined",
            "room": room_id,
            "role": role,
            "participant": conn.id,
            # who the history and blame say this user is (docs/protocol.md, "History")
            "author": author_id(room_id, conn.user),
            "participants": [c.describe() for c in room.connections.values()] + roster.participants(room_id),
            "documents": _doc_list(docs),
            "presence": list(room.presence.values()) + roster.presence(room_id),
        }

    def _leave(self, conn: Connection) -> None:
        room = conn.room
        if room is None:
            return
        for path in list(conn.docs):
            self._close_doc(conn, path)
        conn.room = None
        conn.role = ""
        conn.secret_hash = b""
        room.connections.pop(conn.id, None)
        if room.by_client.get(conn.client_id) is conn:
            del room.by_client[conn.client_id]
        for key in [k for k in room.presence if k[0] == conn.id]:
            del room.presence[key]
        conn.log.extra = {"participant": conn.id}
        room.send_to_others(None, codec.encode({"type": "participant_left", "participant": conn.id}))
        self.peers.left(room.id, conn.id)
        if not room.connections:
            self._unload(room)

    def _unload(self, room: Room) -> None:
        """Nobody here is in *room* any more: stop its documents once they are idle.

        The room's idle time starts now (its last activity is marked).
        """
        if not self.closing:
            self.background(self._touch(room.id))
        for path, doc in list(room.docs.items()):
            del room.docs[path]
            self.docs_by_id.pop(doc.record.id, None)
            self.background(doc.stop())
        if self.rooms.get(room.id) is room:
            del self.rooms[room.id]
            self.peers.roster.release(room.id)

    async def _create_document(self, conn: Connection, msg: dict[str, Any]) -> None:
        room = self._room_of(conn)
        if conn.role not in ROLES_THAT_EDIT:
            raise ProtocolError(ErrorCode.FORBIDDEN)
        text = msg.get("text") or ""
        if utf8_length(text) > self.config.max_document_bytes:
            raise ProtocolError(ErrorCode.TOO_LARGE)
        try:
            record = await self.store.create_document(
                room.id,
                msg["path"],
                text,
                max_documents=self.config.max_documents_per_room,
                created_by=conn.user,
                by=conn.id,
            )
        except QuotaExceeded:
            self.stats.quota_refusals += 1
            raise
        if record is None:
            raise ProtocolError(ErrorCode.DOCUMENT_EXISTS)
        conn.send(
            codec.encode(
                {"type": "document_created", "id": msg.get("id"), "path": record.path, "rev": record.rev}
            )
        )
        room.send_to_others(
            conn,
            codec.encode({"type": "document_added", "path": record.path, "rev": record.rev, "by": conn.id}),
        )


def _may_write(doc: DocumentTask, conn: Connection) -> bool:
    """Ops to a run's output document come only from the user who created it."""
    return doc.writer is None or (bool(doc.writer) and doc.writer == conn.user)


async def _off_loop_if(large: bool, fn: Callable[[_A], _T], arg: _A) -> tuple[_T, float]:
    """``fn(arg)`` and the time it took: on a worker thread if *large* (the
    caller waits, the event loop does not), else here."""
    if not large:
        started = time.perf_counter()
        return fn(arg), time.perf_counter() - started
    return await asyncio.to_thread(_timed, fn, arg)


def _timed(fn: Callable[[_A], _T], arg: _A) -> tuple[_T, float]:
    started = time.perf_counter()
    return fn(arg), time.perf_counter() - started


def _revision_json(parts: Revision) -> bytes:
    """The text a :class:`~collab_server.store.Revision` makes, as a JSON string in UTF-8."""
    text = parts.snapshot
    for op in parts.ops:
        text = ops.apply(text, op)
    return wire.encode_string(text)


def text_sha256(text: str) -> str:
    """SHA-256 (hex) of *text* in UTF-8, fed in pieces: encoding a piece holds the
    interpreter only briefly, and hashing lets it go (on a worker thread, the
    event loop runs meanwhile)."""
    h = hashlib.sha256()
    for i in range(0, len(text), DIGEST_CHUNK_CHARS):
        h.update(text[i : i + DIGEST_CHUNK_CHARS].encode("utf-8"))
    return h.hexdigest()


def _http_response(ws: ServerConnection, web: WebResponse) -> Response:
    """The web client's answer as websockets sends it (its Date and ``Connection: close``)."""
    response = ws.respond(web.status, "")
    for name in ("Content-Type", "Content-Length"):
        del response.headers[name]
    if web.status != HTTPStatus.NOT_MODIFIED:
        response.headers["Content-Length"] = str(len(web.body))
    response.headers.update(web.headers)
    return Response(response.status_code, response.reason_phrase, response.headers, web.body)


def _host_of(address: Any) -> str:
    """The host part of a peer address (a (host, port, ...) tuple for TCP)."""
    if isinstance(address, tuple) and address:
        return str(address[0])
    return str(address)


def _worth_logging(count: int) -> bool:
    """Log a repeated event the 1st, 10th, 100th... time (it is counted every time)."""
    power: int = 10 ** (len(str(count)) - 1)
    return count == power


def _doc_list(docs: list[DocumentRecord]) -> list[dict[str, Any]]:
    return [{"path": d.path, "rev": d.rev} for d in docs]


def _forget_handshake(ws: ServerConnection) -> None:
    """Free the opening handshake's headers, read by now (the hub reads them in
    :meth:`Hub.process_request` only).  websockets keeps the request and the
    response for the connection's lifetime (the request also in its parser's
    frame): their headers were 3.5 KiB of scenario 5's 18.5 KiB per idle
    connection, and a dozen objects each full collection walks.  The objects
    stay; only their headers go."""
    if ws.request is not None:
        ws.request.headers.clear()
    if ws.response is not None:
        ws.response.headers.clear()


def _release_parsed_frame(protocol: Protocol) -> bool:
    """Make websockets' frame parser let go of the last frame it parsed; True if it did.

    The parser (a generator) keeps the last frame it parsed in a local until the
    next frame is whole: for a client quiet after a 1 MiB paste, 1 MiB for as long
    as it stays quiet.  Between frames, with nothing buffered, the parser waits for
    the next frame's first byte and holds no other state (a fragmented message's
    state is the protocol's, not the parser's): a fresh one, started as websockets
    starts it, is the same parser without that frame.  Otherwise (bytes of the next
    frame already in, or the connection closing) the next frame replaces it, or the
    connection ends.
    """
    if protocol.state is not State.OPEN or protocol.reader.buffer or protocol.parser_exc is not None:
        return False
    protocol.parser.close()
    protocol.parser = protocol.parse()
    next(protocol.parser)
    return True


async def _close_and_drain(ws: ServerConnection, code: int, reason: str) -> None:
    """Close *ws*, reading and dropping what the peer sent meanwhile.

    The peer's answer to our close frame is queued behind the frames it had
    already sent; once more than ``max_queue`` of them wait unread, reading
    pauses and the handshake stalls until the close timeout (10 s), with a
    flooding peer still connected.
    """
    closing = asyncio.ensure_future(ws.close(code, reason))
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass
    await closing
